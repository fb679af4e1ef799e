"""ONBUILD triggers of a base image: parsed as one-instruction Dockerfiles, run after FROM.

An image config stores each trigger as the text after `ONBUILD` (here-document bodies
appended). BuildKit parses it again with its default escape character (`\\`, whatever the
child Dockerfile says) and places every error at the child stage's FROM line. A trigger that is
itself ONBUILD, or FROM or MAINTAINER, is refused.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from core.dockerfile.convert import convert_node
from core.dockerfile.instructions import FromInstruction, Instruction
from core.dockerfile.parser import parse_dockerfile
from core.errors import DockerfileError
from core.plan.expansion import evolved, located


def parse_triggers(
    expressions: Iterable[str], *, at: FromInstruction, filename: str,
) -> tuple[Instruction, ...]:
    """The typed trigger instructions, each placed at the FROM line `at`."""
    try:
        return tuple([evolved(_parse_trigger(text, filename), span=at.span)
                      for text in expressions])
    except DockerfileError as error:
        raise located(error, at, filename) from None


@functools.lru_cache(maxsize=256)  # the same base image's triggers run for many stages
def _parse_trigger(text: str, filename: str) -> Instruction:
    nodes = parse_dockerfile(text, filename=filename).nodes
    if len(nodes) != 1:
        raise DockerfileError("onbuild trigger should be a single expression")
    keyword = nodes[0].instruction.upper()
    if keyword == "ONBUILD":
        raise DockerfileError("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if keyword in ("FROM", "MAINTAINER"):
        raise DockerfileError(f"{keyword} isn't allowed as an ONBUILD trigger")
    return convert_node(nodes[0], filename=filename)
