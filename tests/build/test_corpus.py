"""The issue-4 corpus: every case of `tests/build/corpus/` built by `bucketbuild build`.

Each case is built through the CLI (a subprocess) and pushed to a real registry, then unpacked
with skopeo + umoci and compared file by file and field by field with the same Dockerfile built
by buildah, where buildah does what BuildKit does; where it does not, with the expectations
written in the case's `expect.json` (its `why` or `departure.why` names the departure). See
`tests/build/corpus/harness.py` for the layout of a case and `tests/build/compare.py` for what
a comparison looks at.

Also here: images run (`buildah run` of our pushed image prints what the Dockerfile made),
`--reproducible` gives the same digest twice, and failing builds push no tag.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.build.compare import (
    Tree,
    config_differences,
    config_fields,
    history_differences,
    layer_blobs,
    layer_entries,
    layer_holds,
    platform_differences,
    tree_differences,
    without,
)
from tests.build.corpus.harness import (
    Buildah,
    Case,
    Outcome,
    Unpacked,
    all_cases,
    build_ours,
    image_config,
    image_exists,
    render_context,
    unpack,
)
from tests.fixtures.images import require_tools
from tests.fixtures.registry import RegistryServer

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="RUN steps (ours: chroot; buildah: chroot) need root")

CASES = all_cases()


def _params(cases: list[Case]) -> list[Any]:
    return [pytest.param(case, id=case.name, marks=[pytest.mark.slow] if case.slow else [])
            for case in cases]


@dataclass(frozen=True)
class Parent:
    """An image a case builds first (`prebuild`), as each builder made it."""

    dockerfile: str
    ours: str
    reference: str | None


@dataclass
class CaseBuild:
    """Both builds of one case (the reference is None for written-expectation cases)."""

    ours: Outcome
    reference: Outcome | None
    context: Path
    parents: list[Parent] = field(default_factory=list)


@dataclass(frozen=True)
class Prepared:
    """A case's rendered context and secret files, shared by every build of it."""

    context: Path
    secrets: dict[str, Path]


BuilderRun = tuple[Outcome, list[str]]  # the main build, and the parents' images


