"""The same Dockerfile built by buildah (an independent builder) and by us: same trees.

Compared per path: type, permission bits, uid, gid, size, content digest, link target (not
mtimes). What buildah adds on its own (`/dev /proc /run /sys`, empty `/etc/hostname`,
`/etc/hosts`, `/etc/resolv.conf`) is left out. The Dockerfile avoids where buildah departs
from BuildKit (lazy WORKDIR, heredocs, SHELL for CMD).
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from tests.build.conftest import Builder
from tests.fixtures.images import Buildah, require_tools, skopeo_unpack

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="chroot builds need root")

BUILDAH_EXTRAS = {"dev", "proc", "run", "sys", "etc/hostname", "etc/hosts", "etc/resolv.conf"}

DOCKERFILE = """\
FROM {base} AS build
RUN /bin/busybox --install -s /bin && mkdir -p /src/sub && echo compiled > /src/sub/out \\
    && ln -s sub/out /src/link && ln /src/sub/out /src/hard && chmod 4750 /src/sub/out
FROM {base}
COPY --from=build /src /opt/app
COPY --chown=65534:65534 files/ /srv/
COPY one.txt /etc/one.txt
RUN /bin/busybox rm /bin/ls && /bin/busybox mkdir -m 0700 /private && echo x > /private/x
ENV GREETING=hi
USER 65534
"""


def _tree(root: Path) -> dict[str, tuple[object, ...]]:
    found: dict[str, tuple[object, ...]] = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(directory) / name
            relative = path.relative_to(root).as_posix()
            if relative in BUILDAH_EXTRAS or relative.split("/")[0] in {"dev", "proc", "sys"}:
                continue
            st = os.lstat(path)
            content: object = None
            if stat.S_ISREG(st.st_mode):
                content = hashlib.sha256(path.read_bytes()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                content = os.readlink(path)
            size = st.st_size if stat.S_ISREG(st.st_mode) else 0
            found[relative] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid,
                               st.st_gid, size, content)
    return found


def test_same_tree_as_buildah(bb: Builder, tmp_path: Path) -> None:
    require_tools("buildah")
    files = {"files/a.txt": "a", "files/deep/b.txt": "b", "one.txt": "1"}
    dockerfile = DOCKERFILE.format(base=bb.busybox)
    bb.build(dockerfile, files, tag="test/compare:ours")
    context = tmp_path / f"ctx{bb.counter}"
    buildah = Buildah(tmp_path / "buildah")
    buildah("build", "--quiet", "--isolation", "chroot", "--layers", "--format", "docker",
            "--tls-verify=false", "-t", "localhost/compare:theirs", str(context))
    buildah("push", "--quiet", "--tls-verify=false", "localhost/compare:theirs",
            f"docker://{bb.image('test/compare:theirs')}")
    ours = _tree(bb.unpack("test/compare:ours"))
    theirs = _tree(skopeo_unpack(bb.registry.host, "test/compare:theirs", tmp_path / "theirs"))
    assert {"opt/app/sub/out", "opt/app/hard", "srv/deep/b.txt", "private/x"} <= set(ours)
    assert ours["private"][1] == 0o700 and ours["srv/a.txt"][2:4] == (65534, 65534)
    assert set(ours) == set(theirs)
    differing = {path: (ours[path], theirs[path]) for path in ours if ours[path] != theirs[path]}
    assert differing == {}
    assert bb.config("test/compare:ours")["config"]["Env"] == \
        bb.config("test/compare:theirs")["config"]["Env"]
