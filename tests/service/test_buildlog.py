"""The build log sink and the per-build workspace."""

from __future__ import annotations

import contextvars
import logging
import os
import threading
from pathlib import Path

import pytest

from core.build.events import Message, Pushed, StepFinished, StepOutput, StepStarted
from core.service.buildlog import BuildLog, LogCapture
from core.service.result import StepPosition
from core.service.settings import SettingsError
from core.service.workspace import Workspace, docker_config_dir, helper_environment


def test_log_lines_and_step_tracking(tmp_path: Path) -> None:
    log = BuildLog(tmp_path / "log")
    log.emit(StepStarted(stage="0", number=1, total=2, instruction="COPY . /", line=2))
    assert log.current_step == StepPosition(1, "COPY . /", 2)
    log.emit(StepFinished(number=1, total=2, instruction="COPY . /", duration=0.5,
                          layer_size=10, cached=True))
    assert log.current_step is None
    log.emit(StepStarted(stage="0", number=2, total=2, instruction="RUN make", line=3))
    log.emit(StepOutput(number=2, text="compiling"))
    log.emit(Message(level="warning", text="careful"))
    log.emit(Pushed(reference="r/x:1@sha256:abc", digest="sha256:abc"))
    log.close()
    text = (tmp_path / "log").read_text()
    assert "[1/2] COPY . / (line 2, stage 0)" in text
    assert "[1/2] done in 0.50s, layer 10 bytes, cached" in text
    assert "    compiling" in text and "warning: careful" in text
    assert "pushed r/x:1@sha256:abc" in text
    assert [(t.number, t.line, t.cached) for t in log.timings] == [(1, 2, True)]
    assert log.current_step == StepPosition(2, "RUN make", 3)


def test_log_keeps_its_end_within_the_limit(tmp_path: Path) -> None:
    log = BuildLog(tmp_path / "log", max_bytes=4000)
    for i in range(1000):
        log.write(f"line {i}")
    log.close()
    text = (tmp_path / "log").read_text()
    assert len(text) <= 4100
    assert "line 0\n" in text and "line 999\n" in text and "lines left out" in text


def test_log_capture_copies_library_records(tmp_path: Path) -> None:
    log = BuildLog(tmp_path / "log")
    with LogCapture(log):
        logging.getLogger("core.context.source").info("unpacked %d entries", 3)
        logging.getLogger("core.service.runner").info("not copied")
    logging.getLogger("core.context.source").info("after")
    log.close()
    text = (tmp_path / "log").read_text()
    assert "info: unpacked 3 entries" in text
    assert "not copied" not in text and "after" not in text


def test_workspace_and_helper_environment(tmp_path: Path) -> None:
    before = dict(os.environ)
    workspace = Workspace.create(tmp_path / "root", "abc")
    assert workspace.root.parent == tmp_path / "root"
    assert workspace.root.name.startswith("abc-")
    assert oct(workspace.docker.stat().st_mode & 0o777) == "0o700"
    env = helper_environment(workspace, docker_config=workspace.docker,
                             tools_dir=Path("/tools"), environ={"PATH": "/usr/bin:/bin"})
    assert env == {"HOME": str(workspace.home), "TMPDIR": str(workspace.tmp),
                   "DOCKER_CONFIG": str(workspace.docker),
                   "PATH": "/tools:/tools/bin:/usr/bin:/bin"}
    assert "PATH" not in helper_environment(workspace, docker_config=workspace.docker,
                                            tools_dir=None, environ=os.environ)
    assert dict(os.environ) == before  # computed, never set
    workspace.remove()
    assert not workspace.root.exists()


def test_log_captures_of_concurrent_builds_keep_their_own_records(tmp_path: Path) -> None:
    """Two builds in two threads log at the same time; each build's worker threads run in
    a copy of its context (as the engine starts them). Each log holds only its own lines; a
    thread outside any build lands in neither."""
    logs = {name: BuildLog(tmp_path / name) for name in ("one", "two")}
    both = threading.Barrier(2)
    library = logging.getLogger("core.build.outputs")

    def build(name: str) -> None:
        with LogCapture(logs[name]):
            both.wait(timeout=10)
            for i in range(200):
                library.info("%s record %d", name, i)
            worker = threading.Thread(target=contextvars.copy_context().run,
                                      args=(library.info, "%s from a worker", name))
            worker.start()
            worker.join()
            both.wait(timeout=10)  # the other build is still capturing

    threads = [threading.Thread(target=build, args=(name,)) for name in logs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    stray = threading.Thread(target=library.info, args=("outside any build",))
    stray.start()
    stray.join()
    handlers = logging.getLogger("core").handlers
    assert len(handlers) == len(set(map(id, handlers)))  # one shared handler, attached once
    for name, other in (("one", "two"), ("two", "one")):
        logs[name].close()
        text = (tmp_path / name).read_text()
        assert text.count(f"info: {name} record") == 200
        assert f"info: {name} from a worker" in text
        assert f"{other} record" not in text and f"{other} from" not in text
        assert "outside any build" not in text


def test_docker_config_sources(tmp_path: Path) -> None:
    workspace = Workspace.create(tmp_path / "root", "abc")
    assert docker_config_dir(None, workspace, read_secret=None) == workspace.docker
    secret = docker_config_dir("sm://projects/p/secrets/s", workspace,
                               read_secret=lambda ref: '{"auths": {"r": {}}}')
    config = secret / "config.json"
    assert config.read_text() == '{"auths": {"r": {}}}'
    assert oct(config.stat().st_mode & 0o777) == "0o600"
    with pytest.raises(SettingsError, match="cannot be read"):
        docker_config_dir("secretsmanager:arn", workspace, read_secret=None)
    directory = tmp_path / "dockercfg"
    directory.mkdir()
    (directory / "config.json").write_text("{}")
    assert docker_config_dir(str(directory), workspace, read_secret=None) == directory
    assert docker_config_dir(str(directory / "config.json"), workspace,
                             read_secret=None) == directory
    other = tmp_path / "creds.json"
    other.write_text('{"auths": {}}')
    assert docker_config_dir(str(other), workspace, read_secret=None) == workspace.docker
    with pytest.raises(SettingsError, match="does not exist"):
        docker_config_dir(str(tmp_path / "missing"), workspace, read_secret=None)
