"""Parse-tree nodes to typed instructions, validated like BuildKit's Dockerfile frontend.

Each instruction declares the flags it accepts; arguments are counted and checked; words stay
raw (no variable expansion). Every problem is a DockerfileError naming the file, the lines of
the instruction and its first source line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Final, TypedDict

from core.dockerfile.ast import Heredoc, Node, ParseResult
from core.dockerfile.flags import (
    NO_FLAGS,
    Flags,
    FlagSpec,
    did_you_mean,
    parse_flags,
)
from core.dockerfile.instructions import (
    AddInstruction,
    ArgDefinition,
    ArgInstruction,
    CmdInstruction,
    CopyInstruction,
    EntrypointInstruction,
    EnvInstruction,
    ExposeInstruction,
    FromInstruction,
    HealthcheckInstruction,
    Instruction,
    KeyValue,
    LabelInstruction,
    MaintainerInstruction,
    NetworkMode,
    OnbuildInstruction,
    RunInstruction,
    SecurityMode,
    ShellInstruction,
    StopsignalInstruction,
    UserInstruction,
    VolumeInstruction,
    WorkdirInstruction,
)
from core.dockerfile.mounts import parse_mount
from core.dockerfile.records import fast_constructor
from core.errors import DockerfileError, SourceSpan

_NO_FLAGS: Final[FlagSpec] = MappingProxyType({})
_FROM_FLAGS: Final[FlagSpec] = MappingProxyType({"platform": "string"})
_RUN_FLAGS: Final[FlagSpec] = MappingProxyType(
    {"mount": "strings", "network": "string", "security": "string"})
_ADD_FLAGS: Final[FlagSpec] = MappingProxyType({
    "chown": "string", "chmod": "string", "link": "bool", "exclude": "strings",
    "checksum": "string", "keep-git-dir": "bool", "unpack": "bool",
})
_COPY_FLAGS: Final[FlagSpec] = MappingProxyType({
    "from": "string", "chown": "string", "chmod": "string", "link": "bool",
    "exclude": "strings", "parents": "bool",
})
_HEALTHCHECK_FLAGS: Final[FlagSpec] = MappingProxyType({
    "interval": "string", "timeout": "string", "start-period": "string",
    "start-interval": "string", "retries": "string",
})
_NETWORK_MODES: Final[tuple[NetworkMode, ...]] = ("default", "none", "host")
_SECURITY_MODES: Final[tuple[SecurityMode, ...]] = ("sandbox", "insecure")
_STAGE_NAME: Final = re.compile(r"[a-z][a-z0-9_.\-]*")
_HEREDOC_WORD: Final = re.compile(r"(\d*)<<(-?)([^<]*)")
_ONBUILD_PREFIX: Final = re.compile(r"^\s*ONBUILD\s*", re.IGNORECASE)
_new_span: Final[Callable[..., SourceSpan]] = fast_constructor(SourceSpan)  # one per instruction


def convert_nodes(result: ParseResult) -> tuple[Instruction, ...]:
    """Type every instruction of a parsed Dockerfile, in order."""
    return tuple([convert_node(node, filename=result.filename) for node in result.nodes])


def convert_node(node: Node, *, filename: str = "Dockerfile") -> Instruction:
    """Type one instruction; raises DockerfileError located at the node."""
    try:
        converter = _CONVERTERS.get(node.instruction.lower())
        if converter is None:
            keyword = node.instruction.upper()
            raise DockerfileError(f"unknown instruction: {keyword}"
                                  + did_you_mean(keyword, sorted(_CONVERTERS_UPPER)))
        return converter(_Request(node, filename))
    except DockerfileError as error:
        lines = node.original.splitlines()
        raise error.with_location(
            file=filename, line=node.start_line, end_line=node.end_line,
            source_line=lines[0] if lines else "",
        ) from None


class _Request:
    """One node being converted, with what every instruction records."""

    __slots__ = ("args", "filename", "node", "original", "span")

    def __init__(self, node: Node, filename: str) -> None:
        self.node = node
        self.filename = filename
        self.span = _new_span(filename, node.start_line, node.end_line)
        self.original = node.original
        self.args = node.args

    def flags(self, spec: FlagSpec) -> Flags:
        return parse_flags(self.node.flags, spec) if self.node.flags else NO_FLAGS

    def exactly_one(self, keyword: str) -> str:
        if len(self.args) != 1:
            raise DockerfileError(f"{keyword} requires exactly one argument")
        return self.args[0]

    def at_least_one(self, keyword: str) -> tuple[str, ...]:
        if not self.args:
            raise DockerfileError(f"{keyword} requires at least one argument")
        return self.args

    def only_word(self, keyword: str) -> str:
        """The one argument of an instruction that takes no flags."""
        word = self.exactly_one(keyword)
        self.flags(_NO_FLAGS)
        return word

    def plain_words(self, keyword: str) -> tuple[str, ...]:
        """The arguments (at least one) of an instruction that takes no flags."""
        words = self.at_least_one(keyword)
        self.flags(_NO_FLAGS)
        return words


def _from(req: _Request) -> FromInstruction:
    stage_name = _stage_name(req.args)
    flags = req.flags(_FROM_FLAGS)
    return FromInstruction(span=req.span, original=req.original, image=req.args[0],
                           stage_name=stage_name, platform=flags.string("platform"))


def _stage_name(args: tuple[str, ...]) -> str:
    if len(args) == 3 and args[1].lower() == "as":
        name = args[2].lower()
        if _STAGE_NAME.fullmatch(name) is None:
            raise DockerfileError(f'invalid name for build stage: "{args[2]}", '
                                  "name can't start with a number or contain symbols")
        return name
    if len(args) != 1:
        raise DockerfileError("FROM requires either one or three arguments")
    return ""


def _run(req: _Request) -> RunInstruction:
    flags = req.flags(_RUN_FLAGS)
    mounts = tuple([parse_mount(spec) for spec in flags.strings("mount")])
    network = _network(flags.string("network", "default"))
    security = _security(flags.string("security", "sandbox"))
    return RunInstruction(
        span=req.span, original=req.original, command=_command(req.node), json=req.node.json,
        heredocs=req.node.heredocs, mounts=mounts, network=network, security=security,
    )


def _network(value: str) -> NetworkMode:
    for mode in _NETWORK_MODES:
        if value == mode:
            return mode
    raise DockerfileError(f'invalid network mode "{value}"')


def _security(value: str) -> SecurityMode:
    for mode in _SECURITY_MODES:
        if value == mode:
            return mode
    raise DockerfileError(f'security "{value}" is not valid')


def _command(node: Node) -> tuple[str, ...]:
    """The exec form's array, or the shell form as one string."""
    return node.args if node.json else (" ".join(node.args),)


