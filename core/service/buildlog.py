"""The build log: the build's progress events as text, in a file uploaded as `<key>.log`.

`BuildLog` is the `EventSink` the runner hands to the engine. It writes one line per event
(RUN output indented), keeps the file under a size limit (the middle is dropped, the end is
kept, so the failing step is always in it), remembers the step that is running (for the
failure's step and line) and the timings of the steps that finished.
"""

from __future__ import annotations

import logging
import time
from collections import deque
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
from core.service.result import StepPosition

log = logging.getLogger(__name__)

MAX_LOG_BYTES = 8 << 20
_TAIL_LINES = 2000


class BuildLog:
    """An EventSink writing a text log to `path` (created now)."""

    def __init__(self, path: Path, *, max_bytes: int = MAX_LOG_BYTES) -> None:
        self.path = path
        self._handle: TextIO = path.open("w", encoding="utf-8", errors="replace")
        self._max_bytes = max_bytes
        self._written = 0
        self._dropped = 0
        self._tail: deque[str] = deque(maxlen=_TAIL_LINES)
        self._current: StepPosition | None = None
        self._started: dict[int, StepStarted] = {}
        self._timings: list[StepTiming] = []

    @property
    def current_step(self) -> StepPosition | None:
        """The step that started and has not finished (None between steps)."""
        return self._current

    @property
    def timings(self) -> tuple[StepTiming, ...]:
        return tuple(self._timings)

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
        """Add one line (a time stamp is prefixed)."""
        text = f"{time.strftime('%H:%M:%S')} {line}\n"
        if self._written + len(text) <= self._max_bytes // 2:
            self._handle.write(text)
            self._written += len(text)
            return
        if len(self._tail) == self._tail.maxlen:
            self._dropped += 1
        self._tail.append(text)

    def close(self) -> None:
        """Write the kept tail (as much of its end as fits) and close the file."""
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


class LogCapture(logging.Handler):
    """Copies the library's own log records (`core.*`, INFO and up) into a `BuildLog` while
    attached: `with LogCapture(build_log): ...`."""

    def __init__(self, target: BuildLog, *, logger_name: str = "core") -> None:
        super().__init__(level=logging.INFO)
        self._target = target
        self._logger = logging.getLogger(logger_name)
        self._saved_level = self._logger.level

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("core.service"):
            return  # the service's own records are about the build, not part of its log
        try:
            self._target.write(f"{record.levelname.lower()}: {record.getMessage()}")
        except Exception:  # a log line must never break the build
            self.handleError(record)

    def __enter__(self) -> LogCapture:
        self._logger.addHandler(self)
        if self._logger.getEffectiveLevel() > logging.INFO:
            self._logger.setLevel(logging.INFO)
        return self

    def __exit__(self, *exc: object) -> None:
        self._logger.removeHandler(self)
        self._logger.setLevel(self._saved_level)
