"""Sinks delivering to real stand-ins: EventBridge rule -> SQS, SNS -> SQS, Pub/Sub."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from core.cloud.sinks import (
    EventBridgeSink,
    PubSubSink,
    SinkError,
    SnsSink,
    open_sinks,
    publish_all,
    pubsub_topic_path,
)
from tests.fixtures.pubsub import PROJECT, FakePubSub, PubSub

EVENT = {"specversion": "1.0", "type": "io.bucketbuild.build.succeeded",
         "source": "bucketbuild/test", "id": "abc-1-succeeded", "subject": "r/x:1",
         "datacontenttype": "application/json", "data": {"build_id": "abc", "note": "ünïcode"}}


def queue(name: str) -> tuple[str, str]:
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"]
    return url, arn


def receive(url: str, count: int = 1) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    bodies: list[dict[str, Any]] = []
    for _ in range(10):
        reply = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        bodies += [json.loads(m["Body"]) for m in reply.get("Messages", [])]
        if len(bodies) >= count:
            break
    return bodies


def test_eventbridge_rule_delivers_to_sqs(aws_env: str) -> None:
    url, arn = queue("completions")
    events = boto3.client("events")
    events.put_rule(Name="builds", EventPattern=json.dumps({"source": ["bucketbuild"]}))
    events.put_targets(Rule="builds", Targets=[{"Id": "q", "Arn": arn}])
    EventBridgeSink("default").publish(EVENT)
    [delivered] = receive(url)
    assert delivered["source"] == "bucketbuild"
    assert delivered["detail-type"] == "io.bucketbuild.build.succeeded"
    assert delivered["detail"] == EVENT


def test_sns_delivers_to_subscribed_queue(aws_env: str) -> None:
    url, arn = queue("sns-completions")
    sns = boto3.client("sns")
    topic = sns.create_topic(Name="builds")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    SnsSink(topic).publish(EVENT)
    [notification] = receive(url)
    assert json.loads(notification["Message"]) == EVENT
    assert notification["MessageAttributes"]["type"]["Value"] == EVENT["type"]


def test_missing_sns_topic_is_a_sink_error(aws_env: str) -> None:
    with pytest.raises(SinkError, match="publish failed"):
        SnsSink("arn:aws:sns:us-east-1:123456789012:nope").publish(EVENT)


def check_pubsub(pubsub: PubSub) -> None:
    topic = pubsub.topic("sink")
    PubSubSink(topic).publish(EVENT)
    [message] = pubsub.pull(topic)
    assert message.json() == EVENT
    assert message.attributes == {"content-type": "application/cloudevents+json",
                                  "bucketbuild-type": EVENT["type"],
                                  "bucketbuild-id": EVENT["id"]}


def test_pubsub_emulator_receives_the_event(pubsub_env: PubSub) -> None:
    check_pubsub(pubsub_env)


def test_pubsub_fallback_fake_receives_the_event(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakePubSub() as fake:
        monkeypatch.setenv("PUBSUB_EMULATOR_HOST", fake.host)
        check_pubsub(PubSub(fake.host, emulated=False))


def test_pubsub_missing_topic_is_a_sink_error(pubsub_env: PubSub) -> None:
    sink = PubSubSink(f"projects/{PROJECT}/topics/does-not-exist")
    with pytest.raises(SinkError, match="refused"):
        sink.publish(EVENT)


def test_pubsub_without_emulator_sends_a_bearer_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PUBSUB_EMULATOR_HOST", raising=False)
    seen: dict[str, Any] = {}

    class Session:
        def post(self, url: str, **kwargs: Any) -> Any:
            seen.update(url=url, **kwargs)
            return type("Reply", (), {"status_code": 200, "text": ""})()

    sink = PubSubSink("projects/p/topics/t", session=Session(),
                      token_source=lambda: ("tok", 9e12))
    sink.publish(EVENT)
    assert seen["url"] == "https://pubsub.googleapis.com/v1/projects/p/topics/t:publish"
    assert seen["headers"] == {"Authorization": "Bearer tok"}


def test_topic_paths() -> None:
    assert pubsub_topic_path("t", project="p") == "projects/p/topics/t"
    assert pubsub_topic_path("projects/a/topics/b", project=None) == "projects/a/topics/b"
    with pytest.raises(SinkError, match="needs a project"):
        pubsub_topic_path("t", project=None)
    with pytest.raises(SinkError, match="not projects/"):
        PubSubSink("projects/p/topic/t")


def test_open_sinks_and_publish_all(aws_env: str, pubsub_env: PubSub) -> None:
    url, arn = queue("all")
    events = boto3.client("events")
    events.put_rule(Name="all", EventPattern=json.dumps({"source": ["bucketbuild"]}))
    events.put_targets(Rule="all", Targets=[{"Id": "q", "Arn": arn}])
    topic = pubsub_env.topic("all")
    sinks = open_sinks(event_bus="default", sns_topic_arn=None,
                       pubsub_topic=topic.rsplit("/", 1)[-1],
                       environ={"GOOGLE_CLOUD_PROJECT": PROJECT})
    assert [s.name for s in sinks] == ["eventbridge:default", f"pubsub:{topic}"]
    publish_all(sinks, EVENT)
    assert receive(url)[0]["detail"] == EVENT
    assert pubsub_env.pull(topic)[0].json() == EVENT


def test_publish_all_tries_every_sink_then_raises(pubsub_env: PubSub) -> None:
    good = pubsub_env.topic("good")
    sinks = (PubSubSink(f"projects/{PROJECT}/topics/missing-topic"), PubSubSink(good))
    with pytest.raises(SinkError):
        publish_all(sinks, EVENT)
    assert pubsub_env.pull(good)[0].json() == EVENT
