"""The layer cache in a build: keys for every step, lookups before RUN/COPY/ADD, entries after.

What a step's key holds (on top of its parent's key, see `core.cache.keys`):
- every step: the expanded instruction (heredoc bodies included) and, for ONBUILD triggers,
  that they are one; the working directory;
- RUN: the environment it sees (ENV, ARGs in scope, proxy args), the build args its history
  lists, USER and SHELL, ignored paths, and each mount's source: the key of a `from` stage, the
  digest of a `from` image, or the digests of the context files a bind mount exposes;
- COPY/ADD: the variables its expansion read, and the files it reads: names, modes and content
  digests of the context files matched (or the key / digest of the `--from` stage / image).
  ADD of a URL is cacheable only with `--checksum` (the remote content is not known before).
Secret build arg values never enter a key as they are: a slow, salted hash stands for each
(`core.cache.secret_inputs`), so a public key cannot be used to test guesses cheaply.
Probing continues after a miss: each step is looked up. Keys chain on inputs, never on a
step's result, so a stage's keys are all known when it starts: their lookups run then, a few at
a time on a small pool, and each step takes its answer in order. A hit appends the cached layer
to the stage (applied to the tree only if the tree is on disk, else when a later step needs
it). A miss's layer is stored after the step: the tiny cache image goes to the cache
repository in the background once the layer's upload is done (mounted or copied there, never
compressed again), or to the OCI layout at once. Writing the cache never fails the build;
failures are warnings.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextvars import copy_context
from datetime import UTC, datetime
from pathlib import Path

from core.build.budget import size_text
from core.build.config_steps import CONFIG_INSTRUCTIONS, ConfigState, apply_config
from core.build.copy_sources import SourceTree, match_sources, walk_directory
from core.build.layers import Layer, LayerSettings
from core.build.options import BuildOptions
from core.build.outputs import place_blob
from core.build.secrets import secret_arg_values
from core.build.session import BuildSession
from core.build.stage import StageState
from core.cache.keys import chain_key
from core.cache.secret_inputs import SecretInputs, secret_salt
from core.cache.store import (
    CacheEntry,
    CacheStore,
    OciCacheStore,
    RegistryCacheStore,
    cache_image,
)
from core.context.files import file_digest
from core.context.ignore import compile_patterns
from core.dockerfile.instructions import (
    AddInstruction,
    CopyInstruction,
    RunInstruction,
    WorkdirInstruction,
)
from core.errors import BuildError
from core.image.config import ContainerConfig
from core.image.manifest import Platform
from core.image.reference import Repository, parse_repository
from core.plan import ScratchBase, Source, StageBase, StageProgram, Step
from core.registry import RegistryClient

log = logging.getLogger(__name__)


_FILE_STEPS = (RunInstruction, CopyInstruction, AddInstruction, WorkdirInstruction)
#: lookups of one stage that run at the same time (each is 3 small requests)
_LOOKUP_THREADS = 4


class _NotCacheable(Exception):
    """A step whose inputs cannot all be known before it runs."""


class BuildCache:
    """The layer cache as one build uses it (build thread; `warnings` is thread-safe)."""

    def __init__(self, store: CacheStore, options: BuildOptions, settings: LayerSettings,
                 registry: Repository | None) -> None:
        self.store = store
        self.options = options
        self.repository = registry  # the cache repository when it is a registry's
        self.settings = {"format": settings.image_format, "compression": settings.compression,
                         "level": settings.level, "epoch": settings.epoch,
                         "clamp": settings.clamp, "snapshot": options.snapshot_mode}
        self.stage_keys: dict[int, str] = {}
        self.secrets = SecretInputs(secret_arg_values(options), salt=secret_salt(
            str(registry) if registry is not None else ""))
        self.broken: set[int] = set()  # stages whose chain has an unknowable input
        self.hits = 0
        self.misses = 0
        self._pending: dict[str, Future[CacheEntry | None]] = {}  # lookups started early
        self._digests: dict[tuple[int, str], tuple[Step, object]] = {}  # context reads
        self._warnings: list[str] = []
        self._lock = threading.Lock()

    @classmethod
    def create(cls, options: BuildOptions, settings: LayerSettings,
               client: RegistryClient) -> BuildCache | None:
        cache = options.cache
        if not cache.enabled or cache.repo is None:
            return None
        if options.single_snapshot:
            log.warning("--cache is not used with --single-snapshot (no per-step layers)")
            return None
        if cache.repo.startswith("oci:"):
            return cls(OciCacheStore(Path(cache.repo[4:])), options, settings, None)
        repository = parse_repository(cache.repo)
        return cls(RegistryCacheStore(client, repository), options, settings, repository)

    # --- keys ---------------------------------------------------------------------------

    def start(self, session: BuildSession, state: StageState, program: StageProgram) -> str:
        """The key a stage starts from."""
        try:
            origin = self._origin(session, program.stage.base)
        except _NotCacheable:
            origin = os.urandom(16).hex()
            self.broken.add(state.index)
        key = chain_key("", "stage", {"base": origin, "platform": state.platform,
                                      "settings": self.settings})
        self.stage_keys[state.index] = key
        self._prefetch(session, state.index, state.config, program, key)
        return key

    def step_key(self, session: BuildSession, state: StageState, step: Step,
                 parent: str) -> tuple[str, bool]:
        """(the step's key, whether its layer may come from the cache); the key also
        becomes the stage's latest key. Config-only steps keep their parent's key: what they
        change reaches the file steps after them through those steps' own inputs (the
        environment a RUN sees, USER, SHELL, the working directory)."""
        if not isinstance(step.instruction, _FILE_STEPS):
            return parent, False
        cacheable = self._wanted(step) and state.index not in self.broken
        try:
            key = self._chain(session, state.config.config, step, parent)
        except _NotCacheable as why:
            log.info("not cached from here on: %s", why)
            inputs = {**_step_facts(step), "uncacheable": os.urandom(16).hex()}
            key = chain_key(parent, step.instruction.keyword, self.secrets.hide(inputs))
            self.broken.add(state.index)
            cacheable = False
        self.stage_keys[state.index] = key
        return key, cacheable

    def _chain(self, session: BuildSession, config: ContainerConfig, step: Step,
               parent: str) -> str:
        inputs = {**_step_facts(step), **self._inputs(session, config, step)}
        return chain_key(parent, step.instruction.keyword, self.secrets.hide(inputs))

    def _planned_keys(self, session: BuildSession, config: ConfigState,
                      program: StageProgram, key: str) -> Iterator[str]:
        """The keys `step_key` will give the stage's cacheable steps, as far as they can be
        known before the first runs (without its side effects: no log, no `broken`)."""
        try:
            for step in program.steps:
                instruction = step.instruction
                if isinstance(instruction, CONFIG_INSTRUCTIONS):
                    config = apply_config(config, instruction, created=session.created)
                elif isinstance(instruction, _FILE_STEPS):
                    key = self._chain(session, config.config, step, key)
                    if self._wanted(step):
                        yield key
        except Exception:  # a guess only: the step itself meets (and reports) the error
            return

    def _prefetch(self, session: BuildSession, index: int, config: ConfigState,
                  program: StageProgram, key: str) -> None:
        """Start the lookups of the stage's cacheable steps, a few at a time."""
        if index in self.broken:
            return
        keys = [k for k in self._planned_keys(session, config, program, key)
                if k not in self._pending]
        if not keys:
            return
        ttl = float(self.options.cache.ttl_seconds)
        pool = ThreadPoolExecutor(max_workers=min(_LOOKUP_THREADS, len(keys)),
                                  thread_name_prefix="cache-lookup")
        for k in keys:
            self._pending[k] = pool.submit(copy_context().run, self.store.lookup, k, ttl=ttl)
        pool.shutdown(wait=False)  # the threads end when the last lookup is done

    def _wanted(self, step: Step) -> bool:
        instruction = step.instruction
        if isinstance(instruction, RunInstruction):
            return self.options.cache.run_layers
        if isinstance(instruction, (CopyInstruction, AddInstruction)):
            return self.options.cache.copy_layers
        return False

    def _inputs(self, session: BuildSession, config: ContainerConfig, step: Step,
                ) -> dict[str, object]:
        """What a file step adds to its key (`config`: the stage's config before it)."""
        instruction = step.instruction
        if isinstance(instruction, RunInstruction):
            mounts = [self._mount_input(session, step, n, mount.source, source)
                      if mount.type == "bind" else None
                      for n, (mount, source) in enumerate(zip(
                          instruction.mounts, step.mount_sources, strict=False))]
            return {"env": dict(step.env), "build_args": step.build_args,
                    "user": config.user, "shell": config.shell, "mounts": mounts,
                    "ignore": sorted(self.options.ignore_paths)}
        if isinstance(instruction, (CopyInstruction, AddInstruction)):
            return {"used": dict(step.used), "sources": self._copy_sources(session, step)}
        return {"user": config.user}

    def _origin(self, session: BuildSession, source: Source) -> str:
        if isinstance(source, ScratchBase):
            return "scratch"
        if isinstance(source, StageBase):
            key = self.stage_keys.get(source.index)
            if key is None or source.index in self.broken:
                raise _NotCacheable(f"stage {source.index} has no cache key")
            return f"stage:{key}"
        assert session.images is not None
        return session.images.resolve(source).digest

    def _mount_input(self, session: BuildSession, step: Step, number: int, path: str,
                     source: Source | None) -> object:
        if source is not None:
            return {"from": self._origin(session, source), "path": path}
        return {"context": self._context(session, step, f"mount {number}", [path or "."], ())}

    def _copy_sources(self, session: BuildSession, step: Step) -> object:
        instruction = step.instruction
        assert isinstance(instruction, (CopyInstruction, AddInstruction))
        if isinstance(instruction, CopyInstruction) and instruction.from_:
            if step.source is None:
                raise _NotCacheable("COPY --from without a resolved source")
            return {"from": self._origin(session, step.source)}
        if isinstance(instruction, AddInstruction) and any(
                "://" in word for word in instruction.sources) and not instruction.checksum:
            raise _NotCacheable("ADD of a URL without --checksum")
        words = [w for w in instruction.sources if "://" not in w]
        return self._context(session, step, "sources", words, instruction.excludes)

    def _context(self, session: BuildSession, step: Step, part: str, words: list[str],
                 excludes: tuple[str, ...]) -> object:
        """`_tree_digests` of a step's context files, read once per build (the planned
        keys and the step's own key both need them)."""
        known = self._digests.get((id(step), part))
        if known is None or known[0] is not step:
            known = (step, _tree_digests(session.context, words, excludes))
            self._digests[(id(step), part)] = known
        return known[1]

    # --- lookups and entries ------------------------------------------------------------

    def lookup(self, key: str) -> Layer | None:
        """The cached layer for `key`, if there is a valid one."""
        started = self._pending.pop(key, None)
        entry = started.result() if started is not None else \
            self.store.lookup(key, ttl=float(self.options.cache.ttl_seconds))
        if entry is None:
            self.misses += 1
            log.info("cache miss %s", key[:12])
            return None
        self.hits += 1
        log.info("cache hit %s: %s (%s)", key[:12], entry.descriptor.digest,
                 size_text(entry.descriptor.size))
        return _layer(entry, self.repository)

    def save(self, session: BuildSession, key: str, layer: Layer, platform: Platform) -> None:
        """Store a new layer under `key` (in the background for a registry cache)."""
        image = cache_image(key, layer.descriptor, layer.diff_id, created_by=layer.created_by,
                            platform=platform, now=datetime.now(UTC),
                            oci=self.repository is None
                            or self.settings["format"] == "oci")
        spool = session.spool
        if self.repository is None:
            self._guarded(key, lambda: self.store.save(key, image, spool.local(layer).path))
            return
        repository = self.repository
        registry = spool.registry
        assert registry is not None and spool.uploads is not None

        def task() -> None:
            place_blob(layer, repository, spool=spool, registry=registry)
            self.store.save(key, image, None)

        spool.uploads.after([layer.digest], lambda: self._guarded(key, task))

    def _guarded(self, key: str, action: Callable[[], None]) -> None:
        try:
            action()
            log.info("cached layer under %s in %s", key[:12], self.store.describe())
        except (BuildError, OSError) as error:
            text = f"could not write the layer cache ({self.store.describe()}): {error}"
            log.warning("%s", text)
            with self._lock:
                self._warnings.append(text)

    def take_warnings(self) -> list[str]:
        with self._lock:
            taken, self._warnings = self._warnings, []
        return taken

    def stream_target(self) -> Repository | None:
        """Where a miss's layer should also stream (a registry cache repository)."""
        return self.repository


