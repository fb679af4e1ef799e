"""Placeholders: made inside their base only, removed only while still ours."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.errors import SandboxError
from core.run.placeholders import Placeholders


@pytest.fixture
def base(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    os.utime(root / "etc", ns=(1_000_000_000, 2_000_000_000))
    return root


def test_made_then_removed_with_parent_times_restored(base: Path) -> None:
    made = Placeholders()
    assert made.ensure(base, "/etc/resolv.conf", "file") == "etc/resolv.conf"
    assert made.ensure(base, "run/secrets/x", "file") == "run/secrets/x"
    assert made.ensure(base, "/etc/", "dir") == "etc"  # exists: nothing made
    assert [(p.path, p.kind) for p in made.made] == [
        ("etc/resolv.conf", "file"), ("run", "dir"), ("run/secrets", "dir"),
        ("run/secrets/x", "file")]
    made.remove_all()
    assert sorted(os.listdir(base)) == ["etc"]
    assert os.listdir(base / "etc") == []
    assert (base / "etc").stat().st_mtime_ns == 2_000_000_000


def test_symlinks_resolve_inside_the_base(base: Path, tmp_path: Path) -> None:
    (base / "etc" / "resolv.conf").symlink_to("../../../outside/resolv.conf")
    (base / "var").symlink_to("/")
    made = Placeholders()
    assert made.ensure(base, "etc/resolv.conf", "file") == "outside/resolv.conf"
    assert made.ensure(base, "var/cache", "dir") == "cache"
    assert (base / "outside" / "resolv.conf").is_file() and (base / "cache").is_dir()
    assert not (tmp_path / "outside").exists()
    made.remove_all()
    assert sorted(os.listdir(base)) == ["etc", "var"]


def test_wrong_kind_is_refused(base: Path) -> None:
    (base / "file").write_text("x")
    with pytest.raises(SandboxError, match="is a directory"):
        Placeholders().ensure(base, "etc", "file")
    with pytest.raises(SandboxError, match="not a directory"):
        Placeholders().ensure(base, "file/below", "dir")
    with pytest.raises(SandboxError, match="root itself"):
        Placeholders().ensure(base, "/", "dir")


def test_what_the_step_changed_is_kept(base: Path) -> None:
    made = Placeholders()
    made.ensure(base, "opt/mount", "dir")
    made.ensure(base, "etc/hosts", "file")
    made.ensure(base, "srv/target", "file")
    (base / "opt" / "mine").write_text("step output")
    (base / "etc" / "hosts").write_text("written by the step")
    (base / "srv" / "target").unlink()
    (base / "srv" / "target").write_text("")  # same name, new inode
    made.remove_all()
    assert sorted(os.listdir(base / "opt")) == ["mine"]
    assert (base / "etc" / "hosts").read_text() == "written by the step"
    assert (base / "srv" / "target").exists()
    assert made.made == ()


def test_modes_do_not_follow_the_builder_umask(base: Path) -> None:
    # a non-root step must be able to reach a cache mount under directories made for it
    old = os.umask(0o077)
    try:
        made = Placeholders()
        made.ensure(base, "var/cache/x", "dir")
        made.ensure(base, "run/secrets/token", "file")
    finally:
        os.umask(old)
    for path, mode in (("var", 0o755), ("var/cache", 0o755), ("var/cache/x", 0o755),
                       ("run/secrets/token", 0o644)):
        assert (base / path).stat().st_mode & 0o777 == mode, path
    made.remove_all()
