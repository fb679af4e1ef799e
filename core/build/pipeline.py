"""`run_build`: the one place that sequences a build's I/O.

context -> Dockerfile -> plan -> base images (manifests and configs; ONBUILD triggers may add
stages) -> stage programs -> stages in order -> final config and manifest -> outputs (push:
blobs first, manifests last) -> result. The work dir is made first and removed last (unless
`cleanup` is off). Errors are raised, never printed; nothing is tagged unless the whole build
succeeded.
"""

from __future__ import annotations

import logging
import os
import platform as host_platform
from pathlib import Path

from core.build.assemble import assemble, created_text, final_config
from core.build.bases import ImageResolver
from core.build.copy_sources import SourceTree
from core.build.events import EventSink
from core.build.layers import LayerSettings, LayerSpool
from core.build.options import BuildOptions
from core.build.outputs import push, write_digest_files, write_local
from core.build.programs import last_users, stage_programs
from core.build.registry_setup import make_registry
from core.build.result import BuildResult, LayerInfo
from core.build.session import BuildSession
from core.build.steps import Progress, run_stage, start_stage
from core.build.workdir import WorkDir
from core.context.files import ContextFiles
from core.context.ignore import load_ignore
from core.context.source import resolve_context
from core.dockerfile import parse_dockerfile
from core.errors import ContextError, UsageError
from core.image.platform import default_platform, parse_platform
from core.image.reference import Reference, parse_reference
from core.plan import BuildPlan, plan_build
from core.registry import RegistryClient

log = logging.getLogger(__name__)


def run_build(options: BuildOptions, *, events: EventSink,
              registry: RegistryClient | None = None) -> BuildResult:
    """Build the image `options` describe; raise a `BuildError` subclass on failure."""
    check_options(options)
    workdir = WorkDir.create(options.work_dir)
    try:
        return _build(options, events, registry, workdir)
    finally:
        if options.cleanup:
            workdir.cleanup()


def check_options(options: BuildOptions) -> None:
    """Refuse option combinations that cannot work, before any work is done."""
    output = options.output
    if output.compression == "zstd" and output.image_format != "oci":
        raise UsageError("--compression=zstd needs --image-format=oci (Docker schema 2 "
                         "manifests cannot describe zstd layers)")
    if output.destinations and not output.no_push:
        for destination in output.destinations:
            parse_reference(destination)


def _build(options: BuildOptions, events: EventSink, registry: RegistryClient | None,
           workdir: WorkDir) -> BuildResult:
    context = resolve_context(options.context, work_dir=workdir.root,
                              sub_path=options.context_sub_path)
    dockerfile = _dockerfile_path(context.root, options.dockerfile)
    parsed = parse_dockerfile(_read(dockerfile), filename=options.dockerfile)
    host = default_platform(host_platform.machine())
    target = parse_platform(options.platform) if options.platform else host
    plan = plan_build(parsed, build_args=options.build_args, target=options.target,
                      build_platform=host, target_platform=target, filename=options.dockerfile)
    destinations = [parse_reference(d) for d in options.output.destinations]
    own = registry is None
    client = registry if registry is not None else make_registry(options, plan, destinations)
    try:
        ignore = load_ignore(context.root, dockerfile)
        tree = SourceTree(ContextFiles(context.root, ignore), "build context", owner=(0, 0))
        session = _session(options, events, client, workdir, tree)
        return _run(session, plan, destinations, client)
    finally:
        if own:
            client.close()


def _session(options: BuildOptions, events: EventSink, client: RegistryClient,
             workdir: WorkDir, context: SourceTree) -> BuildSession:
    epoch = options.source_date_epoch
    clamp = True
    if epoch is None and options.reproducible:
        epoch, clamp = 0, False
    output = options.output
    settings = LayerSettings(image_format=output.image_format, compression=output.compression,
                             level=output.compression_level, epoch=epoch, clamp=clamp)
    return BuildSession(options=options, workdir=workdir,
                        spool=LayerSpool(workdir.layers, client), settings=settings,
                        context=context, events=events, images=ImageResolver(
                            client, mirrors=options.registry.registry_mirrors),
                        created=created_text(epoch) if epoch is not None else None)


def _run(session: BuildSession, plan: BuildPlan, destinations: list[Reference],
         client: RegistryClient) -> BuildResult:
    options = session.options
    if options.cache.enabled:
        session.warn("--cache is not implemented yet: building without the layer cache")
    assert session.images is not None
    plan, programs = stage_programs(plan, session.images)
    for warning in plan.warnings:
        session.warn(warning)
    progress = Progress(total=sum(1 + len(programs[i].steps) for i in plan.order))
    users = last_users(plan, programs)
    for index in plan.order:
        state = start_stage(session, programs[index], last_user=users, progress=progress)
        session.stages[index] = state
        run_stage(session, state, programs[index], progress)
    return _finish(session, plan, destinations, client, progress)


def _finish(session: BuildSession, plan: BuildPlan, destinations: list[Reference],
            client: RegistryClient, progress: Progress) -> BuildResult:
    options = session.options
    state = session.stages[plan.target]
    platform = parse_platform(options.platform) if options.platform else None
    image = final_config(state.config.image, created=session.created or created_text(None),
                         labels=options.labels, platform=platform)
    built = assemble(image, state.tree.layers, image_format=options.output.image_format)
    session.check_deadline("pushing the image")
    pushed: list[str] = []
    if destinations and not options.output.no_push:
        pushed = push(built, destinations, spool=session.spool, registry=client,
                      events=session.events)
    write_local(built, options.output, spool=session.spool, tags=destinations)
    write_digest_files(options.output, built.digest, destinations)
    layers = tuple(LayerInfo(digest=layer.digest, diff_id=layer.diff_id, size=layer.size,
                             media_type=layer.descriptor.media_type,
                             created_by=layer.created_by) for layer in built.layers)
    return BuildResult(digest=built.digest, media_type=built.media_type,
                       config_digest=built.config_descriptor.digest,
                       destinations=tuple(pushed), layers=layers,
                       steps=tuple(progress.timings),
                       sandbox=session.sandbox.name if session.sandbox else None,
                       warnings=tuple(session.warnings))


def _dockerfile_path(root: Path, dockerfile: str) -> Path:
    path = Path(dockerfile)
    return path if path.is_absolute() else root / path


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise ContextError(f"cannot read Dockerfile {os.fspath(path)!r}: "
                           f"{error.strerror or error}") from None


__all__ = ["check_options", "run_build"]
