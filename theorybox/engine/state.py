"""Optimizer state as plain arrays with a leading run axis.

Everything a run needs to continue is here, so a state can be saved, loaded and
resumed, and many runs can be advanced together.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["EngineState"]


@dataclass
class EngineState:
    """The state of ``R`` runs of one optimizer on data with ``d`` features.

    Attributes
    ----------
    w : ndarray, shape (R, d)
        Iterates.
    moments : ndarray, shape (R, n_state, d)
        Stored moments (``m``, ``v``, ...) relative to ``scale``.
    scale : ndarray, shape (R, d)
        Natural log-scale per coordinate: ``m = moments[:, 0] * exp(scale)``,
        ``v = moments[:, 1] * exp(2 scale)``.
    t : ndarray of int64, shape (R,)
        Steps taken.
    stall : ndarray of int64, shape (R, 2)
        First step whose update float64 could not resolve, and how many such steps.
    """

    w: np.ndarray
    moments: np.ndarray
    scale: np.ndarray
    t: np.ndarray
    stall: np.ndarray

    @classmethod
    def initial(cls, w0: np.ndarray, n_state: int) -> EngineState:
        w0 = np.atleast_2d(np.asarray(w0, dtype=np.float64))
        runs, d = w0.shape
        return cls(
            w=w0.copy(),
            moments=np.zeros((runs, n_state, d)),
            scale=np.zeros((runs, d)),
            t=np.zeros(runs, dtype=np.int64),
            stall=np.zeros((runs, 2), dtype=np.int64),
        )

    def copy(self) -> EngineState:
        return EngineState(
            self.w.copy(),
            self.moments.copy(),
            self.scale.copy(),
            self.t.copy(),
            self.stall.copy(),
        )

    def true_moments(self, powers) -> np.ndarray:
        """Moments in plain units (may underflow: for inspection only).

        ``powers`` gives each moment's power in the scale (the spec's ``state``).
        """
        out = self.moments.copy()
        for j, power in enumerate(powers):
            with np.errstate(over="ignore", under="ignore"):
                out[:, j] *= np.exp(power * self.scale)
        return out

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The state as named arrays (for ``np.savez``)."""
        return {
            "w": self.w,
            "moments": self.moments,
            "scale": self.scale,
            "t": self.t,
            "stall": self.stall,
        }

    @classmethod
    def from_arrays(cls, arrays) -> EngineState:
        keys = ("w", "moments", "scale", "t", "stall")
        return cls(**{key: np.array(arrays[key]) for key in keys})

    def save(self, path) -> None:
        np.savez(path, **self.to_arrays())

    @classmethod
    def load(cls, path) -> EngineState:
        with np.load(path) as arrays:
            return cls.from_arrays(arrays)