@dataclass
class Corpus:
    """The session's registry, corpus base image and buildah storage.

    Reference builds are the slow part (buildah commits every step by copying the tree), so
    the session starts them all at once in the background (`prefetch`, two at a time) while
    the tests build with bucketbuild and compare. Builds are memoised: the run checks and
    the flag tests reuse what the comparison built."""

    registry: str
    base: str
    buildah: Buildah
    tmp: Path
    builds: dict[str, CaseBuild] = field(default_factory=dict)
    prepared: dict[str, Prepared] = field(default_factory=dict)
    references: dict[str, Future[BuilderRun]] = field(default_factory=dict)
    pool: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(2))
    lock: threading.Lock = field(default_factory=threading.Lock)
    counter: int = 0

    def scratch(self, name: str) -> Path:
        with self.lock:
            self.counter += 1
            return self.tmp / f"{name}-{self.counter}"

    def image(self, name: str, builder: str) -> str:
        return f"{self.registry}/corpus/{name.lower()}:{builder}"

    def prepare(self, case: Case) -> Prepared:
        with self.lock:
            found = self.prepared.get(case.name)
        if found is None:
            context = render_context(case, self.scratch(f"ctx-{case.name}"),
                                     registry=self.registry)
            found = Prepared(context, self._write_secrets(case))
            with self.lock:
                found = self.prepared.setdefault(case.name, found)
        return found

    def prefetch(self, cases: list[Case]) -> None:
        """Start the reference builds of `cases` (those compared with buildah)."""
        for case in cases:
            if case.reference == "buildah" and case.name not in self.references:
                prepared = self.prepare(case)
                self.references[case.name] = self.pool.submit(
                    self._build_with, "buildah", case, prepared)

    def build(self, case: Case) -> CaseBuild:
        """Both builds of `case`: ours now, the reference from the background."""
        if case.name not in self.builds:
            prepared = self.prepare(case)
            self.prefetch([case])
            ours, our_parents = self._build_with("ours", case, prepared)
            reference: Outcome | None = None
            their_parents: list[str] = []
            if case.name in self.references:
                reference, their_parents = self.references[case.name].result()
            parents = [Parent(p.dockerfile, mine, their_parents[n] if their_parents else None)
                       for n, (p, mine) in enumerate(zip(case.prebuild, our_parents,
                                                         strict=True))]
            self.builds[case.name] = CaseBuild(ours, reference, prepared.context, parents)
        return self.builds[case.name]

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    def _write_secrets(self, case: Case) -> dict[str, Path]:
        """The case's secrets written to files (for `--secret id=ID,src=FILE`)."""
        directory = self.scratch(f"secrets-{case.name}")
        directory.mkdir()
        paths = {}
        for name, value in case.secrets.items():
            paths[name] = directory / name
            paths[name].write_text(value)
        return paths

    def build_args(self, case: Case) -> dict[str, str]:
        return {"BASE": self.base, **case.build_args}

    def _build_with(self, builder: str, case: Case, prepared: Prepared) -> BuilderRun:
        args = self.build_args(case)
        parents = []
        for prebuild in case.prebuild:
            stem = prebuild.dockerfile.replace(".", "-")
            image = self.image(f"{case.name}-{stem}", builder)
            self._one(builder, prepared, prebuild.dockerfile, image, args, None).check()
            args[prebuild.arg] = image
            parents.append(image)
        outcome = self._one(builder, prepared, "Dockerfile", self.image(case.name, builder),
                            args, case)
        return outcome, parents

    def _one(self, builder: str, prepared: Prepared, dockerfile: str, image: str,
             args: dict[str, str], case: Case | None) -> Outcome:
        """One build; `case` is None for a prebuild (no target, no labels)."""
        target = case.target if case else None
        labels = case.labels if case else {}
        if builder == "buildah":
            return self.buildah.build(prepared.context, dockerfile, image, build_args=args,
                                      secrets=prepared.secrets, labels=labels, target=target)
        return build_ours(prepared.context, dockerfile, image, registry=self.registry,
                          build_args=args, secrets=prepared.secrets, labels=labels,
                          target=target)

    def unpack(self, image: str) -> Unpacked:
        return unpack(image, self.scratch("unpack"))


def make_corpus_base(buildah: Buildah, registry: str, busybox: str) -> str:
    """busybox with every applet linked in /bin, made by buildah and pushed once."""
    container = buildah("from", "--quiet", "--tls-verify=false", f"docker://{busybox}")
    buildah("run", "--isolation", "chroot", container, "--", "/bin/busybox", "--install", "-s",
            "/bin")
    buildah("commit", "--quiet", container, "localhost/corpus-base:latest")
    buildah("rm", container)
    image = f"{registry}/corpus/base:busybox"
    buildah("push", "--quiet", "--tls-verify=false", "localhost/corpus-base:latest",
            f"docker://{image}")
    return image


def _selected_cases(request: pytest.FixtureRequest) -> list[Case]:
    """The corpus cases the tests selected for this session use (after -k and -m)."""
    names: set[str] = set()
    for item in request.session.items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        case = params.get("case")
        names.update([case.name] if isinstance(case, Case) else [])
        names.update([params["name"]] if isinstance(params.get("name"), str) else [])
    return [case for case in CASES if case.name in names]


@pytest.fixture(scope="session")
def corpus(request: pytest.FixtureRequest, registry: RegistryServer, base_images: Any,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Corpus]:
    require_tools("buildah", "skopeo", "umoci")
    tmp = tmp_path_factory.mktemp("corpus")
    buildah = Buildah(tmp / "buildah")
    base = make_corpus_base(buildah, registry.host, f"{registry.host}/{base_images.docker_gzip}")
    corpus = Corpus(registry.host, base, buildah, tmp)
    corpus.prefetch(_selected_cases(request))
    try:
        yield corpus
    finally:
        corpus.close()
        shutil.rmtree(buildah.root, ignore_errors=True)  # vfs copies: hundreds of MB


