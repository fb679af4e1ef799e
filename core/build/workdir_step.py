"""The WORKDIR step: the directory is made at once (`mkdir -p`), owned by the USER in force.

BuildKit runs a mkdir file op (with parents, as the current user) for every WORKDIR other than
`/` and commits its history as `WORKDIR <path>` (no ` # buildkit` suffix). Directories that
already exist are left alone. We make a layer only when something was created: an unchanged
tree gives an empty diff, which BuildKit's exporter drops as well, so the history entry is then
`empty_layer`. Created directories are 0755 and belong to the user (and, for a numeric user
without a group, the group of the same number), resolved in the stage's /etc/passwd.
"""

from __future__ import annotations

import logging

from core.build.copy_plan import start_plan, write_layer
from core.build.layers import StepLayer
from core.build.session import BuildSession
from core.build.stage import StageState
from core.build.users import chown_owner
from core.build.workdir import remove_tree
from core.plan import Step

log = logging.getLogger(__name__)


def run_workdir(session: BuildSession, stage: StageState, step: Step, *,
                single_snapshot: bool = False) -> StepLayer:
    path = step.workdir
    text = f"WORKDIR {path}"
    if path == "/":
        return StepLayer(text, None)
    tree = stage.tree
    user = stage.config.config.user
    owner = chown_owner(user, tree.accounts(session.spool), where="USER") if user else (0, 0)
    staging = session.staging("workdir-")
    try:
        plan = start_plan(staging, lambda nodes: tree.view(session.spool, nodes), owner=owner)
        plan.ensure_dir(plan.view.resolve(path.lstrip("/")))
        created = [p for p, e in plan.entries.items() if e.source == plan.staging_dir]
        if not created:
            return StepLayer(text, None)
        log.info("WORKDIR %s: creating %s", path, ", ".join("/" + p for p in created))
        layer = write_layer(plan, session.spool, settings=session.settings, created_by=text)
    finally:
        remove_tree(staging)  # any depth, never through a mount
    if layer is not None:
        tree.absorb(layer, session.spool, single_snapshot=single_snapshot)
    return StepLayer(text, layer)
