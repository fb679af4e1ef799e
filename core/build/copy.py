"""COPY and ADD steps: sources gathered, the layer written straight from them, then applied.

The layer is built from the source files and the few destination directories on the way; the
stage's tree is never walked, and never extracted for a COPY: when the destination could depend
on it (existing directories, symlinked paths, `--chown` names) it is learnt from the layers'
headers, and when it cannot (a directory destination, no `--chown`) not read at all. The new
layer is extracted onto the tree only if the tree is already on disk.
"""

from __future__ import annotations

import os
from pathlib import Path

from core.build import add
from core.build.copy_plan import absolute_dest, plan_items, start_plan, write_layer
from core.build.copy_sources import SourceItem, SourceTree, match_sources
from core.build.history import copy_text
from core.build.layers import StepLayer
from core.build.session import BuildSession
from core.build.stage import StageState
from core.build.url_policy import UrlPolicy
from core.build.users import chown_owner
from core.build.workdir import remove_tree
from core.context.ignore import compile_patterns
from core.dockerfile.ast import Heredoc
from core.dockerfile.instructions import AddInstruction, CopyInstruction
from core.errors import StepError
from core.plan import Step


def run_copy(session: BuildSession, stage: StageState, step: Step, *,
             single_snapshot: bool = False) -> StepLayer:
    """Execute one COPY/ADD step on `stage` (history and layer are the caller's to record)."""
    instruction = step.instruction
    assert isinstance(instruction, (CopyInstruction, AddInstruction))
    is_add = isinstance(instruction, AddInstruction)
    if isinstance(instruction, CopyInstruction) and instruction.parents:
        raise StepError("COPY --parents is not supported yet")
    if isinstance(instruction, AddInstruction):
        add.check_checksum(instruction.checksum, instruction.sources)
    text = copy_text("ADD" if is_add else "COPY", sources=instruction.sources,
                     heredocs=[h.name for h in instruction.inline_sources],
                     dest=instruction.dest, chown=instruction.chown, chmod=instruction.chmod,
                     parents=isinstance(instruction, CopyInstruction) and instruction.parents)
    tree = stage.tree
    owner = None
    if instruction.chown:
        owner = chown_owner(instruction.chown, tree.accounts(session.spool))
    staging = session.staging("copy-")
    try:
        items = _items(session, step, instruction, staging)
        dest, hint = absolute_dest(instruction.dest, step.workdir)
        blind = _blind(instruction, items, hint)
        plan = start_plan(staging, lambda nodes: tree.view(session.spool, nodes, blind=blind),
                          owner=owner, mode=parse_chmod(instruction.chmod))
        plan_items(plan, items, dest=dest, dest_is_dir_hint=hint,
                   excludes=compile_patterns(instruction.excludes, source="--exclude"))
        layer = write_layer(plan, session.spool, settings=session.settings, created_by=text)
    finally:
        remove_tree(staging)  # any depth, never through a mount
    if layer is not None:
        tree.absorb(layer, session.spool, single_snapshot=single_snapshot)
    return StepLayer(text, layer)


def _blind(instruction: CopyInstruction | AddInstruction, items: list[SourceItem],
           dest_is_dir: bool) -> bool:
    """Whether the layer can be written without knowing the tree: the destination is a
    directory by its form (or the one source is a directory) and no `--chown` needs the
    tree's accounts or owns created directories (see `copy_plan.BlindView`)."""
    if instruction.chown or not items:
        return False
    return dest_is_dir or (len(items) == 1 and items[0].is_dir)


def parse_chmod(text: str) -> int | None:
    """`--chmod` as octal permission bits (symbolic modes are not supported)."""
    if not text:
        return None
    try:
        value = int(text, 8)
    except ValueError:
        value = -1
    if not 0 <= value <= 0o7777:
        raise StepError(f"invalid chmod parameter: '{text}'. it should be octal string and "
                        "between 0 and 07777")
    return value


def _items(session: BuildSession, step: Step, instruction: CopyInstruction | AddInstruction,
           staging: Path) -> list[SourceItem]:
    """Every source item, in order: paths (context, stage or image), then heredocs."""
    items: list[SourceItem] = []
    is_add = isinstance(instruction, AddInstruction)
    tree = session.context
    if isinstance(instruction, CopyInstruction) and instruction.from_:
        assert step.source is not None
        tree = session.source_tree(step.source)
    for number, word in enumerate(instruction.sources):
        if is_add:
            add.check_scheme(word)
        if is_add and add.is_url(word):
            assert isinstance(instruction, AddInstruction)
            items.extend(_download(word, instruction, staging / f"url-{number}",
                                   session.options.add_urls))
            continue
        for item in match_sources(tree, word):
            items.append(_maybe_unpack(item, instruction, staging / f"archive-{number}"))
    if instruction.inline_sources:
        items.extend(_heredocs(instruction.inline_sources, staging / "heredocs"))
    return items


def _download(url: str, instruction: AddInstruction, directory: Path,
              policy: UrlPolicy) -> list[SourceItem]:
    directory.mkdir()
    got = add.download(url, directory, policy=policy, checksum=instruction.checksum)
    tree = SourceTree.plain(directory, f"download {url}", owner=(0, 0))
    item = SourceItem(tree, got.name, got.name, is_dir=False)
    if instruction.unpack:
        return [_maybe_unpack(item, instruction, directory / "unpacked", remote=True)]
    return [item]


def _maybe_unpack(item: SourceItem, instruction: CopyInstruction | AddInstruction,
                  directory: Path, *, remote: bool = False) -> SourceItem:
    """An ADD archive becomes a directory item holding its unpacked content."""
    if not isinstance(instruction, AddInstruction) or item.is_dir:
        return item
    unpack = instruction.unpack if instruction.unpack is not None else not remote
    if not unpack or not add.is_archive(item.path):
        return item
    directory.mkdir()
    metadata = add.unpack_archive(item.path, directory)
    tree = SourceTree.plain(directory, f"archive {item.name}", metadata=metadata)
    return SourceItem(tree, "", item.name, is_dir=True)


def _heredocs(heredocs: tuple[Heredoc, ...], directory: Path) -> list[SourceItem]:
    """Here-documents as files named after their delimiter (mode 0644, owned by root)."""
    directory.mkdir()
    tree = SourceTree.plain(directory, "here-document", owner=(0, 0))
    items = []
    for heredoc in heredocs:
        path = directory / heredoc.name
        path.write_bytes(heredoc.content.encode("utf-8", "surrogateescape"))
        os.chmod(path, 0o644)
        items.append(SourceItem(tree, heredoc.name, heredoc.name, is_dir=False))
    return items
