"""SIGTERM and SIGHUP stop `jupiter run` (and `deploy` while it starts) as Ctrl-C does.

Ctrl-C raises KeyboardInterrupt where the command is; `run` and `deploy`
tear the deployment down on their way out (their `finally`/`except
BaseException`), and `main` prints one line and exits. A `kill` (SIGTERM,
as `timeout`, systemd or a batch scheduler send) or a closed terminal
(SIGHUP) would instead end the process at once and leave every agent
running. Inside :func:`stopping_like_ctrl_c` both raise :class:`Terminated`
where the command is, so the same teardown runs; a second signal while it
runs is ignored, so that the teardown is not cut short. `Terminated` is a
BaseException like KeyboardInterrupt, but not one (click would turn it
into its Abort), so `main` can exit with 128 + the signal's number as a
shell expects. Other commands keep the default (a `status` that is killed
has nothing to clean up).
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from types import FrameType

SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class Terminated(BaseException):
    """The command was stopped by a signal other than Ctrl-C; it exits with 128 + the signal's number."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def _terminate(signum: int, frame: FrameType | None) -> None:
    for sig in SIGNALS:
        signal.signal(sig, signal.SIG_IGN)  # the teardown this starts must not be cut short
    raise Terminated(signum)


@contextlib.contextmanager
def stopping_like_ctrl_c() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise `Terminated` (module docstring)."""
    previous = {sig: signal.signal(sig, _terminate) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
