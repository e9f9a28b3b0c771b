"""Reference directions: p-norm max margins and the l_inf max-margin face.

The public surface of this package. Every solve uses one pinned solver (Clarabel
through cvxpy, options :data:`SOLVER_OPTIONS`), is recorded in a
:class:`SolveInfo`, and is checked a posteriori (:data:`CHECK_TOLERANCES`) before
it is returned. Inputs are ``Z`` arrays of shape ``(N, d)`` with rows
``z_i = y_i x_i``.
"""

from theorybox.references.face import (
    FACE_RELAX,
    HIGHS_OPTIONS,
    LinfFace,
    References,
    compute_references,
    face_cosine,
    face_distance,
    linf_face,
    project_to_face,
)
from theorybox.references.mahalanobis import (
    MahalanobisMargin,
    MahalanobisProblem,
    SingularMetricError,
    group_mean_duals,
    mahalanobis_margin,
)
from theorybox.references.maxmargin import (
    CHECK_TOLERANCES,
    SOLVER,
    SOLVER_OPTIONS,
    MaxMargin,
    MergedDuals,
    SolveInfo,
    cosine,
    hinge_slack,
    is_linf_optimal,
    linf_gap,
    max_margin,
    merge_duplicate_duals,
    normalised_margin,
)

__all__ = [
    "MahalanobisMargin",
    "MahalanobisProblem",
    "SingularMetricError",
    "group_mean_duals",
    "mahalanobis_margin",
    "CHECK_TOLERANCES",
    "FACE_RELAX",
    "HIGHS_OPTIONS",
    "SOLVER",
    "SOLVER_OPTIONS",
    "LinfFace",
    "MaxMargin",
    "MergedDuals",
    "References",
    "SolveInfo",
    "compute_references",
    "cosine",
    "face_cosine",
    "face_distance",
    "hinge_slack",
    "is_linf_optimal",
    "linf_face",
    "linf_gap",
    "max_margin",
    "merge_duplicate_duals",
    "normalised_margin",
    "project_to_face",
]
