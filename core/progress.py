"""How `bucketbuild build` shows a build: event sinks that write progress to a stream.

`TextProgress` is for people: one line when a step starts (`[2/7] RUN npm ci`), the step's
output indented under it, one line when it ends (`[2/7] done in 1.2s, layer 3.4 MB`), warnings
and pushes, and a summary. `JsonProgress` is for machines: one JSON object per line, each with a
`type` and a `time`. Both also end the build (`succeeded` / `failed`) and format log records.
Every line they write, and every log record, goes through the process's `SecretSet` first,
so secrets never reach the stream (the build adds its secrets to that set).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Protocol, TextIO

from core.build.events import (
    Event,
    EventSink,
    Level,
    Message,
    Pushed,
    StepFinished,
    StepOutput,
    StepStarted,
)
from core.build.options import LogFormat
from core.build.result import BuildResult
from core.errors import BuildError, DockerfileError, StepError
from core.redaction import SecretSet

Clock = Callable[[], datetime]

#: libraries whose DEBUG records dump HTTP headers and bodies (credentials, ECR and Secrets
#: Manager answers): never shown below INFO, whatever the verbosity
WIRE_LOGGERS = ("botocore", "boto3", "s3transfer", "google.auth", "google.api_core",
                "google.cloud", "google.resumable_media")

_LEVELS: Mapping[Level, int] = MappingProxyType({
    "debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
    "error": logging.ERROR,
})
_EVENT_TYPES: Mapping[type[Any], str] = MappingProxyType({
    StepStarted: "step_started", StepOutput: "step_output", StepFinished: "step_finished",
    Message: "message", Pushed: "pushed",
})


class Reporter(EventSink, Protocol):
    """An event sink that also reports how the build ended."""

    def succeeded(self, result: BuildResult, *, seconds: float) -> None: ...

    def failed(self, error: BuildError, *, exit_code: int) -> None: ...


def utc_now() -> datetime:
    return datetime.now(UTC)


def timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with milliseconds: `2024-05-01T12:00:00.123Z`."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def human_size(size: int) -> str:
    """Decimal units, as docker prints them: `512 B`, `3.4 MB`."""
    if size < 1000:
        return f"{size} B"
    value = float(size)
    for unit in ("kB", "MB", "GB"):
        value /= 1000
        if value < 999.95:
            return f"{value:.1f} {unit}"
    return f"{value / 1000:.1f} TB"


def human_duration(seconds: float) -> str:
    """`0.4s`, `12.3s`, `2m03s`, `1h02m03s`."""
    if seconds < 59.95:
        return f"{max(seconds, 0.0):.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s"


def first_line(instruction: str) -> str:
    """An instruction on one line: heredocs and continuations are cut to their first line."""
    head, newline, _ = instruction.strip().partition("\n")
    return f"{head.rstrip()} ..." if newline else head


def describe_error(error: BuildError) -> str:
    """What went wrong and where: `Dockerfile:7: RUN make: exited with code 2`."""
    if isinstance(error, StepError) and error.instruction:
        where = f"{error.span}: " if error.span else ""
        instruction = first_line(error.instruction)
        keyword = instruction.split(maxsplit=1)[:1]
        if [w.upper() for w in keyword] == error.message.split(maxsplit=1)[:1]:  # named already
            return f"{where}{error.message}"
        return f"{where}{instruction}: {error.message}"
    return str(error)


def _step_label(stage: str, number: int, total: int) -> str:
    return f"[{number}/{total}]" if not stage or stage.isdigit() else f"[{stage} {number}/{total}]"


class TextProgress:
    """Readable progress lines; `level` hides step lines above INFO and filters messages."""

    def __init__(self, stream: TextIO, *, level: int = logging.INFO, timestamps: bool = False,
                 clock: Clock = utc_now, secrets: SecretSet | None = None) -> None:
        self._stream = stream
        self._level = level
        self._timestamps = timestamps
        self._clock = clock
        self._secrets = secrets if secrets is not None else SecretSet()
        self._labels: dict[int, str] = {}
        self._lock = threading.Lock()

    def emit(self, event: Event) -> None:
        with self._lock:
            line = self._render(event)
            if line is not None:
                self._write(line)

    def succeeded(self, result: BuildResult, *, seconds: float) -> None:
        if self._level > logging.INFO:
            return
        layers = len(result.layers)
        sandbox = f", RUN sandbox {result.sandbox}" if result.sandbox else ""
        lines = [f"built {result.digest} in {human_duration(seconds)}: {layers} "
                 f"layer{'s' if layers != 1 else ''}, {human_size(result.image_size)}{sandbox}"]
        lines += [f"pushed {reference}" for reference in result.destinations]
        if not result.destinations:
            lines.append("not pushed")
        with self._lock:
            for line in lines:
                self._write(line)

    def failed(self, error: BuildError, *, exit_code: int) -> None:
        with self._lock:
            self._write(f"error: {describe_error(error)}")

    def _render(self, event: Event) -> str | None:
        verbose = self._level <= logging.INFO
        match event:
            case StepStarted(stage=stage, number=number, total=total):
                label = self._labels[number] = _step_label(stage, number, total)
                return f"{label} {first_line(event.instruction)}" if verbose else None
            case StepOutput(text=text):
                return f"  | {text.rstrip(chr(13))}"
            case StepFinished(number=number, total=total, duration=duration):
                label = self._labels.pop(number, _step_label("", number, total))
                verb = "cached" if event.cached else "done"
                layer = ("no layer" if event.layer_size is None
                         else f"layer {human_size(event.layer_size)}")
                text = f"{label} {verb} in {human_duration(duration)}, {layer}"
                return text if verbose else None
            case Message(level=level, text=text):
                if _LEVELS[level] < self._level:
                    return None
                return text if level == "info" else f"{level}: {text}"
            case Pushed(reference=reference):
                return f"pushed {reference}" if verbose else None
        return None

    def add_secrets(self, values: Iterable[str]) -> None:
        self._secrets.add(*values)

    def _write(self, line: str) -> None:
        line = self._secrets.text(line)
        if self._timestamps:
            line = f"{timestamp(self._clock())} {line}"
        self._stream.write(line + "\n")
        self._stream.flush()


class JsonProgress:
    """One JSON object per event and per line; `level` filters `message` events only."""

    def __init__(self, stream: TextIO, *, level: int = logging.INFO,
                 clock: Clock = utc_now, secrets: SecretSet | None = None) -> None:
        self._stream = stream
        self._level = level
        self._clock = clock
        self._secrets = secrets if secrets is not None else SecretSet()
        self._lock = threading.Lock()

    def add_secrets(self, values: Iterable[str]) -> None:
        self._secrets.add(*values)

    def emit(self, event: Event) -> None:
        if isinstance(event, Message) and _LEVELS[event.level] < self._level:
            return
        fields = dataclasses.asdict(event)
        if isinstance(event, StepFinished):
            fields["duration"] = round(event.duration, 3)
        self._write(_EVENT_TYPES[type(event)], fields)

    def succeeded(self, result: BuildResult, *, seconds: float) -> None:
        self._write("build_succeeded", {
            "digest": result.digest, "media_type": result.media_type,
            "config_digest": result.config_digest, "destinations": list(result.destinations),
            "layers": len(result.layers), "image_size": result.image_size,
            "seconds": round(seconds, 3), "sandbox": result.sandbox,
            "warnings": list(result.warnings),
        })

    def failed(self, error: BuildError, *, exit_code: int) -> None:
        fields: dict[str, Any] = {"kind": error.kind, "error": describe_error(error),
                                  "exit_code": exit_code}
        if isinstance(error, StepError):
            fields["instruction"] = error.instruction
            if error.span is not None:
                fields.update(file=error.span.file, line=error.span.start_line)
        elif isinstance(error, DockerfileError) and error.line:
            fields.update(file=error.file, line=error.line)
        self._write("build_failed", fields)

    def _write(self, kind: str, fields: dict[str, Any]) -> None:
        record = {"type": kind, "time": timestamp(self._clock()),
                  **self._secrets.redactor().scrub(fields)}
        line = json.dumps(record, sort_keys=False)
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()


def make_reporter(log_format: LogFormat, stream: TextIO, *, level: int = logging.INFO,
                  timestamps: bool = False, secrets: SecretSet | None = None) -> Reporter:
    """The reporter for `--log-format`."""
    if log_format == "json":
        return JsonProgress(stream, level=level, secrets=secrets)
    return TextProgress(stream, level=level, timestamps=timestamps, secrets=secrets)


class JsonLogFormatter(logging.Formatter):
    """Log records as JSON lines shaped like `JsonProgress` events (`"type": "log"`)."""

    def __init__(self, *, secrets: SecretSet | None = None) -> None:
        super().__init__()
        self._secrets = secrets if secrets is not None else SecretSet()

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created, UTC)
        fields: dict[str, Any] = {"type": "log", "time": timestamp(moment),
                                  "level": record.levelname.lower(), "logger": record.name,
                                  "message": record.getMessage()}
        if record.exc_info:
            fields["exception"] = self.formatException(record.exc_info)
        return json.dumps(self._secrets.redactor().scrub(fields))


class TextLogFormatter(logging.Formatter):
    """`warning core.registry.push: message`, optionally after an RFC 3339 timestamp."""

    def __init__(self, *, timestamps: bool = False, secrets: SecretSet | None = None) -> None:
        super().__init__()
        self._timestamps = timestamps
        self._secrets = secrets if secrets is not None else SecretSet()

    def format(self, record: logging.LogRecord) -> str:
        text = f"{record.levelname.lower()} {record.name}: {record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        text = self._secrets.text(text)
        if self._timestamps:
            text = f"{timestamp(datetime.fromtimestamp(record.created, UTC))} {text}"
        return text


def configure_logging(*, level: int, log_format: LogFormat, timestamps: bool,
                      stream: TextIO, secrets: SecretSet | None = None) -> None:
    """Send the library's log records to `stream` in the chosen format (CLI start-up only).

    At the default verbosity (info) the progress lines already tell the story, so library
    records show from WARNING up; `debug` and `trace` show the library's records too, but
    never the wire dumps of `WIRE_LOGGERS`. Records are redacted with `secrets`.
    """
    logging.addLevelName(5, "TRACE")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLogFormatter(secrets=secrets) if log_format == "json"
                         else TextLogFormatter(timestamps=timestamps, secrets=secrets))
    threshold = level if level < logging.INFO else max(level, logging.WARNING)
    logging.basicConfig(level=threshold, handlers=[handler], force=True)
    logging.getLogger("core").setLevel(logging.NOTSET)  # the root's threshold decides
    for name in WIRE_LOGGERS:
        logging.getLogger(name).setLevel(max(threshold, logging.INFO))
