"""Households with obviously different day shapes cluster apart, whatever their size;
the chosen k and its stability say so; unusual shapes are set aside."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from metrify.analytics.patterns import (
    analyse,
    cluster_shapes,
    complete_days,
    day_shapes,
    local_half_hours,
    unusual,
)
from unit.analytics.patterns.synthetic import household

rng = np.random.default_rng(7)


def shape(peak_slots: range, noise: float = 0.02) -> list[float]:
    day = np.full(48, 0.1) + rng.uniform(0, noise, 48)
    day[list(peak_slots)] += 1.0
    return day.tolist()


def test_morning_and_evening_households_cluster_apart_whatever_their_size() -> None:
    frames = []
    for i in range(10):
        scale = 1 + i  # sizes differ tenfold: the shape, not the energy, must decide
        frames.append(household(f"am{i}", [scale * v for v in shape(range(14, 18))],
                                dt.date(2013, 1, 7), 5))  # fmt: skip
        frames.append(household(f"pm{i}", [scale * v for v in shape(range(36, 40))],
                                dt.date(2013, 1, 7), 5))  # fmt: skip
    local = local_half_hours(pl.concat(frames), "UTC", [])
    ids, shapes = day_shapes(complete_days(local))
    assert shapes.sum(axis=1) == pytest.approx(np.ones(20))
    fit = cluster_shapes(ids, shapes, resamples=20)
    assert fit.k == 2
    label = dict(zip(fit.ids, fit.labels, strict=True))
    assert len({label[f"am{i}"] for i in range(10)}) == 1
    assert len({label[f"pm{i}"] for i in range(10)}) == 1
    assert label["am0"] != label["pm0"]
    assert fit.scores[2]["silhouette"] == max(s["silhouette"] for s in fit.scores.values())
    assert fit.stability is not None and fit.stability.ari_median == pytest.approx(1.0)
    # the evening cluster's centre peaks at 18:00-20:00
    evening = fit.centres[label["pm0"]]
    assert 36 <= int(np.argmax(evening)) < 40


def test_an_odd_household_is_set_aside_not_made_a_cluster() -> None:
    shapes = np.array([shape(range(36, 40)) for _ in range(12)] + [shape(range(0, 4), 0)])
    shapes = shapes / shapes.sum(axis=1, keepdims=True)
    assert unusual(shapes).tolist() == [False] * 12 + [True]
    fit = cluster_shapes([str(i) for i in range(13)], shapes, k=2, resamples=0)
    assert fit.labels[-1] == -1 and (fit.labels[:-1] >= 0).all()


def test_too_few_households_and_a_fixed_k() -> None:
    with pytest.raises(ValueError, match="at least 3"):
        cluster_shapes(["a", "b"], np.eye(2, 48), resamples=0)
    shapes = np.array(
        [shape(range(14, 18)) for _ in range(4)] + [shape(range(36, 40)) for _ in range(4)]
    )
    fit = cluster_shapes([str(i) for i in range(8)], shapes, k=3, resamples=0, fence=None)
    assert fit.k == 3 and fit.scores == {} and set(fit.labels) == {0, 1, 2}
    sizes = np.bincount(fit.labels)
    assert list(sizes) == sorted(sizes, reverse=True)  # cluster 0 is the largest


def test_analyse_labels_meters_and_describes_segments_by_their_average_household() -> None:
    frames = [household(f"m{i}", [0.1] * 48, dt.date(2013, 1, 7), 3) for i in range(2)]
    frames.append(household("m2", [0.4] * 48, dt.date(2013, 1, 7), 3))
    members = pl.DataFrame(
        {"id": ["m0", "m1", "m2"], "dim": ["segment"] * 3, "key": ["a", "a", "b"]}
    )
    found = analyse(pl.concat(frames), "UTC", members, min_days=1, resamples=0)
    assert found.clustering is None and found.no_clustering  # three identical shapes
    seg = {r["id"]: r for r in found.segments.to_dicts()}
    assert seg["a"]["mean_daily_kwh"] == pytest.approx(4.8)  # the average of its two homes
    assert seg["b"]["mean_daily_kwh"] == pytest.approx(19.2)
