"""Exceptions and warnings raised by theorybox.

Every error is a subclass of :class:`TheoryboxError` (itself a ``ValueError``), so
callers can catch the whole family at once, and every message names the offending
value and how to fix it. Mathematical caveats are warnings of a named class rather
than errors: the computation goes on, and the caller decides.
"""

from __future__ import annotations

__all__ = [
    "TheoryboxError",
    "InvalidDataError",
    "NotSeparableError",
    "InvalidParameterError",
    "SolverError",
    "TheoryboxWarning",
    "DivergenceWarning",
    "PrecisionWarning",
    "SolverAccuracyWarning",
    "DataWarning",
]


class TheoryboxError(ValueError):
    """Base class of every error theorybox raises on purpose."""


class InvalidDataError(TheoryboxError):
    """The data are malformed: empty, ragged, NaN or infinite, or mislabelled."""


class NotSeparableError(TheoryboxError):
    """The data are not linearly separable through the origin.

    Attributes
    ----------
    best_margin : float
        The best normalised l_inf margin any direction achieves (``<= 0``).
    hinge_slack : float
        The smallest total hinge violation ``sum_i max(0, 1 - z_i . w)`` over all
        ``w``: a positive number that says by how much separation fails.
    """

    def __init__(
        self, message: str, best_margin: float = 0.0, hinge_slack: float = 0.0
    ):
        super().__init__(message)
        self.best_margin = best_margin
        self.hinge_slack = hinge_slack


class InvalidParameterError(TheoryboxError):
    """A hyperparameter or setting is outside its valid range."""


class DivergedError(TheoryboxError):
    """An arbitrary-precision run's numbers outgrew what the backend can hold.

    Attributes
    ----------
    step : int
        The step (1-based) that could not be computed.
    partial : object
        What the run computed before that step (a ``PreciseRun``).
    """

    step = None
    partial = None


class SolverError(TheoryboxError):
    """A convex solver failed or returned an answer that did not verify."""


class TheoryboxWarning(UserWarning):
    """Base class of theorybox's warnings."""


class DivergenceWarning(TheoryboxWarning):
    """Adam-type settings under which the iterates may diverge (``b1 > sqrt(b2)``)."""


class PrecisionWarning(TheoryboxWarning):
    """The working precision can no longer resolve the progress of a run."""


class SolverAccuracyWarning(TheoryboxWarning):
    """A solver answer was accepted with reduced accuracy (``optimal_inaccurate``)."""


class DataWarning(TheoryboxWarning):
    """The data were changed on loading (a feature dropped, labels mapped)."""
