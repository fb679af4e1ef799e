"""The corpus harness: cases on disk, both builders, and what each build left in the registry.

A case is a directory of `tests/build/corpus/`: a `Dockerfile`, the context files it uses
(`.dockerignore` included) and an optional `expect.json` (see `Case`). Before a build the
case is copied to a temp context (`expect.json` left out, modes normalised to 0644/0755 so a
checkout's umask cannot matter) and `@REGISTRY@` in its Dockerfiles becomes the test
registry's `host:port` (for the few places a literal image reference is needed: `COPY
--from=IMAGE`, where BuildKit refuses variables). Every build gets `--build-arg BASE=...`,
the corpus base image: busybox with every applet linked, made by buildah once per session.

Our builds go through the `bucketbuild build` command as a subprocess; reference builds
through `buildah build --layers --isolation chroot --format docker` with one vfs storage for
the whole session (so the base is pulled once and layers are reused), then `buildah push`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tests.build.compare import Tree, scan_tree
from tests.fixtures.images import run, skopeo_unpack

CORPUS = Path(__file__).resolve().parent
REPO = CORPUS.parents[2]
REGISTRY_TOKEN = "@REGISTRY@"
BUILD_TIMEOUT = 300
CONTEXT_EPOCH = 1_700_000_000  # mtimes of context files: this, plus one second per file

Builder = Literal["ours", "buildah"]


@dataclass(frozen=True)
class Prebuild:
    """An image each builder makes first (from another Dockerfile of the case); the main
    build receives its reference as the build arg `arg`."""

    dockerfile: str
    arg: str


@dataclass(frozen=True)
class Failure:
    """A build that must fail: its exit code and texts its stderr must contain."""

    exit_code: int
    stderr: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunCheck:
    """`buildah run` of our image: `argv` (None: the image's ENTRYPOINT + CMD) prints
    `stdout`."""

    argv: tuple[str, ...] | None
    stdout: str


@dataclass(frozen=True)
class Departure:
    """Where buildah departs from BuildKit in a buildah-compared case: paths and config
    fields left out of the comparison (written expectations cover them), and why."""

    why: str
    paths: tuple[str, ...] = ()
    fields: tuple[str, ...] = ()
    history: bool = False  # True: the history pattern is not compared either


@dataclass(frozen=True)
class Expectations:
    """What our image must hold, written down (checked in every case that has them).

    `files`: path -> any of kind, mode (octal text), uid, gid, size, content (text), target,
    links (the other paths of its hardlink group), rdev ("major:minor");
    `absent`: paths that must not exist; `config`: container-config fields, exactly;
    `history`: the last entries of the history as [created_by, empty_layer] pairs;
    `layers`: the entry names of single layers (`index` counts from the end when negative),
    exactly, in any order."""

    files: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    absent: tuple[str, ...] = ()
    config: Mapping[str, Any] = field(default_factory=dict)
    history: tuple[tuple[str, bool], ...] | None = None
    layers: Mapping[int, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Case:
    name: str
    directory: Path
    reference: Literal["buildah", "expected"] = "buildah"
    why: str = ""  # for reference "expected": which departure of buildah rules it out
    build_args: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)  # --label KEY=VALUE
    secrets: Mapping[str, str] = field(default_factory=dict)
    # modes and owners given to context files after the copy (git keeps neither)
    context_attrs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    target: str | None = None
    prebuild: tuple[Prebuild, ...] = ()
    departure: Departure | None = None
    expect: Expectations = field(default_factory=Expectations)
    run: RunCheck | None = None
    failure: Failure | None = None
    slow: bool = False

    @classmethod
    def load(cls, directory: Path) -> Case:
        """The case in `directory`, from its `expect.json` (all defaults without one)."""
        spec_path = directory / "expect.json"
        spec: dict[str, Any] = json.loads(spec_path.read_text()) if spec_path.exists() else {}
        unknown = set(spec) - _CASE_KEYS
        if unknown:
            raise ValueError(f"corpus case {directory.name}: unknown keys {sorted(unknown)}")
        run_spec, failure = spec.get("run"), spec.get("failure")
        case = cls(
            name=directory.name, directory=directory,
            reference=spec.get("reference", "buildah"), why=spec.get("why", ""),
            build_args=spec.get("build_args", {}), labels=spec.get("labels", {}),
            secrets=spec.get("secrets", {}), context_attrs=spec.get("context_attrs", {}),
            target=spec.get("target"),
            prebuild=tuple(Prebuild(p["dockerfile"], p["arg"])
                           for p in spec.get("prebuild", [])),
            departure=_departure(spec["departure"]) if "departure" in spec else None,
            expect=_expectations(spec.get("expect", {})),
            run=RunCheck(tuple(run_spec["argv"]) if run_spec.get("argv") else None,
                         run_spec["stdout"]) if run_spec else None,
            failure=Failure(failure["exit_code"], tuple(failure.get("stderr", [])))
            if failure else None,
            slow=spec.get("slow", False))
        if case.reference == "expected" and not case.why:
            raise ValueError(f"corpus case {case.name}: written expectations need a 'why'")
        return case


_CASE_KEYS = frozenset({"reference", "why", "build_args", "labels", "secrets", "context_attrs",
                        "target", "prebuild", "departure", "expect", "run", "failure", "slow"})


def _departure(spec: Mapping[str, Any]) -> Departure:
    return Departure(spec["why"], tuple(spec.get("paths", [])), tuple(spec.get("fields", [])),
                     spec.get("history", False))


def _expectations(spec: Mapping[str, Any]) -> Expectations:
    history = spec.get("history")
    return Expectations(
        files=spec.get("files", {}), absent=tuple(spec.get("absent", [])),
        config=spec.get("config", {}),
        history=tuple((text, empty) for text, empty in history) if history is not None
        else None,
        layers={layer["index"]: tuple(layer["entries"]) for layer in spec.get("layers", [])})


def all_cases() -> list[Case]:
    return [Case.load(d) for d in sorted(CORPUS.iterdir())
            if d.is_dir() and (d / "Dockerfile").exists()]


def render_context(case: Case, destination: Path, *, registry: str) -> Path:
    """A copy of the case's context with `@REGISTRY@` replaced, modes normalised and every
    file given its own mtime.

    Distinct mtimes matter to the reference: buildah's vfs driver finds a layer's changes by
    comparing size and mtime, so copying a file over another of the same size and mtime
    (which COPY keeps from the context) would look like no change at all.
    """
    shutil.copytree(case.directory, destination, symlinks=True,
                    ignore=shutil.ignore_patterns("expect.json", "__pycache__"))
    files = sorted(path for path in destination.rglob("*") if not path.is_symlink())
    for number, path in enumerate(files):
        if path.is_dir():
            os.chmod(path, 0o755)
        else:
            if path.name.startswith("Dockerfile"):
                path.write_text(path.read_text().replace(REGISTRY_TOKEN, registry))
            os.chmod(path, 0o755 if os.stat(path).st_mode & 0o100 else 0o644)
        stamp = CONTEXT_EPOCH + number
        os.utime(path, (stamp, stamp))
    for name, attrs in case.context_attrs.items():
        path = destination / name
        os.chown(path, attrs.get("uid", 0), attrs.get("gid", 0))
        if "mode" in attrs:
            os.chmod(path, int(attrs["mode"], 8))
    return destination


@dataclass(frozen=True)
class Outcome:
    """One builder's build of a case: the process result and, when pushed, the reference."""

    builder: Builder
    returncode: int
    stdout: str
    stderr: str
    image: str | None  # host/repo:tag when the build succeeded

    def check(self) -> str:
        if self.returncode != 0 or self.image is None:
            raise AssertionError(f"{self.builder} build failed ({self.returncode}):\n"
                                 f"{self.stderr[-4000:]}")
        return self.image


@dataclass
class Buildah:
    """buildah with one vfs storage (under `root`) shared by every build of the session."""

    root: Path
    lock: threading.Lock = field(default_factory=threading.Lock)
    counter: int = 0

    def command(self, *args: str) -> list[str]:
        return ["buildah", "--storage-driver", "vfs", "--root", str(self.root / "root"),
                "--runroot", str(self.root / "run"), *args]

    def __call__(self, *args: str) -> str:
        return run(self.command(*args)).strip()

    def build(self, context: Path, dockerfile: str, image: str, *,
              build_args: Mapping[str, str], secrets: Mapping[str, Path],
              labels: Mapping[str, str], target: str | None = None) -> Outcome:
        """`buildah build` + `buildah push` to `image` (a registry reference)."""
        with self.lock:
            self.counter += 1
            local = f"localhost/corpus-{self.counter}:latest"
        args = ["build", "--quiet", "--layers", "--isolation", "chroot", "--format", "docker",
                "--tls-verify=false", "-f", str(context / dockerfile), "-t", local]
        args += [f"--build-arg={k}={v}" for k, v in build_args.items()]
        args += [f"--secret=id={k},src={v}" for k, v in secrets.items()]
        args += [f"--label={k}={v}" for k, v in labels.items()]
        if target:
            args += ["--target", target]
        proc = subprocess.run(self.command(*args, str(context)), capture_output=True,
                              text=True, timeout=BUILD_TIMEOUT, check=False)
        if proc.returncode == 0:
            self("push", "--quiet", "--tls-verify=false", local, f"docker://{image}")
        return Outcome("buildah", proc.returncode, proc.stdout, proc.stderr,
                       image if proc.returncode == 0 else None)

    def run_image(self, image: str, argv: Sequence[str]) -> str:
        """`buildah from` the pushed image and `buildah run` `argv` in it; its stdout."""
        container = self("from", "--quiet", "--tls-verify=false", f"docker://{image}")
        try:
            return run(self.command("run", "--isolation", "chroot", container, "--", *argv))
        finally:
            self("rm", container)


def build_ours(context: Path, dockerfile: str, image: str, *, registry: str,
               build_args: Mapping[str, str], secrets: Mapping[str, Path],
               labels: Mapping[str, str], target: str | None = None,
               extra: Sequence[str] = ()) -> Outcome:
    """`bucketbuild build` (the CLI, in a subprocess) pushing to `image`."""
    args = [sys.executable, "-m", "core", "build", "--context", str(context),
            "--dockerfile", dockerfile, "--destination", image,
            "--insecure-registry", registry]
    for name, value in build_args.items():
        args += ["--build-arg", f"{name}={value}"]
    for name, path in secrets.items():
        args += ["--secret", f"id={name},src={path}"]
    for key, value in labels.items():
        args += ["--label", f"{key}={value}"]
    if target:
        args += ["--target", target]
    args += list(extra)
    # A restrictive umask: what we build must not depend on the builder's own umask.
    proc = subprocess.run(args, cwd=REPO, capture_output=True, text=True,
                          timeout=BUILD_TIMEOUT, check=False, umask=0o077)
    return Outcome("ours", proc.returncode, proc.stdout, proc.stderr,
                   image if proc.returncode == 0 else None)


def image_exists(image: str) -> bool:
    """Whether a tag exists in the registry (asked with skopeo, a client we did not write)."""
    proc = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false",
                           f"docker://{image}"], capture_output=True, check=False)
    return proc.returncode == 0


def image_config(image: str) -> dict[str, Any]:
    out = run(["skopeo", "inspect", "--config", "--raw", "--tls-verify=false",
               f"docker://{image}"])
    return json.loads(out)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Unpacked:
    """An image copied to an OCI layout (`layout`, tag `t`) and unpacked (`rootfs`)."""

    layout: Path
    rootfs: Path
    tree: Tree


def unpack(image: str, workdir: Path) -> Unpacked:
    """skopeo copy + umoci unpack of `image`, and the scan of its tree."""
    host, _, repository = image.partition("/")
    rootfs = skopeo_unpack(host, repository, workdir)
    return Unpacked(workdir / "oci", rootfs, scan_tree(rootfs))