# --- checks -------------------------------------------------------------------------------


def _expected_problems(case: Case, tree: Tree, config: dict[str, Any]) -> list[str]:
    """Where our image differs from the case's written expectations."""
    problems = []
    for path, want in case.expect.files.items():
        entry = tree.get(path.strip("/"))
        if entry is None:
            problems.append(f"{path}: missing, expected {dict(want)}")
            continue
        got = {"kind": entry.kind, "mode": f"{entry.mode:04o}", "uid": entry.uid,
               "gid": entry.gid, "size": entry.size, "target": entry.target,
               "links": list(entry.links), "rdev": entry.rdev}
        for key, value in want.items():
            if key == "content":
                continue
            if got[key] != value:
                problems.append(f"{path}: {key} is {got[key]!r}, expected {value!r}")
    problems += [f"{path}: exists, expected absent" for path in case.expect.absent
                 if path.strip("/") in tree]
    fields = config_fields(config, case.expect.config)
    problems += [f"config {name}: {fields[name]!r}, expected {value!r}"
                 for name, value in case.expect.config.items() if fields[name] != value]
    if case.expect.history is not None:
        history = [(h.get("created_by", ""), bool(h.get("empty_layer", False)))
                   for h in config.get("history", [])]
        tail = history[-len(case.expect.history):]
        if tail != list(case.expect.history):
            problems.append(f"history ends {tail}, expected {list(case.expect.history)}")
    return problems


def _content_problems(case: Case, rootfs: Path) -> list[str]:
    problems = []
    for path, want in case.expect.files.items():
        if "content" not in want:
            continue
        target = rootfs / path.strip("/")
        text = target.read_text() if target.is_file() and not target.is_symlink() else None
        if text != want["content"]:
            problems.append(f"{path}: content {text!r}, expected {want['content']!r}")
    return problems


def _layer_problems(case: Case, ours: Unpacked) -> list[str]:
    """Layers whose entries are not the written ones; secrets found in any layer."""
    blobs = layer_blobs(ours.layout)
    problems = []
    for index, wanted in case.expect.layers.items():
        entries = layer_entries(blobs[index])
        if sorted(entries) != sorted(wanted):
            problems.append(f"layer {index}: entries {sorted(entries)}, "
                            f"expected {sorted(wanted)}")
    for name, value in case.secrets.items():
        for number, blob in enumerate(blobs):
            leaked = layer_holds(blob, value.encode())
            if leaked:
                problems.append(f"secret {name} is in layer {number}: {leaked}")
    return problems


def _reference_problems(case: Case, corpus: Corpus, ours: str, theirs: str,
                        ours_tree: Tree | None = None) -> list[str]:
    """Where our image differs from buildah's, outside the departures the case declares."""
    mine = ours_tree if ours_tree is not None else corpus.unpack(ours).tree
    other = corpus.unpack(theirs).tree
    config, theirs_config = image_config(ours), image_config(theirs)
    departure = case.departure
    skipped_paths = departure.paths if departure else ()
    skipped_fields = set(departure.fields) if departure else set()
    problems = tree_differences(without(mine, skipped_paths), without(other, skipped_paths))
    fields = [f for f in config_fields(config) if f not in skipped_fields]
    problems += config_differences(config, theirs_config, fields)
    problems += platform_differences(config, theirs_config)
    if not (departure and departure.history):
        problems += history_differences(config, theirs_config)
    return problems


