"""Arithmetic backends: the small ops namespaces that update rules are written in."""

from theorybox.arith.ops import PythonOps, bind_ops, mpmath_ops, numba_ops

__all__ = ["PythonOps", "bind_ops", "mpmath_ops", "numba_ops"]
