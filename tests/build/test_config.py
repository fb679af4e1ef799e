"""Config-only instructions: their effect on the pushed config JSON and their history entries."""

from __future__ import annotations

from tests.build.conftest import Builder


def test_every_config_instruction(builder: Builder) -> None:
    dockerfile = (
        "FROM scratch\n"
        "ARG VERSION=1.2\n"
        "ENV APP=demo PATH=/app/bin:$PATH\n"
        "LABEL org.example.version=$VERSION other=x\n"
        "EXPOSE 80 443/udp 8000-8001\n"
        "USER 1000:1000\n"
        "VOLUME /data /cache\n"
        "STOPSIGNAL SIGINT\n"
        'SHELL ["/bin/bash", "-c"]\n'
        "HEALTHCHECK --interval=30s --timeout=1m30s --retries=3 CMD curl -f http://x/\n"
        "ONBUILD RUN echo child\n"
        "MAINTAINER someone@example.com\n"
        "CMD echo hello\n"
        'ENTRYPOINT ["/entry"]\n'
    )
    builder.build(dockerfile, tag="test/config:1")
    config = builder.config("test/config:1")
    c = config["config"]
    assert c["Env"] == ["PATH=/app/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
                        "/sbin:/bin", "APP=demo"]
    assert c["Labels"] == {"org.example.version": "1.2", "other": "x"}
    assert sorted(c["ExposedPorts"]) == ["443/udp", "80/tcp", "8000/tcp", "8001/tcp"]
    assert c["User"] == "1000:1000"
    assert sorted(c["Volumes"]) == ["/cache", "/data"]
    assert c["StopSignal"] == "SIGINT"
    assert c["Shell"] == ["/bin/bash", "-c"]
    assert c["Healthcheck"] == {"Test": ["CMD-SHELL", "curl -f http://x/"],
                                "Interval": 30_000_000_000, "Timeout": 90_000_000_000,
                                "Retries": 3}
    assert c["OnBuild"] == ["RUN echo child"]
    assert c["Cmd"] == ["/bin/bash", "-c", "echo hello"]  # set in this stage: kept
    assert c["Entrypoint"] == ["/entry"]
    assert config["author"] == "someone@example.com"
    history = [(h["created_by"], h.get("empty_layer", False)) for h in config["history"]]
    assert history == [
        ("ARG VERSION=1.2", True),
        ("ENV APP=demo PATH=/app/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
         "/sbin:/bin", True),
        ("LABEL org.example.version=1.2 other=x", True),
        ("EXPOSE [80/tcp 443/udp 8000/tcp 8001/tcp]", True),
        ("USER 1000:1000", True),
        ("VOLUME [/data /cache]", True),
        ("STOPSIGNAL SIGINT", True),
        ("SHELL [/bin/bash -c]", True),
        ("HEALTHCHECK {Test:[CMD-SHELL curl -f http://x/] Interval:30s Timeout:1m30s "
         "StartPeriod:0s StartInterval:0s Retries:3}", True),
        ("MAINTAINER someone@example.com", True),
        ('CMD ["/bin/bash" "-c" "echo hello"]', True),
        ('ENTRYPOINT ["/entry"]', True),
    ]
    assert all(h["comment"] == "buildkit.dockerfile.v0" for h in config["history"])
    assert config["rootfs"] == {"type": "layers", "diff_ids": []}


def test_entrypoint_clears_an_inherited_cmd(builder: Builder) -> None:
    builder.build("FROM scratch AS base\nCMD [\"/base\"]\n"
                  "FROM base\nENTRYPOINT [\"/entry\"]\n", tag="test/entry:1")
    c = builder.config("test/entry:1")["config"]
    assert c["Entrypoint"] == ["/entry"]
    assert "Cmd" not in c


def test_labels_from_options_and_onbuild_triggers_consumed(builder: Builder) -> None:
    dockerfile = ("FROM scratch AS parent\nONBUILD COPY trigger.txt /trigger.txt\n"
                  "LABEL a=1\nFROM parent\nLABEL b=2\n")
    builder.build(dockerfile, {"trigger.txt": "t"}, tag="test/onbuild:1",
                  labels={"c": "3", "a": "override"})
    config = builder.config("test/onbuild:1")
    assert config["config"]["Labels"] == {"a": "override", "b": "2", "c": "3"}
    assert "OnBuild" not in config["config"]
    rootfs = builder.unpack("test/onbuild:1")
    assert (rootfs / "trigger.txt").read_text() == "t"