def _cmd(req: _Request) -> CmdInstruction:
    req.flags(_NO_FLAGS)
    return CmdInstruction(span=req.span, original=req.original, command=_command(req.node),
                          json=req.node.json)


def _entrypoint(req: _Request) -> EntrypointInstruction:
    req.flags(_NO_FLAGS)
    return EntrypointInstruction(span=req.span, original=req.original,
                                 command=_command(req.node), json=req.node.json)


def _shell(req: _Request) -> ShellInstruction:
    req.flags(_NO_FLAGS)
    if req.node.json and not req.args:
        raise DockerfileError("SHELL requires at least one argument")
    if not req.node.json:
        raise DockerfileError("SHELL requires the arguments to be in JSON form")
    return ShellInstruction(span=req.span, original=req.original, shell=req.args)


def _key_values(req: _Request, keyword: str) -> tuple[KeyValue, ...]:
    req.flags(_NO_FLAGS)
    args = req.at_least_one(keyword)
    if len(args) % 3:
        raise DockerfileError(f"Bad input to {keyword}, too many arguments")
    pairs = []
    for key, value, separator in zip(args[::3], args[1::3], args[2::3], strict=True):
        if not key:
            raise DockerfileError(f"{keyword} names can not be blank")
        pairs.append(KeyValue(key, value, separator != "="))  # legacy: `ENV key value`
    return tuple(pairs)


