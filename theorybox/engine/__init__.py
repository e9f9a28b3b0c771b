"""Trajectories: the compiled float64 engine and the mpmath reference backend."""

from theorybox.engine.ensemble import config_grid, run_ensemble
from theorybox.engine.longrun import resume, run_long
from theorybox.engine.run import RunResult, advance, geometric_checkpoints, run
from theorybox.engine.state import EngineState

__all__ = [
    "EngineState",
    "RunResult",
    "advance",
    "config_grid",
    "geometric_checkpoints",
    "resume",
    "run",
    "run_ensemble",
    "run_long",
]
