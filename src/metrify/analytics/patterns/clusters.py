"""Households grouped by the shape of their day: k-means on unit-energy day shapes.

Each household is one 48-vector, its mean day normalised to unit daily energy
(:func:`~metrify.analytics.patterns.profiles.day_shapes`), so clusters differ in *when*
energy is used, not how much. k is chosen by the mean silhouette over a range of k
(default 2-8; Calinski-Harabasz is reported beside it, or used when asked). Silhouette
is bounded and does not grow with k the way within-cluster error does, so it picks a
small k unless the data has real structure.

Two guards keep a few odd homes from passing for structure. On the London households a
single daytime-only meter made k=2 "the best" split (98 against 1, silhouette 0.81).
So first, households whose shape lies far from the median shape (Euclidean distance
above Q3 + ``fence`` x IQR of all the distances; 3 by default, Tukey's "far out") are
set aside as *unusual* (label -1, listed, not clustered): night storage heating, a
meter with no night load at all. Then a k is eligible only when its smallest cluster
holds at least ``min_share`` of the households (5%, and at least two).

Stability: a clustering worth naming should not change when a few households change.
:func:`stability` draws households with replacement, fits k-means with the same k on
the draw, assigns *every* household to the nearest centre of that fit and compares the
labels with the full fit's by the adjusted Rand index (1: the same partition; about 0:
no better than chance). The median and 5-95% range over the draws are reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:
    from sklearn.cluster import KMeans  # type: ignore[import-untyped]

__all__ = ["Clustering", "Criterion", "Stability", "cluster_shapes", "stability"]

Criterion = Literal["silhouette", "calinski_harabasz"]


@dataclass(frozen=True)
class Stability:
    """Adjusted Rand index of bootstrap refits against the full fit."""

    resamples: int
    ari_median: float
    ari_p05: float
    ari_p95: float


@dataclass(frozen=True)
class Clustering:
    """A fit: labels of ``ids`` (0 = largest cluster, -1 = unusual shape), centres
    (k x 48 shares), the scores of every k tried (with ``smallest``, the share of the
    smallest cluster, and ``eligible``), the criterion that chose k, and the stability."""

    ids: list[str]
    labels: np.ndarray
    centres: np.ndarray
    k: int
    criterion: Criterion
    scores: dict[int, dict[str, float]]
    stability: Stability | None = field(default=None)


def _fit(x: np.ndarray, k: int, seed: int, n_init: int = 10) -> KMeans:
    # scikit-learn is imported here, not with the module: the ``metrify`` command
    # imports every command group to build its help, and loading scikit-learn (and
    # SciPy behind it) took about a second of every command's start, loads included.
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(x)


def unusual(shapes: np.ndarray, fence: float | None = 3.0) -> np.ndarray:
    """A boolean per row: its distance from the median shape is above Q3 + fence x IQR
    of every row's distance (none when ``fence`` is None)."""
    if fence is None or len(shapes) < 4:
        return np.zeros(len(shapes), dtype=bool)
    distance = np.sqrt(((shapes - np.median(shapes, axis=0)) ** 2).sum(axis=1))
    q1, q3 = np.quantile(distance, [0.25, 0.75])
    far: np.ndarray = distance > q3 + fence * (q3 - q1)
    return far


def cluster_shapes(
    ids: list[str],
    shapes: np.ndarray,
    k: int | None = None,
    k_range: range = range(2, 9),
    criterion: Criterion = "silhouette",
    resamples: int = 50,
    seed: int = 0,
    fence: float | None = 3.0,
    min_share: float = 0.05,
) -> Clustering:
    """Cluster the rows of ``shapes`` (unusual ones aside, see the module); ``k`` fixed
    or chosen by ``criterion`` over ``k_range`` among the eligible k. ValueError for
    fewer than three households to cluster, too few to tell two groups from noise."""
    if len(ids) != shapes.shape[0]:
        raise ValueError("one shape per id")
    odd = unusual(shapes, fence)
    kept = shapes[~odd]
    n = len(kept)
    if n < 3:
        raise ValueError(f"clustering needs at least 3 households with complete days, not {n}")
    smallest_allowed = max(2, int(np.ceil(min_share * n)))
    distinct = len(np.unique(kept.round(12), axis=0))
    scores: dict[int, dict[str, float]] = {}
    if k is None:
        from sklearn.metrics import (  # type: ignore[import-untyped]
            calinski_harabasz_score,
            silhouette_score,
        )

        tried = [c for c in k_range if 2 <= c <= min(n - 1, distinct)]
        for c in tried:
            labels = _fit(kept, c, seed).labels_
            sizes = np.bincount(labels, minlength=c)
            scores[c] = {
                "silhouette": float(silhouette_score(kept, labels)),
                "calinski_harabasz": float(calinski_harabasz_score(kept, labels)),
                "smallest": float(sizes.min() / n),
                "eligible": float(sizes.min() >= smallest_allowed),
            }
        eligible = [c for c in scores if scores[c]["eligible"]]
        if not eligible:
            raise ValueError("no k gives clusters of at least 5% of the households each")
        k = max(eligible, key=lambda c: scores[c][criterion])
    elif not 1 <= k <= n:
        raise ValueError(f"k={k}: between 1 and the number of households to cluster ({n})")
    model = _fit(kept, k, seed)
    kept_labels, centres = _ordered(model.labels_, model.cluster_centers_)
    stable = stability(kept, k, kept_labels, resamples, seed) if resamples and k > 1 else None
    labels = np.full(len(ids), -1, dtype=int)
    labels[~odd] = kept_labels
    return Clustering(ids, labels, centres, k, criterion, scores, stable)


def _ordered(labels: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Renumber clusters by size, largest first (ties: earlier peak first), so a
    cluster's number means the same thing from run to run."""
    sizes = np.bincount(labels, minlength=len(centres))
    order = sorted(range(len(centres)), key=lambda c: (-sizes[c], int(np.argmax(centres[c]))))
    rank = np.empty(len(order), dtype=int)
    rank[order] = np.arange(len(order))
    return rank[labels], centres[order]


def stability(
    shapes: np.ndarray, k: int, labels: np.ndarray, resamples: int = 50, seed: int = 0
) -> Stability:
    """Adjusted Rand index between ``labels`` and the labels bootstrap refits give every
    household (see the module's docstring)."""
    from sklearn.metrics import adjusted_rand_score

    rng = np.random.default_rng(seed)
    n = shapes.shape[0]
    scores = []
    for b in range(resamples):
        draw = shapes[rng.integers(0, n, n)]
        centres = _fit(draw, k, seed + b + 1, n_init=4).cluster_centers_
        nearest = np.argmin(((shapes[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2), axis=1)
        scores.append(adjusted_rand_score(labels, nearest))
    ari = np.asarray(scores)
    return Stability(
        resamples,
        float(np.median(ari)),
        float(np.quantile(ari, 0.05)),
        float(np.quantile(ari, 0.95)),
    )
