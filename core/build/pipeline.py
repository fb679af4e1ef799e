"""`run_build`: the one place that sequences a build's I/O.

context -> Dockerfile -> plan -> base images (manifests and configs; ONBUILD triggers may add
stages) -> stage programs -> stages in order -> final config and manifest -> outputs (push:
blobs first, manifests last) -> result. The work dir is made first and removed last (unless
`cleanup` is off). Errors are raised, never printed; nothing is tagged unless the whole build
succeeded.

Layers of the image (the target stage and the stages it is built on) stream to the first
destination repository of each registry while the build runs (`StageOutlook`); the push waits
for those uploads and mounts or copies blobs to the other repositories. The disk budget starts
before the context is unpacked. With `--cache`, every step is keyed and looked up
(`core.build.cached`); pulled base layers are kept between builds when a base layer cache
directory is configured (`CacheOptions.base_dir`).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from core.build.assemble import assemble, created_text, final_config
from core.build.bases import ImageResolver
from core.build.budget import (
    DiskBudget,
    free_bytes,
    naming_disk_errors,
    size_text,
    tree_size,
)
from core.build.cached import BuildCache
from core.build.copy_sources import SourceTree
from core.build.events import EventSink
from core.build.layers import LayerSettings, LayerSpool
from core.build.options import BuildOptions
from core.build.outputs import push, write_digest_files, write_local
from core.build.programs import last_users, stage_programs
from core.build.registry_setup import make_registry
from core.build.result import BuildResult, LayerInfo
from core.build.secrets import (
    RedactingSink,
    build_secrets,
    persisted_secret_warnings,
    redact_error,
    redact_result,
    redacted_history,
)
from core.build.session import BuildSession
from core.build.steps import Progress, StageOutlook, run_stage, start_stage
from core.build.uploads import Uploads
from core.build.workdir import WorkDir, remove_tree
from core.cache.base import BaseLayerCache
from core.context.files import ContextFiles
from core.context.ignore import load_ignore
from core.context.source import ContextLimits, locate_dockerfile, resolve_context
from core.dockerfile import parse_dockerfile
from core.errors import BuildError, ContextError, UsageError
from core.image.platform import default_platform, parse_platform
from core.image.reference import Reference, Repository, parse_reference
from core.plan import BuildPlan, StageBase, StageProgram, plan_build
from core.redaction import SecretSet
from core.registry import RegistryClient

if TYPE_CHECKING:  # the sandbox modules are imported when a RUN step executes
    from core.run import Prober

log = logging.getLogger(__name__)


def run_build(options: BuildOptions, *, events: EventSink,
              registry: RegistryClient | None = None, prober: Prober | None = None,
              secrets: SecretSet | None = None) -> BuildResult:
    """Build the image `options` describe; raise a `BuildError` subclass on failure.
    `prober`: the RUN sandbox probe a process keeps across its builds (None: probe anew).
    `secrets`: the caller's secret set, filled with the build's (`core.build.secrets`);
    events, errors and the result leave here with every secret redacted."""
    check_options(options)
    known = build_secrets(options, into=secrets)
    redacting = RedactingSink(events, known)
    workdir = WorkDir.create(options.work_dir)
    try:
        return redact_result(_build(options, redacting, registry, workdir, prober), known)
    except BuildError as error:
        redact_error(error, known)
        raise
    finally:
        if options.cleanup:
            _remove(workdir)
        workdir.release()


def _remove(workdir: WorkDir) -> None:
    """Remove the work dir. A RUN's tree can be 100,000 files, seconds of unlinking that
    neither the result nor the caller waits for: a work dir of our own is renamed out of the
    way (so it is gone at once) and deleted by a detached `rm -rf`; secrets go first, in
    place. A given work dir (its cache is kept), or a rename that fails, is cleaned in place."""
    if not workdir.owned or os.geteuid() != 0 or shutil.which("rm") is None:
        workdir.cleanup()
        return
    remove_tree(workdir.secrets)
    trash = workdir.root.with_name(f".{workdir.root.name}.removing")
    try:
        os.rename(workdir.root, trash)
    except OSError:
        workdir.cleanup()
        return
    try:  # `sh` returns at once; the orphaned `rm` is reaped by init
        subprocess.run(["sh", "-c", 'rm -rf -- "$0" &', str(trash)], check=True,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, start_new_session=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        remove_tree(trash)  # any depth (a RUN's tree may be thousands of levels deep)


def check_options(options: BuildOptions) -> None:
    """Refuse option combinations that cannot work, before any work is done."""
    output = options.output
    if output.compression == "zstd" and output.image_format != "oci":
        raise UsageError("--compression=zstd needs --image-format=oci (Docker schema 2 "
                         "manifests cannot describe zstd layers)")
    if output.destinations and not output.no_push:
        for destination in output.destinations:
            parse_reference(destination)


def _build(options: BuildOptions, events: RedactingSink, registry: RegistryClient | None,
           workdir: WorkDir, prober: Prober | None) -> BuildResult:
    budget = DiskBudget.start(workdir.root, options.disk_budget, spool=workdir.layers)
    with naming_disk_errors("unpacking the context"):
        context = resolve_context(options.context, work_dir=workdir.root,
                                  sub_path=options.context_sub_path,
                                  limits=ContextLimits.for_space(budget.remaining(), workdir.root))
    budget.copy_bytes = tree_size(context.root)
    if context.root.resolve().is_relative_to(workdir.root.resolve()):
        budget.context_bytes = budget.copy_bytes
    budget.check("unpacking the context")
    dockerfile = locate_dockerfile(context, options.dockerfile)
    parsed = parse_dockerfile(_read(dockerfile), filename=options.dockerfile)
    host = default_platform(os.uname().machine)  # what platform.machine() reads
    target = parse_platform(options.platform) if options.platform else host
    plan = plan_build(parsed, build_args=options.build_args, target=options.target,
                      build_platform=host, target_platform=target, filename=options.dockerfile)
    destinations = [parse_reference(d) for d in options.output.destinations]
    own = registry is None
    client = registry if registry is not None else make_registry(
        options, plan, destinations, on_secret=events.learn)  # tokens are redacted by value
    try:
        ignore = load_ignore(context.root, dockerfile)
        tree = SourceTree(ContextFiles(context.root, ignore), "build context", owner=(0, 0))
        session = _session(options, events, client, workdir, tree, budget)
        session.prober = prober
        try:
            return _run(session, plan, destinations, client)
        finally:
            session.spool.close()
    finally:
        if own:
            client.close()


def _session(options: BuildOptions, events: EventSink, client: RegistryClient,
             workdir: WorkDir, context: SourceTree, budget: DiskBudget) -> BuildSession:
    epoch = options.source_date_epoch
    clamp = True
    if epoch is None and options.reproducible:
        epoch, clamp = 0, False
    output = options.output
    settings = LayerSettings(image_format=output.image_format, compression=output.compression,
                             level=output.compression_level, epoch=epoch, clamp=clamp)
    spool = LayerSpool(workdir.layers, client, uploads=Uploads(client, workdir.layers),
                       base_cache=_base_cache(options), budget=budget)
    return BuildSession(options=options, workdir=workdir, spool=spool, settings=settings,
                        context=context, events=events, images=ImageResolver(
                            client, mirrors=options.registry.registry_mirrors),
                        created=created_text(epoch) if epoch is not None else None)


def _run(session: BuildSession, plan: BuildPlan, destinations: list[Reference],
         client: RegistryClient) -> BuildResult:
    options = session.options
    assert session.images is not None
    plan, programs = stage_programs(plan, session.images)
    for warning in (*plan.warnings, *persisted_secret_warnings(programs, options)):
        session.warn(warning)
    cache = BuildCache.create(options, session.settings, client)
    progress = Progress(total=sum(1 + len(programs[i].steps) for i in plan.order))
    users = last_users(plan, programs)
    outlooks = _outlooks(plan, programs, options, _streams(options, destinations))
    for index in plan.order:
        state = start_stage(session, programs[index], last_user=users, progress=progress)
        session.stages[index] = state
        run_stage(session, state, programs[index], progress, outlook=outlooks[index],
                  cache=cache)
    result = _finish(session, plan, destinations, client, progress)
    if cache is not None:
        log.info("layer cache: %d hits, %d misses", cache.hits, cache.misses)
        extra = cache.take_warnings()
        for text in extra:
            session.warn(text)
        result = replace(result, warnings=(*result.warnings, *extra))
    return result


def _streams(options: BuildOptions, destinations: list[Reference]) -> tuple[Repository, ...]:
    """Where new layers of the image stream: the first destination repository per registry."""
    if options.output.no_push:
        return ()
    chosen: dict[str, Repository] = {}
    for ref in destinations:
        chosen.setdefault(ref.registry, ref.context())
    return tuple(chosen.values())


def _outlooks(plan: BuildPlan, programs: dict[int, StageProgram], options: BuildOptions,
              streams: tuple[Repository, ...]) -> dict[int, StageOutlook]:
    """Each stage's place: in the image (the target's FROM chain) or not, used later or not."""
    chain, index = set(), plan.target
    while True:
        chain.add(index)
        base = programs[index].stage.base
        if not isinstance(base, StageBase):
            break
        index = base.index
    used = {dep for i in plan.order for dep in programs[i].stage.dependencies}
    bases = {base.index for i in plan.order
             if isinstance(base := programs[i].stage.base, StageBase)}
    keep = options.output.tar_path is not None or options.output.oci_layout_path is not None
    return {i: StageOutlook(in_image=i in chain, dependents=i in used, stream_to=streams,
                            keep_layers=keep, is_base=i in bases) for i in plan.order}


def _base_cache(options: BuildOptions) -> BaseLayerCache | None:
    """The base layer cache in `CacheOptions.base_dir` (None: none, or a budget of 0), holding
    at most `base_budget` bytes and never more than a quarter of the space it could use (the
    file system's free space plus what the cache holds already)."""
    root, budget = options.cache.base_dir, options.cache.base_budget
    if root is None or budget <= 0:
        return None
    try:
        root.mkdir(parents=True, exist_ok=True)
        budget = min(budget, (free_bytes(root) + BaseLayerCache(root, 0).size()) // 4)
    except OSError as error:
        log.warning("base layer cache %s is not usable: %s", root, error)
        return None
    log.info("base layer cache %s (%s)", root, size_text(budget))
    return BaseLayerCache(root, budget)


def _finish(session: BuildSession, plan: BuildPlan, destinations: list[Reference],
            client: RegistryClient, progress: Progress) -> BuildResult:
    options = session.options
    state = session.stages[plan.target]
    platform = parse_platform(options.platform) if options.platform else None
    image = final_config(state.config.image, created=session.created or created_text(None),
                         labels=options.labels, platform=platform)
    image = redacted_history(image, options)
    built = assemble(image, state.tree.layers, image_format=options.output.image_format)
    session.check_deadline("pushing the image")
    with naming_disk_errors("writing the image's local outputs"):  # before any tag is pushed
        write_local(built, options.output, spool=session.spool, tags=destinations)
    pushed: list[str] = []
    if destinations and not options.output.no_push:
        pushed = push(built, destinations, spool=session.spool, registry=client,
                      events=session.events)
    elif session.spool.uploads is not None:
        session.spool.uploads.wait()  # cache entries still being written
    write_digest_files(options.output, built.digest, destinations)
    layers = tuple(LayerInfo(digest=layer.digest, diff_id=layer.diff_id, size=layer.size,
                             media_type=layer.descriptor.media_type,
                             created_by=layer.created_by) for layer in built.layers)
    return BuildResult(digest=built.digest, media_type=built.media_type,
                       config_digest=built.config_descriptor.digest,
                       destinations=tuple(pushed), layers=layers,
                       steps=tuple(progress.timings),
                       sandbox=session.sandbox.name if session.sandbox else None,
                       warnings=tuple(session.warnings),
                       sandbox_probe=session.probe_lines())


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise ContextError(f"cannot read Dockerfile {os.fspath(path)!r}: "
                           f"{error.strerror or error}") from None


__all__ = ["check_options", "run_build"]
