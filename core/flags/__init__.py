"""`bucketbuild build`'s command line: kaniko executor's flags turned into `BuildOptions`.

`table` registers the flags on an argparse parser, `values` parses their value syntaxes,
`context` checks the context and Dockerfile they name, `convert` builds the options.
"""

from core.flags.convert import BuildInvocation, invocation_from_args
from core.flags.table import REJECTED_FLAGS, add_build_flags, rejection_message

__all__ = [
    "REJECTED_FLAGS",
    "BuildInvocation",
    "add_build_flags",
    "invocation_from_args",
    "rejection_message",
]
