"""Config-only instructions: their effect on the image config and their history entry. Pure.

Per BuildKit's Dockerfile frontend:
- the shell form of CMD and ENTRYPOINT runs through the SHELL in force (default `/bin/sh -c`);
  CMD also sets ArgsEscaped; an empty exec form (`CMD []`) leaves the field unset;
- ENTRYPOINT clears a CMD inherited from the base, not one set earlier in this stage;
- ONBUILD appends its trigger to the config and writes no history entry;
- ENV replaces a variable in place (or appends it); ARG changes nothing in the config;
- MAINTAINER sets the author; EXPOSE normalises `port[/proto]` (ranges expanded, tcp default).
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, replace
from types import MappingProxyType

from core.build.history import (
    HISTORY_COMMENT,
    go_list,
    go_quoted_list,
    healthcheck_text,
)
from core.dockerfile.instructions import (
    ArgInstruction,
    CmdInstruction,
    EntrypointInstruction,
    EnvInstruction,
    ExposeInstruction,
    HealthcheckInstruction,
    Instruction,
    LabelInstruction,
    MaintainerInstruction,
    OnbuildInstruction,
    ShellInstruction,
    StopsignalInstruction,
    UserInstruction,
    VolumeInstruction,
)
from core.errors import DockerfileError
from core.image.config import ContainerConfig, Healthcheck, History, ImageConfig

DEFAULT_SHELL = ("/bin/sh", "-c")
CONFIG_INSTRUCTIONS = (ArgInstruction, CmdInstruction, EntrypointInstruction, EnvInstruction,
                       ExposeInstruction, HealthcheckInstruction, LabelInstruction,
                       MaintainerInstruction, OnbuildInstruction, ShellInstruction,
                       StopsignalInstruction, UserInstruction, VolumeInstruction)


@dataclass(frozen=True)
class ConfigState:
    """A stage's image config while it is built; `cmd_set`: CMD was written in this stage."""

    image: ImageConfig
    cmd_set: bool = False

    @property
    def config(self) -> ContainerConfig:
        return self.image.config

    def with_config(self, config: ContainerConfig) -> ConfigState:
        return replace(self, image=self.image.with_container_config(config))

    def with_history(self, created_by: str, *, created: str | None,
                     empty_layer: bool) -> ConfigState:
        entry = History(created=created, created_by=created_by, comment=HISTORY_COMMENT,
                        empty_layer=empty_layer)
        return replace(self, image=replace(self.image, history=(*self.image.history, entry)))


def shell_of(config: ContainerConfig) -> tuple[str, ...]:
    return config.shell or DEFAULT_SHELL


def with_shell(config: ContainerConfig, command: tuple[str, ...], json: bool) -> tuple[str, ...]:
    """A command as it runs: exec form as is, shell form through the SHELL in force."""
    return command if json else (*shell_of(config), " ".join(command))


def apply_config(state: ConfigState, instruction: Instruction, *,
                 created: str | None) -> ConfigState:
    """The state after one config-only instruction (already expanded), with its history."""
    config, text, cmd_set = _effect(state, instruction)
    new = replace(state.with_config(config), cmd_set=cmd_set)
    if isinstance(instruction, MaintainerInstruction):
        new = replace(new, image=replace(new.image, author=instruction.maintainer))
    if text is None:
        return new
    return new.with_history(text, created=created, empty_layer=True)


def _effect(state: ConfigState, instruction: Instruction,
            ) -> tuple[ContainerConfig, str | None, bool]:
    """(new config, history text or None, cmd_set) for one instruction."""
    config, cmd_set = state.config, state.cmd_set
    if isinstance(instruction, (CmdInstruction, EntrypointInstruction)):
        return _command(state, instruction)
    if isinstance(instruction, EnvInstruction):
        for pair in instruction.env:
            config = config.with_env(pair.key, pair.value)
        return config, "ENV " + " ".join(f"{p.key}={p.value}" for p in instruction.env), cmd_set
    if isinstance(instruction, LabelInstruction):
        labels = {pair.key: pair.value for pair in instruction.labels}
        text = "LABEL " + " ".join(f"{p.key}={p.value}" for p in instruction.labels)
        return config.with_labels(labels), text, cmd_set
    if isinstance(instruction, ArgInstruction):
        words = [a.name if a.default is None else f"{a.name}={a.default}"
                 for a in instruction.args]
        return config, "ARG " + " ".join(words), cmd_set
    return (*_simple(config, instruction), cmd_set)


