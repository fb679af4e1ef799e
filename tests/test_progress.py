"""Progress rendering: the real sinks writing every event type into a StringIO."""

from __future__ import annotations

import io
import json
import logging
import threading
from datetime import UTC, datetime
from typing import Any

import pytest

from core.build.events import Message, Pushed, StepFinished, StepOutput, StepStarted
from core.build.result import BuildResult, LayerInfo
from core.errors import (
    BuildError,
    DeadlineError,
    DockerfileError,
    RegistryError,
    SourceSpan,
    StepError,
)
from core.progress import (
    JsonLogFormatter,
    JsonProgress,
    TextLogFormatter,
    TextProgress,
    configure_logging,
    describe_error,
    first_line,
    human_duration,
    human_size,
    make_reporter,
)

MOMENT = datetime(2024, 5, 1, 12, 0, 1, 234000, tzinfo=UTC)
STAMP = "2024-05-01T12:00:01.234Z"


def clock() -> datetime:
    return MOMENT


def result(destinations: tuple[str, ...] = ("reg/app:1",), sandbox: str | None = "chroot",
           ) -> BuildResult:
    layers = (LayerInfo("sha256:l1", "sha256:d1", 3_400_000, "gzip", "RUN make"),
              LayerInfo("sha256:l2", "sha256:d2", 600_000, "gzip", "COPY . /"))
    return BuildResult(digest="sha256:abc", media_type="application/vnd.oci.image.manifest.v1+json",
                       config_digest="sha256:cfg", destinations=destinations, layers=layers,
                       steps=(), sandbox=sandbox, warnings=("w1",))


def text_lines(*events: Any, level: int = logging.INFO, timestamps: bool = False) -> list[str]:
    out = io.StringIO()
    sink = TextProgress(out, level=level, timestamps=timestamps, clock=clock)
    for event in events:
        sink.emit(event)
    return out.getvalue().splitlines()


def json_records(*events: Any, level: int = logging.INFO) -> list[dict[str, Any]]:
    out = io.StringIO()
    sink = JsonProgress(out, level=level, clock=clock)
    for event in events:
        sink.emit(event)
    return [json.loads(line) for line in out.getvalue().splitlines()]


STEP = StepStarted(stage="0", number=2, total=7, instruction="RUN npm ci", line=4)
NAMED = StepStarted(stage="builder", number=3, total=7, instruction="RUN make", line=9)


def test_text_step_lifecycle() -> None:
    assert text_lines(
        STEP, StepOutput(2, "added 12 packages\r"), StepOutput(2, ""),
        StepFinished(2, 7, "RUN npm ci", 1.234, 3_400_000),
        NAMED, StepFinished(3, 7, "RUN make", 0.01, None, cached=True),
    ) == [
        "[2/7] RUN npm ci",
        "  | added 12 packages",
        "  | ",
        "[2/7] done in 1.2s, layer 3.4 MB",
        "[builder 3/7] RUN make",
        "[builder 3/7] cached in 0.0s, no layer",
    ]


def test_text_multiline_instruction_is_cut() -> None:
    heredoc = StepStarted("0", 1, 1, "RUN <<EOF\necho hi\nEOF", 1)
    assert text_lines(heredoc) == ["[1/1] RUN <<EOF ..."]


def test_text_finish_without_start_still_labelled() -> None:
    assert text_lines(StepFinished(5, 6, "ENV A=1", 0.0, None)) == [
        "[5/6] done in 0.0s, no layer"]


def test_text_messages_and_pushes() -> None:
    assert text_lines(
        Message("info", "using sandbox chroot"), Message("warning", "build arg X unused"),
        Message("error", "boom"), Message("debug", "hidden at info"),
        Pushed("reg/app:1@sha256:abc", "sha256:abc"),
    ) == ["using sandbox chroot", "warning: build arg X unused", "error: boom",
          "pushed reg/app:1@sha256:abc"]


def test_text_debug_level_shows_debug() -> None:
    assert text_lines(Message("debug", "details"), level=logging.DEBUG) == ["debug: details"]


def test_text_warn_level_keeps_output_and_warnings_only() -> None:
    assert text_lines(
        STEP, StepOutput(2, "npm WARN old"), StepFinished(2, 7, "RUN npm ci", 1.0, 10),
        Message("info", "quiet"), Message("warning", "loud"), Pushed("r/a:1@sha256:x", "x"),
        level=logging.WARNING,
    ) == ["  | npm WARN old", "warning: loud"]