def apply_hit(session: BuildSession, state: StageState, layer: Layer) -> None:
    """Add a cached layer to the stage: extracted at once if the tree is on disk (or folded
    into its known headers), else only when a later step needs the tree."""
    state.tree.add_layer(layer, session.spool)


def _step_facts(step: Step) -> dict[str, object]:
    """What every file step's key holds."""
    return {"instruction": step.instruction, "onbuild": step.onbuild, "workdir": step.workdir}


def _layer(entry: CacheEntry, repository: Repository | None) -> Layer:
    return Layer(entry.descriptor, entry.diff_id, created_by=entry.created_by,
                 remote=repository, path=entry.path)


def _tree_digests(tree: SourceTree, words: list[str], excludes: tuple[str, ...]) -> object:
    """Names, modes and content digests of what `words` match in `tree`."""
    matcher = compile_patterns(list(excludes), source="--exclude")
    found: list[object] = []
    for word in words:
        for item in match_sources(tree, word):
            if not item.is_dir:
                found.append([word, item.name, _file_facts(item.path)])
                continue
            entries = [[entry.subpath, *(_entry_facts(entry.path, entry.st))]
                       for entry in walk_directory(item, excludes=matcher)]
            found.append([word, item.name, "dir", entries])
    return found


def _file_facts(path: os.PathLike[str]) -> list[object]:
    st = os.stat(path)
    return [st.st_mode & 0o7777, file_digest(Path(path))]


def _entry_facts(path: os.PathLike[str], st: os.stat_result) -> Iterator[object]:
    kind = st.st_mode & 0o170000
    yield kind
    yield st.st_mode & 0o7777
    if kind == 0o100000:
        yield file_digest(Path(path))
    elif kind == 0o120000:
        yield os.readlink(path)

