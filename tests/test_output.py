"""The JSON writer: whatever the shape, one valid document equal to the data."""

from __future__ import annotations

import io
import json

from hypothesis import given
from hypothesis import strategies as st

from eset2fa.output import LONG_LIST, write_json

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=LONG_LIST + 5)
        | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=200,
)


@given(JSON_VALUES)
def test_any_value_round_trips(value):
    out = io.StringIO()
    write_json(value, out)
    assert json.loads(out.getvalue()) == value


def test_long_lists_are_one_item_per_line():
    rows = [{"name": f"u{i}", "n": i} for i in range(LONG_LIST + 1)]
    out = io.StringIO()
    write_json({"counts": {"added": len(rows)}, "results": rows}, out)
    text = out.getvalue()
    assert json.loads(text)["results"] == rows
    assert '    {"name":"u0","n":0},' in text.splitlines()  # compact: no spaces between values
