"""A build's secrets, and the build's edge where they are taken out of everything it reports.

The secrets of a build: the values of the build args declared secret
(`BuildOptions.secret_build_args`), the contents of every `--secret` (file or environment
variable), and the credentials in the docker config the registry client reads. `run_build`
collects them before it starts, and from then on:
- every event goes through `RedactingSink` (which also hands the secrets to a sink that can
  use them for its own lines, see `SecretAware`); the registry client reports each credential
  and bearer token it obtains to `RedactingSink.learn`, so those are redacted by value too;
- a `BuildError` leaving the build has its message redacted (`redact_error`);
- the result's layer history and warnings are redacted;
- the image history names secret build args as `NAME=****` (RUN's `|N NAME=value` list and
  ARG entries); an instruction that stores a secret in the image config on purpose (`ENV
  TOKEN=$TOKEN`, `LABEL`, ...) is warned about, not changed (`persisted_secret_warnings`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
from collections.abc import Iterable, Mapping
from typing import Protocol, runtime_checkable

from core.build.events import Event, EventSink
from core.build.options import BuildOptions
from core.build.result import BuildResult
from core.dockerfile.instructions import ArgInstruction, RunInstruction
from core.errors import BuildError
from core.image.config import ImageConfig
from core.plan import StageProgram
from core.redaction import REDACTED, Redactor, SecretSet
from core.registry.auth import docker_config_secrets
from core.registry.credentials import DockerConfigProvider

_ARG_WORD = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(\S*)")


@runtime_checkable
class SecretAware(Protocol):
    """A sink that redacts its own output too (log lines, failure lines) and wants to know
    the build's secrets."""

    def add_secrets(self, values: Iterable[str]) -> None: ...


def secret_arg_values(options: BuildOptions) -> list[str]:
    """The values of the build args declared secret."""
    return [options.build_args[name] for name in sorted(options.secret_build_args)
            if name in options.build_args]


def mount_secret_values(options: BuildOptions) -> list[str]:
    """The contents of every `--secret` that can be read now (unreadable ones are skipped:
    the step that mounts them reports the error)."""
    found: list[str] = []
    for secret in options.secrets:
        if secret.path is not None:
            try:
                found.append(secret.path.read_bytes().decode("utf-8", "replace"))
            except OSError:
                continue
        elif secret.env is not None and os.environ.get(secret.env):
            found.append(os.environ[secret.env])
    return found


def build_secrets(options: BuildOptions, into: SecretSet | None = None) -> SecretSet:
    """Every secret of this build known before it starts (see the module doc), added to
    `into` when given (a caller's set that its log output already redacts with)."""
    secrets = into if into is not None else SecretSet()
    secrets.add(*secret_arg_values(options), *mount_secret_values(options))
    # an unreadable config fails the build where it is used, with its own message
    with contextlib.suppress(BuildError):
        secrets.add(*docker_config_secrets(
            DockerConfigProvider(options.registry.docker_config).load()))
    return secrets


class RedactingSink:
    """Passes events on with every secret replaced; tells a `SecretAware` sink the secrets."""

    def __init__(self, inner: EventSink, secrets: SecretSet) -> None:
        self._inner = inner
        self._secrets = secrets
        self._aware = inner if isinstance(inner, SecretAware) else None
        if self._aware is not None:
            self._aware.add_secrets(_values(secrets))

    def emit(self, event: Event) -> None:
        self._inner.emit(self._secrets.redactor().scrub(event))

    def learn(self, value: str) -> None:
        """A secret that became known while the build runs (a registry token, a credential
        looked up on first use): redacted from now on, here and in the sink's own lines.
        Called from any thread."""
        if not value:
            return
        self._secrets.add(value)
        if self._aware is not None:
            self._aware.add_secrets((value,))


def _values(secrets: SecretSet) -> tuple[str, ...]:
    return tuple(secrets.redactor().secrets)


def redact_error(error: BuildError, secrets: SecretSet) -> BuildError:
    """`error` itself, with the secrets taken out of its message and text fields."""
    redactor = secrets.redactor()
    for name, value in list(vars(error).items()):
        if isinstance(value, str):
            setattr(error, name, redactor.text(value))
    error.args = tuple(redactor.text(a) if isinstance(a, str) else a for a in error.args)
    return error


def redact_result(result: BuildResult, secrets: SecretSet) -> BuildResult:
    return secrets.redactor().scrub(result)


def history_redactor(options: BuildOptions) -> Redactor:
    return Redactor(frozenset(secret_arg_values(options)))


def redact_history_text(text: str, *, names: Iterable[str], redactor: Redactor) -> str:
    """An ARG or RUN history entry with `NAME=value` of a secret name (or holding a secret
    value) shown as `NAME=****`; other entries unchanged."""
    if not (text.startswith("ARG ") or text.startswith("RUN ")):
        return text
    hidden = frozenset(names)

    def word(match: re.Match[str]) -> str:
        name, value = match.group(1), match.group(2)
        if name in hidden or redactor.found(value):
            return f"{name}={REDACTED}"
        return match.group(0)

    if text.startswith("ARG "):
        return _ARG_WORD.sub(word, text)
    return text  # RUN entries are written redacted (`core.build.history.run_text`)


def redacted_history(image: ImageConfig, options: BuildOptions) -> ImageConfig:
    """The image config with ARG history entries of secret build args redacted."""
    if not options.secret_build_args:
        return image
    redactor = history_redactor(options)
    names = options.secret_build_args
    history = tuple(dataclasses.replace(entry, created_by=redact_history_text(
        entry.created_by, names=names, redactor=redactor)) if entry.created_by else entry
        for entry in image.history)
    return dataclasses.replace(image, history=history)


def persisted_secret_warnings(programs: Mapping[int, StageProgram],
                              options: BuildOptions) -> list[str]:
    """A warning for each instruction (not RUN or ARG) whose expansion read a secret build
    arg: its value then goes into the image config or history, as the Dockerfile asked."""
    names = options.secret_build_args
    if not names:
        return []
    redactor = history_redactor(options)
    warnings: list[str] = []
    for program in programs.values():
        for step in program.steps:
            if isinstance(step.instruction, (RunInstruction, ArgInstruction)):
                continue
            used = sorted(n for n, v in step.used.items() if n in names or redactor.found(v))
            if used:
                span = step.instruction.span
                warnings.append(f"{span}: {step.instruction.keyword} uses the secret build "
                                f"arg{'s' if len(used) > 1 else ''} {', '.join(used)}: the "
                                f"value is stored in the image")
    return warnings
