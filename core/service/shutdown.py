"""The platform shutting a function instance down in the middle of a build (SIGTERM).

Lambda sends SIGTERM to the runtime before it shuts an execution environment down, Cloud Run
to the container; SIGKILL follows (after about half a second on Lambda, ten seconds on Cloud
Run). `stopping_on_sigterm` turns SIGTERM into `Terminated` while a block runs. It works only
in the main thread, where Python runs signal handlers: the Lambda runtime calls its handler
there. Elsewhere (functions-framework's server runs each request in a thread of its own, and
its gunicorn worker owns SIGTERM for its graceful shutdown) it does nothing.

`Terminated` is a BaseException, so no handler of the engine or the service takes it for a
build error: it unwinds the build, whose `finally` blocks kill the RUN step and remove the
work directory; the runner then records a failed result (kind `terminated`) if time allows
and raises it again.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from core.errors import BuildError


class Terminated(BaseException):
    """SIGTERM arrived while a build was running."""


class TerminatedError(BuildError):
    """How a build stopped by the platform is reported."""

    kind = "terminated"
    exit_code = 128 + signal.SIGTERM


def _raise_terminated(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second one must not cut the clean-up
    raise Terminated("terminated by SIGTERM; the build was stopped and its work directory "
                     "removed")


@contextmanager
def stopping_on_sigterm() -> Iterator[bool]:
    """Turn SIGTERM into `Terminated` while the block runs; yields whether it does (only in
    the main thread). The previous handler is restored afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield False
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield True
    finally:
        signal.signal(signal.SIGTERM, previous)
