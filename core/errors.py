"""The one exception tree of bucketbuild.

Every error the library raises derives from `BuildError`. Each carries the fields callers
branch on; only the CLI and the cloud handlers turn them into exit codes and events.
"""

from __future__ import annotations

from dataclasses import dataclass


class BuildError(Exception):
    """Base of every error bucketbuild raises on purpose."""

    #: short machine-readable class used in results and events
    kind: str = "build"
    #: process exit code the CLI uses for this error
    exit_code: int = 1
    #: whether trying the same thing again may succeed
    retryable: bool = False


@dataclass(frozen=True)
class SourceSpan:
    """A place in a Dockerfile: 1-based lines, inclusive; column 1-based (0 = unknown)."""

    file: str
    start_line: int
    end_line: int
    column: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.start_line}"


#: longest Dockerfile line an error message quotes (messages reach logs and events)
_MAX_SHOWN_LINE = 200


class DockerfileError(BuildError):
    """A Dockerfile that cannot be parsed, expanded or planned."""

    kind = "dockerfile"

    def __init__(
        self,
        message: str,
        *,
        file: str = "Dockerfile",
        line: int = 0,
        column: int = 0,
        end_line: int | None = None,
        source_line: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        self.end_line = end_line if end_line is not None else line
        self.source_line = source_line

    def with_location(self, *, file: str | None = None, line: int | None = None,
                      end_line: int | None = None, source_line: str | None = None,
                      ) -> DockerfileError:
        """Return a copy that names where the problem is (fields not given are kept)."""
        return DockerfileError(
            self.message,
            file=file if file is not None else self.file,
            line=line if line is not None else self.line,
            column=self.column,
            end_line=end_line if end_line is not None else (line or self.end_line),
            source_line=source_line if source_line is not None else self.source_line,
        )

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}: " if self.line else f"{self.file}: "
        text = where + self.message
        if self.source_line is not None:
            shown = self.source_line
            if len(shown) > _MAX_SHOWN_LINE:  # a hostile line can be megabytes long
                shown = shown[:_MAX_SHOWN_LINE] + f"... ({len(shown)} characters)"
            text += f"\n  {self.line} | {shown}"
        return text


class ImageError(BuildError):
    """Invalid image references, manifests, configs or platforms."""

    kind = "image"


class ImageReferenceError(ImageError):
    """An image reference that does not parse or validate."""


class PlatformMismatchError(ImageError):
    """An index offers no manifest for the requested platform."""


class RegistryError(BuildError):
    """A registry answered with an error or could not be reached."""

    kind = "registry"

    def __init__(
        self,
        message: str,
        *,
        registry: str = "",
        repository: str = "",
        status: int | None = None,
        codes: tuple[str, ...] = (),
        retryable: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.registry = registry
        self.repository = repository
        self.status = status
        self.codes = codes
        self.retryable = retryable

    def __str__(self) -> str:
        where = "/".join(p for p in (self.registry, self.repository) if p)
        status = f" (HTTP {self.status})" if self.status is not None else ""
        return f"{where}: {self.message}{status}" if where else f"{self.message}{status}"


class AuthError(RegistryError):
    """Credentials were refused or the requested scope was not granted."""


class DigestMismatchError(RegistryError):
    """Content did not match its digest or declared size."""


class ContextError(BuildError):
    """The build context cannot be read or unpacked."""

    kind = "context"


class ArchiveError(ContextError):
    """An archive is malformed or tries to escape its destination."""


class RootfsError(BuildError):
    """A layer cannot be applied to a root filesystem."""

    kind = "rootfs"


class StepError(BuildError):
    """A build step failed. `exit_code` is the RUN's own exit code when there is one."""

    kind = "step"

    def __init__(self, message: str, *, span: SourceSpan | None = None,
                 instruction: str = "", exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.span = span
        self.instruction = instruction
        self.exit_code = exit_code

    def __str__(self) -> str:
        where = f"{self.span}: " if self.span else ""
        return f"{where}{self.message}"


class SandboxError(BuildError):
    """No usable sandbox, or the sandbox itself failed (not the command in it)."""

    kind = "sandbox"


class BudgetError(BuildError):
    """A disk or memory budget would be exceeded."""

    kind = "budget"


class DeadlineError(BuildError):
    """The build ran out of time before the platform's deadline."""

    kind = "timeout"
    exit_code = 124


class UsageError(BuildError):
    """Bad command-line flags or settings."""

    kind = "usage"
    exit_code = 2
