"""COPY/ADD and WORKDIR details: ownership, modes, heredocs, archives, ignore files, dests."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import io
import os
import tarfile
import threading
from pathlib import Path

import pytest

from core.build.url_policy import UrlPolicy
from core.errors import StepError
from tests.build.conftest import Builder, Recorder

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the chroot sandbox needs root")
PASSWD = "root:x:0:0:root:/root:/bin/sh\napp:x:1001:1002:app:/home/app:/bin/sh\n"
GROUP = "root:x:0:\nstaff:x:50:app\napp:x:1002:\n"


def _owner(path: os.PathLike[str]) -> tuple[int, int, int]:
    st = os.lstat(path)
    return st.st_uid, st.st_gid, st.st_mode & 0o7777


def test_chown_names_chmod_and_workdir_owner(builder: Builder) -> None:
    dockerfile = (
        "FROM scratch\n"
        "COPY passwd group /etc/\n"
        "COPY --chown=app:staff --chmod=0640 file.txt /srv/data/file.txt\n"
        "COPY --chown=1234 file.txt /numeric\n"
        "USER app\n"
        "WORKDIR /home/app/work\n"
        "WORKDIR /etc\n"
    )
    builder.build(dockerfile, {"passwd": PASSWD, "group": GROUP, "file.txt": "data"},
                  tag="test/owners:1")
    rootfs = builder.unpack("test/owners:1")
    assert _owner(rootfs / "srv/data/file.txt") == (1001, 50, 0o640)
    assert _owner(rootfs / "srv/data") == (1001, 50, 0o755)  # created for the --chown owner
    assert _owner(rootfs / "numeric") == (1234, 1234, 0o644)
    assert _owner(rootfs / "home/app/work") == (1001, 1002, 0o755)
    assert _owner(rootfs / "etc/passwd")[:2] == (0, 0)
    history = builder.config("test/owners:1")["history"]
    assert [(h["created_by"], h.get("empty_layer", False)) for h in history][-3:] == [
        ("USER app", True), ("WORKDIR /home/app/work", False), ("WORKDIR /etc", True)]
    assert builder.config("test/owners:1")["config"]["WorkingDir"] == "/etc"


def test_unknown_chown_user_is_an_error_with_the_line(builder: Builder) -> None:
    with pytest.raises(StepError) as caught:
        builder.build("FROM scratch\nCOPY passwd /etc/passwd\nCOPY --chown=nobody x /x\n",
                      {"passwd": PASSWD, "x": "x"}, tag="test/badchown:1")
    assert "nobody" in str(caught.value)
    assert caught.value.span is not None and caught.value.span.start_line == 3


def test_copy_heredoc_and_destination_rules(builder: Builder) -> None:
    dockerfile = (
        "FROM scratch\n"
        "ARG NAME=world\n"
        "COPY <<EOF <<'RAW' /docs/\n"
        "hello $NAME\n"
        "EOF\n"
        "keep $NAME\n"
        "RAW\n"
        "COPY a.txt b.txt /many/\n"
        "COPY *.md /glob/\n"
        "COPY nomatch* /empty/\n"
        "WORKDIR /w\n"
        "COPY a.txt rel\n"
        "COPY a.txt .\n"
    )
    builder.build(dockerfile, {"a.txt": "a", "b.txt": "b", "x.md": "x", "y.md": "y"},
                  tag="test/heredoc:1")
    rootfs = builder.unpack("test/heredoc:1")
    assert (rootfs / "docs/EOF").read_text() == "hello world\n"
    assert (rootfs / "docs/RAW").read_text() == "keep $NAME\n"
    assert _owner(rootfs / "docs/EOF") == (0, 0, 0o644)
    assert sorted(os.listdir(rootfs / "many")) == ["a.txt", "b.txt"]
    assert sorted(os.listdir(rootfs / "glob")) == ["x.md", "y.md"]
    assert os.listdir(rootfs / "empty") == []
    assert (rootfs / "w/rel").read_text() == "a"
    assert (rootfs / "w/a.txt").read_text() == "a"
    history = builder.config("test/heredoc:1")["history"]
    assert history[1]["created_by"] == "COPY <<EOF <<RAW /docs/ # buildkit"


def test_several_sources_need_a_directory(builder: Builder) -> None:
    with pytest.raises(StepError, match="must be a directory"):
        builder.build("FROM scratch\nCOPY a b /file\n", {"a": "a", "b": "b"})


def test_dockerignore_hides_context_files(builder: Builder) -> None:
    files = {".dockerignore": "secret*\nbuild/\n!build/keep\n", "secret.txt": "s",
             "app.txt": "a", "build/drop": "d", "build/keep": "k"}
    builder.build("FROM scratch\nCOPY . /ctx/\n", files, tag="test/ignore:1")
    rootfs = builder.unpack("test/ignore:1")
    assert sorted(os.listdir(rootfs / "ctx")) == [".dockerignore", "Dockerfile", "app.txt",
                                                  "build"]
    assert os.listdir(rootfs / "ctx/build") == ["keep"]
    with pytest.raises(StepError, match="not found"):
        builder.build("FROM scratch\nCOPY secret.txt /s\n", files)


def _tarball(entries: dict[str, bytes], *, compress: bool) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size, info.uid, info.gid, info.mode = len(data), 7, 8, 0o600
            archive.addfile(info, io.BytesIO(data))
    return gzip.compress(buffer.getvalue()) if compress else buffer.getvalue()


def test_add_extracts_local_archives(builder: Builder) -> None:
    files: dict[str, str | bytes] = {
        "app.tar.gz": _tarball({"bin/tool": b"tool", "README": b"r"}, compress=True),
        "plain.tar": _tarball({"x": b"x"}, compress=False), "note.txt": "n"}
    builder.build("FROM scratch\nADD app.tar.gz /opt/app\nADD plain.tar note.txt /p/\n"
                  "COPY app.tar.gz /copied.tgz\n", files, tag="test/add:1")
    rootfs = builder.unpack("test/add:1")
    assert (rootfs / "opt/app/bin/tool").read_bytes() == b"tool"
    assert _owner(rootfs / "opt/app/README") == (7, 8, 0o600)
    assert (rootfs / "p/x").read_bytes() == b"x"
    assert (rootfs / "p/note.txt").read_text() == "n"
    assert (rootfs / "copied.tgz").read_bytes()[:2] == b"\x1f\x8b"


def test_add_refuses_other_schemes(builder: Builder) -> None:
    with pytest.raises(StepError, match="unsupported ADD source"):
        builder.build("FROM scratch\nADD ftp://example.com/x /x\n")


@needs_root
def test_user_and_run_heredocs(bb: Builder) -> None:
    recorder = Recorder()
    dockerfile = (
        f"FROM {bb.busybox}\n"
        "RUN /bin/busybox --install -s /bin && "
        "echo app:x:1001:1001::/home/app:/bin/sh >> /etc/passwd && "
        "echo app:x:1001: >> /etc/group && sed -i 's/^root:x:0:$/root:x:0:app/' /etc/group\n"
        "USER app\n"
        "WORKDIR /home/app/w\n"
        "RUN id && echo home=$HOME && pwd\n"
        "RUN <<EOF\n"
        "echo from-heredoc > /tmp/h1\n"
        "echo second line\n"
        "EOF\n"
        "RUN <<EOF\n"
        "#!/bin/sh\n"
        "echo script $0\n"
        "EOF\n"
        "RUN cat <<EOF > /tmp/h2\n"
        "fed to cat\n"
        "EOF\n"
    )
    bb.build(dockerfile, tag="test/user:1", recorder=recorder)
    out = recorder.output()
    ids = next(line for line in out if line.startswith("uid="))
    assert ids.startswith("uid=1001(app) gid=1001(app) groups=") and "0(root)" in ids
    assert "home=/home/app" in out and "/home/app/w" in out
    assert "second line" in out
    assert "script /dev/pipes/EOF" in out
    rootfs = bb.unpack("test/user:1")
    assert (rootfs / "tmp/h1").read_text() == "from-heredoc\n"
    assert (rootfs / "tmp/h2").read_text() == "fed to cat\n"
    assert _owner(rootfs / "home/app/w")[:2] == (1001, 1001)
    assert not (rootfs / "dev/pipes").exists()


def test_add_downloads_urls_and_verifies_checksums(builder: Builder, tmp_path: Path) -> None:
    served = tmp_path / "served"
    served.mkdir()
    (served / "tool.sh").write_text("#!/bin/sh\necho tool\n")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/tool.sh"
        digest = "sha256:" + hashlib.sha256((served / "tool.sh").read_bytes()).hexdigest()
        loopback = UrlPolicy.parse([f"127.0.0.1:{server.server_address[1]}"])  # on purpose
        builder.build(f"FROM scratch\nADD --checksum={digest} {url} /bin/\nADD {url} /named\n",
                      tag="test/url:1", add_urls=loopback)
        with pytest.raises(StepError, match="digest mismatch"):
            builder.build(f"FROM scratch\nADD --checksum=sha256:{'0' * 64} {url} /x\n",
                          add_urls=loopback)
    finally:
        server.shutdown()
        server.server_close()
    rootfs = builder.unpack("test/url:1")
    assert (rootfs / "bin/tool.sh").read_text() == "#!/bin/sh\necho tool\n"
    assert _owner(rootfs / "bin/tool.sh") == (0, 0, 0o600)
    assert (rootfs / "named").read_text().startswith("#!/bin/sh")


def test_add_checksum_needs_a_url(builder: Builder) -> None:
    with pytest.raises(StepError, match="checksum requires"):
        builder.build(f"FROM scratch\nADD --checksum=sha256:{'0' * 64} a /a\n", {"a": "a"})
