"""Running one stage: its start (FROM), then each step, with events, timings and history.

Every step is announced (`StepStarted`), dispatched by instruction type, recorded in the
stage's config (history entry; layer and diff_id when the file system changed) and closed
(`StepFinished`). The deadline is checked before each step. With `--single-snapshot` the
stage's tree is extracted at the start, steps change it without making layers, and one layer
holding every change is made at the end (credited to the last step that changed files).

Around each RUN/COPY/ADD/WORKDIR: with `--cache`, its key is computed and looked up first (a
hit takes the cached layer instead of running the step); the disk budget is checked against
what the step will write (the base layers, when the tree is to be extracted; the context, when
a COPY lands on disk) and again after it; and the spool is told where the step's layer goes
(`LayerPolicy`, from the stage's `StageOutlook`): streamed to the destination registries when
it belongs to the image (and to the cache repository on a miss), kept on disk only when it
will be read again. A stage that will RUN extracts its tree at its first file step (`eager`):
the headers of its base would be read for nothing.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from core.build.bases import scratch_config
from core.build.cached import BuildCache, apply_hit
from core.build.config_steps import (
    CONFIG_INSTRUCTIONS,
    ConfigState,
    apply_config,
    base_config_for_child,
)
from core.build.events import StepFinished, StepStarted
from core.build.layers import Layer, LayerPolicy
from core.build.result import StepTiming
from core.build.session import BuildSession
from core.build.stage import StageState, Tree
from core.dockerfile.instructions import (
    AddInstruction,
    CopyInstruction,
    RunInstruction,
    WorkdirInstruction,
)
from core.errors import (
    BudgetError,
    BuildError,
    ContextError,
    DockerfileError,
    RootfsError,
    StepError,
)
from core.image.reference import Repository
from core.plan import ImageBase, ScratchBase, StageBase, StageProgram, Step

if TYPE_CHECKING:  # the modules that execute steps are imported when a step runs
    from core.snapshot.index import StatIndex

log = logging.getLogger(__name__)


@dataclass
class Progress:
    """Step numbering across the whole build, and the timings collected."""

    total: int
    number: int = 0
    timings: list[StepTiming] = field(default_factory=list)


def start_stage(session: BuildSession, program: StageProgram, *, last_user: dict[int, int],
                progress: Progress) -> StageState:
    """The stage's initial state from its base (the FROM step)."""
    stage = program.stage
    text = stage.from_instruction.original.split("\n", 1)[0]
    began = _announce(session, progress, stage.display_name, text, stage.from_instruction.span)
    directory = session.workdir.stage_dir(stage.index)
    base = stage.base
    if isinstance(base, ScratchBase):
        state = ConfigState(scratch_config(stage.platform))
        tree = Tree(directory)
    elif isinstance(base, ImageBase):
        assert session.images is not None
        resolved = session.images.resolve(base)
        image = base_config_for_child(resolved.config)
        image = image.with_container_config(image.config.with_default_path())
        state, tree = ConfigState(image), Tree(directory, layers=resolved.layers())
    else:
        state, tree = _from_stage(session, base, directory, stage.index, last_user)
    _finish(session, progress, text, began, None, stage.from_instruction.span.start_line)
    return StageState(stage.index, stage.name, stage.platform, state, tree,
                      base_ref=base.ref if isinstance(base, ImageBase) else "")


def _from_stage(session: BuildSession, base: StageBase, directory: Path, index: int,
                last_user: dict[int, int]) -> tuple[ConfigState, Tree]:
    parent = session.stages[base.index]
    image = replace(parent.config.image,
                    config=replace(parent.config.config, on_build=()))
    tree = Tree(directory, layers=list(parent.tree.layers))
    if last_user.get(base.index) == index:
        tree.take_over(parent.tree)
    return ConfigState(image), tree


@dataclass(frozen=True)
class StageOutlook:
    """What the pipeline knows of a stage's place in the build (decides where its layers go).

    `in_image`: its layers are the final image's (the target, or a stage the target is built
    on); they stream to `stream_to` (one repository per destination registry) as they are
    made. `dependents`: a later stage reads its tree or builds on it (`is_base`: builds on it).
    `keep_layers`: local outputs need every layer of the image on disk."""

    in_image: bool = True
    dependents: bool = False
    stream_to: tuple[Repository, ...] = ()
    keep_layers: bool = False
    is_base: bool = False  # a later stage is built FROM it


_FILE_STEPS = (RunInstruction, CopyInstruction, AddInstruction, WorkdirInstruction)


