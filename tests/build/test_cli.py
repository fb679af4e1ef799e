"""`bucketbuild build`: the command's wiring (with a stand-in engine) and end to end through
`python -m core build` (with the real one), checked with skopeo."""

from __future__ import annotations

import importlib.util
import json
import logging
import shutil
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.build.events import EventSink, StepFinished, StepOutput, StepStarted
from core.build.options import BuildOptions
from core.build.result import BuildResult, LayerInfo
from core.cli import exit_code_for, main
from core.errors import BuildError, DeadlineError, SourceSpan, StepError, UsageError
from tests.fixtures.registry import RegistryServer

REPO = Path(__file__).resolve().parents[2]
PYTHON = REPO / ".venv" / "bin" / "python"
DIGEST = "sha256:" + "ab" * 32

needs_engine = pytest.mark.skipif(importlib.util.find_spec("core.build.pipeline") is None,
                                  reason="core/build/pipeline.py is not there yet")
needs_skopeo = pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo not installed")


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    yield
    root.handlers[:] = saved[1]
    root.setLevel(saved[0])


class FakeEngine:
    """Stands in for `core.build.pipeline`: records the call, replays events, then returns a
    result or raises."""

    def __init__(self, outcome: BuildResult | BaseException) -> None:
        self.outcome = outcome
        self.options: BuildOptions | None = None

    def run_build(self, options: BuildOptions, *, events: EventSink,
                  registry: object = None) -> BuildResult:
        self.options = options
        events.emit(StepStarted("0", 1, 2, "COPY a /a", 2))
        events.emit(StepFinished(1, 2, "COPY a /a", 0.25, 1500))
        events.emit(StepStarted("0", 2, 2, "RUN make", 3))
        events.emit(StepOutput(2, "compiling"))
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome


def fake_result(destinations: tuple[str, ...] = ()) -> BuildResult:
    layer = LayerInfo("sha256:l", "sha256:d", 1500, "gzip", "COPY a /a")
    return BuildResult(digest=DIGEST, media_type="m", config_digest="sha256:c",
                       destinations=destinations, layers=(layer,), steps=(), sandbox=None)


