"""History strings as BuildKit writes them (Go fmt verbs reproduced)."""

from __future__ import annotations

import pytest

from core.build.history import (
    copy_text,
    go_duration,
    go_quote,
    go_quoted_list,
    healthcheck_text,
    run_text,
)
from core.image.config import Healthcheck
from core.plan import ArgValue


@pytest.mark.parametrize(("ns", "text"), [
    (0, "0s"), (1, "1ns"), (1500, "1.5µs"), (2_000_000, "2ms"), (1_500_000_000, "1.5s"),
    (30 * 10**9, "30s"), (90 * 10**9, "1m30s"), (3600 * 10**9, "1h0m0s"),
    (3723 * 10**9 + 5 * 10**8, "1h2m3.5s"), (-2 * 10**9, "-2s"),
])
def test_go_duration(ns: int, text: str) -> None:
    assert go_duration(ns) == text


def test_go_quote() -> None:
    assert go_quote('a "b" \\ c\n\t') == '"a \\"b\\" \\\\ c\\n\\t"'
    assert go_quote("é\x01") == '"é\\x01"'
    assert go_quoted_list(["/bin/sh", "-c", "echo hi"]) == '["/bin/sh" "-c" "echo hi"]'
    assert go_quoted_list([]) == "[]"


def test_run_text_lists_build_args_once() -> None:
    args = (ArgValue("A", "1"), ArgValue("B", None), ArgValue("A", "2"))
    assert run_text(("/bin/sh", "-c", "make"), args) == "RUN |2 A=2 B= /bin/sh -c make # buildkit"
    assert run_text(("/bin/sh", "-c", "make"), ()) == "RUN /bin/sh -c make # buildkit"


def test_copy_and_healthcheck_text() -> None:
    assert copy_text("COPY", sources=["a", "b"], heredocs=["EOF"], dest="/d/", chown="1:2",
                     chmod="755") == "COPY --chown=1:2 --chmod=755 a b <<EOF /d/ # buildkit"
    check = Healthcheck(test=("NONE",))
    assert healthcheck_text(check) == ("HEALTHCHECK {Test:[NONE] Interval:0s Timeout:0s "
                                       "StartPeriod:0s StartInterval:0s Retries:0}")
