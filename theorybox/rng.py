"""A counter-based random stream keyed by ``(seed, run, epoch)``.

Every draw is a pure function of its key and its index: no global state, any epoch
can be regenerated on its own (which is what resuming a run needs), and the numba
kernel and plain Python produce the same numbers. The mixing function is the
64-bit finaliser of SplitMix64 (Steele, Lea, Flood 2014), applied to a key built by
chaining the three key words through it.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["epoch_key", "uniform", "permutation", "draw_indices"]

_M64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_C1 = 0xBF58476D1CE4E5B9
_C2 = 0x94D049BB133111EB


def _mix_py(x: int) -> int:
    x &= _M64
    x = ((x ^ (x >> 30)) * _C1) & _M64
    x = ((x ^ (x >> 27)) * _C2) & _M64
    return x ^ (x >> 31)


def epoch_key(seed: int, run: int, epoch: int) -> int:
    """The 64-bit key of one epoch's draws."""
    key = _mix_py(seed + _GOLDEN)
    key = _mix_py(key ^ (run + 2 * _GOLDEN))
    return _mix_py(key ^ (epoch + 3 * _GOLDEN))


def uniform(key: int, j: int) -> float:
    """The ``j``-th uniform draw in [0, 1) of a key (53 random bits)."""
    return (_mix_py(key + (j + 1) * _GOLDEN) >> 11) * 2.0**-53


def permutation(seed: int, run: int, epoch: int, n: int) -> np.ndarray:
    """The random-reshuffling order of one epoch (Fisher-Yates, from the top)."""
    key = epoch_key(seed, run, epoch)
    perm = np.arange(n, dtype=np.int64)
    for i in range(n - 1, 0, -1):
        j = int(uniform(key, i) * (i + 1))
        perm[i], perm[j] = perm[j], perm[i]
    return perm


def draw_indices(seed: int, run: int, epoch: int, start: int, b: int, n: int):
    """Indices ``start .. start + b - 1`` of an epoch's with-replacement draws."""
    key = epoch_key(seed, run, epoch)
    return np.array([int(uniform(key, start + q) * n) for q in range(b)], np.int64)


# The same functions for the kernel, on wrapping uint64 arithmetic.


@numba.njit(inline="always", cache=False)
def _mix_nb(x):
    x = (x ^ (x >> numba.uint64(30))) * numba.uint64(_C1)
    x = (x ^ (x >> numba.uint64(27))) * numba.uint64(_C2)
    return x ^ (x >> numba.uint64(31))


@numba.njit(cache=False)
def epoch_key_nb(seed, run, epoch):
    g = numba.uint64(_GOLDEN)
    key = _mix_nb(numba.uint64(seed) + g)
    key = _mix_nb(key ^ (numba.uint64(run) + numba.uint64(2) * g))
    return _mix_nb(key ^ (numba.uint64(epoch) + numba.uint64(3) * g))


@numba.njit("float64(uint64, int64)", inline="always", cache=False)
def uniform_nb(key, j):
    # The key is cast so that a signed integer key mixes exactly like the uint64.
    key = numba.uint64(key)
    x = _mix_nb(key + (numba.uint64(j) + numba.uint64(1)) * numba.uint64(_GOLDEN))
    return float(x >> numba.uint64(11)) * 2.0**-53


@numba.njit("void(uint64, int64[:])", cache=False)
def permutation_nb(key, perm):
    key = numba.uint64(key)
    n = perm.shape[0]
    for i in range(n):
        perm[i] = i
    for i in range(n - 1, 0, -1):
        j = int(uniform_nb(key, i) * (i + 1))
        tmp = perm[i]
        perm[i] = perm[j]
        perm[j] = tmp
