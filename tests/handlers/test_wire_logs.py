"""A function whose platform logs at DEBUG (`AWS_LAMBDA_LOG_LEVEL=DEBUG` makes the Lambda
runtime set the root logger so) must not log the cloud SDKs' wire dumps: reading the docker
config from Secrets Manager would put its passwords in the function's log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = """
import logging, sys
logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)  # what the platform does
logging.getLogger("handlers.probe").debug("debug records are shown")
from handlers.{module} import read_secret
if "{module}" == "aws":
    print(len(read_secret(sys.argv[1])))
for name in ("botocore", "boto3", "s3transfer", "google.auth", "google.cloud"):
    assert logging.getLogger(name).getEffectiveLevel() == logging.INFO, name
"""


@pytest.mark.parametrize("module", ["aws", "gcp"])
def test_sdk_loggers_are_held_at_info_under_a_debug_root(aws_env: str, module: str) -> None:
    password = "wire-dump-Passw0rd-7731"
    config = json.dumps({"auths": {"registry.example": {"username": "u",
                                                        "password": password}}})
    arn = boto3.client("secretsmanager").create_secret(
        Name="bucketbuild/docker-config", SecretString=config)["ARN"]
    proc = subprocess.run([sys.executable, "-c", SCRIPT.format(module=module),
                           f"secretsmanager:{arn}"], cwd=ROOT, env=dict(os.environ),
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "DEBUG:handlers.probe:debug records are shown" in proc.stderr  # control
    if module == "aws":
        assert proc.stdout.strip() == str(len(config))  # the secret was read
    assert password not in proc.stderr and password not in proc.stdout
    assert "DEBUG:botocore" not in proc.stderr
