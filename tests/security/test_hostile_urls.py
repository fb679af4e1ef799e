"""`ADD <url>` against hostile URLs, through real builds (`run_build` and `python -m core build`).

A "forbidden" loopback server stands where the hostile URL points (or where the URL's loopback
spelling leads); every refusal must name the Dockerfile line and leave that server with zero
requests. Hosts are allowed only through the build's own option (`add_urls`,
`--allow-url-host`), which is also what lets the allowed cases download.
"""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.build.events import Event
from core.build.options import BuildOptions, OutputOptions
from core.build.pipeline import run_build
from core.build.url_policy import UrlPolicy
from core.errors import BuildError, StepError
from tests.security.urlservers import Served, serve

REPO = Path(__file__).resolve().parents[2]
PYTHON = REPO / ".venv" / "bin" / "python"
SECRET = b"root:$6$not-for-you:19000:0:99999:7:::\n"
PAYLOAD = b"#!/bin/sh\necho fetched on purpose\n"
#: the ADD is on line 3, after a COPY that must have run
DOCKERFILE = "FROM scratch\nCOPY a.txt /a.txt\nADD {source} /fetched\n"


class _Events:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)


def build(tmp_path: Path, source: str, policy: UrlPolicy | None = None, *,
          layout: Path | None = None) -> BuildError | None:
    """Build DOCKERFILE with `source`; the error, or None when it built."""
    context = tmp_path / "ctx"
    context.mkdir(exist_ok=True)
    (context / "a.txt").write_text("a\n")
    (context / "Dockerfile").write_text(DOCKERFILE.format(source=source))
    options = BuildOptions(context=str(context), work_dir=tmp_path / "work",
                           output=OutputOptions(no_push=True, oci_layout_path=layout),
                           add_urls=policy or UrlPolicy())
    try:
        run_build(options, events=_Events())
    except BuildError as error:
        return error
    return None


def assert_refused_on_line_3(error: BuildError | None, *words: str) -> None:
    assert isinstance(error, StepError), error
    assert error.span is not None and error.span.start_line == 3, error
    text = str(error)
    assert text.startswith("Dockerfile:3: "), text
    for word in words:
        assert word in text, text


@pytest.fixture()
def forbidden() -> Iterator[Served]:
    with serve({"/shadow": SECRET, "/x": SECRET}) as served:
        yield served


@pytest.fixture()
def forbidden6() -> Iterator[Served]:
    with serve({"/shadow": SECRET}, host="::1") as served:
        yield served


# --- schemes -----------------------------------------------------------------------------------

SCHEMES = ("file:///etc/shadow", "FILE:///etc/shadow", "File:///etc/shadow", "file:/etc/shadow",
           "file://localhost/etc/shadow", "ftp://{a}/shadow", "FTP://{a}/shadow",
           "gopher://{a}/_GET%20/shadow", "dict://{a}/x", "data:text/plain,hello",
           "DATA:text/plain;base64,aGVsbG8=", "git@{host}:org/repo.git",
           "HTTP://{a}/shadow", "hTTps://{a}/shadow", "jar:http://{a}/x!/y",
           "http://{a}/repo.git", "ssh://{a}/x")


@pytest.mark.parametrize("template", SCHEMES)
def test_other_schemes_are_refused_even_for_an_allowed_host(
        template: str, forbidden: Served, tmp_path: Path) -> None:
    source = template.format(a=forbidden.authority, host=forbidden.host)
    allowed = UrlPolicy.parse([forbidden.authority])
    error = build(tmp_path, source, allowed)
    assert_refused_on_line_3(error, "unsupported ADD source")
    assert forbidden.requests == []


# --- loopback, unspecified, link-local, metadata: every spelling ------------------------------

V4_SPELLINGS = ("127.0.0.1", "127.0.0.2", "localhost", "LOCALHOST", "localhost.", "0.0.0.0",
                "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "[0:0:0:0:0:ffff:127.0.0.1]",
                "[::127.0.0.1]", "[::]", "[64:ff9b::127.0.0.1]", "[2002:7f00:1::]")
NUMERIC_SPELLINGS = ("2130706433", "0x7f.1", "0x7f000001", "0177.0.0.1", "0177.1", "127.1",
                     "0x7f.0x0.0x0.0x1", "017700000001", "0")


@pytest.mark.parametrize("host", V4_SPELLINGS)
def test_loopback_spellings_are_refused(host: str, forbidden: Served, tmp_path: Path) -> None:
    error = build(tmp_path, f"http://{host}:{forbidden.port}/shadow")
    assert_refused_on_line_3(error, "refused", "--allow-url-host")
    assert forbidden.requests == []


@pytest.mark.parametrize("host", NUMERIC_SPELLINGS)
def test_numeric_ipv4_spellings_are_refused(host: str, forbidden: Served,
                                            tmp_path: Path) -> None:
    error = build(tmp_path, f"http://{host}:{forbidden.port}/shadow")
    assert_refused_on_line_3(error, "dotted-decimal")
    assert forbidden.requests == []


def test_ipv6_loopback_is_refused(forbidden6: Served, tmp_path: Path) -> None:
    error = build(tmp_path, f"http://{forbidden6.authority}/shadow")
    assert_refused_on_line_3(error, "::1 is a loopback address")
    assert forbidden6.requests == []