def test_text_timestamps() -> None:
    assert text_lines(STEP, Message("warning", "w"), timestamps=True) == [
        f"{STAMP} [2/7] RUN npm ci", f"{STAMP} warning: w"]


def test_text_summary() -> None:
    out = io.StringIO()
    TextProgress(out, clock=clock).succeeded(result(), seconds=75.2)
    assert out.getvalue().splitlines() == [
        "built sha256:abc in 1m15s: 2 layers, 4.0 MB, RUN sandbox chroot",
        "pushed reg/app:1",
    ]
    out = io.StringIO()
    TextProgress(out, clock=clock).succeeded(result((), None), seconds=0.5)
    assert out.getvalue().splitlines() == ["built sha256:abc in 0.5s: 2 layers, 4.0 MB",
                                           "not pushed"]


def test_text_summary_hidden_above_info_but_failure_shown() -> None:
    out = io.StringIO()
    sink = TextProgress(out, level=logging.ERROR, clock=clock)
    sink.succeeded(result(), seconds=1.0)
    assert out.getvalue() == ""
    sink.failed(StepError("exited with code 2", span=SourceSpan("Dockerfile", 7, 7),
                          instruction="RUN make", exit_code=2), exit_code=2)
    assert out.getvalue() == "error: Dockerfile:7: RUN make: exited with code 2\n"


@pytest.mark.parametrize(("error", "text"), [
    (StepError("exited with code 2", span=SourceSpan("Dockerfile", 7, 7),
               instruction="RUN make", exit_code=2),
     "Dockerfile:7: RUN make: exited with code 2"),
    (StepError("RUN make: exited with code 3", span=SourceSpan("Dockerfile", 7, 8),
               instruction="RUN make \\\n  all", exit_code=3),
     "Dockerfile:7: RUN make: exited with code 3"),
    (StepError("exited with code 4", span=SourceSpan("Dockerfile", 7, 8),
               instruction="run make \\\n  all", exit_code=4),
     "Dockerfile:7: run make \\ ...: exited with code 4"),
    (StepError("RUN make: exited with code 3", span=SourceSpan("Dockerfile", 7, 7),
               instruction="RUN make", exit_code=3),
     "Dockerfile:7: RUN make: exited with code 3"),
    (StepError("no source files", instruction="COPY a b"), "COPY a b: no source files"),
    (DockerfileError("unknown instruction: FORM", file="Dockerfile", line=1),
     "Dockerfile:1: unknown instruction: FORM"),
    (RegistryError("denied", registry="reg", repository="app", status=403),
     "reg/app: denied (HTTP 403)"),
    (DeadlineError("the build ran out of time"), "the build ran out of time"),
])
def test_describe_error(error: BuildError, text: str) -> None:
    assert describe_error(error) == text


def test_json_event_records() -> None:
    records = json_records(
        STEP, StepOutput(2, "hi \udcff"), StepFinished(2, 7, "RUN npm ci", 1.50049, 100),
        Message("warning", "w"), Message("debug", "filtered"), Pushed("r/a:1@sha256:x", "x"))
    assert records == [
        {"type": "step_started", "time": STAMP, "stage": "0", "number": 2, "total": 7,
         "instruction": "RUN npm ci", "line": 4},
        {"type": "step_output", "time": STAMP, "number": 2, "text": "hi \udcff"},
        {"type": "step_finished", "time": STAMP, "number": 2, "total": 7,
         "instruction": "RUN npm ci", "duration": 1.5, "layer_size": 100, "cached": False},
        {"type": "message", "time": STAMP, "level": "warning", "text": "w"},
        {"type": "pushed", "time": STAMP, "reference": "r/a:1@sha256:x", "digest": "x"},
    ]


def test_json_level_filters_messages_only() -> None:
    records = json_records(STEP, Message("info", "i"), Message("error", "e"),
                           level=logging.ERROR)
    assert [r["type"] for r in records] == ["step_started", "message"]
    assert json_records(Message("debug", "d"), level=logging.DEBUG)[0]["text"] == "d"


