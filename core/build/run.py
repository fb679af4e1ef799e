"""RUN steps: the stage's tree extracted, the command run in the sandbox, the change snapshotted.

The command line follows BuildKit: the shell form runs through the SHELL in force; the exec
form as written; a RUN whose only argument is a here-document runs its body as the shell's
command string, or, when the body starts with `#!`, as an executable file shown at
`/dev/pipes/<NAME>`; any other RUN with here-documents (`RUN python3 <<EOF`) gives the shell the
command line followed by the bodies and their delimiters, so the shell feeds them as stdin.
The environment is the step's (ENV, ARGs in scope, proxy build args) plus HOME from the user's
passwd entry when not set; the user and groups come from the stage's /etc/passwd and
/etc/group. Output lines go out as `StepOutput` events with secret values masked.

The sandbox is the one chosen for the stage's tree (`core.build.sandbox`); when none can run
there, or the sandbox itself fails, the step fails with a `StepError` that says why. Where the
disk cannot hold the image's owners and modes (an unprivileged build), the tree's metadata map
follows each step (`core.build.ownership`) and the layer is written from it; under proot, whose
chown changes nothing, the build log says so.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from core.build.config_steps import with_shell
from core.build.events import StepOutput
from core.build.history import run_text
from core.build.layers import Layer, StepLayer
from core.build.mounts import PreparedMounts, prepare_mounts
from core.build.ownership import effective, updated_metadata
from core.build.sandbox import concrete
from core.build.secrets import history_redactor
from core.build.session import BuildSession
from core.build.stage import StageState
from core.build.users import Identity, run_user
from core.dockerfile.instructions import RunInstruction
from core.errors import BuildError, DeadlineError, SandboxError, StepError
from core.plan import Step
from core.rootfs.metadata import MetadataMap
from core.rootfs.paths import Root
from core.run import NoSandbox
from core.run.spec import BindMount, RunResult, RunSpec, Sandbox
from core.snapshot.diff import SnapshotMode
from core.snapshot.diff import diff as diff_indexes
from core.snapshot.index import StatIndex
from core.snapshot.tarwriter import write_diff

log = logging.getLogger(__name__)

_HEREDOC_MARKER = re.compile(r"^(\d*)<<(-?)\s*['\"]?([A-Za-z_][A-Za-z0-9_]*)['\"]?$")
_SCRIPT_DIR = "/dev/pipes"
_CHOWN = re.compile(r"\b(?:chown|chgrp)\b|\binstall\b[^;&|]*\s-[^\s]*[og]")
_PROOT_LIMIT = ("RUN steps run under proot: chown and chgrp to another user report success but "
                "change nothing, so files keep the owner they had and files a step creates "
                "belong to the step's user")


def command_line(run: RunInstruction, shell_prefix: Callable[[tuple[str, ...]], tuple[str, ...]],
                 ) -> tuple[tuple[str, ...], str | None]:
    """(argv, script name) for a RUN; the script name is set when a `#!` here-document is
    run as a file from `/dev/pipes/`."""
    args = run.command
    script = None
    if run.heredocs:
        if len(args) != 1 or run.json:
            raise StepError(f"parsing produced an invalid run command: {list(args)}")
        first = run.heredocs[0]
        if _HEREDOC_MARKER.match(args[0]):
            if first.content.startswith("#!"):
                script = first.name
                args = (f"{_SCRIPT_DIR}/{first.name}",)
            else:
                args = (first.content,)
        else:
            args = (args[0] + "".join(f"\n{h.content}{h.name}" for h in run.heredocs),)
    return (shell_prefix(args) if not run.json else args), script


def run_step(session: BuildSession, stage: StageState, step: Step, sandbox: Sandbox,
             *, single_snapshot: bool) -> StepLayer:
    """Execute one RUN on `stage` (the caller records history and layer)."""
    run = step.instruction
    assert isinstance(run, RunInstruction)
    if run.security == "insecure":
        session.warn("RUN --security=insecure is not supported: the step runs sandboxed")
    config = stage.config.config
    argv, script = command_line(run, lambda args: with_shell(config, args, False))
    created_by = run_text(argv, step.build_args, secret_names=session.options.secret_build_args,
                          redactor=history_redactor(session.options))
    rootfs = stage.tree.ensure(session.spool)
    sandbox = _sandbox_for(sandbox, rootfs)
    identity = run_user(config.user, stage.tree.accounts(session.spool))
    mounts = prepare_mounts(session, run.mounts, step.mount_sources, workdir=step.workdir)
    try:
        if script is not None:
            mounts.mounts.append(_script_mount(session, mounts, run, script))
        spec = _spec(rootfs, argv, step, identity, mounts, run, stage.tree.metadata)
        before = _index(session, stage, sandbox.transient_paths(spec))
        made = _ensure_workdir(rootfs, step.workdir)  # after the index: a made dir is a change
        result = _execute(session, sandbox, spec, mounts.secret_values)
    except SandboxError as error:
        raise StepError(f"RUN failed in the {sandbox.name} sandbox: {error}") from error
    finally:
        mounts.release()
    _ownership_notes(session, sandbox, identity, run.command)
    if not result.ok:
        raise _failure(session, argv, result, step)
    if single_snapshot:
        _follow_ownership(session, stage, before, result, made)
        stage.tree.index = None
        return StepLayer(created_by, None)
    return StepLayer(created_by, _snapshot(session, stage, before, created_by,
                                               changes=(result, made)))


def _sandbox_for(sandbox: Sandbox, rootfs: Path) -> Sandbox:
    try:
        chosen = concrete(sandbox, rootfs)
    except SandboxError as error:
        raise StepError(f"RUN needs a sandbox and none can run it here: {error}") from error
    if isinstance(chosen, NoSandbox):
        raise StepError(f"RUN is refused: no sandbox is in use ({chosen.detail})")
    return chosen


def _ownership_notes(session: BuildSession, sandbox: Sandbox, identity: Identity,
                     command: tuple[str, ...]) -> None:
    """proot's known limit, said in the build log: a faked chown changes nothing."""
    if sandbox.name != "proot":
        return
    if identity.uid == 0 and _PROOT_LIMIT not in session.warnings:
        session.warn(_PROOT_LIMIT)
    text = " ".join(command)
    if _CHOWN.search(text):
        shown = text if len(text) <= 80 else text[:77] + "..."
        session.warn(f"RUN {shown}: under proot, chown and chgrp to another user change "
                     f"nothing in the image")


