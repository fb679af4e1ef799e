"""Deployment files: the function image builds with bucketbuild itself; serverless.yml packages
with the Serverless Framework v3 and its CloudFormation passes cfn-lint."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.images import BaseImages, skopeo_unpack
from tests.fixtures.registry import RegistryServer

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(os.geteuid() != 0, reason="the image's RUN step uses the chroot sandbox")
def test_bucketbuild_builds_the_function_image(registry: RegistryServer,
                                               base_images: BaseImages, tmp_path: Path) -> None:
    busybox = f"{base_images.host}/{base_images.docker_gzip}"
    destination = f"{registry.host}/infra/function:test"
    proc = subprocess.run(
        [sys.executable, "-m", "core", "build", "--context", str(ROOT),
         "--dockerfile", "infra/function/Dockerfile", "--build-arg", f"BASE={busybox}",
         "--build-arg", "PIP_INSTALL=true", "--destination", destination,
         "--insecure-registry", registry.host, "--work-dir", str(tmp_path / "work")],
        cwd=tmp_path, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    rootfs = skopeo_unpack(registry.host, "infra/function:test", tmp_path / "unpack")
    task = rootfs / "var" / "task"
    assert (task / "handlers" / "aws.py").is_file()
    assert (task / "handlers" / "gcp.py").is_file()
    assert (task / "core" / "service" / "runner.py").is_file()
    assert (task / "requirements.txt").is_file()
    assert (rootfs / "opt" / "README.md").is_file()
    assert not list(task.rglob("__pycache__"))
    assert not (task / "tests").exists() and not (task / ".venv").exists()
    config = json.loads(subprocess.run(
        ["skopeo", "inspect", "--config", "--raw", "--tls-verify=false",
         f"docker://{destination}"], capture_output=True, check=True).stdout)["config"]
    assert config["Cmd"] == ["handlers.aws.handler"]
    assert "BUCKETBUILD_TOOLS_DIR=/opt" in config["Env"]
    assert config["WorkingDir"] == "/var/task"


def _npx() -> str:
    npx = shutil.which("npx")
    if npx is None:
        pytest.skip("npx (Node.js) is not installed")
    return npx


def test_serverless_packages_offline_and_passes_cfn_lint(tmp_path: Path) -> None:
    """`npx serverless@3 package` with dummy credentials (npx fetches the framework from the npm
    registry the first time: about a minute), then cfn-lint on the generated template."""
    output = tmp_path / "package"
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "dummy", "AWS_SECRET_ACCESS_KEY": "dummy",
           "AWS_REGION": "us-east-1", "SLS_TELEMETRY_DISABLED": "1",
           "SLS_NOTIFICATIONS_MODE": "off", "SLS_INTERACTIVE_SETUP_DISABLE": "1",
           "SLS_AWS_REQUEST_MAX_RETRIES": "0", "npm_config_update_notifier": "false"}
    env.pop("AWS_ENDPOINT_URL", None)
    proc = subprocess.run(
        [_npx(), "--yes", "serverless@3", "package", "--stage", "test", "--region", "us-east-1",
         "--package", str(output)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    template_path = output / "cloudformation-template-update-stack.json"
    template = json.loads(template_path.read_text())
    check_template(template)
    assert shutil.which("cfn-lint") or Path(sys.executable).with_name("cfn-lint").exists()
    lint = Path(sys.executable).with_name("cfn-lint")
    proc = subprocess.run([str(lint) if lint.exists() else "cfn-lint", str(template_path)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    names = subprocess.run(["unzip", "-Z1", str(output / "build.zip")], capture_output=True,
                           text=True, check=True).stdout.split()
    assert "handlers/aws.py" in names and "core/service/runner.py" in names
    assert not [n for n in names if n.startswith(("tests/", ".venv/")) or "__pycache__" in n]


def check_template(template: dict[str, object]) -> None:
    resources = template["Resources"]
    assert isinstance(resources, dict)
    function = resources["BuildLambdaFunction"]["Properties"]
    assert function["Handler"] == "handlers/aws.handler"
    assert function["Runtime"] == "python3.11"
    assert function["EphemeralStorage"] == {"Size": 10240}
    assert function["Timeout"] == 900 and function["MemorySize"] == 3008
    variables = function["Environment"]["Variables"]
    assert variables["BUCKETBUILD_EVENT_BUS"] == "default"
    assert variables["BUCKETBUILD_SNS_TOPIC_ARN"] == {"Ref": "CompletionTopic"}
    bucket = resources["S3BucketUploads"]["Properties"]
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    suffixes = sorted(c["Filter"]["S3Key"]["Rules"][0]["Value"]
                      for c in bucket["NotificationConfiguration"]["LambdaConfigurations"])
    assert suffixes == [".tar", ".tar.gz", ".tar.zst", ".tgz"]
    policy = json.dumps(resources["IamRoleLambdaExecution"])
    for action in ("s3:GetObject", "s3:PutObject", "ecr:GetAuthorizationToken", "ecr:PutImage",
                   "ecr:UploadLayerPart", "events:PutEvents", "sns:Publish"):
        assert action in policy


def test_gcp_deploy_script_dry_run_stages_a_loadable_source(tmp_path: Path) -> None:
    env = {**os.environ, "DRY_RUN": "1", "PROJECT": "proj-1", "BUCKET": "uploads-1",
           "TMPDIR": str(tmp_path), "ALLOWED_DESTINATIONS": "a.example/x/*,b.example/y/*"}
    proc = subprocess.run(["bash", str(ROOT / "infra" / "gcp" / "deploy.sh")], env=env,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    commands = proc.stdout.splitlines()
    deploy = next(c for c in commands if c.startswith("gcloud functions deploy"))
    for part in ("--gen2", "--runtime python311", "--entry-point on_finalize",
                 "type=google.cloud.storage.object.v1.finalized", "bucket=uploads-1",
                 "--retry", "--timeout 540s", "--concurrency 1"):
        assert part in deploy
    assert any("roles/artifactregistry.writer" in c for c in commands)
    assert any("roles/pubsub.publisher" in c and "bucketbuild-fn@" in c for c in commands)
    assert any("gcloud pubsub topics create bucketbuild-builds" in c for c in commands)
    [stage] = tmp_path.glob("bucketbuild-deploy.*")
    env_file = (stage / "env.yaml").read_text()
    assert "BUCKETBUILD_ALLOWED_DESTINATIONS: 'a.example/x/*,b.example/y/*'" in env_file
    assert "BUCKETBUILD_PUBSUB_TOPIC: 'projects/proj-1/topics/bucketbuild-builds'" in env_file
    source = stage / "source"
    assert (source / "main.py").is_file() and (source / "requirements.txt").is_file()
    assert not list(source.rglob("__pycache__"))
    check_source_loads(source, tmp_path)


def check_source_loads(source: Path, tmp_path: Path) -> None:
    """functions-framework loads the staged main.py the way Cloud Functions does."""
    import requests

    from tests.fixtures.functions import run_functions

    with run_functions(env={"PYTHONPATH": str(source)}, workdir=tmp_path / "ff",
                       source=source / "main.py") as server:
        headers = {"ce-id": "1", "ce-specversion": "1.0", "ce-source": "//storage/x",
                   "ce-type": "google.cloud.storage.object.v1.finalized",
                   "Content-Type": "application/json"}
        body = json.dumps({"bucket": "b", "name": "notes.txt", "generation": "1"}).encode()
        reply = requests.post(server.url, headers=headers, data=body, timeout=30)
        assert reply.status_code == 200, server.log()


def test_deployment_files_use_only_known_settings() -> None:
    import re

    from core.service.settings import NAMES, PREFIX

    files = ["serverless.yml", "infra/gcp/deploy.sh", "infra/function/Dockerfile"]
    used = {name for path in files
            for name in re.findall(r"\bBUCKETBUILD_([A-Z_]+)\b", (ROOT / path).read_text())}
    assert used, "no settings found"
    assert used <= set(NAMES), {PREFIX + n for n in used - set(NAMES)}
