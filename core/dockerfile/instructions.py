"""Typed Dockerfile instructions: one frozen dataclass per instruction.

`core.dockerfile.convert` builds these from parse-tree nodes, validating flags and arguments the
way BuildKit's Dockerfile frontend does. Words are kept raw: no variable expansion happens here
(the planner expands them with `core.dockerfile.shell`). Every instruction carries its `span`
and its `original` text, used for history entries (`created_by`) and error messages.

Commands (RUN, CMD, ENTRYPOINT: `CommandForm`) keep `command` as a tuple of strings plus
`json`: the exec form (`json=True`) holds the decoded array; the shell form holds one string
that the planner runs through the SHELL in force. HEALTHCHECK keeps the image config's `test`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal, TypeAlias

from core.dockerfile.ast import Heredoc
from core.dockerfile.mounts import Mount
from core.dockerfile.records import fast_init
from core.errors import SourceSpan

NetworkMode = Literal["default", "none", "host"]
SecurityMode = Literal["sandbox", "insecure"]


@dataclass(frozen=True, kw_only=True)
class InstructionBase:
    """What every instruction has: where it is and how it was written."""

    keyword: ClassVar[str] = ""
    span: SourceSpan
    original: str


@fast_init
@dataclass(frozen=True)
class KeyValue:
    """One `key=value` of ENV or LABEL; `legacy` for the old `ENV key value` form."""

    key: str
    value: str
    legacy: bool = False


@fast_init
@dataclass(frozen=True)
class ArgDefinition:
    """One name of an ARG line with its default (None when there is none)."""

    name: str
    default: str | None = None


@fast_init
@dataclass(frozen=True, kw_only=True)
class FromInstruction(InstructionBase):
    """`FROM [--platform=p] image [AS name]`; `stage_name` is lower-cased, "" when unnamed."""

    keyword: ClassVar[str] = "FROM"
    image: str
    stage_name: str = ""
    platform: str = ""


@dataclass(frozen=True, kw_only=True)
class CommandForm(InstructionBase):
    """Fields shared by RUN, CMD and ENTRYPOINT: the command in exec or shell form."""

    command: tuple[str, ...]
    json: bool

    @property
    def prepend_shell(self) -> bool:
        """True for the shell form: the command runs through the SHELL in force."""
        return not self.json


@fast_init
@dataclass(frozen=True, kw_only=True)
class RunInstruction(CommandForm):
    """`RUN [--mount=...]... [--network=n] [--security=s] command`."""

    keyword: ClassVar[str] = "RUN"
    heredocs: tuple[Heredoc, ...] = ()
    mounts: tuple[Mount, ...] = ()
    network: NetworkMode = "default"
    security: SecurityMode = "sandbox"


@fast_init
@dataclass(frozen=True, kw_only=True)
class CmdInstruction(CommandForm):
    """`CMD command`; an empty exec form (`CMD []`) is allowed."""

    keyword: ClassVar[str] = "CMD"


@fast_init
@dataclass(frozen=True, kw_only=True)
class EntrypointInstruction(CommandForm):
    """`ENTRYPOINT command`; `ENTRYPOINT []` resets it."""

    keyword: ClassVar[str] = "ENTRYPOINT"


@fast_init
@dataclass(frozen=True, kw_only=True)
class ShellInstruction(InstructionBase):
    """`SHELL ["executable", "parameters"]` (JSON form only)."""

    keyword: ClassVar[str] = "SHELL"
    shell: tuple[str, ...]


@fast_init
@dataclass(frozen=True, kw_only=True)
class LabelInstruction(InstructionBase):
    """`LABEL key=value ...`."""

    keyword: ClassVar[str] = "LABEL"
    labels: tuple[KeyValue, ...]


@fast_init
@dataclass(frozen=True, kw_only=True)
class MaintainerInstruction(InstructionBase):
    """`MAINTAINER name` (deprecated, sets the config's author)."""

    keyword: ClassVar[str] = "MAINTAINER"
    maintainer: str


@fast_init
@dataclass(frozen=True, kw_only=True)
class ExposeInstruction(InstructionBase):
    """`EXPOSE port[/proto] ...`, raw words in the order written."""

    keyword: ClassVar[str] = "EXPOSE"
    ports: tuple[str, ...]


@fast_init
@dataclass(frozen=True, kw_only=True)
class EnvInstruction(InstructionBase):
    """`ENV key=value ...` or the legacy `ENV key value`."""

    keyword: ClassVar[str] = "ENV"
    env: tuple[KeyValue, ...]


@fast_init
@dataclass(frozen=True, kw_only=True)
class ArgInstruction(InstructionBase):
    """`ARG name[=default] ...`."""

    keyword: ClassVar[str] = "ARG"
    args: tuple[ArgDefinition, ...]


@dataclass(frozen=True, kw_only=True)
class _CopyLike(InstructionBase):
    """Fields shared by ADD and COPY.

    `sources` are the path words in order; `inline_sources` are the here-documents given as
    sources (`COPY <<EOF /dest`), each written to a file named after its delimiter.
    """

    sources: tuple[str, ...]
    inline_sources: tuple[Heredoc, ...] = ()
    dest: str
    chown: str = ""
    chmod: str = ""
    link: bool = False
    excludes: tuple[str, ...] = ()


@fast_init
@dataclass(frozen=True, kw_only=True)
class AddInstruction(_CopyLike):
    """`ADD [--chown --chmod --link --exclude --checksum --keep-git-dir --unpack] src... dest`.

    `unpack` is None when the flag was not given (archives from the context are extracted,
    remote ones are not); True/False force it.
    """

    keyword: ClassVar[str] = "ADD"
    checksum: str = ""
    keep_git_dir: bool = False
    unpack: bool | None = None


@fast_init
@dataclass(frozen=True, kw_only=True)
class CopyInstruction(_CopyLike):
    """`COPY [--from --chown --chmod --link --parents --exclude] src... dest`."""

    keyword: ClassVar[str] = "COPY"
    from_: str = ""
    parents: bool = False


@fast_init
@dataclass(frozen=True, kw_only=True)
class VolumeInstruction(InstructionBase):
    """`VOLUME path ...` or `VOLUME ["path", ...]`."""

    keyword: ClassVar[str] = "VOLUME"
    volumes: tuple[str, ...]


@fast_init
@dataclass(frozen=True, kw_only=True)
class UserInstruction(InstructionBase):
    """`USER user[:group]`, raw (split into user and group after expansion)."""

    keyword: ClassVar[str] = "USER"
    user: str


@fast_init
@dataclass(frozen=True, kw_only=True)
class WorkdirInstruction(InstructionBase):
    """`WORKDIR path` (relative paths chain onto the previous WORKDIR)."""

    keyword: ClassVar[str] = "WORKDIR"
    path: str


@fast_init
@dataclass(frozen=True, kw_only=True)
class StopsignalInstruction(InstructionBase):
    """`STOPSIGNAL signal`, raw (a name like SIGTERM or a number, checked after expansion)."""

    keyword: ClassVar[str] = "STOPSIGNAL"
    signal: str


@fast_init
@dataclass(frozen=True, kw_only=True)
class HealthcheckInstruction(InstructionBase):
    """`HEALTHCHECK NONE` or `HEALTHCHECK [--interval ...] CMD command`.

    `test` is the image config's form: ("NONE",), ("CMD", arg, ...) for the exec form or
    ("CMD-SHELL", command) for the shell form. Durations are nanoseconds, 0 when not given
    (the runtime default applies); `retries` is 0 when not given.
    """

    keyword: ClassVar[str] = "HEALTHCHECK"
    test: tuple[str, ...]
    interval_ns: int = 0
    timeout_ns: int = 0
    start_period_ns: int = 0
    start_interval_ns: int = 0
    retries: int = 0

    @property
    def disabled(self) -> bool:
        """True for `HEALTHCHECK NONE`."""
        return self.test == ("NONE",)


@fast_init
@dataclass(frozen=True, kw_only=True)
class OnbuildInstruction(InstructionBase):
    """`ONBUILD trigger`: `expression` is the trigger's text as the image config stores it."""

    keyword: ClassVar[str] = "ONBUILD"
    expression: str
    trigger: Instruction


Instruction: TypeAlias = (
    FromInstruction | RunInstruction | CmdInstruction | EntrypointInstruction | ShellInstruction
    | LabelInstruction | MaintainerInstruction | ExposeInstruction | EnvInstruction
    | ArgInstruction | AddInstruction | CopyInstruction | VolumeInstruction | UserInstruction
    | WorkdirInstruction | StopsignalInstruction | HealthcheckInstruction | OnbuildInstruction
)
