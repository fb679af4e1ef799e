"""Push and pull throughput of one large layer on loopback, ours next to `skopeo copy`.

Run: `.venv/bin/python -m tests.bench.bench_registry [--size-mb 200]`. It starts its own no-auth
`docker-registry`, writes an uncompressed random-ish tar layer of the given size, then times:
- our push (chunked, from the file) and our pull (streamed to a file, verified);
- `skopeo copy oci:LAYOUT docker://...` and `skopeo copy docker://... oci:LAYOUT` of the same
  image into a different repository.
Not collected by pytest (the file name does not start with `test_`).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from core.image.config import ImageConfig
from core.image.digest import Hasher, sha256_digest
from core.image.manifest import Descriptor, Manifest
from core.image.mediatypes import OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST
from core.image.reference import parse_reference
from core.registry import BlobSource, RegistryClient, anonymous
from tests.fixtures.registry import RegistryServer, run_registry

MB = 1024 * 1024


def write_layer(path: Path, size: int) -> str:
    """A gzip tar with one file of `size` bytes (random 1 MiB blocks, some repeated).

    Gzip, so skopeo pushes the blob as it is instead of compressing it on the way. Returns
    the diff_id.
    """
    rng = random.Random(1234)
    blocks = [rng.randbytes(MB) for _ in range(16)]
    source = path.with_suffix(".data")
    with open(source, "wb") as out:
        for i in range(size // MB):
            out.write(blocks[rng.randrange(len(blocks))] if i % 3 else rng.randbytes(MB))
        out.write(rng.randbytes(size % MB))
    raw = path.with_suffix(".raw")
    with tarfile.open(raw, "w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(source, arcname="payload.bin")
    source.unlink()
    hasher = Hasher()
    with open(raw, "rb") as src, gzip.GzipFile(path, "wb", compresslevel=1, mtime=0) as out:
        for block in iter(lambda: src.read(MB), b""):
            hasher.update(block)
            out.write(block)
    raw.unlink()
    return hasher.digest


def compose(layer: BlobSource, diff_id: str) -> tuple[bytes, bytes]:
    config = ImageConfig(architecture="amd64", os="linux", diff_ids=(diff_id,))
    config_bytes = config.to_json()
    manifest = Manifest(OCI_MANIFEST, Descriptor(OCI_CONFIG, sha256_digest(config_bytes),
                                                 len(config_bytes)),
                        (Descriptor(OCI_LAYER_GZIP, layer.digest, layer.size),))
    return config_bytes, manifest.to_json()


def write_layout(root: Path, layer_path: Path, layer: BlobSource, config: bytes,
                 manifest: bytes) -> None:
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    os.link(layer_path, blobs / layer.digest.split(":")[1])
    (blobs / sha256_digest(config).split(":")[1]).write_bytes(config)
    (blobs / sha256_digest(manifest).split(":")[1]).write_bytes(manifest)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [{"mediaType": OCI_MANIFEST, "digest": sha256_digest(manifest),
                            "size": len(manifest),
                            "annotations": {"org.opencontainers.image.ref.name": "bench"}}]}
    (root / "index.json").write_text(json.dumps(index))


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def skopeo(*args: str) -> None:
    subprocess.run(["skopeo", "copy", "--quiet", *args], check=True)


def run(size: int, chunk: int, workdir: Path, server: RegistryServer) -> list[tuple[str, float]]:
    layer_path = workdir / "layer.tar.gz"
    diff_id = write_layer(layer_path, size)
    layer = BlobSource.from_path(layer_path)
    config, manifest = compose(layer, diff_id)
    write_layout(workdir / "layout", layer_path, layer, config, manifest)
    ours = parse_reference(f"{server.host}/bench/ours:v1")
    results: list[tuple[str, float]] = []
    with RegistryClient(insecure_registries=[server.host], credentials=anonymous,
                        chunk_size=chunk) as client:
        results.append(("push  bucketbuild", timed(lambda: client.push_image(
            [ours], blobs=[BlobSource.from_bytes(config), layer], manifest=manifest,
            media_type=OCI_MANIFEST))))
        with open(workdir / "pulled.tar", "wb") as sink:
            results.append(("pull  bucketbuild", timed(lambda: client.fetch_blob(
                ours, layer.digest, sink, size=layer.size))))
    dest = f"docker://{server.host}/bench/skopeo:v1"
    results.append(("push  skopeo copy", timed(lambda: skopeo(
        "--dest-tls-verify=false", f"oci:{workdir / 'layout'}:bench", dest))))
    results.append(("pull  skopeo copy", timed(lambda: skopeo(
        "--src-tls-verify=false", dest, f"oci:{workdir / 'pulled-layout'}:bench"))))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--chunk-mb", type=int, default=16)
    args = parser.parse_args()
    size = args.size_mb * MB
    with tempfile.TemporaryDirectory(prefix="bench-registry-") as tmp:
        workdir = Path(tmp)
        with run_registry(workdir / "registry", "open") as server:
            results = run(size, args.chunk_mb * MB, workdir, server)
            blob_size = (workdir / "layer.tar.gz").stat().st_size
    print(f"{'operation':<20} {'seconds':>8} {'MB/s':>8}   "
          f"({blob_size / MB:.0f} MB gzip layer of {args.size_mb} MB, loopback)")
    for name, seconds in results:
        print(f"{name:<20} {seconds:8.2f} {blob_size / MB / seconds:8.1f}")


if __name__ == "__main__":
    main()