def _label(req: _Request) -> LabelInstruction:
    return LabelInstruction(span=req.span, original=req.original,
                            labels=_key_values(req, "LABEL"))


def _env(req: _Request) -> EnvInstruction:
    return EnvInstruction(span=req.span, original=req.original, env=_key_values(req, "ENV"))


def _maintainer(req: _Request) -> MaintainerInstruction:
    return MaintainerInstruction(span=req.span, original=req.original,
                                 maintainer=req.only_word("MAINTAINER"))


def _expose(req: _Request) -> ExposeInstruction:
    return ExposeInstruction(span=req.span, original=req.original,
                             ports=req.plain_words("EXPOSE"))


def _arg(req: _Request) -> ArgInstruction:
    definitions = []
    for word in req.plain_words("ARG"):
        name, has_default, default = word.partition("=")
        if not name:
            raise DockerfileError("ARG names can not be blank")
        definitions.append(ArgDefinition(name, default if has_default else None))
    return ArgInstruction(span=req.span, original=req.original, args=tuple(definitions))


def _add(req: _Request) -> AddInstruction:
    shared, flags = _copy_like(req, "ADD", _ADD_FLAGS)
    return AddInstruction(
        **shared, checksum=flags.string("checksum"), keep_git_dir=flags.boolean("keep-git-dir"),
        unpack=flags.optional_boolean("unpack"),
    )


def _copy(req: _Request) -> CopyInstruction:
    shared, flags = _copy_like(req, "COPY", _COPY_FLAGS)
    return CopyInstruction(**shared, from_=flags.string("from"), parents=flags.boolean("parents"))


class _CopyFields(TypedDict):
    """The fields ADD and COPY share (`instructions._CopyLike`), as constructor arguments."""

    span: SourceSpan
    original: str
    sources: tuple[str, ...]
    inline_sources: tuple[Heredoc, ...]
    dest: str
    chown: str
    chmod: str
    link: bool
    excludes: tuple[str, ...]


def _copy_like(req: _Request, keyword: str, spec: FlagSpec) -> tuple[_CopyFields, Flags]:
    """Check and split the words of ADD or COPY; the shared fields and the parsed flags."""
    if len(req.args) < 2:
        raise DockerfileError(f"{keyword} requires at least two arguments, but only one was "
                              "provided. Destination could not be determined")
    flags = req.flags(spec)
    paths, inline, dest = _sources_and_dest(req, keyword)
    shared = _CopyFields(
        span=req.span, original=req.original, sources=paths, inline_sources=inline, dest=dest,
        chown=flags.string("chown"), chmod=flags.string("chmod"), link=flags.boolean("link"),
        excludes=flags.strings("exclude"))
    return shared, flags


def _sources_and_dest(
    req: _Request, keyword: str,
) -> tuple[tuple[str, ...], tuple[Heredoc, ...], str]:
    """Split the words into context paths, here-document sources and the destination."""
    *sources, dest = req.args
    if _heredoc_name(dest) is not None:
        raise DockerfileError(f"{keyword} cannot accept a heredoc as a destination")
    if not req.node.heredocs:
        return tuple(sources), (), dest
    bodies = {heredoc.name: heredoc for heredoc in req.node.heredocs}
    paths: list[str] = []
    inline: list[Heredoc] = []
    for source in sources:
        name = _heredoc_name(source)
        if name is not None and name in bodies:
            inline.append(bodies[name])
        else:
            paths.append(source)
    return tuple(paths), tuple(inline), dest


