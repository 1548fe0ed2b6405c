"""Rate limits of the verification API: requests per API key and per user, in this process.

A token bucket per name: `limit` requests at once at most, refilled at `limit` per `window`
seconds, so a steady `limit`-per-window passes and a burst beyond it gets 429 with the seconds
until the next request would pass (Retry-After).

The counters live in the server process's memory, not in the store: counting in SQLite would add
a write transaction (and an fsync) to every request, doubling the cost of a verification. The
price: each server process counts on its own, so N processes behind one load balancer let through
up to N times the limit (the README says so). The lockout stays exact whatever the rate: it is
counted in the store, in the verification's own transaction.

Memory is bounded: once more than MAX_TRACKED names are tracked, the ones whose buckets have
refilled (idle long enough to be indistinguishable from new) are forgotten.
"""

from __future__ import annotations

import math
import threading
import time

MAX_TRACKED = 10_000


class RateLimiter:
    def __init__(self, clock=time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()  # routes run in a pool of worker threads
        self._buckets: dict[str, tuple[float, float]] = {}  # name -> (tokens, at)

    def take(self, name: str, limit: int, window: float) -> float:
        """0 when a request by `name` may pass now (and counts it), else the seconds to wait."""
        rate = limit / window
        moment = self._clock()
        with self._lock:
            tokens, at = self._buckets.get(name, (float(limit), moment))
            tokens = min(float(limit), tokens + (moment - at) * rate)
            if tokens >= 1.0:
                self._buckets[name] = (tokens - 1.0, moment)
                if len(self._buckets) > MAX_TRACKED:
                    self._forget_idle(moment, rate, limit)
                return 0.0
            self._buckets[name] = (tokens, moment)
            return (1.0 - tokens) / rate

    def _forget_idle(self, moment: float, rate: float, limit: int) -> None:
        full = [
            name
            for name, (tokens, at) in self._buckets.items()
            if tokens + (moment - at) * rate >= limit
        ]
        for name in full:
            del self._buckets[name]


def retry_after(seconds: float) -> str:
    """The Retry-After header value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))