@pytest.mark.parametrize(("url", "reason"), [
    ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
    ("http://[fd00:ec2::254]/latest/meta-data/", "cloud metadata"),
    ("http://[::ffff:169.254.169.254]/", "cloud metadata"),
    ("http://169.254.1.1/", "link-local"),
    ("http://[fe80::1]/", "link-local"),
    ("http://[fe80::1%25lo]/", "zone identifiers"),
    ("http://224.0.0.1/", "multicast"),
])
def test_link_local_and_metadata_are_refused(url: str, reason: str, tmp_path: Path) -> None:
    assert_refused_on_line_3(build(tmp_path, url), reason)


def test_private_addresses_follow_the_private_switch(tmp_path: Path) -> None:
    error = build(tmp_path, "http://10.255.255.1:9/x", UrlPolicy(allow_private=False))
    assert_refused_on_line_3(error, "a private address")


def test_an_allowed_port_does_not_allow_another(forbidden: Served, tmp_path: Path) -> None:
    error = build(tmp_path, f"http://127.0.0.1:{forbidden.port}/shadow",
                  UrlPolicy.parse([f"127.0.0.1:{forbidden.port + 1}", "localhost"]))
    assert_refused_on_line_3(error, "loopback")
    assert forbidden.requests == []


# --- redirects ---------------------------------------------------------------------------------

@pytest.mark.parametrize("location", [
    "http://127.0.0.1:{port}/shadow", "http://localhost:{port}/shadow",
    "//127.0.0.1:{port}/shadow", "http://2130706433:{port}/shadow",
    "http://[::ffff:127.0.0.1]:{port}/shadow", "file:///etc/shadow",
    "http://169.254.169.254/latest/meta-data/"])
def test_redirect_from_an_allowed_host_to_a_forbidden_one_is_refused(
        location: str, forbidden: Served, tmp_path: Path) -> None:
    routes = {"/tool": ("redirect", location.format(port=forbidden.port))}
    with serve(routes) as first:
        error = build(tmp_path, f"http://{first.authority}/tool",
                      UrlPolicy.parse([first.authority]))
    assert_refused_on_line_3(error, "redirect from", "refused")
    assert first.requests == [("/tool", first.authority)]
    assert forbidden.requests == []


def test_allowed_host_downloads_through_its_own_redirect(tmp_path: Path) -> None:
    routes = {"/latest": ("redirect", "/v1/tool.sh"), "/v1/tool.sh": PAYLOAD}
    with serve(routes) as server:
        error = build(tmp_path, f"http://{server.authority}/latest",
                      UrlPolicy.parse([server.authority]), layout=tmp_path / "oci")
    assert error is None, error
    assert [path for path, _ in server.requests] == ["/latest", "/v1/tool.sh"]
    files = layout_files(tmp_path / "oci")
    assert files["fetched"] == PAYLOAD and files["a.txt"] == b"a\n"


def layout_files(layout: Path) -> dict[str, bytes]:
    """Regular files of every layer of the one image in an OCI layout."""
    def blob(digest: str) -> bytes:
        return (layout / "blobs" / digest.replace(":", "/")).read_bytes()

    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads(blob(index["manifests"][0]["digest"]))
    files: dict[str, bytes] = {}
    for layer in manifest["layers"]:
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob(layer["digest"])))) as tar:
            for member in tar.getmembers():
                extracted = tar.extractfile(member) if member.isfile() else None
                if extracted is not None:
                    files[member.name.lstrip("./")] = extracted.read()
    return files


# --- the command line --------------------------------------------------------------------------

def run_cli(tmp_path: Path, source: str, *flags: str) -> subprocess.CompletedProcess[str]:
    context = tmp_path / "ctx"
    context.mkdir(exist_ok=True)
    (context / "a.txt").write_text("a\n")
    (context / "Dockerfile").write_text(DOCKERFILE.format(source=source))
    return subprocess.run(
        [str(PYTHON), "-m", "core", "build", "--context", str(context), "--no-push",
         "--oci-layout-path", str(tmp_path / "oci"), "--work-dir", str(tmp_path / "work"),
         *flags], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": str(REPO),
             "HOME": str(tmp_path)})


def test_cli_refuses_loopback_and_allows_it_with_the_flag(tmp_path: Path) -> None:
    with serve({"/tool.sh": PAYLOAD}) as server:
        url = f"http://{server.authority}/tool.sh"
        refused = run_cli(tmp_path, url)
        assert server.requests == []
        allowed = run_cli(tmp_path, url, "--allow-url-host", server.authority)
    assert refused.returncode == 1, refused.stderr
    assert "Dockerfile:3:" in refused.stderr and "loopback" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert allowed.returncode == 0, allowed.stderr
    assert [path for path, _ in server.requests] == ["/tool.sh"]
    assert layout_files(tmp_path / "oci")["fetched"] == PAYLOAD


def test_cli_rejects_a_bad_allow_value(tmp_path: Path) -> None:
    done = run_cli(tmp_path, "http://127.0.0.1:9/x", "--allow-url-host", "http://x/y")
    assert done.returncode == 2, done.stderr
    assert "--allow-url-host" in done.stderr
