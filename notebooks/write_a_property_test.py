# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # How to write a property test for a claim
#
# A property test states something the theory says holds for *every* dataset of
# a kind, and lets Hypothesis look for a counterexample. Three rules make such
# tests useful here:
#
# 1. **Build valid data, don't filter it.** `theorybox.strategies` constructs
#    separable data (a planted direction first, labels from it), so no example is
#    thrown away and failures shrink to small integer datasets (cases.md, K13).
# 2. **Exact zeros need explicit examples.** Random floats never hit
#    `sign(0)` or `0/0`; `awkward_datasets` builds those cases on purpose (K6).
# 3. **Decide from the math what should hold.** A symmetry the method does not
#    have is a fact to document, not a test to force green.
#
# Below: a true property, a false one and its shrunk counterexample, and an
# exact-zero property.

# %%
import warnings

import numpy as np
from hypothesis import find, given, settings
from hypothesis import strategies as st

from theorybox.engine import run
from theorybox.notebooks import notebook_size
from theorybox.optimizers import RunConfig, Schedule
from theorybox.strategies import awkward_datasets, integer_separable_datasets

SIZE = notebook_size()
EXAMPLES = 5 if SIZE == "small" else 100


def final(Z, name, steps=300, eta0=0.1):
    """The iterate after ``steps`` steps of ``name`` from 0."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        config = RunConfig(name, steps, schedule=Schedule(eta0, 1.0, 0.5))
        return run(Z, config, checkpoints=[steps]).w


# %% [markdown]
# ## A true property: uniform scaling
#
# With `z -> c z` and `w' = w / c` every margin is unchanged and the gradient is
# multiplied by `c`; a sign-type step then needs the step size `eta / c`. So
# SignGD on `2^k Z` with step `eta / 2^k` must give exactly `w / 2^k`. The test
# is written exactly as in `tests/test_properties.py`:

# %%
@given(integer_separable_datasets(), st.integers(-3, 3))
@settings(max_examples=EXAMPLES, deadline=None, database=None)
def scaling_is_equivariant(ds, k):
    c = 2.0**k
    w = final(ds.Z, "signgd")
    w_scaled = final(c * ds.Z, "signgd", eta0=0.1 / c)
    np.testing.assert_allclose(w_scaled, w / c, rtol=1e-12)


scaling_is_equivariant()
print("uniform scaling: no counterexample in", EXAMPLES, "examples")

# %% [markdown]
# ## A false property, and the counterexample Hypothesis shrinks to
#
# "SignGD and GD head the same way" is false: SignGD goes to the l_inf max
# margin, GD to l2. `find` searches for data where the directions differ and
# shrinks it; because the strategy builds integer data, the answer is small and
# readable.

# %%
def directions_differ(ds):
    a, b = final(ds.Z, "signgd", 500), final(ds.Z, "gd", 500, eta0=1.0)
    cos = a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
    return cos < 0.99


counterexample = find(
    integer_separable_datasets(n=st.integers(1, 4), d=st.integers(1, 3)),
    directions_differ,
    settings=settings(max_examples=EXAMPLES * 10, deadline=None, database=None),
)
print("smallest data where SignGD and GD disagree (rows z_i):")
print(counterexample.Z)

# %% [markdown]
# ## An exact-zero property
#
# On data made of mirror pairs in coordinate `k` (the K6 shape, drawn by
# `awkward_datasets(kinds=["zero_gradient_coordinate"])`), the full-batch
# gradient's coordinate `k` is exactly 0 along the whole run, so every
# full-batch method must leave `w_k` exactly 0 (`sign(0) = 0`, `0/0 = 0`).

# %%
@given(awkward_datasets(kinds=["zero_gradient_coordinate"]))
@settings(max_examples=EXAMPLES, deadline=None, database=None)
def mirrored_coordinate_stays_zero(ds):
    Z = ds.Z
    k = next(j for j in range(ds.d) if np.array_equal(Z[0::2, j], -Z[1::2, j]))
    for name in ("gd", "signgd", "signum", "adam", "adamproxy"):
        assert final(Z, name)[k] == 0.0, name


mirrored_coordinate_stays_zero()
print("mirrored coordinates stay exactly 0 for every full-batch method")

# %% [markdown]
# To add a property to the suite: put the function in `tests/test_properties.py`,
# keep each example under a second, take `max_examples` from the active profile
# (`tests/conftest.py`: `default` is small and deterministic, `large` runs 500
# examples: `THEORYBOX_HYPOTHESIS_PROFILE=large pytest tests/test_properties.py`),
# and document in its docstring why the property holds.