def _snapshot(session: BuildSession, stage: StageState, before: StatIndex, created_by: str,
              *, changes: tuple[RunResult, tuple[str, ...]]) -> Layer | None:
    """The step's changes as a new layer of the stage (None when nothing changed). The tree's
    metadata map follows the step first, so that the diff and the layer see the image's
    owners and modes."""
    mode = SnapshotMode(session.options.snapshot_mode)
    old = stage.tree.metadata
    after = _scan_after(before, mode)
    result, made = changes
    new = updated_metadata(old, before, after, result.ownership, made_by_builder=made)
    shown = effective(after, new)
    diff = diff_indexes(effective(before, old), shown, mode=mode)
    stage.tree.index = after
    stage.tree.metadata = new
    if diff.is_empty:
        return None
    layer = session.spool.write(lambda writer: write_diff(writer, diff, index=shown),
                                root=str(stage.tree.rootfs), settings=session.settings,
                                created_by=created_by, overrides=stage.tree.overrides())
    if layer is not None:
        stage.tree.add_layer(layer, session.spool, applied=True)
    return layer


def _scan_after(before: StatIndex, mode: SnapshotMode) -> StatIndex:
    full = mode is SnapshotMode.FULL
    return StatIndex.scan(before.root, ignore=before.ignore,
                          one_file_system=before.one_file_system, hash_content=full,
                          previous=before if full else None)