@pytest.fixture
def context(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY a /a\n")
    (tmp_path / "a").write_text("hello\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def install(monkeypatch: pytest.MonkeyPatch, outcome: BuildResult | BaseException) -> FakeEngine:
    engine = FakeEngine(outcome)
    module = types.ModuleType("core.build.pipeline")
    module.run_build = engine.run_build  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "core.build.pipeline", module)
    return engine


def test_success_prints_digest_and_summary(context: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    engine = install(monkeypatch, fake_result(("reg:5000/app:1",)))
    code = main(["build", "-d", "reg:5000/app:1", "--build-arg", "V=1", "--snapshotMode=full"])
    out, err = capsys.readouterr()
    assert code == 0
    assert out == DIGEST + "\n"
    assert engine.options is not None and engine.options.build_args == {"V": "1"}
    assert engine.options.snapshot_mode == "full"
    assert err.splitlines() == [
        "warning: --snapshotMode is deprecated; use --snapshot-mode",
        "[1/2] COPY a /a",
        "[1/2] done in 0.2s, layer 1.5 kB",
        "[2/2] RUN make",
        "  | compiling",
        err.splitlines()[5],
        "pushed reg:5000/app:1",
    ]
    assert err.splitlines()[5].startswith(f"built {DIGEST} in ")


def test_failing_run_exits_with_its_code(context: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    install(monkeypatch, StepError("exited with code 7", span=SourceSpan("Dockerfile", 3, 3),
                                   instruction="RUN make", exit_code=7))
    assert main(["build", "--no-push"]) == 7
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines()[-1] == "error: Dockerfile:3: RUN make: exited with code 7"


def test_other_errors_use_their_exit_code(context: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    install(monkeypatch, DeadlineError("out of time"))
    assert main(["build", "--no-push"]) == 124
    assert capsys.readouterr().err.splitlines()[-1] == "error: out of time"


def test_json_progress(context: Path, monkeypatch: pytest.MonkeyPatch,
                       capsys: pytest.CaptureFixture[str]) -> None:
    install(monkeypatch, fake_result())
    assert main(["build", "--no-push", "--log-format=json", "--cache-repo", "r/c"]) == 0
    out, err = capsys.readouterr()
    assert out == DIGEST + "\n"
    records = [json.loads(line) for line in err.splitlines()]
    assert [r["type"] for r in records] == [
        "message", "step_started", "step_finished", "step_started", "step_output",
        "build_succeeded"]
    assert records[0]["level"] == "warning" and records[-1]["digest"] == DIGEST
    assert all(r["time"].endswith("Z") for r in records)


def test_json_failure(context: Path, monkeypatch: pytest.MonkeyPatch,
                      capsys: pytest.CaptureFixture[str]) -> None:
    install(monkeypatch, StepError("exited with code 2", span=SourceSpan("Dockerfile", 3, 3),
                                   instruction="RUN make", exit_code=2))
    assert main(["build", "--no-push", "--log-format", "json"]) == 2
    last = json.loads(capsys.readouterr().err.splitlines()[-1])
    assert (last["type"], last["exit_code"], last["line"]) == ("build_failed", 2, 3)


def test_usage_errors_stop_before_the_engine(context: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    engine = install(monkeypatch, fake_result())
    assert main(["build", "--no-push", "--git", "branch=main"]) == 2
    assert capsys.readouterr().err == (
        "error: --git is a kaniko flag bucketbuild does not implement "
        "(clone the repository and pass --context DIR)\n")
    assert main(["build"]) == 2
    assert "--destination" in capsys.readouterr().err
    assert engine.options is None


def test_argparse_errors_exit_2(context: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["build", "--no-such-flag"], ["build", "--snapshot-mode", "nope"],
                 ["build", "--no-push=maybe"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
    assert "invalid boolean 'maybe'" in capsys.readouterr().err


def test_os_errors_are_reported_in_the_chosen_format(
        context: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    install(monkeypatch, OSError(28, "No space left on device"))
    assert main(["build", "--no-push", "--log-format=json"]) == 1
    last = json.loads(capsys.readouterr().err.splitlines()[-1])
    assert (last["type"], last["exit_code"]) == ("build_failed", 1)
    assert "No space left" in last["error"]


def test_interrupt(context: Path, monkeypatch: pytest.MonkeyPatch,
                   capsys: pytest.CaptureFixture[str]) -> None:
    install(monkeypatch, KeyboardInterrupt())
    assert main(["build", "--no-push"]) == 130


@pytest.mark.parametrize(("error", "code"), [
    (StepError("x", exit_code=3), 3), (StepError("x", exit_code=255), 255),
    (StepError("x", exit_code=0), 1), (StepError("x", exit_code=300), 1),
    (StepError("x", exit_code=-9), 1), (UsageError("x"), 2), (DeadlineError("x"), 124),
    (BuildError("x"), 1),
])
def test_exit_code_for(error: BuildError, code: int) -> None:
    assert exit_code_for(error) == code


# --- end to end: python -m core build, with the real engine -----------------------------------


def run_build_cli(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(PYTHON), "-m", "core", "build", *map(str, args)], cwd=cwd,
                          env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": str(REPO),
                               "HOME": str(cwd)},
                          capture_output=True, text=True, timeout=240, check=False)


def skopeo(*args: str) -> str:
    done = subprocess.run(["skopeo", "--insecure-policy", *args], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


@needs_engine
@needs_skopeo
def test_e2e_scratch_copy_to_tarball(tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    (ctx / "files").mkdir(parents=True)
    (ctx / "files" / "hello.txt").write_text("hello from bucketbuild\n")
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY files/ /data/\nLABEL a=b\n")
    tar = tmp_path / "image.tar"
    done = run_build_cli("--context", ctx, "--no-push", "--tar-path", tar, "--digest-file",
                         tmp_path / "digest", "--label", "from=cli", "-d", "example.com/t:1",
                         "--work-dir", tmp_path / "work", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    digest = done.stdout.strip()
    assert done.stdout == digest + "\n" and digest.startswith("sha256:")
    assert (tmp_path / "digest").read_text().strip() == digest
    assert "COPY files/ /data/" in done.stderr and f"built {digest}" in done.stderr
    skopeo("copy", f"docker-archive:{tar}", f"oci:{tmp_path / 'oci'}:t")
    config = json.loads(skopeo("inspect", "--config", f"oci:{tmp_path / 'oci'}:t"))
    assert config["config"]["Labels"] == {"a": "b", "from": "cli"}
    assert len(config["rootfs"]["diff_ids"]) == 1


@needs_engine
@needs_skopeo
def test_e2e_push_to_registry(tmp_path: Path, registry: RegistryServer) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY a.txt /\n")
    (tmp_path / "a.txt").write_text("pushed\n")
    ref = f"{registry.host}/cli/e2e:v1"
    done = run_build_cli("-d", ref, "--insecure-registry", registry.host, "--log-format=json",
                         cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    digest = done.stdout.strip()
    records = [json.loads(line) for line in done.stderr.splitlines()]
    assert records[-1]["type"] == "build_succeeded" and records[-1]["digest"] == digest
    raw = skopeo("inspect", "--tls-verify=false", f"docker://{ref}")
    assert json.loads(raw)["Digest"] == digest


@needs_engine
def test_e2e_parse_error_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n\nCOPY a /\nFORM scratch\n")
    (tmp_path / "a").write_text("")
    done = run_build_cli("--no-push", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert "Dockerfile:4:" in done.stderr
    assert done.stdout == "" and "Traceback" not in done.stderr


@needs_engine
def test_e2e_failing_run_gives_its_exit_code(tmp_path: Path, base_images: Any) -> None:
    base = f"{base_images.host}/{base_images.docker_gzip}"
    (tmp_path / "Dockerfile").write_text(f"FROM {base}\nRUN echo before\nRUN exit 3\n")
    done = run_build_cli("--no-push", "--insecure-registry", base_images.host, cwd=tmp_path)
    assert done.returncode == 3, done.stderr
    assert "error: Dockerfile:3: RUN exit 3" in done.stderr
    assert "  | before" in done.stderr and done.stdout == ""


def test_e2e_refused_kaniko_flag(tmp_path: Path) -> None:
    done = run_build_cli("--no-push", "--cache-dir=/cache", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == ("error: --cache-dir is a kaniko flag bucketbuild does not implement "
                           "(use --base-cache DIR to keep pulled base layers; kaniko warmer "
                           "directories are not read)\n")


def test_e2e_unknown_flag(tmp_path: Path) -> None:
    done = run_build_cli("--no-push", "--frobnicate", cwd=tmp_path)
    assert done.returncode == 2
    assert "unrecognized arguments: --frobnicate" in done.stderr
