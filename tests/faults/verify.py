"""Checks of what a registry really holds, made without the proxy and with tools we did not write.

`tag_digest` asks skopeo; `assert_complete` proves an image is whole: its manifest is what the
tag serves, and its config and every layer can be fetched straight from the registry with
their digests verified.
"""

from __future__ import annotations

import io
import json
import random
import subprocess
from pathlib import Path

from core.image.digest import sha256_digest
from core.image.manifest import parse_manifest
from core.image.reference import parse_reference
from tests.fixtures.images import BuiltImage, compose_image, skopeo_unpack
from tests.fixtures.registry import RegistryServer, make_client

KiB = 1024


def file_name(label: str) -> str:
    return "data/" + "".join(c if c.isalnum() or c in "-_." else "_" for c in label) + ".bin"


def small_image(label: str, *, seed: int, size: int = 6 * KiB) -> tuple[BuiltImage, bytes]:
    """A distinct one-layer image whose one file (`file_name(label)`) holds `size` random
    bytes."""
    data = random.Random(f"{label}-{seed}").randbytes(size)
    return compose_image([{file_name(label): data}]), data


def tag_digest(registry: RegistryServer, name: str) -> str | None:
    """The digest `repo:tag` serves, by skopeo straight from the registry; None if absent."""
    proc = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false",
                           f"docker://{registry.host}/{name}"], capture_output=True, check=False)
    if proc.returncode != 0:
        if b"manifest unknown" in proc.stderr or b"not found" in proc.stderr.lower():
            return None
        raise AssertionError(f"skopeo inspect {name} failed: {proc.stderr.decode()}")
    return sha256_digest(proc.stdout)


def assert_complete(registry: RegistryServer, name: str, digest: str) -> None:
    """The image `digest` in `name`'s repository is whole: config and layers all present."""
    repository = name.rsplit(":", 1)[0]
    ref = parse_reference(f"{registry.host}/{repository}@{digest}")
    with make_client(registry.host) as client:
        fetched = client.fetch_manifest(ref)
        assert fetched.digest == digest
        manifest = parse_manifest(fetched.data, fetched.media_type)
        for blob in (manifest.config, *manifest.layers):
            sink = io.BytesIO()
            client.fetch_blob(ref, blob.digest, sink, size=blob.size)
            assert sha256_digest(sink.getvalue()) == blob.digest


def assert_unpacks_to(registry: RegistryServer, name: str, label: str, data: bytes,
                      workdir: Path) -> None:
    """skopeo copies the image and umoci unpacks it; the file holds exactly `data`."""
    rootfs = skopeo_unpack(registry.host, name, workdir)
    assert (rootfs / file_name(label)).read_bytes() == data


def report(title: str, counts: dict[str, object]) -> str:
    """One line for the pytest log (`-rA` / `-s`) and the junit properties."""
    line = f"{title}: {json.dumps(counts, sort_keys=True)}"
    print(line)
    return line
