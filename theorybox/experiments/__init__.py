"""Experiments: the paper's comparisons as functions that return records."""

from theorybox.experiments.headline import (
    HEADLINE_DATASETS,
    HEADLINE_OPTIMIZERS,
    Entry,
    run_headline,
)

__all__ = ["Entry", "HEADLINE_DATASETS", "HEADLINE_OPTIMIZERS", "run_headline"]
