"""Image references: parsing, normalisation, validation messages and derived forms."""

from __future__ import annotations

import re

import pytest

from core.errors import ImageReferenceError
from core.image.reference import Reference, is_digest, parse_reference, parse_repository

D1 = "sha256:" + "a" * 64
D2 = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize(("text", "registry", "repository", "tag", "digest"), [
    ("busybox", "docker.io", "library/busybox", "latest", None),
    ("busybox:1.36", "docker.io", "library/busybox", "1.36", None),
    ("library/busybox", "docker.io", "library/busybox", "latest", None),
    ("user/app", "docker.io", "user/app", "latest", None),
    ("docker.io/busybox", "docker.io", "library/busybox", "latest", None),
    ("index.docker.io/user/app:v2", "docker.io", "user/app", "v2", None),
    ("localhost/x", "localhost", "x", "latest", None),
    ("localhost:5000/x/y:t", "localhost:5000", "x/y", "t", None),
    ("127.0.0.1:5000/repo", "127.0.0.1:5000", "repo", "latest", None),
    ("[::1]:5000/repo:tag", "[::1]:5000", "repo", "tag", None),
    ("gcr.io/project/image", "gcr.io", "project/image", "latest", None),
    ("us-docker.pkg.dev/p/r/img:1.0", "us-docker.pkg.dev", "p/r/img", "1.0", None),
    ("Registry.Example/x", "Registry.Example", "x", "latest", None),
    ("MyHost/x", "MyHost", "x", "latest", None),
    (f"busybox@{D1}", "docker.io", "library/busybox", None, D1),
    (f"host:1/a/b:tag@{D2}", "host:1", "a/b", "tag", D2),
    ("a/b-c/d__e/f.g_h", "docker.io", "a/b-c/d__e/f.g_h", "latest", None),
    ("a--b:_x", "docker.io", "library/a--b", "_x", None),
    ("x:" + "t" * 128, "docker.io", "library/x", "t" * 128, None),
])
def test_parse(text: str, registry: str, repository: str, tag: str | None,
               digest: str | None) -> None:
    ref = parse_reference(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (
        registry, repository, tag, digest)
    assert parse_reference(str(ref)) == ref


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty"),
    (" busybox", "spaces"),
    ("Busybox", "repository name must be lowercase"),
    ("docker.io/User/app", "repository name must be lowercase"),
    ("busybox:", "bad tag ''"),
    ("busybox:-x", "bad tag '-x'"),
    ("busybox:.x", "bad tag '.x'"),
    ("busybox:" + "t" * 129, "bad tag"),
    ("busybox:a+b", "bad tag"),
    ("busybox@sha256:abc", "sha256 needs lowercase hex of 64 characters"),
    ("busybox@sha256:" + "A" * 64, "sha256 needs lowercase hex"),
    ("busybox@latest", "expected ALGORITHM:HEX"),
    ("busybox@", "expected ALGORITHM:HEX"),
    ("a//b", "bad repository path component ''"),
    ("a/b/", "bad repository path component ''"),
    ("/a", "bad repository path component ''"),
    ("a/-b", "bad repository path component '-b'"),
    ("a/b_", "bad repository path component 'b_'"),
    ("a/b___c", "bad repository path component"),
    ("host:5000/", "empty repository name"),
    ("-host.io/a", "bad registry '-host.io'"),
    ("host.io:port/a", "bad registry"),
    ("host.io/" + "a" * 250, "longer than 255"),
    ("a b", "bad repository path component 'a b'"),
])
def test_invalid(text: str, message: str) -> None:
    with pytest.raises(ImageReferenceError, match=re.escape(message)) as raised:
        parse_reference(text)
    assert repr(text) in str(raised.value) or not text


def test_derived_forms() -> None:
    ref = parse_reference(f"user/app:1@{D1}")
    assert ref.name == "docker.io/user/app"
    assert ref.identifier == D1
    assert str(ref) == f"docker.io/user/app:1@{D1}"
    assert ref.api_host == "registry-1.docker.io"
    assert ref.familiar == f"user/app:1@{D1}"
    assert ref.with_tag("2") == Reference("docker.io", "user/app", "2", None)
    assert ref.with_tag("2").identifier == "2"
    assert ref.with_digest(D2) == Reference("docker.io", "user/app", "1", D2)
    assert parse_reference("busybox").familiar == "busybox:latest"
    assert parse_reference("gcr.io/a/b").api_host == "gcr.io"


def test_context() -> None:
    ref = parse_reference("localhost:5000/team/app:v1")
    repo = ref.context()
    assert (repo.registry, repo.repository, repo.name) == (
        "localhost:5000", "team/app", "localhost:5000/team/app")
    assert str(repo) == "localhost:5000/team/app"
    other = ref.context("team/cache")
    assert other.name == "localhost:5000/team/cache"
    assert other.with_tag("k") == parse_reference("localhost:5000/team/cache:k")
    assert other.with_digest(D1).identifier == D1
    assert parse_reference("busybox").context().api_host == "registry-1.docker.io"
    with pytest.raises(ImageReferenceError, match="lowercase"):
        ref.context("Team/x")


def test_default_registry() -> None:
    ref = parse_reference("app", default_registry="registry.local:5000")
    assert str(ref) == "registry.local:5000/app:latest"
    assert str(parse_reference("a/b", default_registry="r.io")) == "r.io/a/b:latest"


def test_direct_construction_validates() -> None:
    with pytest.raises(ImageReferenceError, match="needs a tag or digest"):
        Reference("docker.io", "library/x", None, None)
    with pytest.raises(ImageReferenceError, match="bad tag"):
        parse_reference("x").with_tag("no way")
    with pytest.raises(ImageReferenceError, match="sha256"):
        parse_reference("x").with_digest("sha256:12")


def test_parse_repository() -> None:
    assert parse_repository("gcr.io/p/cache").name == "gcr.io/p/cache"
    assert parse_repository("cache").name == "docker.io/library/cache"
    for text in ("gcr.io/p/cache:latest", f"gcr.io/p/cache@{D1}"):
        with pytest.raises(ImageReferenceError, match="must not have a tag or digest"):
            parse_repository(text)


@pytest.mark.parametrize(("text", "valid"), [
    (D1, True), (D2, True), ("sha512:" + "f" * 128, True), ("sha256:abc", False),
    ("sha256", False), ("SHA256:" + "a" * 64, False), ("sha256:" + "a" * 64 + "\n", False),
    ("multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8", True),
])
def test_is_digest(text: str, valid: bool) -> None:
    assert is_digest(text) is valid
