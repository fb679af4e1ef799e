"""What ADD does beyond COPY: remote URLs and local archives.

- `http://` and `https://` sources are downloaded into a staging directory (streamed, verified
  against `--checksum` when given) and copied as a file named after the URL's last path
  component (`__unnamed__` when it has none), mode 0600, as BuildKit's HTTP source makes it.
  Any other `scheme://` (and `file:`, `data:` and the like without slashes) is refused, and so
  are loopback, link-local and metadata addresses unless allowed (`url_policy`, enforced when
  connecting by `url_fetch`). Remote archives are not unpacked unless `--unpack`.
- A local file that is a tar archive (plain, gzip, bzip2, xz or zstd) is unpacked into the
  destination instead of copied; ownership comes from the archive unless `--chown` is given.
  The archive is unpacked into a staging directory first (contained, with whiteout names kept
  as plain files), which is then copied like a directory source.
"""

from __future__ import annotations

import email.utils
import hashlib
import logging
import os
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import urllib3

from core.build.url_fetch import FetchError, open_url
from core.build.url_policy import UrlPolicy, UrlRefusedError
from core.errors import StepError
from core.rootfs.apply import Applier
from core.rootfs.compression import decompressed
from core.rootfs.metadata import EntryMetadata, MetadataMap
from core.rootfs.nodes import WritePolicy
from core.rootfs.paths import Root
from core.rootfs.tarstream import TarReader

log = logging.getLogger(__name__)

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_SCHEME_ONLY = re.compile(r"^(?:file|data|ftps?|sftp|tftp|gopher|dict|ldaps?|ssh|scp|git|jar|"
                          r"netdoc|smb|nfs|mailto|javascript):", re.IGNORECASE)
_GIT_URL = re.compile(r"\.git(?:#.*)?$")
_CHUNK = 1 << 20


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def check_scheme(source: str) -> None:
    """Refuse sources that are neither context paths nor plain http(s) URLs (git repositories
    given as `https://host/x.git` or `git@...` are not supported)."""
    foreign = (_SCHEME.match(source) or _SCHEME_ONLY.match(source)) and not is_url(source)
    if foreign or source.startswith("git@"):
        raise StepError(f"unsupported ADD source {source!r}: only http:// and https:// URLs "
                        "and paths in the build context are supported")
    if is_url(source) and _GIT_URL.search(source):
        raise StepError(f"unsupported ADD source {source!r}: git repositories are not "
                        "supported")


def check_checksum(checksum: str, sources: tuple[str, ...]) -> None:
    """BuildKit's rules for `ADD --checksum`."""
    if not checksum:
        return
    if len(sources) != 1:
        raise StepError("checksum can't be specified for multiple sources")
    if not is_url(sources[0]):
        raise StepError("checksum requires HTTP(S) or Git sources")


@dataclass(frozen=True)
class Download:
    path: Path
    name: str


def download(url: str, staging: Path, *, policy: UrlPolicy | None = None, checksum: str = "",
             ca_certs: str | None = None) -> Download:
    """Fetch `url` into `staging` as `policy` allows (default: public and private addresses
    only); verify `checksum` (`sha256:...`) when given."""
    name = os.path.basename(urlsplit(url).path) or "__unnamed__"
    if name in (".", ".."):
        name = "__unnamed__"
    target = staging / name
    algorithm, _, expected = checksum.partition(":")
    if checksum and (algorithm not in ("sha256", "sha384", "sha512") or not expected):
        raise StepError(f"invalid checksum {checksum!r}: expected sha256:<hex>")
    hasher = hashlib.new(algorithm or "sha256")
    try:
        with open_url(url, policy or UrlPolicy(), ca_certs=ca_certs) as response:
            if response.status != 200:
                raise StepError(f"ADD {url}: HTTP {response.status}")
            with open(target, "wb") as out:
                for chunk in response.stream(_CHUNK, decode_content=True):
                    hasher.update(chunk)
                    out.write(chunk)
            modified = response.headers.get("Last-Modified")
    except UrlRefusedError as error:
        raise UrlRefusedError(f"ADD {error.message}") from None
    except FetchError as error:
        raise StepError(f"ADD {url}: {error.message}") from None
    except urllib3.exceptions.HTTPError as error:
        raise StepError(f"ADD {url}: {error}") from None
    if checksum and hasher.hexdigest() != expected.lower():
        raise StepError(f"ADD {url}: digest mismatch: got {algorithm}:{hasher.hexdigest()}, "
                        f"expected {checksum}")
    os.chmod(target, 0o600)
    _set_mtime(target, modified)
    return Download(target, name)


def _set_mtime(path: Path, header: str | None) -> None:
    if not header:
        return
    try:
        moment = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return
    stamp = moment.timestamp()
    os.utime(path, (stamp, stamp))


def is_archive(path: Path) -> bool:
    """Whether a regular file holds a tar archive (possibly compressed)."""
    try:
        with open(path, "rb") as source:
            _, stream = decompressed(source)
            block = stream.read(512)
    except Exception:  # a decompressor's own error (zlib, lzma, zstd) means "not an archive"
        return False
    if len(block) < 512:
        return False
    try:
        tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
    except tarfile.TarError:
        return False
    return True


def unpack_archive(path: Path, staging: Path) -> MetadataMap:
    """Unpack an archive into the empty directory `staging`; owners go into the metadata map
    when they cannot be set. Whiteout names are kept as plain files, as `docker build` does."""
    records: dict[str, EntryMetadata] = {}
    with open(path, "rb") as source:
        _, stream = decompressed(source)
        with Root(staging, clamp=True) as root:
            applier = Applier(root, WritePolicy(privileged=os.geteuid() == 0),
                              whiteouts=False, metadata=records)
            reader = TarReader(stream)
            for entry in reader:
                applier.apply(entry, reader.read_payload)
            reader.drain()
            applier.finish()
    return MetadataMap(records)