def run_stage(session: BuildSession, state: StageState, program: StageProgram,
              progress: Progress, *, outlook: StageOutlook | None = None,
              cache: BuildCache | None = None) -> None:
    """Run every step of the stage on `state`."""
    single = session.options.single_snapshot
    outlook = outlook or StageOutlook()
    state.tree.eager = single or any(isinstance(s.instruction, RunInstruction)
                                     for s in program.steps)
    start_index = _scan_tree(session, state) if single else None
    key = cache.start(session, state, program) if cache is not None else ""
    credit: int | None = None
    for position, step in enumerate(program.steps):
        text = step.written.original.split("\n", 1)[0]
        if step.onbuild:
            text = f"ONBUILD {text}"
        session.check_deadline(f"step {progress.number + 1}: {text}")
        began = _announce(session, progress, state.display_name, text, step.instruction.span)
        run = _StepRun(session, state, program, position, text=f"step {progress.number} "
                       f"({text})", outlook=outlook, cache=cache)
        key, layer, cached = run.execute(key)
        if isinstance(step.instruction, _FILE_STEPS):
            credit = len(state.config.image.history) - 1
        _finish(session, progress, text, began, layer, step.instruction.span.start_line,
                cached=cached)
    session.spool.policy = LayerPolicy(stream_to=outlook.stream_to if outlook.in_image else (),
                                       keep=outlook.keep_layers or not outlook.in_image)
    if start_index is not None:
        _single_snapshot(session, state, start_index, credit)


@dataclass
class _StepRun:
    """One step with the cache, the disk budget and the layer policy around it."""

    session: BuildSession
    state: StageState
    program: StageProgram
    position: int
    text: str  # "step N (INSTRUCTION)", for messages
    outlook: StageOutlook
    cache: BuildCache | None

    @property
    def step(self) -> Step:
        return self.program.steps[self.position]

    def execute(self, parent: str) -> tuple[str, Layer | None, bool]:
        """(the step's cache key, its layer, whether it came from the cache)."""
        session, cache, step = self.session, self.cache, self.step
        key, cacheable = "", False
        if cache is not None:
            key, cacheable = cache.step_key(session, self.state, step, parent)
            hit = cache.lookup(key) if cacheable else None
            if hit is not None:
                apply_hit(session, self.state, hit)
                _record(self.state, hit.created_by, hit, session.created, False)
                return key, hit, True
        self._check_budget()
        transient = self._set_policy(writes_cache=cacheable)
        try:
            layer = _dispatch(session, self.state, step, single=session.options.single_snapshot)
        except BudgetError as error:
            raise BudgetError(f"{self.text}: {error}") from None
        budget = self.session.spool.budget
        if budget is not None:
            if layer is not None and isinstance(step.instruction, RunInstruction):
                budget.add(layer.plain_size)  # what the RUN added to the tree
            budget.check(self.text)
        if layer is not None and cache is not None and cacheable:
            cache.save(session, key, layer, self.state.platform)
        if transient and layer is not None and layer.path is not None:
            layer.path.unlink(missing_ok=True)  # applied to the tree; the registry has it
        return key, layer, False

    def _check_budget(self) -> None:
        """Before a file step: will what it writes to disk fit?"""
        budget = self.session.spool.budget
        instruction = self.step.instruction
        if budget is None or not isinstance(instruction, _FILE_STEPS):
            return
        tree = self.state.tree
        need = 0
        on_disk = tree.extracted or tree.eager or isinstance(instruction, RunInstruction)
        if on_disk and not tree.extracted:
            need += sum(layer.size for layer in tree.layers)  # compressed: a lower bound
        if isinstance(instruction, (CopyInstruction, AddInstruction)) and on_disk:
            need += budget.copy_bytes
        budget.check(self.text, need)

    def _set_policy(self, *, writes_cache: bool) -> bool:
        """Point the spool at this step's layer targets; True when the spool file is only
        needed to apply the layer to the tree (it can go once the step is done)."""
        outlook, tree, session = self.outlook, self.state.tree, self.session
        if session.options.single_snapshot:
            session.spool.policy = LayerPolicy()
            return False
        streams = outlook.stream_to if outlook.in_image else ()
        cache_repo = self.cache.stream_target() if self.cache and writes_cache else None
        if cache_repo is not None and any(r.registry == cache_repo.registry for r in streams):
            cache_repo = None  # mounted from the destination repository instead
        on_disk = tree.extracted or tree.eager
        later = outlook.dependents or any(_reads_tree(s)
                                          for s in self.program.steps[self.position + 1:])
        needed = (outlook.keep_layers and outlook.in_image) or (later and not on_disk) or (
            writes_cache and self.cache is not None and self.cache.repository is None)
        absorbed = on_disk and isinstance(self.step.instruction, (CopyInstruction,
                                                                  AddInstruction,
                                                                  WorkdirInstruction))
        discard = not (outlook.in_image or outlook.is_base or writes_cache) and isinstance(
            self.step.instruction, RunInstruction)
        session.spool.policy = LayerPolicy(stream_to=streams, keep=needed or absorbed,
                                           cache_to=cache_repo, discard=discard)
        return absorbed and not needed and bool(streams)


