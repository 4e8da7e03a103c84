"""Stopping a run on SIGINT, SIGTERM or SIGHUP between two steps.

The signal only notes itself; the loop reads the note before each step (under torchrun
every rank reads every rank's, in the collective the step makes anyway), so all ranks
stop at the same step. The epoch cut short is never committed and its parts are deleted,
so `--resume` continues from the last checkpoint row for row. A second SIGINT stops at once.
"""
import contextlib
import signal
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class StopRequest:
    """The signal that asked the run to stop, once one has."""

    def __init__(self):
        self.signum: int | None = None

    @property
    def requested(self) -> bool:
        return self.signum is not None


class Stopped(Exception):
    """A run stopped by a signal at a step boundary; a shell's exit code for it is 128 + signal."""

    def __init__(self, signum: int, message: str):
        super().__init__(message)
        self.signum = signum
        self.exit_code = 128 + signum


@contextlib.contextmanager
def on_signals():
    """A StopRequest that SIGNALS set while the block runs (the process's own handlers come back
    after it). Outside the main thread Python cannot take signals: the request then stays empty."""
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return

    def note(signum, frame):
        if request.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        request.signum = signum

    previous = {s: signal.signal(s, note) for s in SIGNALS}
    try:
        yield request
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
