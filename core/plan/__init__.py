"""The planner: stages, build arguments, target and pruning, then each stage's expanded steps.

Pure: parse results and base image configs in, plans and programs out.
"""

from core.plan.model import ArgValue, BuildPlan, Stage, StageProgram, Step
from core.plan.program import expand_planned, expand_stage
from core.plan.sources import Base, ImageBase, ScratchBase, Source, StageBase
from core.plan.stages import plan_build, with_base_triggers

__all__ = [
    "ArgValue",
    "Base",
    "BuildPlan",
    "ImageBase",
    "ScratchBase",
    "Source",
    "Stage",
    "StageBase",
    "StageProgram",
    "Step",
    "expand_planned",
    "expand_stage",
    "plan_build",
    "with_base_triggers",
]
