"""Runs RUN sandbox cases as whatever unprivileged user starts it, and prints the results.

`test_unprivileged.py` starts it through `setpriv` (uid 65534, no capabilities) with the system
Python. Standard input: `{"template": ROOT, "work": DIR, "cases": [CASE, ...]}` (a case id
starts with the sandbox's name); standard output: the probe report and, per case id, how the
step ended, its output, whether the root is unchanged and what the bind sources hold after.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from core.errors import SandboxError
from core.run import BindMount, Mount, ProbeReport, RunSpec, TmpfsMount, probe, select_sandbox


def _tree(root: Path) -> dict[str, tuple[int, int, int, int]]:
    state = {}
    for path in [root, *root.rglob("*")]:
        st = path.lstat()
        state[str(path.relative_to(root))] = (st.st_mode, st.st_size, st.st_mtime_ns, st.st_ino)
    return state


def _mounts(case: dict[str, Any], place: Path) -> tuple[Mount, ...]:
    mounts: list[Mount] = []
    for mount in case.get("mounts", []):
        if mount["type"] == "tmpfs":
            mounts.append(TmpfsMount(target=mount["target"]))
            continue
        source = place / mount["name"]
        source.mkdir()
        (source / "f").write_text("context\n")
        mounts.append(BindMount(source=source, target=mount["target"],
                                readonly=mount["readonly"]))
    return tuple(mounts)


def _run(report: ProbeReport, case: dict[str, Any], template: Path, work: Path) -> dict[str, Any]:
    place = work / case["id"]
    root = place / "root"
    shutil.copytree(template, root, symlinks=True)
    mounts = _mounts(case, place)
    before = _tree(root)
    sink = io.BytesIO()
    argv = tuple(case.get("argv", ("/bin/sh", "-c", case.get("script", ""))))
    spec = RunSpec(root=root, argv=argv, env=case.get("env", {"PATH": "/bin"}),
                   uid=case.get("uid", 0), gid=case.get("gid", 0), mounts=mounts,
                   network=case.get("network", "default"), timeout=case.get("timeout", 30),
                   stdout=sink, resolv_conf=case.get("resolv", "").encode() or None,
                   hosts=case.get("hosts", "").encode() or None)
    try:
        result = select_sandbox(case["id"].split("-", 1)[0], report).run(spec)
    except SandboxError as e:
        return {"error": str(e)}
    return {"exit_code": result.exit_code, "signal": result.signal,
            "timed_out": result.timed_out, "output": sink.getvalue().decode(errors="replace"),
            "unchanged": _tree(root) == before,
            "sources": {m["name"]: sorted(os.listdir(place / m["name"]))
                        for m in case.get("mounts", []) if "name" in m}}


def main() -> None:
    os.environ["AWS_SECRET_ACCESS_KEY"] = "do-not-leak"
    request = json.load(sys.stdin)
    work = Path(request["work"])
    report = probe(root_for_test=work / "probe")
    cases = {case["id"]: _run(report, case, Path(request["template"]), work)
             for case in request["cases"]}
    json.dump({"uid": os.getuid(), "chosen": report.chosen, "cases": cases,
               "probe": {e.name: [e.usable, e.reason] for e in report.entries}}, sys.stdout)


if __name__ == "__main__":
    main()