@pytest.mark.parametrize("case", _params([c for c in CASES if c.failure is None]))
def test_case_matches_its_reference(corpus: Corpus, case: Case) -> None:
    build = corpus.build(case)
    image = build.ours.check()
    ours = corpus.unpack(image)
    config = image_config(image)
    problems = []
    if build.reference is not None:
        theirs = build.reference.check()
        problems += _reference_problems(case, corpus, image, theirs, ours.tree)
    for parent in build.parents:
        if parent.reference is not None:
            problems += [f"{parent.dockerfile}: {problem}" for problem in
                         _reference_problems(case, corpus, parent.ours, parent.reference)]
    problems += _expected_problems(case, ours.tree, config)
    problems += _content_problems(case, ours.rootfs)
    problems += _layer_problems(case, ours)
    for name, value in case.secrets.items():
        if value in str(config):
            problems.append(f"secret {name} is in the image config")
    assert not problems, f"{case.name}:\n" + "\n".join(problems)


@pytest.mark.parametrize("case", _params([c for c in CASES if c.failure is not None]))
def test_failing_case_pushes_nothing(corpus: Corpus, case: Case) -> None:
    assert case.failure is not None
    outcome = corpus.build(case).ours
    assert outcome.returncode == case.failure.exit_code, outcome.stderr
    assert outcome.stdout == ""
    for text in case.failure.stderr:
        assert text in outcome.stderr
    assert not image_exists(corpus.image(case.name, "ours"))


@pytest.mark.parametrize("case", _params([c for c in CASES if c.run is not None]))
def test_image_runs(corpus: Corpus, case: Case) -> None:
    assert case.run is not None
    image = corpus.build(case).ours.check()
    argv = case.run.argv
    if argv is None:
        container = image_config(image)["config"]
        argv = tuple((container.get("Entrypoint") or []) + (container.get("Cmd") or []))
    assert corpus.buildah.run_image(image, argv) == case.run.stdout


# --- flags over corpus cases --------------------------------------------------------------

REPRODUCIBLE_CASES = ("multistage", "heredocs", "add_archives")
EPOCH_ZERO = "1970-01-01T00:00:00Z"


def _case(name: str) -> Case:
    return next(case for case in CASES if case.name == name)


def _build_again(corpus: Corpus, case: Case, tag: str, *flags: str) -> Outcome:
    """Another build of `case` by us (from the context the comparison used), with `flags`."""
    build = corpus.build(case)
    args = corpus.build_args(case)
    for prebuild, parent in zip(case.prebuild, build.parents, strict=True):
        args[prebuild.arg] = parent.ours
    return build_ours(build.context, "Dockerfile", corpus.image(case.name, tag),
                      registry=corpus.registry, build_args=args,
                      secrets=corpus.prepare(case).secrets, labels=case.labels,
                      target=case.target, extra=flags)


@pytest.mark.parametrize("name", REPRODUCIBLE_CASES)
def test_reproducible_builds_have_one_digest(corpus: Corpus, name: str) -> None:
    case = _case(name)
    first = _build_again(corpus, case, "reproducible-1", "--reproducible")
    second = _build_again(corpus, case, "reproducible-2", "--reproducible")
    digest = first.stdout.strip()
    assert digest.startswith("sha256:"), first.stderr
    assert second.stdout.strip() == digest
    assert image_config(first.check())["created"] == EPOCH_ZERO
    ours = corpus.unpack(corpus.build(case).ours.check()).tree
    assert tree_differences(ours, corpus.unpack(first.check()).tree) == []


VARIANTS = {
    "single-snapshot": ("--single-snapshot",),
    "snapshot-full": ("--snapshot-mode=full",),
    "snapshot-time": ("--snapshot-mode=time",),
    "oci": ("--image-format=oci",),
}
VARIANT_CASES = ("whiteouts", "hardlinks", "user_workdir", "run_mounts")


@pytest.mark.slow
@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("name", VARIANT_CASES)
def test_build_flags_give_the_same_image(corpus: Corpus, name: str, variant: str) -> None:
    """The corpus case built with a layer/format flag holds the same tree and config."""
    case = _case(name)
    ours = corpus.build(case).ours.check()
    other = _build_again(corpus, case, f"variant-{variant}", *VARIANTS[variant]).check()
    differences = tree_differences(corpus.unpack(ours).tree, corpus.unpack(other).tree)
    differences += config_differences(image_config(ours), image_config(other))
    assert differences == []
