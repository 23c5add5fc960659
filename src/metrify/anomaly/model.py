"""The batch model: per-meter daily features, an IsolationForest over them, peer comparison.

Streaming detectors judge intervals; some changes only show in a whole day: the night
load has doubled, the evening peak moved, a meter fell while its neighbours did not. Each
meter-day becomes a few features, all RELATIVE (to the meter's own trailing median and to
the change of similar customers on the same day), so that a cold snap or a bank holiday,
which move everyone, is not a change of pattern. Peers are customers of the same tariff
and region (all meters if those are unknown).

Why IsolationForest on these features: ``bench/anomaly.py`` measures it against a default
IsolationForest on raw daily values and a global z-score; the relative features are what
make the difference, the forest then ranks the combinations (a drop at night alone, a
peak that moved) no single threshold sees.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib  # type: ignore[import-untyped]
import numpy as np
import polars as pl
from sklearn.ensemble import IsolationForest  # type: ignore[import-untyped]

from metrify.contracts.anomalies import DAILY_SCHEMA

FEATURES = (
    "own_log_ratio",  # log(day total / own trailing median)
    "peer_log_ratio",  # the same minus the peers' median of it that day
    "night_share_delta",  # share of the day used 00-06 UTC, minus own trailing median
    "base_delta",  # minimum interval power / daily mean, minus own trailing median
    "peak_delta",  # maximum interval power / daily mean, minus own trailing median
)
TRAILING_DAYS = 14


def daily_from_readings(readings: pl.DataFrame) -> pl.DataFrame:
    """Daily aggregates from reading rows, for benchmarks on frames (the daily job reads
    them from the store: ``metrify.stores.detector_inputs.daily_use``)."""
    kw = pl.col("import_kwh") * 3600.0 / pl.col("interval_s")
    return (
        readings.filter(pl.col("import_kwh").is_not_null())
        .group_by("meter_id", day=pl.col("ts").dt.date())
        .agg(
            total=pl.col("import_kwh").sum(),
            night=pl.col("import_kwh").filter(pl.col("ts").dt.hour() < 6).sum(),
            peak_kw=kw.max(),
            base_kw=kw.min(),
            n=pl.len().cast(pl.Int64),
        )
        .select(list(DAILY_SCHEMA))
        .sort("meter_id", "day")  # a fixed order: the forest fitted on it is repeatable
    )


def features(daily: pl.DataFrame, peers: pl.DataFrame | None = None) -> pl.DataFrame:
    """Relative daily features per meter-day (``peers``: ``meter_id``, ``peer_group``)."""
    # only (nearly) complete days: a half day is not half the consumption pattern
    n_max = pl.col("n").max().over("meter_id")
    d = (
        daily.filter((pl.col("total") > 0) & (pl.col("n") >= 0.9 * n_max))
        .sort("meter_id", "day")
        .with_columns(
            night_share=pl.col("night") / pl.col("total"),
            base_rel=pl.col("base_kw") * 24.0 / pl.col("total"),
            peak_rel=pl.col("peak_kw") * 24.0 / pl.col("total"),
            log_total=pl.col("total").log(),
        )
    )
    trailing = {
        c: pl.col(c).shift(1).rolling_median(TRAILING_DAYS, min_samples=5).over("meter_id")
        for c in ("log_total", "night_share", "base_rel", "peak_rel")
    }
    d = d.with_columns(
        own_log_ratio=pl.col("log_total") - trailing["log_total"],
        night_share_delta=pl.col("night_share") - trailing["night_share"],
        base_delta=pl.col("base_rel") - trailing["base_rel"],
        peak_delta=pl.col("peak_rel") - trailing["peak_rel"],
    ).drop_nulls(["own_log_ratio"])
    if peers is not None and peers.height:
        d = d.join(peers, on="meter_id", how="left")
    if "peer_group" not in d.columns:
        d = d.with_columns(peer_group=pl.lit("all"))
    d = d.with_columns(pl.col("peer_group").fill_null("all"))
    return (
        d.with_columns(
            peer_log_ratio=pl.col("own_log_ratio")
            - pl.col("own_log_ratio").median().over("peer_group", "day")
        )
        .fill_nan(None)
        .drop_nulls(list(FEATURES))
    )


@dataclass
class DailyModel:
    """A fitted forest and the score above which a meter-day is reported."""

    forest: IsolationForest
    threshold: float
    trained_days: int
    trained_rows: int

    def score(self, feats: pl.DataFrame) -> np.ndarray[Any, np.dtype[np.float64]]:
        """Higher = more anomalous (the forest's negated decision function)."""
        x = feats.select(FEATURES).to_numpy()
        return np.asarray(-self.forest.decision_function(x), dtype=np.float64)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        joblib.dump(self, path)

    @staticmethod
    def load(path: Path) -> DailyModel:
        if not path.exists():
            raise ValueError(f"no trained model at {path}; run `metrify anomalies train` first")
        model = joblib.load(path)
        if not isinstance(model, DailyModel):
            raise ValueError(f"{path} does not hold a daily anomaly model")
        return model


def fit(feats: pl.DataFrame, *, share: float = 0.01, seed: int = 0) -> DailyModel:
    """Fit on meter-days; ``share`` of them (the most isolated) lie above the threshold."""
    if feats.height < 50:
        raise ValueError(
            f"only {feats.height} meter-days with {TRAILING_DAYS} days of history to learn from;"
            " need at least 50"
        )
    forest = IsolationForest(n_estimators=200, random_state=seed, n_jobs=1)
    forest.fit(feats.select(FEATURES).to_numpy())
    model = DailyModel(forest, 0.0, feats["day"].n_unique(), feats.height)
    model.threshold = float(np.quantile(model.score(feats), 1.0 - share))
    return model