def _follow_ownership(session: BuildSession, stage: StageState, before: StatIndex,
                      result: RunResult, made: tuple[str, ...]) -> None:
    """With `--single-snapshot` no layer is made now, but a fake root's view of ownership must
    still reach the metadata map (its records are keyed by inodes the next steps may reuse)."""
    if result.ownership is None:
        return
    after = _scan_after(before, SnapshotMode(session.options.snapshot_mode))
    stage.tree.metadata = updated_metadata(stage.tree.metadata, before, after,
                                           result.ownership, made_by_builder=made)


def _index(session: BuildSession, stage: StageState, transient: Sequence[str]) -> StatIndex:
    """The tree's stat index before the step (reused when nothing changed it since)."""
    ignore = frozenset(p.strip("/") for p in (*session.options.ignore_paths, *transient))
    current = stage.tree.index
    if current is not None and current.ignore == ignore and \
            current.root == os.path.abspath(stage.tree.rootfs):
        return current
    full = session.options.snapshot_mode == "full"
    return StatIndex.scan(str(stage.tree.rootfs), ignore=ignore, hash_content=full)


def _ensure_workdir(rootfs: Path, workdir: str) -> tuple[str, ...]:
    """Make the working directory if the tree lacks it; the root-relative paths made."""
    made: list[str] = []
    with Root(rootfs, clamp=True) as root:
        root.directory(workdir.strip("/"), create=True, mode=0o755, on_create=made.append)
    return tuple(made)


def _script_mount(session: BuildSession, mounts: PreparedMounts, run: RunInstruction,
                  name: str) -> BindMount:
    directory = session.staging("heredoc-")
    mounts.cleanup.append(directory)
    path = directory / name
    path.write_text(run.heredocs[0].content, encoding="utf-8", errors="surrogateescape")
    os.chmod(path, 0o755)
    return BindMount(source=path, target=f"{_SCRIPT_DIR}/{name}", readonly=True)


def _spec(rootfs: Path, argv: tuple[str, ...], step: Step, identity: Identity,
          mounts: PreparedMounts, run: RunInstruction, recorded: MetadataMap) -> RunSpec:
    env = dict(step.env)
    env.setdefault("HOME", identity.home)
    env.update(mounts.env)
    return RunSpec(root=rootfs.resolve(), argv=argv, env=env, cwd=step.workdir,
                   uid=identity.uid, gid=identity.gid, groups=identity.groups,
                   mounts=tuple(mounts.mounts), network=run.network, recorded=recorded)


def _execute(session: BuildSession, sandbox: Sandbox, spec: RunSpec,
             secrets: list[str]) -> RunResult:
    """Run with output streamed line by line into StepOutput events (secrets masked)."""
    number = session.current_step
    read_fd, write_fd = os.pipe()
    reader = threading.Thread(target=_pump, args=(read_fd, session, number, secrets),
                              name="run-output", daemon=True)
    reader.start()
    try:
        with os.fdopen(write_fd, "wb", buffering=0) as sink:
            left = session.time_left()
            timeout = max(left, 0.001) if left is not None else None
            result = sandbox.run(replace(spec, stdout=sink, timeout=timeout))
    finally:
        reader.join()
    return result


def _pump(fd: int, session: BuildSession, number: int, secrets: list[str]) -> None:
    with os.fdopen(fd, "rb") as stream:
        for raw in stream:
            text = raw.decode("utf-8", "replace").rstrip("\n")
            for value in secrets:
                if value:
                    text = text.replace(value, "****")
            session.events.emit(StepOutput(number=number, text=text))


def _failure(session: BuildSession, argv: tuple[str, ...], result: RunResult,
             step: Step) -> BuildError:
    shown = " ".join(argv)
    if result.timed_out:
        left = session.time_left()
        if left is not None and left <= 0:
            return DeadlineError(f'the build deadline passed while running "{shown}"')
        message = f'process "{shown}" ran out of time'
    else:
        message = f'process "{shown}" did not complete successfully: exit code: ' \
                  f"{result.exit_code}"
    return StepError(message, span=step.instruction.span,
                     instruction=step.written.original.split("\n", 1)[0],
                     exit_code=result.exit_code or 1)
