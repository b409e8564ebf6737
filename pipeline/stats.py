"""Small statistics shared by the evaluations: a mean with its bootstrap interval, and how tables show one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

BOOTSTRAP_SEED = 0
BOOTSTRAP_SAMPLES = 1000


def mean_with_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): the percentile bootstrap interval of the mean, items resampled with a fixed seed."""
    data = np.asarray(values, dtype=float)
    if len(data) == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    means = data[rng.integers(0, len(data), (BOOTSTRAP_SAMPLES, len(data)))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(data.mean()), float(low), float(high)


def with_interval(metrics: Mapping[str, float], name: str) -> str:
    """A figure with its 95% bootstrap interval (keys name, name_low, name_high), as every table shows it:
    "0.35 [0.24, 0.43]"."""
    return f"{metrics[name]:.2f} [{metrics[name + '_low']:.2f}, {metrics[name + '_high']:.2f}]"
