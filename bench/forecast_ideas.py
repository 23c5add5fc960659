"""The ideas tried on GB day-ahead demand (issue 22's MAPE target), P50 only, fast.

    .venv/bin/python bench/forecast_ideas.py val [idea ...]   # 2012-03-01..2013-02-28
    .venv/bin/python bench/forecast_ideas.py test [idea ...]  # 2013-03-01..2014-02-28
    .venv/bin/python bench/forecast_ideas.py london-sum [idea ...]  # the London check
    .venv/bin/python bench/forecast_ideas.py val --holidays=GB-ENG [idea ...]  # calendar

Ideas were chosen on the validation year and the chosen one was run on the test year by
``bench/forecast.py run gb`` (the product's code, all three quantiles). To iterate in
seconds rather than a quarter of an hour, this builds the product's feature rows
(``features.design``, the same issue-time rule) once for every issue day, adds the
candidate features beside them, and fits only a P50 LightGBM, retrained every 28 days on
the 365 days of issues before (the bench retrains every 14 and fits P10/P90 with a
conformal band too, so its MAPE differs by a few hundredths). Every candidate feature
reads only calendar facts or load positions known at the row's issue time.

``models=("blend",)`` fits the product's mean P50 (``models.MeanBlend``: LightGBM per
daypart + ridge per half-hour), the change chosen in issue 22's second round; the ideas of
that round (embedded generation, TSD, dayparts, windows) are in forecast_ideas_embedded.py.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
import zoneinfo
from typing import Any

import lightgbm as lgb
import numpy as np
import polars as pl

from forecast import gb_demand, london_households, london_sum
from metrify.analytics.forecast.engine import _prepare, _targets
from metrify.analytics.forecast.features import design
from metrify.analytics.forecast.horizon import backtest_issues
from metrify.analytics.forecast.models import BASE_PARAMS, MeanBlend
from metrify.analytics.forecast.series import panel_from_frames

PERIODS = {
    "val": ("2012-03-01", "2013-02-28"),
    "test": ("2013-03-01", "2014-02-28"),
    "london-sum": ("2013-03-01", "2013-12-30"),
}
NEW = ("day_type", "week_lag_day_type", "recent_day_type")  # now in the product
PARAMS: dict[str, Any] = BASE_PARAMS  # the product's own settings, ideas vary from them


class Lab:
    """Feature rows of every issue day, the candidate features and the rolling fit."""

    def __init__(
        self, series: str = "gb", frame: pl.DataFrame | None = None, holidays: str = "GB"
    ) -> None:
        if frame is not None:  # another GB column (gross demand): same clock as ND
            tz = "UTC"
        elif series == "gb":
            frame, tz = gb_demand(), "UTC"
        else:  # the London sum, to check a change does not hurt it
            frame, tz = london_sum(london_households()), "Europe/London"
        panel = panel_from_frames({"s": frame})
        first = panel.t0.date() + dt.timedelta(days=15)
        last = (panel.t0 + dt.timedelta(seconds=panel.step_s * (panel.n - 1))).date()
        self.issues = backtest_issues(first, last, "day-ahead", tz)
        setup = _prepare(panel, self.issues, "day-ahead", None, holidays, tz, 6)
        self.panel, cal, p = setup.panel, setup.cal, setup.panel.per_day
        self.ks = [self.panel.available(i) for i in self.issues]
        targets = [_targets(setup, i) for i in self.issues]
        d = design(self.panel, cal, None, self.ks, targets)
        self.v = self.panel.values[0]
        self.k, self.j, self.scale = d.issue_k, d.target, d.scale
        days = np.array([np.datetime64(i.date() + dt.timedelta(days=1)) for i in self.issues])
        self.days = days
        sizes = [t.size for t in targets]
        self.row_day = np.repeat(days, sizes)
        self.issue_idx = np.repeat(np.arange(len(self.issues)), sizes)
        self.y = self.v[self.j]
        self.cols = {n: d.x[:, i] for i, n in enumerate(d.names)}
        self.base = [n for n in d.names if n not in NEW]
        c, k, j = self.cols, self.k, self.j
        cs = np.concatenate([[0.0], np.cumsum(np.nan_to_num(self.v))])
        cn = np.concatenate([[0.0], np.cumsum(np.isfinite(self.v))])

        def wm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            a, b = np.clip(a, 0, self.v.size), np.clip(b, 0, self.v.size)
            n = cn[b] - cn[a]
            return np.where(n > 0, (cs[b] - cs[a]) / np.maximum(n, 1), np.nan)

        ex: dict[str, np.ndarray] = {}
        for h in (1, 2, 6):  # the latest h hours against the same hours a week before
            ex[f"ec{h}"] = wm(k - 2 * h, k) / wm(k - 2 * h - 7 * p, k - 7 * p)
        ex["ec_day"] = c["mean24"] / c["mean24_week_before"]
        back = c["recent_days_back"].astype(int)
        ex["wk_hol"] = cal.holiday[j - 7 * p]
        ex["wk_near"] = cal.holiday_near[j - 7 * p]
        ex["rec_hol"] = cal.holiday[np.maximum(j - back * p, 0)]
        doy = c["doy"]
        for m in (1, 2, 3):
            ex[f"fs{m}"] = np.sin(2 * np.pi * m * doy / 365.25)
            ex[f"fc{m}"] = np.cos(2 * np.pi * m * doy / 365.25)
        year = self.row_day.astype("datetime64[Y]").astype(int) + 1970
        dec25 = np.array([np.datetime64(f"{y}-12-25") for y in year])
        to_xmas = (self.row_day - dec25).astype(int)
        ex["xmas"] = np.clip(np.where(to_xmas < -180, to_xmas + 365, to_xmas), -15, 15)
        ex["bridge"] = ((cal.holiday_near[j] > 0) & (cal.holiday[j] == 0) & (c["dow"] <= 5)).astype(
            float
        )
        rise, sset = sun_minutes_utc(doy)
        zone = zoneinfo.ZoneInfo("Europe/London")
        offset = {
            d: dt.datetime.combine(d.astype(dt.date), dt.time(12), tzinfo=zone).utcoffset()
            for d in np.unique(self.row_day)
        }
        off = np.array([offset[d].total_seconds() / 60 for d in self.row_day])  # type: ignore[union-attr]
        minute = c["slot"] * 30 + 15  # the file is settlement clock (local) time
        ex["to_sunset"] = minute - (sset + off)
        ex["to_sunrise"] = minute - (rise + off)
        ex["daylen"] = sset - rise
        ex["wk_ratio_recent"] = c["recent_same_slot"] / self.known(j - back * p - 7 * p)
        self.cols.update(ex)

    def known(self, idx: np.ndarray) -> np.ndarray:
        ok = (idx >= 0) & (idx < self.k)
        return np.where(ok, self.v[np.where(ok, idx, 0)], np.nan)

    def run(
        self,
        feats: list[str],
        period: tuple[str, str],
        *,
        target: str = "scale",
        objective: str = "quantile",
        params: dict[str, Any] | None = None,
        train_days: int | None = 365,
        halflife: float | None = None,
        models: tuple[str, ...] = ("lgb",),
        seeds: tuple[int, ...] = (0,),
        retrain: int = 28,
    ) -> float:
        """MAPE (%) of the P50 over ``period``, retraining every ``retrain`` days."""
        pred = self.predict(
            feats, period, target=target, objective=objective, params=params,
            train_days=train_days, halflife=halflife, models=models, seeds=seeds,
            retrain=retrain,
        )  # fmt: skip
        return self.mape(pred, period)

    def mape(
        self, pred: np.ndarray, period: tuple[str, str], truth: np.ndarray | None = None
    ) -> float:
        """MAPE (%) of ``pred`` against ``truth`` (this series by default) over ``period``."""
        y = self.y if truth is None else truth
        days = np.arange(np.datetime64(period[0]), np.datetime64(period[1]) + 1)
        sel = np.isin(self.row_day, days) & np.isfinite(y) & np.isfinite(pred)
        return float(np.mean(np.abs(pred[sel] - y[sel]) / np.abs(y[sel])) * 100)

    def predict(
        self,
        feats: list[str],
        period: tuple[str, str],
        *,
        target: str = "scale",
        objective: str = "quantile",
        params: dict[str, Any] | None = None,
        train_days: int | None = 365,
        halflife: float | None = None,
        models: tuple[str, ...] = ("lgb",),
        seeds: tuple[int, ...] = (0,),
        retrain: int = 28,
        y_raw: np.ndarray | None = None,
        den: np.ndarray | None = None,
        mask: np.ndarray | None = None,
    ) -> np.ndarray:
        """P50 of every row of ``period`` (NaN elsewhere): ``y_raw`` (this series by
        default) over ``den`` (the 7-day level by default) fitted and scaled back."""
        x = np.stack([self.cols[f] for f in feats], axis=1)
        p = self.panel.per_day
        if den is None:
            den = self.scale if target == "scale" else self.known(self.j - 7 * p)
        y = (self.y if y_raw is None else y_raw) / den
        days = np.arange(np.datetime64(period[0]), np.datetime64(period[1]) + 1)
        pred = np.full(self.y.size, np.nan)
        prm = {**PARAMS, **(params or {})}
        for b in range(0, days.size, retrain):
            block = days[b : b + retrain]
            first = int(np.flatnonzero(self.days == block[0])[0])
            lo = block[0] - np.timedelta64(train_days, "D") if train_days else self.days[0]
            tr = (
                (self.row_day >= lo)
                & (self.issue_idx < first)
                & (self.j < self.ks[first])
                & np.isfinite(y)
            )
            te = np.isin(self.row_day, block)
            if mask is not None:  # one model for a subset of rows (a daypart)
                tr, te = tr & mask, te & mask
            if not te.any():
                continue
            w = None
            if halflife:
                w = 0.5 ** ((block[0] - self.row_day[tr]).astype(int) / halflife)
            outs = []
            for name in models:
                for seed in seeds:
                    if name == "blend":  # the product's mean P50 (dayparts + ridge)
                        blend = MeanBlend(prm, tuple(feats), p).fit(x[tr], y[tr], seed)
                        outs.append(blend.predict(x[te]))
                    elif name == "lgb":
                        kw = {"objective": objective, "random_state": seed, **prm}
                        if objective == "quantile":
                            kw["alpha"] = 0.5
                        m = lgb.LGBMRegressor(**kw).fit(x[tr], y[tr], sample_weight=w)
                        outs.append(m.predict(x[te]))
                    else:  # ridge on standardised features (NaN as 0)
                        from sklearn.linear_model import Ridge

                        xt = np.nan_to_num(x[tr])
                        mu, sd = xt.mean(0), xt.std(0) + 1e-9
                        r = Ridge(alpha=1.0).fit((xt - mu) / sd, y[tr], sample_weight=w)
                        outs.append(r.predict((np.nan_to_num(x[te]) - mu) / sd))
            pred[te] = np.mean(outs, axis=0) * den[te]
        return pred


def sun_minutes_utc(doy: np.ndarray, lat: float = 51.5, lon: float = -0.12) -> tuple[Any, Any]:
    """Sunrise and sunset in minutes after 00:00 UTC in London (NOAA's approximation)."""
    g = 2 * np.pi / 365 * (doy - 1)
    eqt = 229.18 * (
        0.000075 + 0.001868 * np.cos(g) - 0.032077 * np.sin(g)
        - 0.014615 * np.cos(2 * g) - 0.040849 * np.sin(2 * g)
    )  # fmt: skip
    decl = (
        0.006918 - 0.399912 * np.cos(g) + 0.070257 * np.sin(g) - 0.006758 * np.cos(2 * g)
        + 0.000907 * np.sin(2 * g) - 0.002697 * np.cos(3 * g) + 0.00148 * np.sin(3 * g)
    )  # fmt: skip
    la = np.radians(lat)
    cos_ha = np.cos(np.radians(90.833)) / (np.cos(la) * np.cos(decl)) - np.tan(la) * np.tan(decl)
    ha = np.degrees(np.arccos(cos_ha))
    noon = 720 - 4 * lon - eqt
    return noon - 4 * ha, noon + 4 * ha


def ideas(lab: Lab) -> dict[str, tuple[list[str], dict[str, Any]]]:
    b = lab.base
    dt_ = [*b, *NEW]
    l2 = {"objective": "regression"}
    return {
        "baseline": (b, {}),
        "error-correction": ([*b, "ec1", "ec2", "ec6", "ec_day"], {}),
        "holiday-of-lag flags": ([*b, "wk_hol", "wk_near", "rec_hol"], {}),
        "fourier-doy": ([*b, "fs1", "fc1", "fs2", "fc2", "fs3", "fc3"], {}),
        "christmas-bridge": ([*b, "xmas", "bridge"], {}),
        "sunrise-sunset": ([*b, "to_sunset", "to_sunrise", "daylen"], {}),
        "ratio-recent-week": ([*b, "wk_ratio_recent"], {}),
        "target-over-d7": (b, {"target": "week"}),
        "all-history": (b, {"train_days": None}),
        "day-types": (dt_, {}),
        "day-types-3-seeds": (dt_, {"seeds": (0, 1, 2)}),
        "day-types-leaves15": (dt_, {"params": {"num_leaves": 15}}),
        "day-types-leaves63": (dt_, {"params": {"num_leaves": 63, "min_child_samples": 20}}),
        "day-types-lr03x600": (dt_, {"params": {"learning_rate": 0.03, "n_estimators": 600}}),
        "day-types-minchild100": (dt_, {"params": {"min_child_samples": 100}}),
        "day-types-huber": (dt_, {"objective": "huber", "params": {"alpha": 0.05}}),
        "day-types-all-history-halflife180": (dt_, {"train_days": None, "halflife": 180}),
        "day-types-lgb+ridge": (dt_, {"models": ("lgb", "ridge")}),
        "l2": (b, l2),
        "day-types-l2 (chosen)": (dt_, l2),
        "day-types-l2-leaves63": (
            dt_,
            {**l2, "params": {"num_leaves": 63, "min_child_samples": 20}},
        ),
        "day-types-l2-lr03x600": (
            dt_,
            {**l2, "params": {"learning_rate": 0.03, "n_estimators": 600}},
        ),
        "day-types-l2+christmas-lag-holidays": (
            [*dt_, "xmas", "bridge", "wk_hol", "rec_hol"],
            l2,
        ),
        "day-types-l2+error-correction": ([*dt_, "ec1", "ec_day"], l2),
        "day-types-l2+sunrise-sunset": ([*dt_, "to_sunset", "to_sunrise"], l2),
        # issue 22, second round (bench/forecast_ideas_embedded.py): the product's mean P50
        "day-types-l2-dayparts-ridge (chosen 2026-12-07)": (dt_, {"models": ("blend",)}),
    }


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--holidays=")]
    hol = [a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--holidays=")]
    period = PERIODS[args[0]]
    lab = Lab("london-sum" if args[0] == "london-sum" else "gb", holidays=(hol or ["GB"])[0])
    todo = ideas(lab)
    for name in args[1:] or list(todo):
        feats, kw = todo[name]
        t = time.perf_counter()
        mape = lab.run(feats, period, **kw)
        print(f"{name} | {mape:.3f} | {time.perf_counter() - t:.0f} s", flush=True)


if __name__ == "__main__":
    main()
