"""The per-item results of a bulk command (enable, disable, import), in order, and their counts.

A bulk command on 1,000,000 users reports 1,000,000 results. Held as Python objects they cost
about 120 bytes each, so memory would grow with the store: up to KEPT results are kept in memory,
and beyond that they go, a batch at a time, to an unnamed temporary file (removed when closed or
when the process ends; names, results and reasons only, never a secret). Reading them back gives
dicts one at a time, so the command's output can be streamed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import IO, Any

KEPT = 10_000


# A value other than a string, None, a boolean or an integer (none of the bulk commands' results
# has one today) is encoded by json itself, as eset2fa.output writes each item of a long list.
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def row_encoder(fields: tuple[str, ...]):
    """`_encode(dict(zip(fields, values)))` for a tuple of values, without the dict: the keys'
    text is made once, and strings, None, booleans and integers are written as json writes them
    (its own string encoder, int.__repr__); any other value goes through `_encode`. A third of
    the time of encoding 100,000 results as dicts (tests/test_bulk_results_spill.py checks that
    the texts are the same)."""
    from json.encoder import encode_basestring

    prefixes = [("{" if i == 0 else ",") + encode_basestring(f) + ":" for i, f in enumerate(fields)]

    def encode(values: tuple) -> str:
        parts = []
        for prefix, value in zip(prefixes, values, strict=True):
            kind = value.__class__
            if kind is str:
                parts.append(prefix + encode_basestring(value))
            elif value is None:
                parts.append(prefix + "null")
            elif kind is bool:
                parts.append(prefix + ("true" if value else "false"))
            elif kind is int:
                parts.append(prefix + int.__repr__(value))
            else:
                parts.append(prefix + _encode(value))
        parts.append("}")
        return "".join(parts)

    return encode


class Outcomes:
    """Results as tuples of `fields` (one of them "result", which is counted), in order."""

    def __init__(self, fields: tuple[str, ...]) -> None:
        self.fields = fields
        self._result_at = fields.index("result")
        self._encode = row_encoder(fields)
        self._held: list[tuple] = []
        self._file: IO[str] | None = None
        self._spilled = 0
        self.counts: dict[str, int] = {}

    def add(self, *values: Any) -> None:
        self._held.append(values)
        result = values[self._result_at]
        self.counts[result] = self.counts.get(result, 0) + 1
        if len(self._held) >= KEPT:
            self._spill()

    def extend(self, rows: Iterable[tuple]) -> None:
        for values in rows:
            self.add(*values)

    def __len__(self) -> int:
        return self._spilled + len(self._held)

    def _spill(self) -> None:
        # Written as each result's JSON text, the way --json prints it: the output copies the
        # lines as they are instead of decoding and encoding 1,000,000 results again.
        if self._file is None:
            import tempfile

            self._file = tempfile.TemporaryFile("w+", encoding="utf-8", newline="\n")
        self._file.seek(0, 2)
        texts = list(map(self._encode, self._held))
        texts.append("")  # the last line's end
        self._file.write("\n".join(texts))
        self._spilled += len(self._held)
        self._held.clear()

    def texts(self) -> Iterator[str]:
        """Each result as compact JSON text (no spaces, as output writes list items), in order;
        readable more than once."""
        if self._file is not None:
            self._file.flush()
            self._file.seek(0)
            for line in self._file:
                yield line[:-1]
        yield from map(self._encode, self._held)

    def __iter__(self) -> Iterator[dict]:
        """Each result as a dict of `fields`, in order; readable more than once."""
        if self._file is not None:
            self._file.flush()
            self._file.seek(0)
            for line in self._file:
                yield json.loads(line)
        fields = self.fields
        for values in self._held:
            yield dict(zip(fields, values, strict=True))

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
