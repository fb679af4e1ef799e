"""SIGTERM to a Lambda runtime in the middle of a build (the platform shutting the execution
environment down): the RUN step is killed, the workspace removed, a failed result recorded."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.images import BaseImages
from tests.handlers.conftest import AwsStack, context_tar, image_exists
from tests.resources.conftest import processes_with, wait_for

ROOT = Path(__file__).resolve().parents[2]
#: the runtime's part: call the handler in the main thread, as the Lambda runtime does
RUNTIME = """
import json, sys
from handlers.aws import handler
from tests.handlers.conftest import LambdaContext
handler(json.loads(sys.argv[1]), LambdaContext())
"""
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="RUN uses the chroot sandbox (root)")


@needs_root
def test_sigterm_mid_run_records_a_terminated_build(aws_stack: AwsStack,
                                                    base_images: BaseImages,
                                                    tmp_path: Path) -> None:
    aws_stack.messages()
    token = f"sleep {600 + secrets.randbelow(10000)}"
    files = {"Dockerfile": f"FROM {base_images.host}/{base_images.docker_gzip}\n"
                           f"RUN echo step-started && /bin/busybox {token}\n"}
    key = "stopped/app.tar.gz"
    aws_stack.upload(key, context_tar(files))
    [message] = aws_stack.messages()
    env = {**os.environ, "BUCKETBUILD_INSECURE_REGISTRIES":
           f"{aws_stack.registry.host},{base_images.host}"}
    runtime = subprocess.Popen([sys.executable, "-c", RUNTIME, message["Body"]], cwd=ROOT,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        wait_for(lambda: bool(processes_with(token)) or runtime.poll() is not None,
                  timeout=120, what="the RUN step")
        assert runtime.poll() is None, runtime.communicate()[1][-3000:]
        runtime.send_signal(signal.SIGTERM)
        _, stderr = runtime.communicate(timeout=60)
    finally:
        if runtime.poll() is None:
            runtime.kill()
    assert runtime.returncode != 0
    assert "Terminated: terminated by SIGTERM" in stderr, stderr[-3000:]
    assert processes_with(token) == []
    status = aws_stack.status(key)
    assert status["type"] == "io.bucketbuild.build.failed"
    error = status["data"]["error"]
    assert error["class"] == "terminated" and "SIGTERM" in error["message"]
    assert error["step"] == 2 and error["instruction"].startswith("RUN echo step-started")
    log = aws_stack.read(key + ".log").decode()
    assert "step-started" in log and "failed (terminated)" in log
    work = tmp_path / "work"  # BUCKETBUILD_WORK_ROOT: only the base layer cache is left
    assert sorted(p.name for p in work.iterdir()) == ["base-cache"]
    for reference in status["data"]["destinations"]:  # nothing was tagged
        assert not image_exists(aws_stack.registry.host,
                                reference.removeprefix(aws_stack.registry.host + "/"))
