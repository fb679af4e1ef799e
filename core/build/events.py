"""Progress events a build emits, and the sink protocol that receives them.

The pipeline only emits; how events are shown (text lines, JSON lines, a cloud log) is the
receiver's business.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

Level = Literal["debug", "info", "warning", "error"]


@dataclass(frozen=True)
class StepStarted:
    stage: str  # stage name, or its index as text when unnamed
    number: int  # 1-based position among the steps that run
    total: int
    instruction: str  # the instruction as written, e.g. "RUN npm ci"
    line: int  # Dockerfile line


@dataclass(frozen=True)
class StepOutput:
    number: int
    text: str  # one line of a RUN's output, without the newline


@dataclass(frozen=True)
class StepFinished:
    number: int
    total: int
    instruction: str
    duration: float  # seconds
    layer_size: int | None  # compressed bytes of the layer it made; None: no layer
    cached: bool = False


@dataclass(frozen=True)
class Message:
    level: Level
    text: str


@dataclass(frozen=True)
class Pushed:
    reference: str  # registry/repository:tag@digest
    digest: str


Event = StepStarted | StepOutput | StepFinished | Message | Pushed


class EventSink(Protocol):
    def emit(self, event: Event) -> None: ...


class DiscardEvents:
    """A sink that drops everything (library use without progress output)."""

    def emit(self, event: Event) -> None:
        return None
