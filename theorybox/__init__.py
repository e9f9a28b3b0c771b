"""theorybox: check the implicit bias of optimizers on separable data."""

from theorybox import errors

__all__ = ["errors"]
__version__ = "0.1.0"
