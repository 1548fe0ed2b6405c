"""Bulk results past what is kept in memory (they go to a temporary file) come back whole, in
order, in --json and in the counts."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eset2fa.twofactor.outcomes import KEPT, row_encoder

pytestmark = pytest.mark.usefixtures("env_master_key")


def test_bulk_enable_and_disable_results_past_the_memory_limit(cli, store, sql):
    count = KEPT + 7
    names = "".join(f"user{i:05d}\n" for i in range(count))
    assert cli("user", "add", "--from-file", "-", input=names).exit_code == 0
    assert cli("user", "enable", "user00002", "--method", "push").exit_code == 0
    enabled = cli("--json", "user", "enable", "--method", "totp", "--all")
    assert enabled.exit_code == 0
    document = enabled.json()
    assert document["counts"] == {"enabled": count, "already_enabled": 1}
    results = document["results"]
    assert [r["name"] for r in results] == ["Administrator"] + [
        f"user{i:05d}" for i in range(count)
    ]
    assert results[3] == {"name": "user00002", "result": "already_enabled"}
    assert all(r["result"] == "enabled" for r in results[4:])
    disabled = cli("--json", "--yes", "user", "disable", "--group", "nope")
    assert disabled.exit_code == 3
    disabled = cli("--json", "--yes", "user", "disable", "--all").json()
    assert disabled["counts"] == {"disabled": count + 1}
    assert disabled["results"][-1] == {"name": f"user{count - 1:05d}", "result": "disabled"}
    audited = sql("SELECT count(*) FROM audit WHERE action = 'user.disable'")[0][0]
    assert audited == count + 1
    assert sql("SELECT count(*) FROM users WHERE secret IS NOT NULL")[0][0] == 0


def test_from_file_past_a_chunk_is_matched_in_the_store_in_the_order_asked(
    cli, store, sql, tmp_path
):
    from eset2fa.twofactor.enrollment import CHUNK

    count = CHUNK + 100
    names = "".join(f"u{i:05d}\n" for i in range(count))
    assert cli("user", "add", "--from-file", "-", input=names).exit_code == 0
    asked = ["U00003", "u00001", "ghost1", "u00003", "ghost1", "Ghost1"]
    asked += [f"u{i:05d}" for i in range(count)] + ["ghost2", "# a comment", ""]
    listing = tmp_path / "names.txt"
    listing.write_text("\n".join(asked) + "\n")
    result = cli("--json", "user", "enable", "--method", "totp", "--from-file", str(listing))
    assert result.exit_code == 1  # names not found
    document = result.json()
    expected = ["u00003", "u00001"] + [f"u{i:05d}" for i in range(count) if i not in (1, 3)]
    missing = ["ghost1", "Ghost1", "ghost2"]
    assert [r["name"] for r in document["results"]] == expected + missing
    assert document["counts"] == {"enabled": count, "not_found": 3}
    audited = sql("SELECT target, result FROM audit WHERE action = 'user.enable' ORDER BY id")
    assert [tuple(row) for row in audited] == [
        (r["name"], r["result"]) for r in document["results"]
    ]
    bad = tmp_path / "bad.txt"
    bad.write_text("".join(f"u{i:05d}\n" for i in range(count)) + "not a name!\n")
    refused = cli("--yes", "user", "disable", "--from-file", str(bad))
    assert refused.exit_code == 2 and f"line {count + 1}" in refused.stderr
    assert sql("SELECT count(*) FROM users WHERE state = 'pending'")[0][0] == count
    disabled = cli("--json", "--yes", "user", "disable", "--from-file", str(listing)).json()
    assert disabled["counts"] == {"disabled": count, "not_found": 3}
    assert sql("SELECT count(*) FROM users WHERE state = 'pending'")[0][0] == 0


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=False),
    st.text(),  # any code point: quotes, backslashes, control characters, non-ASCII
)


@given(st.lists(st.tuples(st.text(min_size=1), SCALARS), min_size=1, max_size=12))
def test_a_result_row_is_written_exactly_as_json_writes_its_dict(pairs):
    row = dict(pairs)  # the last value of a repeated name
    expected = json.dumps(row, ensure_ascii=False, separators=(",", ":"))
    assert row_encoder(tuple(row))(tuple(row.values())) == expected
