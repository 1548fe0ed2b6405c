"""The layers keep their direction: SQL only in eset2fa/db/, transports without the store, and the
core without the CLI libraries.

Each rule parses every module under eset2fa/ with `ast` (nothing is imported) and collects every
breach as `path:line: what`, so one failing run lists all of them.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import eset2fa

PACKAGE = Path(eset2fa.__file__).resolve().parent
ROOT = PACKAGE.parent

EXECUTE_METHODS = {"execute", "executemany", "executescript"}
SQL = re.compile(
    r"\b(SELECT\s+.+\s+FROM|INSERT\s+(OR\s+\w+\s+)?INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM"
    r"|CREATE\s+(TABLE|INDEX)|PRAGMA\s+\w+)\b",
    re.IGNORECASE,
)
CLI_LIBRARIES = {"typer", "rich", "click"}
# The face: the only modules that may use the CLI libraries.
FACE_FILES = {"cli.py", "__main__.py", "output.py"}
FACE_PACKAGES = {"commands"}


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _parts(path: Path) -> tuple[str, ...]:
    """The path inside the package, e.g. ("db", "users.py")."""
    return path.relative_to(PACKAGE).parts


def _module_name(path: Path) -> str:
    parts = list(_parts(path))
    parts[-1] = parts[-1].removesuffix(".py")
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["eset2fa", *parts])


def _package_of(path: Path) -> str:
    name = _module_name(path)
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def _where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(ROOT).as_posix()}:{node.lineno}"


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the Constant nodes that are docstrings (of the module, classes, functions)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            first = node.body[0] if node.body else None
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                found.add(id(first.value))
    return found


def _string_constants(tree: ast.AST) -> Iterator[tuple[ast.AST, str]]:
    """Every string literal but docstrings; an f-string as one text, `{...}` read as a value."""
    docstrings = _docstrings(tree)
    inside_fstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            pieces = []
            for value in node.values:
                inside_fstrings.add(id(value))
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    pieces.append(value.value)
                else:
                    pieces.append("x")  # a formatted value: a name, a column list, a clause
            yield node, "".join(pieces)
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and id(node) not in inside_fstrings
        ):
            yield node, node.value


def _imports(tree: ast.AST, package: str) -> Iterator[tuple[ast.AST, list[str]]]:
    """(node, absolute module names) for every import at any depth, relative ones resolved.

    `from A import b` gives A, then A.b (b may be a module); `importlib.import_module("m")` and
    `__import__("m")` with a literal name count as imports of m.
    """
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield node, [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            yield node, [module, *(f"{module}.{alias.name}" for alias in node.names)]
        elif (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and (
                (isinstance(node.func, ast.Name) and node.func.id == "__import__")
                or (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
            )
        ):
            yield node, [node.args[0].value]


def _imports_matching(path: Path, source: str, wanted: Callable[[str], bool]) -> list[str]:
    """One breach per import statement that imports a module `wanted` accepts."""
    tree = ast.parse(source, str(path))
    breaches = []
    for node, modules in _imports(tree, _package_of(path)):
        if hit := next((module for module in modules if wanted(module)), None):
            breaches.append((node.lineno, f"{_where(path, node)}: imports {hit}"))
    return [breach for _line, breach in sorted(breaches)]


def _is_or_under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


# -- the rules: each takes (path, source) and returns its breaches ---------------------------------


def sql_outside_db(path: Path, source: str) -> list[str]:
    """(a) Outside eset2fa/db/: no `.execute`/`.executemany`/`.executescript`, no SQL text."""
    if _parts(path)[0] == "db":
        return []
    tree = ast.parse(source, str(path))
    breaches = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in EXECUTE_METHODS
        ):
            breaches.append((node.lineno, f"{_where(path, node)}: calls .{node.func.attr}()"))
    for node, text in _string_constants(tree):
        if match := SQL.search(text):
            breaches.append(
                (node.lineno, f"{_where(path, node)}: SQL text {match.group(0)[:40]!r}")
            )
    return [breach for _line, breach in sorted(breaches)]


def transport_imports_db(path: Path, source: str) -> list[str]:
    """(b) Under eset2fa/transports/: no import of eset2fa.db, however written."""
    if _parts(path)[0] != "transports":
        return []
    return _imports_matching(path, source, lambda module: _is_or_under(module, "eset2fa.db"))


def core_imports_cli(path: Path, source: str) -> list[str]:
    """(c) The core (all but cli.py, __main__.py, output.py, commands/) never imports
    typer, rich or click, not even inside a function."""
    parts = _parts(path)
    if parts[0] in FACE_PACKAGES or (len(parts) == 1 and parts[0] in FACE_FILES):
        return []
    return _imports_matching(path, source, lambda module: module.partition(".")[0] in CLI_LIBRARIES)


def breaches_of(rule: Callable[[Path, str], list[str]]) -> list[str]:
    found = []
    for path in _modules():
        found.extend(rule(path, path.read_text(encoding="utf-8")))
    return found


def _explain(rule: str, breaches: list[str]) -> str:
    return f"{len(breaches)} breach(es) of {rule}:\n" + "\n".join(breaches)


def test_no_sql_outside_the_store():
    breaches = breaches_of(sql_outside_db)
    assert breaches == [], _explain("sql_outside_db", breaches)


def test_transports_do_not_import_the_store():
    breaches = breaches_of(transport_imports_db)
    assert breaches == [], _explain("transport_imports_db", breaches)


def test_core_does_not_import_the_cli_libraries():
    breaches = breaches_of(core_imports_cli)
    assert breaches == [], _explain("core_imports_cli", breaches)


# -- the rules themselves catch what they should ---------------------------------------------------


def _at(relative: str) -> Path:
    return PACKAGE / relative


@pytest.mark.parametrize(
    ("rule", "relative", "source", "expected"),
    [
        (sql_outside_db, "ops/x.py", "def f(c):\n    c.execute(q)\n", ["ops/x.py:2: calls"]),
        (sql_outside_db, "ops/x.py", "store.executescript(s)\n", ["ops/x.py:1: calls"]),
        (sql_outside_db, "ops/x.py", "Q = 'select id from users'\n", ["ops/x.py:1: SQL text"]),
        (sql_outside_db, "ops/x.py", "Q = f'DELETE FROM {t} WHERE 1'\n", ["ops/x.py:1: SQL"]),
        (sql_outside_db, "ops/x.py", "Q = f'UPDATE users SET {c} = ?'\n", ["ops/x.py:1: SQL"]),
        (sql_outside_db, "ops/x.py", "Q = 'INSERT OR IGNORE INTO t'\n", ["ops/x.py:1: SQL"]),
        (sql_outside_db, "ops/x.py", "Q = 'PRAGMA user_version'\n", ["ops/x.py:1: SQL"]),
        (sql_outside_db, "ops/x.py", '"""SELECT a FROM b explains."""\n', []),
        (sql_outside_db, "ops/x.py", 'def f():\n    """DELETE FROM t."""\n', []),
        (sql_outside_db, "ops/x.py", "M = 'Delete the user.'\n", []),
        (sql_outside_db, "db/x.py", "c.execute('SELECT a FROM b')\n", []),
        (transport_imports_db, "transports/x.py", "import eset2fa.db\n", ["transports/x.py:1"]),
        (
            transport_imports_db,
            "transports/x.py",
            "if TYPE_CHECKING:\n    from eset2fa.db import Store\n",
            ["transports/x.py:2"],
        ),
        (transport_imports_db, "transports/x.py", "from eset2fa import db\n", ["transports/x"]),
        (transport_imports_db, "transports/x.py", "from ..db import users\n", ["transports/x"]),
        (transport_imports_db, "transports/x.py", "from .. import db\n", ["transports/x.py:1"]),
        (transport_imports_db, "transports/x.py", "from . import base\n", []),
        (transport_imports_db, "transports/x.py", "from eset2fa import dbx\n", []),
        (transport_imports_db, "ops/x.py", "from eset2fa.db import users\n", []),
        (core_imports_cli, "ops/x.py", "def f():\n    import typer\n", ["ops/x.py:2: imports"]),
        (core_imports_cli, "ops/x.py", "from rich.console import Console\n", ["ops/x.py:1"]),
        (core_imports_cli, "ops/x.py", "import click.testing\n", ["ops/x.py:1"]),
        (core_imports_cli, "ops/x.py", "importlib.import_module('rich')\n", ["ops/x.py:1"]),
        (core_imports_cli, "ops/x.py", "import richer\n", []),
        (core_imports_cli, "commands/x.py", "import typer\n", []),
        (core_imports_cli, "cli.py", "import typer\n", []),
        (core_imports_cli, "output.py", "from rich.table import Table\n", []),
    ],
)
def test_rules_catch_what_they_should(rule, relative, source, expected):
    breaches = rule(_at(relative), source)
    assert len(breaches) == len(expected), breaches
    for breach, start in zip(breaches, expected, strict=True):
        assert breach.startswith("eset2fa/" + start), breach