def test_json_succeeded_and_failed() -> None:
    out = io.StringIO()
    sink = JsonProgress(out, clock=clock)
    sink.succeeded(result(), seconds=2.34567)
    sink.failed(StepError("exited with code 2", span=SourceSpan("Dockerfile", 7, 7),
                          instruction="RUN make", exit_code=2), exit_code=2)
    sink.failed(DockerfileError("bad", file="Dockerfile", line=3), exit_code=1)
    sink.failed(RegistryError("denied", registry="reg"), exit_code=1)
    ok, step, parse, registry = (json.loads(line) for line in out.getvalue().splitlines())
    assert ok == {"type": "build_succeeded", "time": STAMP, "digest": "sha256:abc",
                  "media_type": "application/vnd.oci.image.manifest.v1+json",
                  "config_digest": "sha256:cfg", "destinations": ["reg/app:1"], "layers": 2,
                  "image_size": 4_000_000, "seconds": 2.346, "sandbox": "chroot",
                  "warnings": ["w1"]}
    assert step == {"type": "build_failed", "time": STAMP, "kind": "step",
                    "error": "Dockerfile:7: RUN make: exited with code 2", "exit_code": 2,
                    "instruction": "RUN make", "file": "Dockerfile", "line": 7}
    assert (parse["kind"], parse["file"], parse["line"]) == ("dockerfile", "Dockerfile", 3)
    assert registry == {"type": "build_failed", "time": STAMP, "kind": "registry",
                        "error": "reg: denied", "exit_code": 1}


def test_json_lines_stay_whole_across_threads() -> None:
    out = io.StringIO()
    sink = JsonProgress(out, clock=clock)

    def spam(n: int) -> None:
        for i in range(200):
            sink.emit(StepOutput(n, f"line {i} " + "x" * 100))

    threads = [threading.Thread(target=spam, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = out.getvalue().splitlines()
    assert len(lines) == 800
    assert all(json.loads(line)["type"] == "step_output" for line in lines)


def test_make_reporter() -> None:
    assert isinstance(make_reporter("json", io.StringIO()), JsonProgress)
    assert isinstance(make_reporter("text", io.StringIO(), timestamps=True), TextProgress)


@pytest.mark.parametrize(("size", "text"), [
    (0, "0 B"), (999, "999 B"), (1000, "1.0 kB"), (3_400_000, "3.4 MB"),
    (999_960, "1.0 MB"), (2_500_000_000, "2.5 GB"), (7_000_000_000_000, "7.0 TB"),
])
def test_human_size(size: int, text: str) -> None:
    assert human_size(size) == text


@pytest.mark.parametrize(("seconds", "text"), [
    (0.0, "0.0s"), (1.234, "1.2s"), (59.9, "59.9s"), (59.97, "1m00s"), (123.4, "2m03s"),
    (3723, "1h02m03s"), (-0.1, "0.0s"),
])
def test_human_duration(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


def test_first_line() -> None:
    assert first_line("  RUN a  ") == "RUN a"
    assert first_line("RUN a \\\n b") == "RUN a \\ ..."


def _record(level: int, message: str, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("bad")
        except ValueError:
            import sys
            exc_info = sys.exc_info()
    record = logging.LogRecord("core.registry.push", level, __file__, 1, message, (), exc_info)
    record.created = MOMENT.timestamp()
    return record


def test_log_formatters() -> None:
    assert TextLogFormatter().format(_record(logging.WARNING, "slow")) == (
        "warning core.registry.push: slow")
    assert TextLogFormatter(timestamps=True).format(_record(logging.INFO, "x")) == (
        f"{STAMP} info core.registry.push: x")
    assert json.loads(JsonLogFormatter().format(_record(logging.ERROR, "oops"))) == {
        "type": "log", "time": STAMP, "level": "error", "logger": "core.registry.push",
        "message": "oops"}
    with_exc = json.loads(JsonLogFormatter().format(_record(logging.ERROR, "e", exc=True)))
    assert "ValueError: bad" in with_exc["exception"]
    assert "ValueError: bad" in TextLogFormatter().format(_record(logging.ERROR, "e", exc=True))


def test_configure_logging_routes_library_logs() -> None:
    out = io.StringIO()
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    try:
        configure_logging(level=logging.INFO, log_format="json", timestamps=False, stream=out)
        logging.getLogger("core.test").info("hidden: progress lines tell this at info")
        logging.getLogger("core.test").warning("shown")
        configure_logging(level=logging.ERROR, log_format="text", timestamps=False, stream=out)
        logging.getLogger("core.test").warning("hidden at error")
        configure_logging(level=logging.DEBUG, log_format="text", timestamps=False, stream=out)
        logging.getLogger("core.test").info("library info at debug")
        logging.getLogger("core.test").log(5, "hidden at debug")
        configure_logging(level=5, log_format="text", timestamps=False, stream=out)
        logging.getLogger("core.test").log(5, "trace detail")
    finally:
        root.handlers[:] = saved[1]
        root.setLevel(saved[0])
    first, *rest = out.getvalue().splitlines()
    assert json.loads(first)["message"] == "shown"
    assert rest == ["info core.test: library info at debug", "trace core.test: trace detail"]
