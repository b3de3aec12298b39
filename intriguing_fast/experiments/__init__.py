"""The paper's experiments: scales, cached stages, evaluation and the Tables 1-4 pipeline."""
from .config import SCALES, STAGES, Scale
from .pipeline import RunConfig, run
from .stats import Rate

__all__ = ["SCALES", "STAGES", "Scale", "RunConfig", "run", "Rate"]