def _simple(config: ContainerConfig, instruction: Instruction,
            ) -> tuple[ContainerConfig, str | None]:
    if isinstance(instruction, UserInstruction):
        return replace(config, user=instruction.user), f"USER {instruction.user}"
    if isinstance(instruction, ExposeInstruction):
        ports = [p for word in instruction.ports for p in parse_port_spec(word)]
        return (replace(config, exposed_ports=(*config.exposed_ports, *ports)),
                "EXPOSE " + go_list(ports))
    if isinstance(instruction, VolumeInstruction):
        if any(v == "" for v in instruction.volumes):
            raise DockerfileError("VOLUME specified can not be an empty string")
        return (replace(config, volumes=(*config.volumes, *instruction.volumes)),
                "VOLUME " + go_list(instruction.volumes))
    if isinstance(instruction, StopsignalInstruction):
        check_signal(instruction.signal)
        return (replace(config, stop_signal=instruction.signal),
                f"STOPSIGNAL {instruction.signal}")
    if isinstance(instruction, ShellInstruction):
        return replace(config, shell=instruction.shell), "SHELL " + go_list(instruction.shell)
    if isinstance(instruction, HealthcheckInstruction):
        check = Healthcheck(test=instruction.test, interval=instruction.interval_ns,
                            timeout=instruction.timeout_ns,
                            start_period=instruction.start_period_ns,
                            start_interval=instruction.start_interval_ns,
                            retries=instruction.retries)
        return replace(config, healthcheck=check), healthcheck_text(check)
    if isinstance(instruction, OnbuildInstruction):
        return replace(config, on_build=(*config.on_build, instruction.expression)), None
    if isinstance(instruction, MaintainerInstruction):
        return config, f"MAINTAINER {instruction.maintainer}"
    raise DockerfileError(f"{instruction.keyword} is not a config instruction")


def _command(state: ConfigState, instruction: CmdInstruction | EntrypointInstruction,
             ) -> tuple[ContainerConfig, str, bool]:
    config = state.config
    argv = with_shell(config, instruction.command, instruction.json)
    value = argv or None
    if isinstance(instruction, CmdInstruction):
        return (replace(config, cmd=value, args_escaped=True), "CMD " + go_quoted_list(argv),
                True)
    config = replace(config, entrypoint=value)
    if not state.cmd_set:
        config = replace(config, cmd=None)
    return config, "ENTRYPOINT " + go_quoted_list(argv), state.cmd_set


def parse_port_spec(raw: str) -> list[str]:
    """`[ip:][host:]port[-end][/proto]` -> `["port/proto", ...]` (BuildKit's EXPOSE rules)."""
    parts = raw.split(":")
    container = parts[-1]
    port, _, proto = container.partition("/")
    if not port:
        raise DockerfileError(f"no port specified: {container}<empty>")
    proto = proto.lower() or "tcp"
    if proto not in ("tcp", "udp", "sctp"):
        raise DockerfileError(f"invalid proto: {proto}")
    try:
        start, end = _port_range(port)
    except ValueError:
        raise DockerfileError(f"invalid containerPort: {port}") from None
    return [f"{number}/{proto}" for number in range(start, end + 1)]


def _port_range(text: str) -> tuple[int, int]:
    first, sep, last = text.partition("-")
    start = _port(first)
    end = _port(last) if sep else start
    if end < start:
        raise ValueError(text)
    return start, end


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise ValueError(text)
    return int(text)


def check_signal(text: str) -> None:
    """A STOPSIGNAL must name a signal (`SIGTERM`, `TERM`, `15`, `RTMIN+3`)."""
    if text.isdigit():
        if int(text) == 0:
            raise DockerfileError(f"Invalid signal: {text}")
        return
    name = text.upper().removeprefix("SIG")
    if name in {s.name.removeprefix("SIG") for s in signal.Signals}:
        return
    for base in ("RTMIN", "RTMAX"):
        rest = name.removeprefix(base)
        if rest != name and (not rest or (rest[0] in "+-" and rest[1:].isdigit())):
            return
    raise DockerfileError(f"Invalid signal: {text}")


def base_config_for_child(base: ImageConfig) -> ImageConfig:
    """A base image's config as a child stage starts from it: created time cleared, fields
    BuildKit's image model does not carry dropped, ONBUILD triggers consumed."""
    container = replace(base.config, on_build=(), extra=MappingProxyType({}))
    return replace(base, created=None, config=container, extra=MappingProxyType({}))
