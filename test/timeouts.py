"""A time limit for fixture set-up: pytest-timeout's per-test limit covers only the test body
(``timeout_func_only``), so a fixture that trains or synthesizes carries its own."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def time_limit(seconds: float, what: str) -> Iterator[None]:
    """Raise TimeoutError naming ``what`` if the block runs longer than ``seconds`` (main thread only)."""

    def expired(signum, frame):  # noqa: ANN001 - signal handler signature
        raise TimeoutError(f"{what} took longer than {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
