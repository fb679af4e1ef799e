"""The hostile corpus: archives an uploader or a base-image author could send, generated here.

Every `Case` builds its bytes from the sentinel's location (absolute symlinks, hardlinks and
whiteouts aim at `/tmp/bb-sentinel-*`; attempts at `/etc`, `/root` and `/tmp` only try to
create files named with `MARKER`) and states what each reader must do with it:
- `context`: `unpack_context` / `resolve_context(tar://)` (names are never clamped: absolute
  names, `..` above the top and symlinked parents leading out are refused);
- `layer`: `extract_layer` onto a root filesystem (chroot semantics: absolute names and
  symlinks resolve inside the root; `..` above the root in a *name* is refused), applied on
  top of `LOWER`, a first layer that leaves symlinks to the sentinel and to system places.
An expectation is `None` (success; `check_*` then inspects the contained result) or the
`BuildError` subclass that must come out. Either way the guard proves nothing outside the
destination changed.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.errors import ArchiveError, BudgetError, BuildError, ContextError
from tests.security import tarbytes as tb
from tests.security.guard import MARKER, PRECIOUS, Sentinel

Build = Callable[[Sentinel], bytes]
Check = Callable[[Path, Sentinel], None]
Expect = type[BuildError] | None

#: plain-size budget the readers are given (the engine must pass one; see the report)
BUDGET = 64 << 20
MAX_ENTRIES = 10_000  # entry budget of context archives
BOMB_SIZE = 4 << 30  # what the decompression bombs expand to
DEEP = 10_000


@dataclass(frozen=True)
class Case:
    name: str
    build: Build
    context: Expect
    layer: Expect
    compressed: bool = False  # `build` already returns the final (compressed or raw) bytes
    check_context: Check | None = None
    check_layer: Check | None = None
    slow: bool = False  # only with `-m slow`
    heavy: bool = False  # by default through `extract_layer` only, the rest with `-m slow`


def lower_layer(sentinel: Sentinel) -> bytes:
    """Symlinks a later layer may try to write, link or white out through."""
    s = sentinel.text
    return tb.archive([
        tb.symlink("lo-abs", s),
        tb.symlink("lo-up", "../" * 12 + sentinel.relative),
        tb.symlink("lo-file", s + "/precious.txt"),
        tb.symlink("lo-etc", "/etc"),
        tb.symlink("lo-root", "/root"),
        tb.symlink("lo-tmp", "/tmp"),
        tb.directory("lo-dir"),
        tb.file("lo-dir/kept", b"lower"),
    ])


# --- checks -----------------------------------------------------------------------------------


def inside(dest: Path, sentinel: Sentinel, *parts: str) -> Path:
    """Where the sentinel path maps inside a clamped root."""
    return dest.joinpath(sentinel.relative, *parts)


def regular(path: Path, data: bytes | None = None) -> None:
    st = path.lstat()
    assert stat.S_ISREG(st.st_mode), f"{path} is not a regular file"
    if data is not None:
        assert path.read_bytes() == data


def planted_inside(*parts: str) -> Check:
    """The marker file landed at `parts` below the clamped sentinel path, inside the root."""
    def check(dest: Path, sentinel: Sentinel) -> None:
        regular(inside(dest, sentinel, *parts, MARKER), b"pwn")
    return check


def planted_at(*parts: str) -> Check:
    def check(dest: Path, sentinel: Sentinel) -> None:
        regular(dest.joinpath(*parts), b"pwn")
    return check


def nothing_but(*names: str) -> Check:
    def check(dest: Path, sentinel: Sentinel) -> None:
        found = {p.name for p in dest.iterdir()} - {n for n in os.listdir(dest)
                                                      if n.startswith("lo-")}
        assert found == set(names), found
    return check


def replaced_link(dest: Path, sentinel: Sentinel) -> None:
    regular(dest / "victim", b"replaced")


def duplicates_settled(dest: Path, sentinel: Sentinel) -> None:
    regular(dest / "f", b"3")
    assert stat.S_IMODE((dest / "d").lstat().st_mode) == 0o750


def devices_contained(dest: Path, sentinel: Sentinel) -> None:
    for name in ("null", "disk", "fifo"):
        assert os.path.lexists(inside(dest, sentinel, name)), name


def non_utf8_kept(dest: Path, sentinel: Sentinel) -> None:
    names = set(os.listdir(os.fsencode(dest)))
    assert {b"\xff\xfe", b"caf\xe9", b"new\nline", b"back\\slash"} <= names


def deep_file(dest: Path, sentinel: Sentinel) -> None:
    fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(DEEP):
            nxt = os.open("d", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = nxt
        assert os.stat("bottom", dir_fd=fd).st_size == 4
    finally:
        os.close(fd)


def deep_escape_clamped(dest: Path, sentinel: Sentinel) -> None:
    regular(inside(dest, sentinel, MARKER), b"pwn")


def root_mode_kept(dest: Path, sentinel: Sentinel) -> None:
    assert stat.S_IMODE(dest.lstat().st_mode) == 0o755
    regular(dest / "after", b"1")


def xattr_on_link_only(dest: Path, sentinel: Sentinel) -> None:
    assert os.readlink(dest / "xl") == sentinel.text + "/precious.txt"


def global_pax_ignored(dest: Path, sentinel: Sentinel) -> None:
    regular(dest / "a", b"1")


# --- builders -----------------------------------------------------------------------------------

F = tb.file
PWN = b"pwn"


def _deep_implicit(s: Sentinel) -> bytes:
    return tb.archive([F("d/" * DEEP + "bottom", b"deep")])


def deep_dotdot_links(s: Sentinel, depth: int, hop: int = 1300) -> bytes:
    """Symlinks that climb out of a `depth`-deep tree: each target stays under PATH_MAX, so
    the climb takes several hops, the last one far above the root, then into the sentinel."""
    entries = [tb.directory("d/" * depth)]
    level, hops = depth, 0
    while level > hop:
        entries.append(tb.symlink("d/" * level + f"e{hops}", "../" * hop + f"e{hops + 1}"))
        level, hops = level - hop, hops + 1
    entries.append(tb.symlink("d/" * level + f"e{hops}", "../" * (level + 10) + s.relative))
    entries.append(F("d/" * depth + "e0/" + MARKER, PWN))
    return tb.archive(entries)


def _deep_bomb(s: Sentinel) -> bytes:
    """A 400 KB name, 200,000 levels deep: remembering its parents would take 40 GB."""
    return tb.archive([F("d/" * 200_000 + "x", b"1")])


def _deep_branches(s: Sentinel) -> bytes:
    """Many distinct 4,000-deep branches: each costs 16 MB of bookkeeping for 8 KB of name."""
    return tb.gzipped(tb.archive([F(f"b{i}/" + "d/" * 4000 + "x", b"1") for i in range(40)]))


def _deep_then_whiteout(s: Sentinel) -> bytes:
    return tb.archive([F("d/" * DEEP + "bottom", b"deep"), F("d/.wh..wh..opq"), F(".wh.d")])


def _name_4096(s: Sentinel) -> bytes:
    return tb.archive([F("n" * 4096, b"x")])


def _path_4096(s: Sentinel) -> bytes:
    return tb.archive([F("p/" * 2047 + "ff", b"x")])


def _path_beyond_path_max(s: Sentinel) -> bytes:
    return tb.archive([F("q" * 200 + "/" + ("e" * 250 + "/") * 60 + "f", b"x")])


def _gzip_bomb_declared(s: Sentinel) -> bytes:
    head = tb.gzipped(tb.header("zeros", size=BOMB_SIZE))
    return head + tb.gzip_zeros(BOMB_SIZE)


def _gzip_bomb_trailing(s: Sentinel) -> bytes:
    return tb.gzipped(tb.archive([F("small", b"1")])) + tb.gzip_zeros(BOMB_SIZE)


def _zstd_bomb(s: Sentinel) -> bytes:
    return tb.zstded(tb.archive([F("small", b"1")], end=False)) + tb.zstd_zeros(BOMB_SIZE)


def _gzip_bomb_many_entries(s: Sentinel) -> bytes:
    one = tb.gzipped(tb.archive([F("same", b"\0" * (1 << 20))], end=False), level=9)
    return one * 200 + tb.gzipped(tb.END)


def _truncated_gzip(s: Sentinel) -> bytes:
    data = tb.gzipped(tb.archive([F(f"f{i}", os.urandom(300)) for i in range(40)]))
    return data[: len(data) // 2]


def _corrupt_gzip(s: Sentinel) -> bytes:
    data = bytearray(tb.gzipped(tb.archive([F(f"f{i}", bytes(range(256)) * 8)
                                            for i in range(20)])))
    for offset in range(30, len(data) - 20, 97):
        data[offset] ^= 0x5A
    return bytes(data)


def _gzip_bad_crc(s: Sentinel) -> bytes:
    data = bytearray(tb.gzipped(tb.archive([F("a", b"content")])))
    data[-8] ^= 0xFF
    return bytes(data)


def _truncated_zstd(s: Sentinel) -> bytes:
    data = tb.zstded(tb.archive([F(f"f{i}", os.urandom(300)) for i in range(40)]))
    return data[: len(data) // 2]


def _corrupt_zstd(s: Sentinel) -> bytes:
    data = bytearray(tb.zstded(tb.archive([F(f"f{i}", os.urandom(200)) for i in range(20)])))
    for offset in range(20, len(data) - 8, 61):
        data[offset] ^= 0xA5
    return bytes(data)


def _non_utf8(s: Sentinel) -> bytes:
    return tb.archive([F(b"\xff\xfe", b"1"), F(b"caf\xe9", b"2"), F(b"new\nline", b"3"),
                       F(b"back\\slash", b"4"), tb.directory(b"\xc0\xaf"),
                       F(b"\xc0\xaf/x", b"5")])


def _elf(s: Sentinel) -> bytes:
    with open("/bin/true", "rb") as handle:
        return handle.read(8192)


def _not_tar_zip(s: Sentinel) -> bytes:
    return b"PK\x03\x04" + os.urandom(1000)


def _whiteout_escapes(s: Sentinel) -> bytes:
    return tb.archive([F("../.wh.precious.txt")])


def _many_entries(s: Sentinel) -> bytes:
    return tb.gzipped(tb.archive([F(f"e{i}") for i in range(MAX_ENTRIES + 2_000)]), level=9)


def _global_pax(s: Sentinel) -> bytes:
    records = tb.pax_records({"path": "../" + MARKER})
    return tb.archive([tb.header("g", kind=tb.PAX_GLOBAL, size=len(records)),
                       tb.padded(records), F("a", b"1")])


def _cases() -> list[Case]:
    m = MARKER
    A = ArchiveError
    C = ContextError  # a corrupt compressed context: "not a tar archive (...): corrupt gzip"
    return [
        # `..` components
        Case("dotdot-name", lambda s: tb.archive([F("../" + m, PWN)]), A, A),
        Case("dotdot-deep", lambda s: tb.archive([F("a/../../../../../../.." + s.text + "/" + m,
                                                    PWN)]), A, A),
        Case("dotdot-pax-path", lambda s: tb.archive([F("innocent", PWN,
                                                        pax={"path": "../" + m})]), A, A),
        Case("dotdot-gnu-longname", lambda s: tb.archive([tb.Entry(
            "../" * 40 + m, data=PWN, gnu_long=True)]), A, A),
        Case("dotdot-ustar-prefix", lambda s: tb.archive([F(m, PWN, prefix="../../..")]),
             A, A),
        # absolute paths
        Case("absolute-into-sentinel", lambda s: tb.archive([F(s.text + "/" + m, PWN)]),
             A, None, check_layer=planted_inside()),
        Case("absolute-into-etc", lambda s: tb.archive([F("/etc/" + m, PWN)]), A, None,
             check_layer=planted_at("etc", m)),
        Case("absolute-root-entry", lambda s: tb.archive([tb.directory("/", mode=0o000),
                                                          tb.directory(".", mode=0o000),
                                                          F("after", b"1")]),
             None, None, check_context=root_mode_kept, check_layer=root_mode_kept),
        # symlinks pointing outside, entries written through them
        Case("write-through-absolute-link", lambda s: tb.archive([
            tb.symlink("esc", s.text), F("esc/" + m, PWN)]), A, None,
            check_layer=planted_inside()),
        Case("write-through-dotdot-link", lambda s: tb.archive([
            tb.symlink("esc", "../" * 15 + s.relative), F("esc/" + m, PWN)]), A, None,
            check_layer=planted_inside()),
        Case("write-through-lower-links", lambda s: tb.archive([
            F("lo-abs/" + m, PWN), F("lo-up/sub/" + m, PWN), F("lo-etc/" + m, PWN),
            F("lo-root/" + m, PWN), F("lo-tmp/" + m, PWN)]), A, None,
            check_layer=planted_inside()),
        Case("write-through-link-to-etc", lambda s: tb.archive([
            tb.symlink("sysetc", "/etc"), F("sysetc/" + m, PWN)]), A, None,
            check_layer=planted_at("etc", m)),
        Case("link-to-itself-as-etc", lambda s: tb.archive([
            tb.symlink("etc", "/etc"), F("etc/" + m, PWN)]), A, A),
        Case("overwrite-link-to-outside-file", lambda s: tb.archive([
            tb.symlink("victim", s.text + "/precious.txt"), F("victim", b"replaced"),
            F("lo-file", b"replaced")]), None, None, check_context=replaced_link,
            check_layer=replaced_link),
        Case("dir-entry-over-outside-link", lambda s: tb.archive([
            tb.symlink("esc", s.text), tb.directory("esc", mode=0o700, uid=4242),
            tb.directory("lo-abs", mode=0o777)]), None, None),
        Case("pax-linkpath-escape", lambda s: tb.archive([
            tb.symlink("esc", "innocent", pax={"linkpath": s.text}), F("esc/" + m, PWN)]),
            A, None, check_layer=planted_inside()),
        Case("xattr-mtime-owner-on-outside-link", lambda s: tb.archive([
            tb.symlink("xl", s.text + "/precious.txt", uid=4242, gid=4242, mtime=12345,
                       xattrs={"user.pwn": b"1", "trusted.pwn": b"1"})]), None, None,
            check_context=xattr_on_link_only, check_layer=xattr_on_link_only),
        Case("swap-dir-for-link-midway", lambda s: tb.archive([
            tb.directory("d"), F("d/a", b"1"), tb.symlink("d", s.text), F("d/" + m, PWN)]),
            A, None, check_layer=planted_inside()),
        # symlink chains and loops
        Case("chain-then-write", lambda s: tb.archive([
            tb.symlink("c1", "c2"), tb.symlink("c2", "c3/x/.."), tb.directory("c3"),
            tb.symlink("c3/x", s.text), F("c1/" + m, PWN)]), A, None),
        Case("chain-out-then-write", lambda s: tb.archive([
            tb.symlink("c1", "c2"), tb.symlink("c2", "c3"), tb.symlink("c3", s.text),
            F("c1/sub/" + m, PWN)]), A, None, check_layer=planted_inside("sub")),
        Case("loop-then-write", lambda s: tb.archive([
            tb.symlink("l1", "l2"), tb.symlink("l2", "l1"), F("l1/" + m, PWN)]), A, A),
        Case("self-loop-then-write", lambda s: tb.archive([
            tb.symlink("self", "self"), F("self/" + m, PWN)]), A, A),
        Case("chain-of-50-then-write", lambda s: tb.archive([
            *(tb.symlink(f"k{i}", f"k{i + 1}") for i in range(50)), tb.directory("k50"),
            F("k0/" + m, PWN)]), A, A),
        # hardlinks
        Case("hardlink-absolute-outside", lambda s: tb.archive([
            tb.hardlink("h", s.text + "/precious.txt")]), A, A),
        Case("hardlink-dotdot", lambda s: tb.archive([tb.hardlink("h", "../" * 8 + "etc/passwd")]),
             A, A),
        Case("hardlink-etc-passwd", lambda s: tb.archive([tb.hardlink("h", "/etc/passwd")]),
             A, A),
        Case("hardlink-through-outside-link", lambda s: tb.archive([
            tb.symlink("esc", s.text), tb.hardlink("h", "esc/precious.txt")]), A, A),
        Case("hardlink-through-lower-link", lambda s: tb.archive([
            tb.hardlink("h", "lo-abs/precious.txt")]), A, A),
        Case("hardlink-to-outside-link-then-write", lambda s: tb.archive([
            tb.symlink("s", s.text + "/precious.txt"), tb.hardlink("h", "s"),
            F("h", b"replaced")]), None, None),
        Case("hardlink-not-yet-extracted", lambda s: tb.archive([
            tb.hardlink("h", "later"), F("later", b"x")]), A, A),
        Case("hardlink-to-directory", lambda s: tb.archive([
            tb.directory("d"), tb.hardlink("h", "d")]), A, A),
        Case("hardlink-pax-linkpath-escape", lambda s: tb.archive([
            F("a", b"1"), tb.hardlink("h", "a", pax={"linkpath": "../../etc/passwd"})]), A, A),
        # device nodes and FIFOs
        Case("devices-through-outside-link", lambda s: tb.archive([
            tb.symlink("esc", s.text), tb.special("esc/null", tb.CHAR, 1, 3),
            tb.special("esc/disk", tb.BLOCKDEV, 8, 0), tb.special("esc/fifo", tb.FIFO)]),
            None, None, check_layer=devices_contained),
        Case("devices-plain", lambda s: tb.archive([
            tb.special("null", tb.CHAR, 1, 3), tb.special("disk", tb.BLOCKDEV, 8, 0),
            tb.special("fifo", tb.FIFO), F("ok", b"1")]), None, None,
            check_context=nothing_but("ok")),
        # whiteouts
        Case("whiteout-names-dotdot", lambda s: tb.archive([F("lo-dir/.wh...")]), None, A),
        Case("whiteout-names-dot", lambda s: tb.archive([F("lo-dir/.wh..")]), None, A),
        Case("whiteout-escapes-by-name", _whiteout_escapes, A, A),
        Case("whiteout-through-lower-links", lambda s: tb.archive([
            F("lo-abs/.wh.precious.txt"), F("lo-up/.wh.sub"), F("lo-etc/.wh.passwd"),
            F("lo-root/.wh." + m)]), A, None),
        Case("whiteout-of-outside-links", lambda s: tb.archive([
            F(".wh.lo-abs"), F(".wh.lo-file"), F(".wh.lo-etc")]), None, None),
        Case("opaque-through-links", lambda s: tb.archive([
            F("lo-abs/.wh..wh..opq"), F("lo-up/sub/.wh..wh..opq"), F("lo-tmp/.wh..wh..opq")]),
            A, None),
        Case("whiteout-absolute", lambda s: tb.archive([F(s.text + "/.wh.precious.txt"),
                                                        F(s.text + "/.wh..wh..opq")]),
             A, None),
        # duplicates
        Case("duplicate-entries", lambda s: tb.archive([
            F("f", b"1"), F("f", b"2"), tb.directory("f"), F("f/x", b"x"),
            tb.symlink("f", s.text), F("f", b"3"), tb.directory("d", mode=0o700),
            tb.directory("d", mode=0o750)]), None, None, check_context=duplicates_settled,
            check_layer=duplicates_settled),
        # sizes and budgets
        Case("huge-declared-size", lambda s: tb.archive([F("big", declared_size=1 << 40)],
                                                        end=False), BudgetError, BudgetError),
        Case("huge-pax-size", lambda s: tb.archive([F("big", pax={"size": "9" * 30})],
                                                   end=False), BudgetError, BudgetError),
        Case("negative-base256-size", lambda s: tb.archive([F(
            "neg", size_field=tb.base256(-5, 12))]), A, A),
        Case("gzip-bomb-declared", _gzip_bomb_declared, BudgetError, BudgetError,
             compressed=True),
        Case("gzip-bomb-after-the-end", _gzip_bomb_trailing, BudgetError, BudgetError,
             compressed=True),
        Case("zstd-bomb-after-the-end", _zstd_bomb, BudgetError, BudgetError,
             compressed=True),
        Case("gzip-bomb-of-duplicates", _gzip_bomb_many_entries, BudgetError, BudgetError,
             compressed=True),
        Case("too-many-entries", _many_entries, BudgetError, None, compressed=True, slow=True),
        # truncated and corrupt streams
        Case("truncated-in-header", lambda s: tb.archive([F("a", b"1")], end=False)[:700],
             A, A),
        Case("truncated-in-payload", lambda s: tb.archive([F("a", b"x" * 5000)])[:2000],
             A, A),
        Case("truncated-in-pax", lambda s: tb.archive([F("p" * 300, b"1")])[:600], A, A),
        Case("truncated-gzip", _truncated_gzip, C, A, compressed=True),
        Case("corrupt-gzip", _corrupt_gzip, C, A, compressed=True),
        Case("gzip-bad-crc", _gzip_bad_crc, C, A, compressed=True),
        Case("truncated-zstd", _truncated_zstd, C, A, compressed=True),
        Case("corrupt-zstd", _corrupt_zstd, C, A, compressed=True),
        Case("bad-checksum", lambda s: tb.archive([F("a", b"1"), F("b", b"2",
                                                                   checksum_delta=1)]), A, A),
        Case("oversized-pax-header", lambda s: tb.archive([F("a", b"1", pax={
            "comment": "c" * (2 << 20)})]), A, A),
        Case("malformed-pax-record", lambda s: tb.archive([
            tb.header("pax", kind=tb.PAX, size=20), tb.padded(b"99 path=../" + MARKER.encode()),
            F("a", b"1")]), A, A),
        Case("global-pax-path-ignored", _global_pax, None, None,
             check_context=global_pax_ignored, check_layer=global_pax_ignored),
        Case("sparse-entry", lambda s: tb.archive([tb.Entry("s", tb.GNU_SPARSE, b"x")]), A, A),
        Case("unknown-type", lambda s: tb.archive([tb.Entry("u", b"Z", b"x")]), A, A),
        Case("garbage-mode-field", lambda s: tb.archive([
            tb.header("a", raw_fields={100: b"zzzzzzz\0"})]), A, A),
        Case("huge-uid", lambda s: tb.archive([tb.Entry("a", uid=1 << 40)]), A, A),
        Case("extreme-mtimes", lambda s: tb.archive([
            F("future", b"1", mtime=8**11 - 1), F("past", b"1", pax={"mtime": "-99999999999.5"}),
            F("huge", b"1", pax={"mtime": "1" + "0" * 40})]), None, None),
        Case("setuid-and-odd-modes", lambda s: tb.archive([
            F("suid", b"#!/bin/sh\n", mode=0o6777), tb.directory("nox", mode=0o000),
            F("nox/inside", b"1", mode=0o000), tb.directory("sticky", mode=0o1777)]),
            None, None),
        Case("empty-symlink-target", lambda s: tb.archive([tb.symlink("s", "")]), A, A),
        # names
        Case("non-utf8-names", _non_utf8, None, None, check_context=non_utf8_kept,
             check_layer=non_utf8_kept),
        Case("name-4096-one-component", _name_4096, A, A),
        Case("path-4096-bytes", _path_4096, None, None),
        Case("path-beyond-path-max", _path_beyond_path_max, None, None),
        Case("deep-10000-implicit", _deep_implicit, None, None, check_context=deep_file,
             check_layer=deep_file, slow=True),
        Case("deep-10000-dotdot-link", lambda s: deep_dotdot_links(s, DEEP), A, None,
             check_layer=deep_escape_clamped, slow=True),
        Case("deep-2000-dotdot-link", lambda s: deep_dotdot_links(s, 2000, hop=700), A, None,
             check_layer=deep_escape_clamped),
        Case("deep-10000-whiteout", _deep_then_whiteout, None, None, slow=True),
        Case("deep-200000-name", _deep_bomb, BudgetError, BudgetError, slow=True),
        Case("deep-branches", _deep_branches, BudgetError, BudgetError, compressed=True,
             slow=True),
        # not archives
        Case("not-an-archive-text", lambda s: b"#!/bin/sh\nrm -rf /\n" * 40, ContextError, A,
             compressed=True),
        Case("not-an-archive-elf", _elf, ContextError, A, compressed=True),
        Case("not-an-archive-zip", _not_tar_zip, ContextError, A, compressed=True),
        Case("not-an-archive-gzip-of-text", lambda s: tb.gzipped(b"hello world\n" * 100),
             ContextError, A, compressed=True),
        Case("empty-input", lambda s: b"", ContextError, None, compressed=True),
    ]


CASES: dict[str, Case] = {case.name: case for case in _cases()}


def context_archive(case: Case, sentinel: Sentinel) -> bytes:
    """The bytes of a context archive: the lower layer's symlinks are written first, in the
    same archive, so the case can abuse them (compressed and raw cases come as they are)."""
    data = case.build(sentinel)
    if case.compressed:
        return data
    return lower_layer(sentinel)[: -len(tb.END)] + data


def as_layer_blob(case: Case, sentinel: Sentinel) -> bytes:
    """The bytes pushed as a layer: gzip-compressed unless the case is already final."""
    data = case.build(sentinel)
    return data if case.compressed else tb.gzipped(data, level=1)


__all__ = ["BUDGET", "CASES", "MAX_ENTRIES", "PRECIOUS", "Case", "as_layer_blob", "context_archive",
           "lower_layer"]
