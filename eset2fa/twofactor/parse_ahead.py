"""`user import`'s lines parsed in a second process while this one writes them to the store.

Parsing an otpauth URI with the standard library (urllib.parse, base64) costs about as much CPU
as planning and writing its user, and both are Python: a thread would wait for this one's GIL.
So on Linux the parsing runs in a child made with fork, which inherits the open input (a file or
stdin) and the parser with it, and sends back each batch of parsed entries, pickled, through a
pipe. The pipe holds about one batch, so the child is never more than a batch or two ahead:
memory stays flat however long the input.

The child does nothing but parse and send: it never touches the store, the standard streams or
the signal handling of this process (Ctrl-C is this process's to handle; the child ignores it and
is killed when the import ends for any reason), and it leaves with os._exit. What the parser
raises (an unreadable file, bytes that are not UTF-8) is sent back and raised here, at the batch
where it happened. Where fork is not safe (not Linux, or another thread is running) the batches
are parsed here, one after the other, with the same results. (The progress bar on a terminal
redraws from this thread, not from one of its own: eset2fa.output.Output.progress.)
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import TypeVar

T = TypeVar("T")

_BATCH, _END, _ERROR = "batch", "end", "error"


FIRST_BATCH = 250  # small, so that the writer starts at once rather than after a whole batch


def batches(items: Iterable[T], size: int, *, row_type: type | None = None) -> Iterator[list[T]]:
    """Lists of `items`, in order: FIRST_BATCH of them, then up to `size` each; on Linux
    produced by a child process.

    `row_type`: the items' NamedTuple class. They then travel as plain tuples and are made that
    type again here (unpickling a named tuple runs its Python __new__ for each: 100,000 import
    entries cost this process 0.27 s that way, 0.17 s as tuples)."""
    items = iter(items)
    if not _fork_is_safe():
        yield from _sliced(items, size)
        return
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: parse, send, leave
        os.close(read_end)
        _produce(items if row_type is None else map(tuple, items), size, write_end)  # no return
    os.close(write_end)
    try:
        with os.fdopen(read_end, "rb") as pipe:
            while True:
                try:
                    kind, value = pickle.load(pipe)
                except EOFError:
                    raise RuntimeError("the import's parsing process ended unexpectedly") from None
                if kind == _END:
                    return
                if kind == _ERROR:
                    raise value
                yield value if row_type is None else list(map(row_type._make, value))
    finally:
        try:
            os.kill(pid, signal.SIGKILL)  # done, failed or interrupted: the child is not needed
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)


def _sliced(items: Iterator[T], size: int) -> Iterator[list[T]]:
    batch = list(islice(items, min(FIRST_BATCH, size)))
    while batch:
        yield batch
        batch = list(islice(items, size))


def _fork_is_safe() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    import threading

    return threading.active_count() == 1


def _produce(items: Iterator, size: int, write_end: int) -> None:
    status = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        with os.fdopen(write_end, "wb") as pipe:
            try:
                for batch in _sliced(items, size):
                    pickle.dump((_BATCH, batch), pipe, protocol=pickle.HIGHEST_PROTOCOL)
                    pipe.flush()
                pickle.dump((_END, None), pipe)
            except BrokenPipeError:
                status = 1  # the writer stopped reading (an error of its own): nothing to say
            except BaseException as error:  # sent to the writer, raised there
                try:
                    pickle.dump((_ERROR, error), pipe)
                except Exception:
                    pickle.dump((_ERROR, RuntimeError(f"{type(error).__name__} in parsing")), pipe)
    except BaseException:
        status = 1
    finally:
        os._exit(status)
