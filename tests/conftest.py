"""Shared test setup: thread caps, mpmath precision guard, Hypothesis profiles.

The thread caps are set at import, before anything imports numba or numpy's BLAS,
because both read them once when they load.
"""

import os

for _var in (
    "NUMBA_NUM_THREADS",
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
):
    os.environ[_var] = "1"

import mpmath  # noqa: E402
import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

#: mpmath's default working precision in bits (53, like float64).
DEFAULT_MP_PREC = 53

settings.register_profile("default", max_examples=25, deadline=None, derandomize=True)
settings.register_profile("large", max_examples=500, deadline=None)
settings.load_profile(os.environ.get("THEORYBOX_HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(autouse=True)
def _mpmath_precision_unchanged():
    """Fail a test that leaves mpmath's global precision changed (cases.md K10).

    theorybox passes precision explicitly (private ``MPContext``); a test or a
    library call that sets ``mpmath.mp.prec`` and does not restore it would make
    every later test silently run at another precision. A leak at import time
    shows up in the first test. The precision is reset before failing so that one
    leak does not cascade into other tests.
    """
    yield
    leaked = mpmath.mp.prec
    if leaked != DEFAULT_MP_PREC:
        mpmath.mp.prec = DEFAULT_MP_PREC
        pytest.fail(
            f"the test left mpmath.mp.prec = {leaked} (expected {DEFAULT_MP_PREC}); "
            "use a private mpmath.MPContext or restore the precision"
        )
