"""The paper's experiments: scales, the table of stages, the run context, evaluation, statistics."""

from .context import RunConfig
from .pipeline import run
from .scales import SCALES, Scale
from .stage import Stage
from .stats import Rate
from .table import STAGE_NAMES, STAGES

__all__ = ["SCALES", "STAGES", "STAGE_NAMES", "Scale", "Stage", "RunConfig", "run", "Rate"]
