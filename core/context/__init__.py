"""The build context: `.dockerignore` handling (`ignore`)."""

from core.context.ignore import (
    DOCKERIGNORE,
    IgnoreMatcher,
    IgnorePattern,
    compile_patterns,
    filter_paths,
    ignore_file_candidates,
    load_ignore,
    parse_ignore,
    select_ignore_file,
)

__all__ = [
    "DOCKERIGNORE",
    "IgnoreMatcher",
    "IgnorePattern",
    "compile_patterns",
    "filter_paths",
    "ignore_file_candidates",
    "load_ignore",
    "parse_ignore",
    "select_ignore_file",
]
