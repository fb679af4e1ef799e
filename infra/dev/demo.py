"""The main job on local stand-ins: an upload to S3 becomes an image in a registry.

Run through `infra/dev/demo.sh` (which sets up the machine first). Steps:
  1. start a `docker-registry` and a moto server on free loopback ports;
  2. make a 2 MB busybox base image with `bucketbuild build` (FROM scratch + COPY);
  3. in moto: a versioned bucket whose uploads notify an SQS queue, and an EventBridge rule that
     sends bucketbuild's completion events to a second queue;
  4. upload examples/hello as a tarball, take the event moto delivered to the queue and hand it
     to the Lambda handler (`handlers.aws.handler`) in this process;
  5. print the completion event read from the EventBridge queue, check the pushed manifest's
     digest with skopeo, unpack the image with skopeo + umoci and run it under proot.
Everything started here is stopped and removed at the end.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
APPLETS = ("sh", "echo", "cat", "ls", "mkdir", "chmod", "sed", "id", "rm", "ln", "env", "true")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@contextmanager
def process(argv: list[str], ready_url: str) -> Iterator[None]:
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(ready_url)
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextmanager
def registry(work: Path) -> Iterator[str]:
    port = free_port()
    config = work / "registry.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {work / 'registry'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    with process(["docker-registry", "serve", str(config)], f"http://127.0.0.1:{port}/v2/"):
        yield f"127.0.0.1:{port}"


@contextmanager
def moto() -> Iterator[str]:
    """A moto server; the AWS SDK is pointed at it through the standard variables."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    moto_server = str(Path(sys.executable).with_name("moto_server"))
    with process([moto_server, "-H", "127.0.0.1", "-p", str(port)], endpoint + "/moto-api/"):
        os.environ.update(AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="testing",
                          AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
        yield endpoint


def busybox_context(dest: Path) -> Path:
    """A context holding a busybox root filesystem and a Dockerfile that copies it."""
    rootfs = dest / "rootfs"
    for sub in ("bin", "etc", "tmp", "root"):
        (rootfs / sub).mkdir(parents=True)
    (rootfs / "tmp").chmod(0o1777)
    shutil.copy2("/bin/busybox", rootfs / "bin" / "busybox")
    for applet in APPLETS:
        (rootfs / "bin" / applet).symlink_to("busybox")
    (rootfs / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
    (rootfs / "etc" / "group").write_text("root:x:0:\nnogroup:x:65534:\n")
    (dest / "Dockerfile").write_text('FROM scratch\nCOPY rootfs/ /\nCMD ["sh"]\n')
    return dest


def bucketbuild(*args: str) -> str:
    """Run the CLI; progress goes to our stderr, the digest comes back from stdout."""
    cmd = [sys.executable, "-m", "core", "build", *args]
    print("$ bucketbuild build " + " ".join(args), file=sys.stderr, flush=True)
    done = subprocess.run(cmd, cwd=REPO, stdout=subprocess.PIPE, text=True, check=True)
    return done.stdout.strip()


def context_tarball(directory: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(directory, arcname=".")
    return buffer.getvalue()


class AwsStack:
    """The bucket, queues and rule of a deployment, made in moto."""

    def __init__(self, bucket: str) -> None:
        import boto3

        self.bucket = bucket
        self.s3, self.sqs, events = boto3.client("s3"), boto3.client("sqs"), boto3.client("events")
        self.s3.create_bucket(Bucket=bucket)
        self.s3.put_bucket_versioning(Bucket=bucket,
                                      VersioningConfiguration={"Status": "Enabled"})
        self.uploads, uploads_arn = self._queue("uploads")
        self.s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": uploads_arn, "Events": ["s3:ObjectCreated:*"]}]})
        self.completions, completions_arn = self._queue("completions")
        events.put_rule(Name="bucketbuild", EventPattern=json.dumps({"source": ["bucketbuild"]}))
        events.put_targets(Rule="bucketbuild", Targets=[{"Id": "q", "Arn": completions_arn}])

    def _queue(self, name: str) -> tuple[str, str]:
        url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        attrs = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        return url, attrs["Attributes"]["QueueArn"]

    def receive(self, url: str, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reply = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
            if reply.get("Messages"):
                return list(reply["Messages"])
            time.sleep(0.1)
        raise TimeoutError(f"no message arrived on {url}")

    def lambda_event(self) -> dict[str, Any]:
        """The SQS event Lambda would pass for what moto delivered on the uploads queue."""
        return {"Records": [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"],
                             "body": m["Body"], "eventSource": "aws:sqs", "attributes": {},
                             "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:uploads"}
                            for m in self.receive(self.uploads)]}


class LambdaContext:
    """The part of Lambda's context object the handler reads: the time left."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def get_remaining_time_in_millis(self) -> int:
        return int(max(0.0, self.deadline - time.monotonic()) * 1000)


def pushed_digest(reference: str) -> str:
    raw = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{reference}"],
        stdout=subprocess.PIPE, check=True).stdout
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def run_image(reference: str, work: Path) -> str:
    """Unpack the pushed image with tools we did not write and run its entrypoint."""
    layout, bundle = work / "oci", work / "bundle"
    subprocess.run(["skopeo", "copy", "--quiet", "--src-tls-verify=false", f"docker://{reference}",
                    f"oci:{layout}:demo"], check=True)
    rootless = ["--rootless"] if os.geteuid() != 0 else []
    subprocess.run(["umoci", "unpack", *rootless, "--image", f"{layout}:demo", str(bundle)],
                   check=True, stdout=subprocess.DEVNULL)
    argv = json.loads((bundle / "config.json").read_text())["process"]["args"]
    done = subprocess.run(["proot", "-r", str(bundle / "rootfs"), "-w", "/", *argv],
                          stdout=subprocess.PIPE, text=True, check=True)
    return done.stdout.strip()


def deliver_upload(stack: AwsStack, host: str, base: str, work: Path) -> dict[str, Any]:
    """Upload the example, run the handler on moto's event, return the completion event."""
    os.environ.update(BUCKETBUILD_DESTINATION=f"{host}/demo/{{name}}:latest",
                      BUCKETBUILD_ALLOWED_DESTINATIONS=f"{host}/demo/*",
                      BUCKETBUILD_INSECURE_REGISTRIES=host, BUCKETBUILD_EVENT_BUS="default",
                      BUCKETBUILD_WORK_ROOT=str(work / "builds"))
    stack.s3.put_object(Bucket=stack.bucket, Key="uploads/hello.tar.gz",
                        Body=context_tarball(REPO / "examples" / "hello"),
                        Metadata={"bucketbuild-build-args": f"BASE={base}"})
    print(f"uploaded s3://{stack.bucket}/uploads/hello.tar.gz", file=sys.stderr)
    sys.path.insert(0, str(REPO))
    from handlers.aws import handler

    reply = handler(stack.lambda_event(), LambdaContext(300))
    print(f"handler returned {json.dumps(reply)}", file=sys.stderr, flush=True)
    return final_event(stack)


def final_event(stack: AwsStack) -> dict[str, Any]:
    """Read the completions queue until the build's succeeded or failed event arrives."""
    while True:
        for message in stack.receive(stack.completions):
            stack.sqs.delete_message(QueueUrl=stack.completions,
                                     ReceiptHandle=message["ReceiptHandle"])
            event = dict(json.loads(message["Body"])["detail"])
            print(f"event {event['type']}", file=sys.stderr, flush=True)
            if not event["type"].endswith(".started"):
                return event


def main() -> int:
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bucketbuild-demo-")))
        host = stack.enter_context(registry(work))
        stack.enter_context(moto())
        base = f"{host}/busybox:latest"
        bucketbuild("--context", str(busybox_context(work / "base")), "--destination", base,
                    f"--insecure-registry={host}")
        event = deliver_upload(AwsStack("uploads"), host, base, work)
        print(json.dumps(event, indent=2), flush=True)
        if event.get("type") != "io.bucketbuild.build.succeeded":
            return 1
        image, digest = event["subject"], event["data"]["digest"]
        if pushed_digest(image) != digest:
            print("the registry serves another digest than the event names", file=sys.stderr)
            return 1
        print("skopeo confirms the digest; running the image:", file=sys.stderr, flush=True)
        print(run_image(image, work), flush=True)
        print(f"{image}@{digest}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
