"""The `bucketbuild` command line. Only this module (and the handlers) decide exit codes."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from core import __version__
from core.errors import BuildError

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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    func: Command = args.func
    try:
        return func(args)
    except BuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except OSError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
