"""The build log: the build's progress events as text, in a file uploaded as `<key>.log`.

`BuildLog` is the `EventSink` the runner hands to the engine. It writes one line per event
(RUN output indented), keeps the file under a size limit (the middle is dropped, the end is
kept, so the failing step is always in it), remembers the step that is running (for the
failure's step and line) and the timings of the steps that finished. Every line goes through
the build's secrets first (`run_build` hands them over through `add_secrets`), so the log
copied to the bucket never holds one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterable
from contextvars import ContextVar, Token
from pathlib import Path
from typing import TextIO

from core.build.events import (
    Event,
    Message,
    Pushed,
    StepFinished,
    StepOutput,
    StepStarted,
)
from core.build.result import StepTiming
from core.redaction import SecretSet
from core.service.result import StepPosition

log = logging.getLogger(__name__)

MAX_LOG_BYTES = 8 << 20
_TAIL_LINES = 2000


class BuildLog:
    """An EventSink writing a text log to `path` (created now)."""

    def __init__(self, path: Path, *, max_bytes: int = MAX_LOG_BYTES,
                 secrets: SecretSet | None = None) -> None:
        self.path = path
        self._secrets = secrets if secrets is not None else SecretSet()
        self._handle: TextIO = path.open("w", encoding="utf-8", errors="replace")
        self._max_bytes = max_bytes
        self._written = 0
        self._dropped = 0
        self._tail: deque[str] = deque(maxlen=_TAIL_LINES)
        self._current: StepPosition | None = None
        self._started: dict[int, StepStarted] = {}
        self._timings: list[StepTiming] = []
        self._lock = threading.Lock()  # lines come from the build's threads

    @property
    def current_step(self) -> StepPosition | None:
        """The step that started and has not finished (None between steps)."""
        return self._current

    @property
    def timings(self) -> tuple[StepTiming, ...]:
        return tuple(self._timings)

    def add_secrets(self, values: Iterable[str]) -> None:
        """Redact these values from every line written from now on."""
        self._secrets.add(*values)

    def redact(self, text: str) -> str:
        return self._secrets.text(text)

    def emit(self, event: Event) -> None:
        if isinstance(event, StepStarted):
            self._started[event.number] = event
            self._current = StepPosition(event.number, event.instruction, event.line)
            self.write(f"[{event.number}/{event.total}] {event.instruction} "
                       f"(line {event.line}, stage {event.stage})")
        elif isinstance(event, StepOutput):
            self.write(f"    {event.text}")
        elif isinstance(event, StepFinished):
            self._finished(event)
        elif isinstance(event, Message):
            self.write(f"{event.level}: {event.text}")
            log.log(logging.WARNING if event.level in ("warning", "error") else logging.INFO,
                    "%s", event.text)
        elif isinstance(event, Pushed):
            self.write(f"pushed {event.reference}")

    def _finished(self, event: StepFinished) -> None:
        started = self._started.pop(event.number, None)
        self._current = None
        line = started.line if started else 0
        self._timings.append(StepTiming(number=event.number, instruction=event.instruction,
                                        line=line, seconds=event.duration,
                                        cached=event.cached))
        size = f", layer {event.layer_size} bytes" if event.layer_size is not None else ""
        cached = ", cached" if event.cached else ""
        self.write(f"[{event.number}/{event.total}] done in {event.duration:.2f}s{size}{cached}")

    def write(self, line: str) -> None:
        """Add one line (a time stamp is prefixed), secrets redacted."""
        text = f"{time.strftime('%H:%M:%S')} {self._secrets.text(line)}\n"
        with self._lock:
            self._add(text)

    def _add(self, text: str) -> None:
        if self._handle.closed:
            return  # a late line from a worker thread after the log was closed
        if self._written + len(text) <= self._max_bytes // 2:
            self._handle.write(text)
            self._written += len(text)
            return
        if len(self._tail) == self._tail.maxlen:
            self._dropped += 1
        self._tail.append(text)

    def close(self) -> None:
        """Write the kept tail (as much of its end as fits) and close the file."""
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._handle.closed:
            return
        lines = list(self._tail)
        budget = self._max_bytes - self._written
        total = sum(len(text) for text in lines)
        while lines and total > budget:
            total -= len(lines.pop(0))
            self._dropped += 1
        if self._dropped:
            self._handle.write(f"... {self._dropped} lines left out ...\n")
        self._handle.writelines(lines)
        self._handle.close()


class _Router(logging.Handler):
    """Copies a library record (INFO and up, not the service's own) into the build log of
    the context it was logged in, if any. One instance serves every build of the process."""

    def emit(self, record: logging.LogRecord) -> None:
        target = _TARGET.get()
        if target is None or record.name.startswith("core.service"):
            return  # no build here; the service's own records are about the build
        try:
            target.write(f"{record.levelname.lower()}: {record.getMessage()}")
        except Exception:  # a log line must never break the build
            self.handleError(record)


#: the build log of the build this context works for (set by `LogCapture`; the engine runs
#: its worker threads in copies of the build's context, so their records land here too)
_TARGET: ContextVar[BuildLog | None] = ContextVar("bucketbuild_build_log", default=None)
#: stateless after creation: attached to the library's logger once, never removed
_ROUTER = _Router(level=logging.INFO)


class LogCapture:
    """Copies the library's own log records (`core.*`, INFO and up) that this build logs —
    in the thread that enters it and in the threads the engine starts for the build — into
    its `BuildLog`: `with LogCapture(build_log): ...`. Builds running at the same time in
    one process each get only their own records.

    The first capture attaches one shared handler to the `core` logger and lowers the
    logger to INFO if it was above; both stay (undoing either would cut short the capture
    of a build still running in another thread)."""

    def __init__(self, target: BuildLog, *, logger_name: str = "core") -> None:
        self._target = target
        self._logger = logging.getLogger(logger_name)
        self._token: Token[BuildLog | None] | None = None

    def __enter__(self) -> LogCapture:
        self._logger.addHandler(_ROUTER)  # no-op when attached already (checked under a lock)
        if self._logger.getEffectiveLevel() > logging.INFO:
            self._logger.setLevel(logging.INFO)
        self._token = _TARGET.set(self._target)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            _TARGET.reset(self._token)
            self._token = None
