"""Trajectories: the compiled float64 engine and the mpmath reference backend."""

from theorybox.engine.run import RunResult, advance, geometric_checkpoints, run
from theorybox.engine.state import EngineState

__all__ = ["EngineState", "RunResult", "advance", "geometric_checkpoints", "run"]
