"""parse_ahead: an import's input parsed in a second process gives the same batches, in order,
raises the parser's errors here, and leaves no process behind."""

from __future__ import annotations

import os
import threading
from typing import NamedTuple

import pytest

from eset2fa.errors import UsageError
from eset2fa.twofactor import parse_ahead

pytestmark = pytest.mark.timeout(60)


class Entry(NamedTuple):
    number: int
    pid: int
    secret: bytes = b""


def _entries(count: int, fail_at: int | None = None, error: Exception | None = None):
    for number in range(count):
        if number == fail_at:
            raise error
        yield Entry(number, os.getpid(), os.urandom(20))


def _children() -> set[int]:
    with open(f"/proc/{os.getpid()}/task/{os.getpid()}/children") as handle:
        return {int(pid) for pid in handle.read().split()}


@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="Linux only")
def test_batches_come_in_order_from_another_process_and_it_is_gone_after():
    before = _children()
    got = list(parse_ahead.batches(_entries(12_345), 5000, row_type=Entry))
    assert [len(batch) for batch in got] == [parse_ahead.FIRST_BATCH, 5000, 5000, 2095]
    flat = [entry for batch in got for entry in batch]
    assert [entry.number for entry in flat] == list(range(12_345))
    assert all(type(entry) is Entry for entry in flat)
    assert {entry.pid for entry in flat} != {os.getpid()}  # parsed elsewhere
    assert _children() == before


def test_the_parsers_error_is_raised_here_with_its_hint():
    batches = parse_ahead.batches(
        _entries(10_000, fail_at=7_000, error=UsageError("bad line", "fix it")), 5000
    )
    first = next(batches)
    assert len(first) == parse_ahead.FIRST_BATCH
    with pytest.raises(UsageError) as raised:
        list(batches)
    assert (raised.value.message, raised.value.hint) == ("bad line", "fix it")


def test_a_reader_that_stops_early_ends_the_child():
    before = _children()
    batches = parse_ahead.batches(_entries(1_000_000), 5000)
    next(batches)
    batches.close()  # the import failed on its side: the child is killed and reaped
    assert _children() == before


def test_with_another_thread_running_the_batches_are_made_here():
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        got = list(parse_ahead.batches(_entries(600), 250))
    finally:
        stop.set()
        other.join()
    assert [len(batch) for batch in got] == [250, 250, 100]
    assert {entry.pid for batch in got for entry in batch} == {os.getpid()}


def test_the_progress_bar_on_a_terminal_starts_no_thread_so_an_import_may_fork(monkeypatch):
    from eset2fa.output import Output

    primary, secondary = os.openpty()
    terminal = os.fdopen(secondary, "w", buffering=1)
    monkeypatch.setattr("sys.stderr", terminal)
    monkeypatch.setenv("TERM", "xterm")
    try:
        with Output().progress(10_000, "Importing") as advance:
            assert threading.active_count() == 1
            advance(5000)
            got = list(parse_ahead.batches(_entries(600), 250))
        assert {entry.pid for batch in got for entry in batch} != {os.getpid()}
        terminal.flush()
        shown = os.read(primary, 65536)
    finally:
        terminal.close()
        os.close(primary)
    assert b"Importing" in shown and b"5000/10000" in shown
