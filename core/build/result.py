"""What a finished build reports."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LayerInfo:
    digest: str
    diff_id: str
    size: int  # compressed bytes
    media_type: str
    created_by: str  # the instruction that made it ("" for base layers)


@dataclass(frozen=True)
class StepTiming:
    number: int
    instruction: str
    line: int
    seconds: float
    cached: bool = False


@dataclass(frozen=True)
class BuildResult:
    digest: str  # manifest digest
    media_type: str  # manifest media type
    config_digest: str
    destinations: tuple[str, ...]  # references pushed, each with its tag
    layers: tuple[LayerInfo, ...]
    steps: tuple[StepTiming, ...]
    sandbox: str | None  # the RUN sandbox used ("a+b" when stages used several); None: no RUN
    warnings: tuple[str, ...] = ()
    sandbox_probe: tuple[str, ...] = ()  # what the RUN sandbox probe found, one per candidate

    @property
    def image_size(self) -> int:
        return sum(layer.size for layer in self.layers)
