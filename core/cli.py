"""The `bucketbuild` command line. Only this module (and the handlers) decide exit codes."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from core import __version__
from core.errors import BudgetError, BuildError
from core.service.shutdown import Terminated, TerminatedError, stopping_on_sigterm

Command = Callable[[argparse.Namespace], int]


def _cmd_parse(args: argparse.Namespace) -> int:
    from core.dockerfile import dump_buildkit, dump_json, parse_dockerfile

    path: str = args.dockerfile
    with open(path, "rb") as f:
        data = f.read()
    result = parse_dockerfile(data, filename=path)
    out = dump_buildkit(result) if args.format == "buildkit" else dump_json(result)
    sys.stdout.write(out)
    return 0


def exit_code_for(error: BuildError) -> int:
    """The process exit code for a failed build: the error's own (a failing RUN's exit code,
    2 for usage errors, 124 for timeouts), kept within 1-255."""
    code = error.exit_code
    return code if 0 < code < 256 else 1


def out_of_memory(error: BaseException) -> BuildError | None:
    """A build error for running out of memory (MemoryError, or no memory for a thread's
    stack under an address-space limit); None for other errors."""
    if isinstance(error, RuntimeError) and "can't start new thread" not in str(error):
        return None
    if not isinstance(error, (MemoryError, RuntimeError)):
        return None
    detail = f" ({error})" if str(error) else ""
    return BudgetError(f"out of memory{detail}: the build needs more memory than the process "
                       "may use")


def _cmd_build(args: argparse.Namespace) -> int:
    from core.build.events import Message
    from core.flags import invocation_from_args
    from core.progress import configure_logging, make_reporter
    from core.redaction import SecretSet

    invocation = invocation_from_args(args, environ=os.environ, cwd=Path.cwd(),
                                      clock=time.monotonic)
    secrets = SecretSet()  # filled by run_build; every line on stderr is redacted with it
    configure_logging(level=invocation.log_level, log_format=invocation.log_format,
                      timestamps=invocation.log_timestamp, stream=sys.stderr, secrets=secrets)
    reporter = make_reporter(invocation.log_format, sys.stderr, level=invocation.log_level,
                             timestamps=invocation.log_timestamp, secrets=secrets)
    for warning in invocation.warnings:
        reporter.emit(Message("warning", warning))

    from core.build.pipeline import run_build

    started = time.monotonic()
    try:
        with stopping_on_sigterm():
            result = run_build(invocation.options, events=reporter)  # it adds to `secrets`
    except Terminated as e:
        reporter.failed(TerminatedError(str(e)), exit_code=TerminatedError.exit_code)
        return TerminatedError.exit_code
    except BuildError as e:
        code = exit_code_for(e)
        reporter.failed(e, exit_code=code)
        return code
    except OSError as e:  # not one of ours, but still reported in the chosen format
        reporter.failed(BuildError(str(e)), exit_code=1)
        return 1
    except (MemoryError, RuntimeError) as e:  # the work dir is gone: report, no traceback
        error = out_of_memory(e)
        if error is None:
            raise
        reporter.failed(error, exit_code=1)
        return 1
    reporter.succeeded(result, seconds=time.monotonic() - started)
    sys.stdout.write(result.digest + "\n")
    sys.stdout.flush()
    return 0


def _add_build_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from core.flags import REJECTED_FLAGS, add_build_flags

    refused = ", ".join(flag.names[0] for flag in REJECTED_FLAGS)
    p = sub.add_parser(
        "build", allow_abbrev=False, help="build a Dockerfile (kaniko executor's flags)",
        usage="%(prog)s [FLAGS] (see --help)",
        epilog=f"Kaniko flags refused by name (exit 2): {refused}.",
        description="Build an image from a Dockerfile and push it. Takes kaniko executor's "
                    "flags with kaniko's meaning; boolean flags accept --flag, --flag=true "
                    "and --flag=false. Prints the image digest on stdout; progress goes to "
                    "stderr.")
    add_build_flags(p)
    p.set_defaults(func=_cmd_build)


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bucketbuild",
        description="Build container images from a Dockerfile without a daemon.",
    )
    parser.add_argument("--version", action="version", version=f"bucketbuild {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("parse", help="print a Dockerfile's parse tree")
    p.add_argument("dockerfile", metavar="DOCKERFILE")
    p.add_argument("--format", choices=("buildkit", "json"), default="buildkit",
                   help="buildkit: BuildKit's dump format (default); json: nodes with lines")
    p.set_defaults(func=_cmd_parse)
    _add_build_command(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    func: Command = args.func
    try:
        return func(args)
    except BuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return exit_code_for(e)
    except OSError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Terminated as e:
        print(f"error: {e}", file=sys.stderr)
        return TerminatedError.exit_code