def _heredoc_name(word: str) -> str | None:
    """The delimiter of a `<<NAME` / `<<-"NAME"` word (quotes removed), else None."""
    match = _HEREDOC_WORD.fullmatch(word)
    if match is None or not match.group(3) or any(c.isspace() for c in match.group(3)):
        return None
    return match.group(3).replace('"', "").replace("'", "")


def _volume(req: _Request) -> VolumeInstruction:
    volumes = tuple([word.strip() for word in req.plain_words("VOLUME")])
    if not all(volumes):
        raise DockerfileError("VOLUME specified can not be an empty string")
    return VolumeInstruction(span=req.span, original=req.original, volumes=volumes)


def _user(req: _Request) -> UserInstruction:
    return UserInstruction(span=req.span, original=req.original, user=req.only_word("USER"))


def _workdir(req: _Request) -> WorkdirInstruction:
    return WorkdirInstruction(span=req.span, original=req.original,
                              path=req.only_word("WORKDIR"))


def _stopsignal(req: _Request) -> StopsignalInstruction:
    return StopsignalInstruction(span=req.span, original=req.original,
                                 signal=req.only_word("STOPSIGNAL"))


def _healthcheck(req: _Request) -> HealthcheckInstruction:
    kind, *rest = req.at_least_one("HEALTHCHECK")
    flags = req.flags(_HEALTHCHECK_FLAGS)
    kind = kind.upper()
    if kind == "NONE":
        if rest:
            raise DockerfileError("HEALTHCHECK NONE takes no arguments")
        return HealthcheckInstruction(span=req.span, original=req.original, test=("NONE",))
    if kind != "CMD":
        raise DockerfileError(f'Unknown type "{kind}" in HEALTHCHECK (try CMD)')
    command = tuple(rest) if req.node.json else (" ".join(rest),)
    if not command or command == ("",):
        raise DockerfileError("Missing command after HEALTHCHECK CMD")
    test = ("CMD", *command) if req.node.json else ("CMD-SHELL", *command)
    return HealthcheckInstruction(
        span=req.span, original=req.original, test=test,
        interval_ns=flags.interval("interval"), timeout_ns=flags.interval("timeout"),
        start_period_ns=flags.interval("start-period"),
        start_interval_ns=flags.interval("start-interval"), retries=flags.int32("retries"),
    )


def _onbuild(req: _Request) -> OnbuildInstruction:
    child = req.node.child
    if child is None:
        raise DockerfileError("ONBUILD requires at least one argument")
    req.flags(_NO_FLAGS)
    keyword = child.instruction.upper()
    if keyword == "ONBUILD":
        raise DockerfileError("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if keyword in ("FROM", "MAINTAINER"):
        raise DockerfileError(f"{keyword} isn't allowed as an ONBUILD trigger")
    trigger = convert_node(child, filename=req.filename)
    return OnbuildInstruction(span=req.span, original=req.original,
                              expression=_trigger_text(req.node), trigger=trigger)


def _trigger_text(node: Node) -> str:
    """The trigger as the image config stores it: the line without ONBUILD, bodies appended."""
    text = _ONBUILD_PREFIX.sub("", node.original, count=1)
    heredocs = node.heredocs or (node.child.heredocs if node.child is not None else ())
    for heredoc in heredocs:
        text += "\n" + heredoc.content + heredoc.name
    return text


_CONVERTERS: Final[Mapping[str, Callable[[_Request], Instruction]]] = MappingProxyType({
    "from": _from, "run": _run, "cmd": _cmd, "entrypoint": _entrypoint, "shell": _shell,
    "label": _label, "maintainer": _maintainer, "expose": _expose, "env": _env, "arg": _arg,
    "add": _add, "copy": _copy, "volume": _volume, "user": _user, "workdir": _workdir,
    "stopsignal": _stopsignal, "healthcheck": _healthcheck, "onbuild": _onbuild,
})
_CONVERTERS_UPPER: Final = frozenset(name.upper() for name in _CONVERTERS)
