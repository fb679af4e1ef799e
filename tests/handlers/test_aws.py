"""AWS end to end: moto's own S3 deliveries -> handlers.aws.handler -> registry + events."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import boto3
import pytest

from core.errors import ContextError
from handlers.aws import LambdaHandler, handler
from tests.fixtures.images import BaseImages, skopeo_inspect_raw
from tests.fixtures.proxy import fault_proxy
from tests.handlers.conftest import (
    AwsStack,
    LambdaContext,
    context_tar,
    image_exists,
    manifest_digest,
)

SCRATCH = {"Dockerfile": "FROM scratch\nCOPY hello.txt /hello.txt\nLABEL stage=scratch\n",
           "hello.txt": "hello from the bucket\n"}
#: a bucket the S3 client cannot even address: stands in for a store that fails
UNREACHABLE = "no_such:bucket"
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="RUN uses the chroot sandbox (root)")


def test_sqs_delivery_builds_pushes_and_reports(aws_stack: AwsStack) -> None:
    aws_stack.messages()  # moto's s3:TestEvent from configuring the notification
    version = aws_stack.upload("apps/site.tar.gz", context_tar(SCRATCH))
    event = aws_stack.sqs_event()
    answer = handler(event, LambdaContext())
    assert answer == {"outcomes": ["succeeded"], "batchItemFailures": []}

    status = aws_stack.status("apps/site.tar.gz")
    data = status["data"]
    assert status["type"] == "io.bucketbuild.build.succeeded"
    image = f"aws/site:{version}"
    assert data["destinations"] == [f"{aws_stack.registry.host}/{image}"]
    assert status["subject"] == data["destinations"][0]
    assert data["digest"] == manifest_digest(aws_stack.registry.host, image)
    assert data["source"]["version"] == version
    assert data["log"] == f"s3://{aws_stack.bucket}/apps/site.tar.gz.log"
    assert [s["instruction"] for s in data["steps"]][-1].startswith("LABEL")

    completions = aws_stack.completions(count=2)
    assert [c["type"] for c in completions] == ["io.bucketbuild.build.started",
                                                "io.bucketbuild.build.succeeded"]
    assert completions[1] == status
    assert completions[0]["subject"] == status["subject"]
    log = aws_stack.read("apps/site.tar.gz.log").decode()
    assert "COPY hello.txt /hello.txt" in log and data["digest"] in log


@needs_root
def test_busybox_base_with_run_from_a_direct_s3_event(aws_stack: AwsStack,
                                                       base_images: BaseImages) -> None:
    aws_stack.messages()
    busybox = f"{base_images.host}/{base_images.docker_gzip}"
    files = {"Dockerfile": f"FROM {busybox}\nRUN echo built-in-lambda > /made\n"
                           "COPY hello.txt /\n", "hello.txt": "hi\n"}
    aws_stack.upload("svc/api.tar", context_tar(files, compress=""))
    [message] = aws_stack.messages()
    direct = json.loads(message["Body"])  # what S3 would hand a Lambda directly
    assert handler(direct, LambdaContext()) == {"outcomes": ["succeeded"]}
    data = aws_stack.status("svc/api.tar")["data"]
    assert data["sandbox"] == "chroot"
    image = data["destinations"][0].removeprefix(aws_stack.registry.host + "/")
    assert data["digest"] == manifest_digest(aws_stack.registry.host, image)
    assert len(data["layers"]) == 3  # busybox + RUN + COPY


@needs_root
def test_warm_invocations_reuse_base_layers_and_the_sandbox_probe(
        aws_stack: AwsStack, base_images: BaseImages, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(handler, LambdaHandler)  # the entry point is the per-process object
    aws_stack.messages()
    manifest = json.loads(skopeo_inspect_raw(base_images.host, base_images.docker_gzip))
    layers = [layer["digest"] for layer in manifest["layers"]]
    warm = LambdaHandler()  # one execution environment, from its cold start
    with fault_proxy(base_images.host) as proxy:
        monkeypatch.setenv("BUCKETBUILD_INSECURE_REGISTRIES",
                           f"{aws_stack.registry.host},{proxy.host}")

        def invoke(key: str) -> tuple[dict[str, Any], str, int]:
            files = {"Dockerfile": f"FROM {proxy.host}/{base_images.docker_gzip}\n"
                                   f"RUN echo {key} > /made\n"}
            aws_stack.upload(key, context_tar(files))
            answer = warm(aws_stack.sqs_event(), LambdaContext())
            assert answer["outcomes"] == ["succeeded"], aws_stack.read(key + ".log")
            gets = sum(proxy.count("GET", f"/blobs/{digest}") for digest in layers)
            return aws_stack.status(key)["data"], aws_stack.read(key + ".log").decode(), gets

        first, first_log, first_gets = invoke("warm/one.tar.gz")
        second, second_log, second_gets = invoke("warm/two.tar.gz")
    assert first_gets == second_gets == len(layers)  # the second build read the cache
    kept = tmp_path / "work" / "base-cache" / "blobs" / "sha256"  # WORK_ROOT/base-cache
    assert sorted(p.name for p in kept.iterdir()) == sorted(d.split(":")[1] for d in layers)
    assert "RUN sandbox chosen: chroot" in first_log  # the cold start probed
    assert "RUN sandbox chosen" not in second_log  # the warm one did not
    assert first["sandbox"] == second["sandbox"] == "chroot"
    assert "probed: chroot: usable" in second_log  # with the kept report
    assert second_log.count("RUN sandbox:") == 1  # told once, not also as a log record


def test_sns_wrapped_deliveries(aws_stack: AwsStack) -> None:
    sns = boto3.client("sns")
    topic = sns.create_topic(Name="uploads")["TopicArn"]
    sqs = boto3.client("sqs")
    via_sns = sqs.create_queue(QueueName="via-sns")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=via_sns, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    boto3.client("s3").put_bucket_notification_configuration(
        Bucket=aws_stack.bucket, NotificationConfiguration={
            "TopicConfigurations": [{"TopicArn": topic, "Events": ["s3:ObjectCreated:*"]}]})
    aws_stack.messages(via_sns)  # the test event
    aws_stack.upload("sns/app.tgz", context_tar(SCRATCH))
    messages = aws_stack.messages(via_sns)
    assert json.loads(messages[0]["Body"])["Type"] == "Notification"
    assert handler(aws_stack.sqs_event(messages), LambdaContext())["outcomes"] == ["succeeded"]
    # the same notification as Lambda's SNS trigger hands it over: a duplicate
    notification = json.loads(messages[0]["Body"])
    sns_event = {"Records": [{"EventSource": "aws:sns", "EventVersion": "1.0",
                              "Sns": {"Type": "Notification", "TopicArn": topic,
                                      "Message": notification["Message"]}}]}
    assert handler(sns_event, LambdaContext()) == {"outcomes": ["replayed"]}


def test_eventbridge_shaped_delivery(aws_stack: AwsStack) -> None:
    s3 = boto3.client("s3")
    s3.put_bucket_notification_configuration(Bucket=aws_stack.bucket, NotificationConfiguration={
        "EventBridgeConfiguration": {}})
    url, arn = (boto3.client("sqs").create_queue(QueueName="s3-events")["QueueUrl"], None)
    arn = boto3.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    events = boto3.client("events")
    events.put_rule(Name="uploads", EventPattern=json.dumps(
        {"source": ["aws.s3"], "detail-type": ["Object Created"]}))
    events.put_targets(Rule="uploads", Targets=[{"Id": "q", "Arn": arn}])
    version = aws_stack.upload("eb/app v1.tar.gz", context_tar(SCRATCH))
    [message] = aws_stack.messages(url)
    event = json.loads(message["Body"])
    assert event["detail-type"] == "Object Created"
    assert handler(event, LambdaContext()) == {"outcomes": ["succeeded"]}
    data = aws_stack.status("eb/app v1.tar.gz")["data"]
    assert data["source"]["version"] == version
    assert data["destinations"] == [f"{aws_stack.registry.host}/aws/app-v1:{version}"]


def test_duplicate_delivery_builds_once(aws_stack: AwsStack) -> None:
    aws_stack.messages()
    aws_stack.upload("dup.tar.gz", context_tar(SCRATCH))
    event = aws_stack.sqs_event()
    assert handler(event, LambdaContext())["outcomes"] == ["succeeded"]
    first = aws_stack.status("dup.tar.gz")
    log_versions = boto3.client("s3").list_object_versions(Bucket=aws_stack.bucket,
                                                          Prefix="dup.tar.gz.log")["Versions"]
    assert handler(event, LambdaContext())["outcomes"] == ["replayed"]
    assert aws_stack.status("dup.tar.gz") == first
    after = boto3.client("s3").list_object_versions(Bucket=aws_stack.bucket,
                                                   Prefix="dup.tar.gz.log")["Versions"]
    assert len(after) == len(log_versions) == 1  # no second build wrote a log
    completions = aws_stack.completions(count=3)
    assert [c["type"].rsplit(".", 1)[1] for c in completions] == ["started", "succeeded",
                                                                  "succeeded"]
    assert completions[1]["id"] == completions[2]["id"] == first["id"]


def test_our_own_objects_do_not_trigger_builds(aws_stack: AwsStack) -> None:
    aws_stack.messages()
    aws_stack.upload("own.tar.gz", context_tar(SCRATCH))
    assert handler(aws_stack.sqs_event(), LambdaContext())["outcomes"] == ["succeeded"]
    # the whole-bucket trigger delivers the status object (twice) and the log
    follow_ups = aws_stack.messages()
    keys = sorted(json.loads(m["Body"])["Records"][0]["s3"]["object"]["key"]
                  for m in follow_ups)
    assert keys == ["own.tar.gz.log", "own.tar.gz.result.json", "own.tar.gz.result.json"]
    assert handler(aws_stack.sqs_event(follow_ups), LambdaContext()) == {
        "outcomes": [], "batchItemFailures": []}
    assert aws_stack.messages() == []


def test_non_archive_upload_is_ignored(aws_stack: AwsStack) -> None:
    aws_stack.messages()
    aws_stack.upload("notes/readme.txt", b"not a context")
    assert handler(aws_stack.sqs_event(), LambdaContext())["outcomes"] == []
    assert not aws_stack.exists("notes/readme.txt.result.json")
    assert aws_stack.completions(count=1, wait=1.0) == []


def failed(aws_stack: AwsStack, key: str) -> dict[str, object]:
    status = aws_stack.status(key)
    assert status["type"] == "io.bucketbuild.build.failed"
    completions = aws_stack.completions(count=1)
    assert completions[-1] == status
    return status["data"]  # type: ignore[no-any-return]


def test_failing_dockerfile_reports_step_and_line(aws_stack: AwsStack) -> None:
    aws_stack.messages()
    files = {"Dockerfile": "FROM scratch\nCOPY hello.txt /\nCOPY missing.txt /\n",
             "hello.txt": "x"}
    version = aws_stack.upload("bad.tar.gz", context_tar(files))
    assert handler(aws_stack.sqs_event(), LambdaContext())["outcomes"] == ["failed"]
    data = failed(aws_stack, "bad.tar.gz")
    error = data["error"]
    assert isinstance(error, dict)
    assert error["line"] == 3 and error["step"] == 3
    assert "missing.txt" in error["message"]
    assert error["class"] in ("step", "context")
    assert not image_exists(aws_stack.registry.host, f"aws/bad:{version}")
    assert "missing.txt" in aws_stack.read("bad.tar.gz.log").decode()


@needs_root
def test_failing_run_reports_exit_code(aws_stack: AwsStack, base_images: BaseImages) -> None:
    aws_stack.messages()
    busybox = f"{base_images.host}/{base_images.docker_gzip}"
    files = {"Dockerfile": f"FROM {busybox}\nRUN echo ok\nRUN echo failing && exit 7\n"}
    version = aws_stack.upload("run.tar.gz", context_tar(files))
    assert handler(aws_stack.sqs_event(), LambdaContext())["outcomes"] == ["failed"]
    error = failed(aws_stack, "run.tar.gz")["error"]
    assert isinstance(error, dict)
    assert (error["class"], error["line"], error["exit_code"]) == ("step", 3, 7)
    assert error["instruction"].startswith("RUN echo failing")
    assert not image_exists(aws_stack.registry.host, f"aws/run:{version}")
    assert "failing" in aws_stack.read("run.tar.gz.log").decode()


def test_dockerfile_syntax_error(aws_stack: AwsStack) -> None:
    aws_stack.messages()
    aws_stack.upload("syntax.tar.gz", context_tar({"Dockerfile": "FROM scratch\nFORM x\n"}))
    assert handler(aws_stack.sqs_event(), LambdaContext())["outcomes"] == ["failed"]
    error = failed(aws_stack, "syntax.tar.gz")["error"]
    assert isinstance(error, dict)
    assert (error["class"], error["line"]) == ("dockerfile", 2)


def test_disallowed_destination_fails_before_building(aws_stack: AwsStack) -> None:
    aws_stack.messages()
    aws_stack.upload("evil.tar.gz", context_tar(SCRATCH),
                     metadata={"bucketbuild-destination": "evil.example.com/steal:1"})
    assert handler(aws_stack.sqs_event(), LambdaContext())["outcomes"] == ["failed"]
    data = failed(aws_stack, "evil.tar.gz")
    error = data["error"]
    assert isinstance(error, dict)
    assert error["class"] == "destination" and "not allowed" in error["message"]
    assert data["steps"] == []


def test_metadata_and_archive_settings(aws_stack: AwsStack) -> None:
    aws_stack.messages()
    files = {"build/Containerfile": "FROM scratch\nARG WHO\nLABEL who=$WHO\n",
             "bucketbuild.json": json.dumps({"dockerfile": "build/Containerfile",
                                             "build-args": {"WHO": "archive"},
                                             "destination": f"{aws_stack.registry.host}"
                                                            "/aws/{name}:from-json"})}
    aws_stack.upload("settings.tar.gz", context_tar(files),
                     metadata={"bucketbuild-build-args": "WHO=metadata"})
    assert handler(aws_stack.sqs_event(), LambdaContext())["outcomes"] == ["succeeded"]
    data = aws_stack.status("settings.tar.gz")["data"]
    assert data["destinations"] == [f"{aws_stack.registry.host}/aws/settings:from-json"]
    assert data["steps"][-1]["instruction"] == "LABEL who=$WHO"
    config = json.loads(skopeo_config(aws_stack, "aws/settings:from-json"))
    assert config["config"]["Labels"] == {"who": "metadata"}


def skopeo_config(aws_stack: AwsStack, image: str) -> bytes:
    import subprocess

    return subprocess.run(["skopeo", "inspect", "--config", "--raw", "--tls-verify=false",
                           f"docker://{aws_stack.registry.host}/{image}"],
                          check=True, capture_output=True).stdout


def test_corrupt_archive(aws_stack: AwsStack) -> None:
    aws_stack.messages()
    aws_stack.upload("corrupt.tar.gz", b"\x1f\x8b\x08\x00garbage that is not gzip at all")
    assert handler(aws_stack.sqs_event(), LambdaContext())["outcomes"] == ["failed"]
    error = failed(aws_stack, "corrupt.tar.gz")["error"]
    assert isinstance(error, dict)
    assert error["class"] == "context"


def test_too_short_deadline_is_a_timeout(aws_stack: AwsStack) -> None:
    aws_stack.messages()
    aws_stack.upload("slow.tar.gz", context_tar(SCRATCH))
    answer = handler(aws_stack.sqs_event(), LambdaContext(remaining_ms=3_000))
    assert answer["outcomes"] == ["failed"]
    data = failed(aws_stack, "slow.tar.gz")
    error = data["error"]
    assert isinstance(error, dict)
    assert error["class"] == "timeout"


def test_sqs_batch_reports_only_failed_messages(aws_stack: AwsStack) -> None:
    aws_stack.messages()
    aws_stack.upload("good.tar.gz", context_tar(SCRATCH))
    event = aws_stack.sqs_event()
    broken = json.loads(event["Records"][0]["body"])
    broken["Records"][0]["s3"]["bucket"]["name"] = UNREACHABLE
    event["Records"].append({**event["Records"][0], "messageId": "broken-message",
                             "body": json.dumps(broken)})
    answer = handler(event, LambdaContext())
    assert answer["outcomes"] == ["succeeded"]
    assert answer["batchItemFailures"] == [{"itemIdentifier": "broken-message"}]


def test_infrastructure_failure_of_a_direct_event_is_raised(aws_stack: AwsStack) -> None:
    aws_stack.messages()
    aws_stack.upload("direct.tar.gz", context_tar(SCRATCH))
    [message] = aws_stack.messages()
    direct = json.loads(message["Body"])
    missing = json.loads(message["Body"])["Records"][0]
    missing["s3"]["bucket"]["name"] = UNREACHABLE
    direct["Records"].insert(0, missing)
    with pytest.raises(ContextError, match="head failed"):
        handler(direct, LambdaContext())
    # the good record was still built; Lambda's retry then replays it
    assert aws_stack.status("direct.tar.gz")["type"] == "io.bucketbuild.build.succeeded"


def test_docker_config_from_secrets_manager(aws_stack: AwsStack, htpasswd_registry: object,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import base64

    from tests.fixtures.registry import RegistryServer

    assert isinstance(htpasswd_registry, RegistryServer)
    auth = base64.b64encode(f"{htpasswd_registry.username}:{htpasswd_registry.password}"
                            .encode()).decode()
    secret = boto3.client("secretsmanager").create_secret(
        Name="registry-creds",
        SecretString=json.dumps({"auths": {htpasswd_registry.host: {"auth": auth}}}))
    host = htpasswd_registry.host
    monkeypatch.setenv("BUCKETBUILD_DOCKER_CONFIG", f"secretsmanager:{secret['ARN']}")
    monkeypatch.setenv("BUCKETBUILD_DESTINATION", f"{host}/private/{{name}}:1")
    monkeypatch.setenv("BUCKETBUILD_ALLOWED_DESTINATIONS", f"{host}/private/*")
    monkeypatch.setenv("BUCKETBUILD_INSECURE_REGISTRIES", host)
    aws_stack.messages()
    aws_stack.upload("private.tar.gz", context_tar(SCRATCH))
    assert handler(aws_stack.sqs_event(), LambdaContext())["outcomes"] == ["succeeded"]
    data = aws_stack.status("private.tar.gz")["data"]
    creds = f"{htpasswd_registry.username}:{htpasswd_registry.password}"
    raw = skopeo_raw_with_creds(host, "private/private:1", creds)
    import hashlib

    assert data["digest"] == "sha256:" + hashlib.sha256(raw).hexdigest()


def skopeo_raw_with_creds(host: str, image: str, creds: str) -> bytes:
    from tests.fixtures.images import skopeo_inspect_raw

    return skopeo_inspect_raw(host, image, creds=creds)


@needs_root
def test_deadline_stops_a_long_run(aws_stack: AwsStack, base_images: BaseImages) -> None:
    aws_stack.messages()
    busybox = f"{base_images.host}/{base_images.docker_gzip}"
    files = {"Dockerfile": f"FROM {busybox}\nRUN sleep 60\nRUN echo never\n"}
    aws_stack.upload("long.tar.gz", context_tar(files))
    answer = handler(aws_stack.sqs_event(), LambdaContext(remaining_ms=9_000))
    assert answer["outcomes"] == ["failed"]
    error = failed(aws_stack, "long.tar.gz")["error"]
    assert isinstance(error, dict)
    assert (error["class"], error["line"], error["step"]) == ("timeout", 2, 2)


def test_event_for_a_replaced_object_is_superseded(aws_stack: AwsStack) -> None:
    aws_stack.messages()
    aws_stack.upload("twice.tar.gz", context_tar(SCRATCH))
    [first] = aws_stack.messages()
    second_version = aws_stack.upload("twice.tar.gz", context_tar({**SCRATCH, "hello.txt": "2"}))
    [second] = aws_stack.messages()
    assert handler(aws_stack.sqs_event([second]), LambdaContext())["outcomes"] == ["succeeded"]
    # moto's records carry no versionId: the first event's object is no longer the current one
    assert handler(aws_stack.sqs_event([first]), LambdaContext())["outcomes"] == ["superseded"]
    assert aws_stack.status("twice.tar.gz")["data"]["source"]["version"] == second_version


def test_older_event_after_a_newer_build_is_stale(aws_stack: AwsStack) -> None:
    aws_stack.messages()
    old_version = aws_stack.upload("order.tar.gz", context_tar(SCRATCH))
    new_version = aws_stack.upload("order.tar.gz", context_tar({**SCRATCH, "hello.txt": "new"}))
    aws_stack.messages()

    def record(version: str, sequencer: str) -> dict[str, object]:
        return {"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                "eventTime": "2024-05-01T10:00:00.000Z",
                "s3": {"bucket": {"name": aws_stack.bucket},
                       "object": {"key": "order.tar.gz", "versionId": version,
                                  "sequencer": sequencer}}}

    newer = {"Records": [record(new_version, "00664F1A2B3C4D5E02")]}
    older = {"Records": [record(old_version, "00664F1A2B3C4D5E01")]}
    assert handler(newer, LambdaContext()) == {"outcomes": ["succeeded"]}
    assert handler(older, LambdaContext()) == {"outcomes": ["stale"]}
    assert aws_stack.status("order.tar.gz")["data"]["source"]["version"] == new_version