def _reads_tree(step: Step) -> bool:
    """Whether a step may read the stage's layers (their headers, or to extract them): every
    file step but a COPY/ADD that writes blind (a directory destination, no --chown)."""
    instruction = step.instruction
    if isinstance(instruction, (CopyInstruction, AddInstruction)):
        dest = instruction.dest
        into = dest.endswith("/") or dest in ("", ".") or dest.endswith("/.")
        return bool(instruction.chown) or not into
    return isinstance(instruction, _FILE_STEPS)


def _dispatch(session: BuildSession, state: StageState, step: Step, *,
              single: bool) -> Layer | None:
    instruction = step.instruction
    created = session.created
    try:
        if isinstance(instruction, CONFIG_INSTRUCTIONS):
            state.config = apply_config(state.config, instruction, created=created)
            return None
        if isinstance(instruction, RunInstruction):
            from core.build.run import run_step  # a cached rebuild never loads the sandboxes

            sandbox = session.sandbox_for_run()
            ran = run_step(session, state, step, sandbox, single_snapshot=single)
            return _record(state, ran.created_by, ran.layer, created, single)
        if isinstance(instruction, (CopyInstruction, AddInstruction)):
            from core.build.copy import run_copy

            copied = run_copy(session, state, step, single_snapshot=single)
            return _record(state, copied.created_by, copied.layer, created, single)
        if isinstance(instruction, WorkdirInstruction):
            from core.build.workdir_step import run_workdir

            made = run_workdir(session, state, step, single_snapshot=single)
            return _record(state, made.created_by, made.layer, created, single,
                           workdir=step.workdir)
    except StepError as error:
        raise _located(error, step) from None
    except (ContextError, RootfsError) as error:
        raise _located(StepError(str(error)), step) from error
    except DockerfileError as error:
        raise error.with_location(line=instruction.span.start_line,
                                  end_line=instruction.span.end_line,
                                  source_line=step.written.original.split("\n", 1)[0]) from None
    raise BuildError(f"unsupported instruction {instruction.keyword}")


def _record(state: StageState, created_by: str, layer: Layer | None, created: str | None,
            single: bool, *, workdir: str | None = None) -> Layer | None:
    """History entry (and diff_id) for a step that may have changed the file system."""
    config = state.config
    if workdir is not None:
        config = config.with_config(replace(config.config, working_dir=workdir))
    config = config.with_history(created_by, created=created,
                                 empty_layer=layer is None or single)
    if layer is not None and not single:
        config = replace(config, image=replace(
            config.image, diff_ids=(*config.image.diff_ids, layer.diff_id)))
    state.config = config
    return None if single else layer


def _located(error: StepError, step: Step) -> StepError:
    if error.span is not None:
        return error
    return StepError(error.message, span=step.instruction.span,
                     instruction=step.written.original.split("\n", 1)[0],
                     exit_code=error.exit_code)


def _scan_tree(session: BuildSession, state: StageState) -> StatIndex:
    """The stage's tree as `--single-snapshot` starts it (extracted first)."""
    from core.snapshot.index import StatIndex

    return StatIndex.scan(str(state.tree.ensure(session.spool)))


def _single_snapshot(session: BuildSession, state: StageState, start: StatIndex,
                     credit: int | None) -> None:
    """One layer with every change the stage made, credited to the last file step."""
    from core.snapshot.diff import SnapshotMode, snapshot
    from core.snapshot.tarwriter import write_diff

    diff, _ = snapshot(start, mode=SnapshotMode(session.options.snapshot_mode))
    history = list(state.config.image.history)
    if diff.is_empty or credit is None:
        return
    text = history[credit].created_by
    layer = session.spool.write(lambda writer: write_diff(writer, diff),
                                root=str(state.tree.rootfs), settings=session.settings,
                                created_by=text, overrides=state.tree.overrides())
    if layer is None:
        return
    state.tree.add_layer(layer, session.spool, applied=True)
    history[credit] = replace(history[credit], empty_layer=False)
    image = state.config.image
    state.config = replace(state.config, image=replace(
        image, history=tuple(history), diff_ids=(*image.diff_ids, layer.diff_id)))


def _announce(session: BuildSession, progress: Progress, stage: str, text: str,
              span: object) -> float:
    progress.number += 1
    session.current_step = progress.number
    line = getattr(span, "start_line", 0)
    session.events.emit(StepStarted(stage=stage, number=progress.number, total=progress.total,
                                    instruction=text, line=line))
    log.info("[%d/%d] %s", progress.number, progress.total, text)
    return time.monotonic()


def _finish(session: BuildSession, progress: Progress, text: str, began: float,
            layer: Layer | None, line: int, *, cached: bool = False) -> None:
    duration = time.monotonic() - began
    session.events.emit(StepFinished(number=progress.number, total=progress.total,
                                     instruction=text, duration=duration,
                                     layer_size=layer.size if layer is not None else None,
                                     cached=cached))
    progress.timings.append(StepTiming(number=progress.number, instruction=text, line=line,
                                       seconds=duration, cached=cached))
