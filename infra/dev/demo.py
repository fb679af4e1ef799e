"""The main job on local stand-ins: build examples/hello and push it to a registry we start.

Run through `infra/dev/demo.sh` (which sets up the machine first). Steps:
  1. start a `docker-registry` on a free loopback port, storage in a temp dir;
  2. make a 2 MB busybox base image with bucketbuild itself (FROM scratch + COPY);
  3. build the multi-stage example on that base and push it;
  4. read the pushed manifest back with skopeo and check that its digest is the one printed;
  5. unpack the pushed image with skopeo + umoci and run its entrypoint under proot.
Everything started here is stopped and removed at the end.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
APPLETS = ("sh", "echo", "cat", "ls", "mkdir", "chmod", "sed", "id", "rm", "ln", "env", "true")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def registry(work: Path) -> Iterator[str]:
    port = free_port()
    config = work / "registry.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {work / 'registry'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    proc = subprocess.Popen(["docker-registry", "serve", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(f"http://127.0.0.1:{port}/v2/")
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def wait_for(url: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def busybox_context(dest: Path) -> Path:
    """A context holding a busybox root filesystem and a Dockerfile that copies it."""
    rootfs = dest / "rootfs"
    for sub in ("bin", "etc", "tmp", "root"):
        (rootfs / sub).mkdir(parents=True)
    (rootfs / "tmp").chmod(0o1777)
    shutil.copy2("/bin/busybox", rootfs / "bin" / "busybox")
    for applet in APPLETS:
        (rootfs / "bin" / applet).symlink_to("busybox")
    (rootfs / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
    (rootfs / "etc" / "group").write_text("root:x:0:\nnogroup:x:65534:\n")
    (dest / "Dockerfile").write_text('FROM scratch\nCOPY rootfs/ /\nCMD ["sh"]\n')
    return dest


def bucketbuild(*args: str) -> str:
    """Run the CLI; progress goes to our stderr, the digest comes back from stdout."""
    cmd = [sys.executable, "-m", "core", "build", *args]
    print("$ bucketbuild build " + " ".join(args), file=sys.stderr, flush=True)
    done = subprocess.run(cmd, cwd=REPO, stdout=subprocess.PIPE, text=True, check=True)
    return done.stdout.strip()


def pushed_digest(reference: str) -> str:
    raw = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{reference}"],
        stdout=subprocess.PIPE, check=True).stdout
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def run_image(reference: str, work: Path) -> str:
    """Unpack the pushed image with tools we did not write and run its entrypoint."""
    layout, bundle = work / "oci", work / "bundle"
    subprocess.run(["skopeo", "copy", "--quiet", "--src-tls-verify=false", f"docker://{reference}",
                    f"oci:{layout}:demo"], check=True)
    rootless = ["--rootless"] if os.geteuid() != 0 else []
    subprocess.run(["umoci", "unpack", *rootless, "--image", f"{layout}:demo", str(bundle)],
                   check=True, stdout=subprocess.DEVNULL)
    config = json.loads((bundle / "config.json").read_text())
    argv = config["process"]["args"]
    done = subprocess.run(["proot", "-r", str(bundle / "rootfs"), "-w", "/", *argv],
                          stdout=subprocess.PIPE, text=True, check=True)
    return done.stdout.strip()


def main() -> int:
    with (tempfile.TemporaryDirectory(prefix="bucketbuild-demo-") as tmp,
          registry(Path(tmp)) as host):
        base = f"{host}/busybox:latest"
        image = f"{host}/hello:latest"
        insecure = f"--insecure-registry={host}"
        bucketbuild("--context", str(busybox_context(Path(tmp) / "base")),
                    "--destination", base, insecure)
        digest = bucketbuild("--context", str(REPO / "examples" / "hello"),
                             "--build-arg", f"BASE={base}", "--destination", image, insecure)
        confirmed = pushed_digest(image)
        if confirmed != digest:
            print(f"skopeo sees {confirmed}: the registry disagrees", file=sys.stderr)
            return 1
        print("skopeo confirms the digest; running the image:", file=sys.stderr, flush=True)
        print(run_image(image, Path(tmp)), flush=True)
        print(f"{image}@{digest}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
