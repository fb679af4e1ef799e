"""The state one build's steps share: options, work dir, layer spool, stages built so far.

`BuildSession` is created by the pipeline for one `run_build` call and dropped with it; no
step keeps a reference beyond the build. It also answers "which tree does this `--from`
name": a built stage's tree or an image's tree (extracted on first use under `images/`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from core.build.bases import ImageResolver
from core.build.copy_sources import SourceTree
from core.build.events import EventSink, Message
from core.build.layers import LayerSettings, LayerSpool
from core.build.options import BuildOptions
from core.build.stage import StageState, Tree
from core.build.workdir import WorkDir
from core.errors import BuildError, DeadlineError
from core.plan import ImageBase, ScratchBase, Source, StageBase

if TYPE_CHECKING:  # the sandbox modules are imported when a RUN first needs one
    from core.run import Prober
    from core.run.spec import Sandbox



@dataclass
class BuildSession:
    """Everything a step may use (build-local and mutable: stages and trees fill in)."""

    options: BuildOptions
    workdir: WorkDir
    spool: LayerSpool
    settings: LayerSettings
    context: SourceTree
    events: EventSink
    images: ImageResolver | None
    created: str | None  # the `created` text for history entries and the config
    stages: dict[int, StageState] = field(default_factory=dict)
    image_trees: dict[str, Tree] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    sandbox: Sandbox | None = None
    current_step: int = 0
    prober: Prober | None = None  # kept by the caller across builds: probe once per process

    def time_left(self) -> float | None:
        """Seconds until the deadline (None: no deadline)."""
        if self.options.deadline is None:
            return None
        return self.options.deadline - time.monotonic()

    def check_deadline(self, what: str) -> None:
        left = self.time_left()
        if left is not None and left <= 0:
            raise DeadlineError(f"the build deadline passed before {what}")

    def sandbox_for_run(self) -> Sandbox:
        """The RUN sandbox, chosen once per build on first use."""
        if self.sandbox is None:
            from core.build.sandbox import choose_sandbox

            self.sandbox = choose_sandbox(self.options.run_isolation,
                                          probe_dir=self.workdir.tmp, prober=self.prober,
                                          notify=self.note)
        return self.sandbox

    def probe_lines(self) -> tuple[str, ...]:
        """The probe report behind the build's sandbox (() when no RUN needed one)."""
        if self.sandbox is None:
            return ()
        from core.build.sandbox import probe_lines

        return probe_lines(self.sandbox)

    def note(self, text: str) -> None:
        """Tell the user something: an event (not also a log record, which a build log that
        captures records would then show twice)."""
        self.events.emit(Message("info", text))

    def warn(self, text: str) -> None:
        self.warnings.append(text)
        self.events.emit(Message("warning", text))

    def source_tree(self, source: Source) -> SourceTree:
        """The tree a `--from` names, extracted if needed."""
        tree, label = self.tree_of(source)
        root = tree.ensure(self.spool)
        return SourceTree.plain(root, label, metadata=tree.metadata)

    def tree_of(self, source: Source) -> tuple[Tree, str]:
        if isinstance(source, StageBase):
            stage = self.stages.get(source.index)
            if stage is None:
                raise BuildError(f"stage {source.index} has not been built")
            return stage.tree, f"stage {stage.display_name}"
        if isinstance(source, ScratchBase):
            return Tree(self.workdir.root / "images" / "scratch"), "scratch"
        return self._image_tree(source), f"image {source.ref}"

    def _image_tree(self, base: ImageBase) -> Tree:
        if self.images is None:
            raise BuildError(f"image {base.ref} is needed but no registry client is available")
        resolved = self.images.resolve(base)
        tree = self.image_trees.get(resolved.digest)
        if tree is None:
            tree = Tree(self.workdir.image_dir(resolved.digest), layers=resolved.layers())
            self.image_trees[resolved.digest] = tree
        return tree

    def staging(self, prefix: str) -> Path:
        return self.workdir.new_temp_dir(prefix)
