"""Issue 22's second round of GB ideas: embedded wind and solar, TSD, dayparts, windows.

    .venv/bin/python bench/forecast_ideas_embedded.py val [idea ...]
    .venv/bin/python bench/forecast_ideas_embedded.py test idea

Same scorer as ``bench/forecast_ideas.py`` (the product's feature rows, a P50 LightGBM
retrained every 28 days on the 365 days before), with the GB file's other columns laid on
the same grid. ND is transmission demand net of the embedded (distribution-connected)
wind and solar, so ``gross = ND + wind + solar`` has no weather-driven generation in it.
Every extra feature reads a position known at the row's issue time (``k``: the intervals
that had ended by 10:00 on D-1) or a capacity at issue; the generation at the target
time is never read, only forecast (capacity times a forecast capacity factor).
"""

from __future__ import annotations

import sys
import time
from typing import Any

import numpy as np
import polars as pl

from forecast import SHARED
from forecast_ideas import NEW, PERIODS, Lab

L2: dict[str, Any] = {"objective": "regression"}
COLUMNS = (
    "ND",
    "TSD",
    "ENGLAND_WALES_DEMAND",
    "EMBEDDED_WIND_GENERATION",
    "EMBEDDED_WIND_CAPACITY",
    "EMBEDDED_SOLAR_GENERATION",
    "EMBEDDED_SOLAR_CAPACITY",
)


def gb_columns() -> pl.DataFrame:
    path = SHARED / "gb-national-demand" / "gb_demand_2011-11_2014-02.csv"
    raw = pl.read_csv(path, columns=["TIMESTAMP", *COLUMNS], try_parse_dates=True)
    return raw.select(
        pl.col("TIMESTAMP").dt.replace_time_zone("UTC").dt.cast_time_unit("us").alias("ts"),
        *[pl.col(c).cast(pl.Float64) for c in COLUMNS],
    )


class GB:
    """The ND lab, the gross-demand lab and the embedded-generation features of both."""

    def __init__(self) -> None:
        raw = gb_columns()
        self.nd = Lab("gb")
        gross = raw.select(
            "ts",
            (
                pl.col("ND")
                + pl.col("EMBEDDED_WIND_GENERATION")
                + pl.col("EMBEDDED_SOLAR_GENERATION")
            ).alias("value"),
        )
        self.gross = Lab(frame=gross)
        a, b = self.nd, self.gross
        assert np.array_equal(a.j, b.j) and np.array_equal(a.k, b.k)
        grid = a.panel.grid().to_frame()
        on = grid.join(raw, on="ts", how="left")
        arr = {c: on[c].fill_null(np.nan).to_numpy().astype(np.float64) for c in COLUMNS}
        self.arr = arr
        p = a.panel.per_day
        k, j = a.k, a.j
        back = a.cols["recent_days_back"].astype(int)
        n = arr["ND"].size

        def known(v: np.ndarray, idx: np.ndarray) -> np.ndarray:
            ok = (idx >= 0) & (idx < k)
            return np.where(ok, v[np.clip(idx, 0, n - 1)], np.nan)

        def wmean(v: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
            cs = np.concatenate([[0.0], np.cumsum(np.nan_to_num(v))])
            cn = np.concatenate([[0.0], np.cumsum(np.isfinite(v))])
            lo, hi = np.clip(lo, 0, n), np.clip(hi, 0, n)
            c = cn[hi] - cn[lo]
            return np.where(c > 0, (cs[hi] - cs[lo]) / np.maximum(c, 1), np.nan)

        wg, wc = arr["EMBEDDED_WIND_GENERATION"], arr["EMBEDDED_WIND_CAPACITY"]
        sg, sc = arr["EMBEDDED_SOLAR_GENERATION"], arr["EMBEDDED_SOLAR_CAPACITY"]
        self.wcap = known(wc, k - 1)  # capacity at issue (it changes over months)
        self.scap = known(sc, k - 1)
        self.wind_y = wg[j]  # the target time's generation: a TARGET only, never a feature
        self.solar_y = sg[j]
        self.nd_y = arr["ND"][j]
        ex: dict[str, np.ndarray] = {}
        ex["wcf_last"] = wmean(wg, k - 4, k) / self.wcap
        ex["wcf_6h"] = wmean(wg, k - 12, k) / self.wcap
        ex["wcf_24"] = wmean(wg, k - p, k) / self.wcap
        ex["wcf_recent"] = known(wg, j - back * p) / self.wcap
        ex["wcf_7d"] = wmean(wg, k - 7 * p, k) / self.wcap
        ex["scf_recent"] = known(sg, j - back * p) / self.scap
        ex["scf_recent_prev"] = known(sg, j - (back + 1) * p) / self.scap
        ex["scf_week"] = known(sg, j - 7 * p) / self.scap
        ex["scf_7d"] = (
            np.nanmean(np.stack([known(sg, j - (back + d) * p) for d in range(7)]), axis=0)
            / self.scap
        )
        ex["scf_max7d"] = (
            np.nanmax(np.stack([known(sg, j - (back + d) * p) for d in range(7)]), axis=0)
            / self.scap
        )
        ex["scf_morning"] = wmean(sg, k - 6, k) / self.scap  # 07:00-09:30 D-1
        tsd, ew, nd = arr["TSD"], arr["ENGLAND_WALES_DEMAND"], arr["ND"]
        for lab in (a, b):
            sc_ = lab.scale
            cols = dict(ex)
            cols["wcap_rel"] = self.wcap / sc_
            cols["scap_rel"] = self.scap / sc_
            cols["emb_recent_rel"] = known(wg + sg, j - back * p) / sc_
            cols["emb_week_rel"] = known(wg + sg, j - 7 * p) / sc_
            cols["emb_24_rel"] = wmean(wg + sg, k - p, k) / sc_
            cols["tsd_recent_rel"] = known(tsd, j - back * p) / sc_
            cols["tsd_nd_24"] = wmean(tsd, k - p, k) / wmean(nd, k - p, k)
            cols["ew_share_recent"] = known(ew, j - back * p) / known(nd, j - back * p)
            cols["ew_share_24"] = wmean(ew, k - p, k) / wmean(nd, k - p, k)
            lab.cols.update(cols)
        # the day type's last occurrence: the latest known day with the target's day type
        self._last_same_type(a, p)
        self._last_same_type(b, p)

    @staticmethod
    def _last_same_type(lab: Lab, p: int) -> None:
        """Value at the same slot on the latest known day whose day type is the target's
        (a Monday's is last Monday, unless it was a holiday; a holiday's is last Sunday)."""
        dtt = lab.cols["day_type"]
        k, j = lab.k, lab.j
        back = lab.cols["recent_days_back"].astype(int)
        # day type of every grid position, from the design's columns on each target row
        n = lab.v.size
        grid_type = np.full(n, np.nan)
        grid_type[j] = dtt
        out = np.full(j.size, np.nan)
        out2 = np.full(j.size, np.nan)
        ago = np.full(j.size, np.nan)
        for d in range(1, 22):
            idx = j - d * p
            ok = (idx >= 0) & (idx < k) & (d >= back)
            idx_c = np.clip(idx, 0, n - 1)
            match = ok & (grid_type[idx_c] == dtt)
            second = match & np.isfinite(out) & np.isnan(out2)
            out2[second] = lab.v[idx_c[second]]
            first = match & np.isnan(out)
            out[first] = lab.v[idx_c[first]]
            ago[first] = d
        lab.cols["same_type_last"] = out / lab.scale
        lab.cols["same_type_prev"] = out2 / lab.scale
        lab.cols["same_type_mean2"] = (out + out2) / 2 / lab.scale
        lab.cols["same_type_ago"] = ago


def fit_embedded(g: GB, period: tuple[str, str], which: str) -> np.ndarray:
    """Forecast embedded wind or solar (MW) for every row of ``period``: a LightGBM on the
    capacity factor (generation over the capacity at issue) from what is known at issue."""
    lab = g.nd
    if which == "wind":
        feats = ["slot", "doy", "lead_days", "wcf_last", "wcf_6h", "wcf_24", "wcf_recent", "wcf_7d"]
        y, den = g.wind_y, g.wcap
    elif which == "solar":
        feats = ["slot", "doy", "lead_days", "scf_recent", "scf_recent_prev", "scf_week", "scf_7d",
                 "scf_max7d", "scf_morning"]  # fmt: skip
        y, den = g.solar_y, g.scap
    else:
        raise ValueError(which)
    return lab.predict(feats, period, y_raw=y, den=den, **L2)


def persistence_embedded(g: GB, which: str) -> np.ndarray:
    """Capacity at issue times the same slot's capacity factor on the latest known day
    (wind: the last 2 h's factor instead, wind's day shape being weak)."""
    c = g.nd.cols
    if which == "wind":
        return c["wcf_last"] * g.wcap
    return c["scf_7d"] * g.scap


def main() -> None:
    period = PERIODS[sys.argv[1]]
    g = GB()
    b = g.nd.base
    dt_ = [*b, *NEW]
    emb = ["wcf_last", "wcf_24", "wcf_recent", "scf_recent", "scf_7d", "wcap_rel", "scap_rel",
           "emb_recent_rel", "emb_week_rel"]  # fmt: skip
    tsd = ["tsd_recent_rel", "tsd_nd_24", "ew_share_recent", "ew_share_24"]
    nd_y = g.nd.y
    cache: dict[str, np.ndarray] = {}

    def embedded(kind: str) -> np.ndarray:
        if kind not in cache:
            if kind == "model":
                cache[kind] = fit_embedded(g, period, "wind") + fit_embedded(g, period, "solar")
            else:
                cache[kind] = persistence_embedded(g, "wind") + persistence_embedded(g, "solar")
        return cache[kind]

    def nd(feats: list[str], **kw: Any) -> float:
        return g.nd.mape(g.nd.predict(feats, period, **{**L2, **kw}), period)

    def gross(feats: list[str], kind: str = "model", **kw: Any) -> float:
        pred = g.gross.predict(feats, period, **{**L2, **kw}) - embedded(kind)
        return g.nd.mape(pred, period, truth=nd_y)

    def emb_only(which: str) -> str:
        """The embedded forecast's MAE in % of ND (its share of ND's MAPE), LightGBM and
        persistence, beside the generation's own mean share of ND."""
        days = np.arange(np.datetime64(period[0]), np.datetime64(period[1]) + 1)
        sel = np.isin(g.nd.row_day, days) & np.isfinite(nd_y)
        true = {"wind": g.wind_y, "solar": g.solar_y}[which]
        share = np.nanmean(np.abs(true[sel]) / nd_y[sel]) * 100
        out = [f"share of ND {share:.3f}"]
        for name, f in (
            ("model", fit_embedded(g, period, which)),
            ("persist", persistence_embedded(g, which)),
        ):
            out.append(f"{name} {np.nanmean(np.abs(f[sel] - true[sel]) / nd_y[sel]) * 100:.3f}")
        return ", ".join(out)

    def diff_target(lab: Lab, feats: list[str], kind: str | None = None, **kw: Any) -> float:
        """Fit y - same_type_last (both over the 7-day level), add the lag back."""
        base = lab.cols["same_type_last"] * lab.scale
        ok = np.isfinite(base)
        fallback = lab.cols["week_lag"] * lab.scale
        base = np.where(ok, base, fallback)
        pred = lab.predict(feats, period, y_raw=lab.y - base, den=lab.scale, **{**L2, **kw}) + base
        if kind:
            pred = pred - embedded(kind)
        return g.nd.mape(pred, period, truth=nd_y)

    def dayparts_pred(lab: Lab, feats: list[str], parts: int, **kw: Any) -> np.ndarray:
        slot = lab.cols["slot"].astype(int)
        pred = np.full(lab.y.size, np.nan)
        for q in range(parts):
            m = (slot * parts) // 48 == q
            got = lab.predict(feats, period, mask=m, **{**L2, **kw})
            pred[m] = got[m]
        return pred

    def dayparts(
        lab: Lab, feats: list[str], parts: int, kind: str | None = None, **kw: Any
    ) -> float:
        pred = dayparts_pred(lab, feats, parts, **kw)
        if kind:
            pred = pred - embedded(kind)
        return g.nd.mape(pred, period, truth=nd_y)

    for lab in (g.nd, g.gross):
        for t in range(1, 8):
            lab.cols[f"is_type{t}"] = (lab.cols["day_type"] == t).astype(float)
        for m_ in (1, 2):
            lab.cols[f"fs{m_}"] = np.sin(2 * np.pi * m_ * lab.cols["doy"] / 365.25)
            lab.cols[f"fc{m_}"] = np.cos(2 * np.pi * m_ * lab.cols["doy"] / 365.25)
        for c in ("same_type_last", "week_lag", "recent_same_slot", "week_lag_adjusted",
                  "two_week_lag", "recent_same_slot_prev", "last"):  # fmt: skip
            v = lab.cols[c]
            lab.cols[c + "_f"] = np.where(np.isfinite(v), v, lab.cols["mean24"])
    lin = [f"is_type{t}" for t in range(1, 8)] + [
        "holiday_near", "fs1", "fc1", "fs2", "fc2", "mean24", "mean24_week_before",
        "same_type_last_f", "week_lag_f", "recent_same_slot_f", "week_lag_adjusted_f",
        "recent_days_back",
    ]  # fmt: skip

    def blend(
        lab: Lab,
        w: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8),
        lin_feats: list[str] = lin,
        parts: int = 8,
        lgb_feats: list[str] | None = None,
        kind: str | None = None,
    ) -> str:
        a = dayparts_pred(lab, lgb_feats or [*dt_, *st], parts)
        r = dayparts_pred(lab, lin_feats, 48, models=("ridge",))
        e = embedded(kind) if kind else 0.0
        out = [
            f"lgb {g.nd.mape(a - e, period, nd_y):.3f}",
            f"ridge {g.nd.mape(r - e, period, nd_y):.3f}",
        ]
        out += [f"w{x} {g.nd.mape(x * a + (1 - x) * r - e, period, nd_y):.3f}" for x in w]
        return ", ".join(out)

    lin2 = [*lin, "two_week_lag_f", "recent_same_slot_prev_f", "last_f"]
    lin0 = [c for c in lin if c != "same_type_last_f"]

    def windows(
        lab: Lab, feats: list[str], spans: tuple[int | None, ...], kind: str | None = None
    ) -> float:
        preds = [lab.predict(feats, period, train_days=t, **L2) for t in spans]
        pred = np.mean(preds, axis=0)
        if kind:
            pred = pred - embedded(kind)
        return g.nd.mape(pred, period, truth=nd_y)

    st = ["same_type_last"]
    st3 = ["same_type_last", "same_type_prev", "same_type_mean2", "same_type_ago"]
    todo: dict[str, Any] = {
        "chosen": lambda: nd(dt_),
        "emb-error-wind": lambda: emb_only("wind"),
        "emb-error-solar": lambda: emb_only("solar"),
        "gross-minus-embedded-model": lambda: gross(dt_),
        "gross-minus-embedded-persistence": lambda: gross(dt_, "persist"),
        "gross+emb-features-minus-model": lambda: gross([*dt_, *emb]),
        "nd+emb-features": lambda: nd([*dt_, *emb]),
        "nd+tsd-ew": lambda: nd([*dt_, *tsd]),
        "nd+emb+tsd-ew": lambda: nd([*dt_, *emb, *tsd]),
        "nd+same-type-last": lambda: nd([*dt_, "same_type_last"]),
        "gross+same-type-last": lambda: gross([*dt_, "same_type_last"]),
        "nd+same-type-3": lambda: nd([*dt_, *st3]),
        "gross+same-type-3": lambda: gross([*dt_, *st3]),
        "gross+same-type-last-persist": lambda: gross([*dt_, *st], "persist"),
        "nd-diff-same-type": lambda: diff_target(g.nd, [*dt_, *st]),
        "gross-diff-same-type": lambda: diff_target(g.gross, [*dt_, *st], "model"),
        "nd-dayparts4": lambda: dayparts(g.nd, [*dt_, *st], 4),
        "nd-dayparts8": lambda: dayparts(g.nd, [*dt_, *st], 8),
        "nd-per-slot": lambda: dayparts(g.nd, [*dt_, *st], 48),
        "gross-dayparts4": lambda: dayparts(g.gross, [*dt_, *st], 4, "model"),
        "nd-dayparts8-seed1": lambda: dayparts(g.nd, [*dt_, *st], 8, seeds=(1,)),
        "nd-dayparts8-seed2": lambda: dayparts(g.nd, [*dt_, *st], 8, seeds=(2,)),
        "nd-same-type-seed1": lambda: nd([*dt_, *st], seeds=(1,)),
        "nd-same-type-seed2": lambda: nd([*dt_, *st], seeds=(2,)),
        "chosen-seed1": lambda: nd(dt_, seeds=(1,)),
        "chosen-seed2": lambda: nd(dt_, seeds=(2,)),
        "nd-dayparts8-no-same-type": lambda: dayparts(g.nd, dt_, 8),
        "nd-dayparts6": lambda: dayparts(g.nd, [*dt_, *st], 6),
        "nd-dayparts12": lambda: dayparts(g.nd, [*dt_, *st], 12),
        "nd-dayparts16": lambda: dayparts(g.nd, [*dt_, *st], 16),
        "gross-dayparts8-persist": lambda: dayparts(g.gross, [*dt_, *st], 8, "persist"),
        "gross-dayparts8-model": lambda: dayparts(g.gross, [*dt_, *st], 8, "model"),
        "gross-dayparts8-model-seed1": lambda: dayparts(
            g.gross, [*dt_, *st], 8, "model", seeds=(1,)
        ),
        "gross-dayparts8-model-seed2": lambda: dayparts(
            g.gross, [*dt_, *st], 8, "model", seeds=(2,)
        ),
        "nd-dayparts8+ridge-per-slot": lambda: blend(g.nd),
        "nd-blend-lin2": lambda: blend(g.nd, lin_feats=lin2),
        "nd-blend-no-same-type": lambda: blend(g.nd, lin_feats=lin0, lgb_feats=dt_),
        "nd-blend-1-part": lambda: blend(g.nd, parts=1),
        "gross-blend": lambda: blend(g.gross, kind="model"),
        "nd-windows-182-365-all": lambda: windows(g.nd, [*dt_, *st], (182, 365, None)),
        "nd-windows-365-all": lambda: windows(g.nd, [*dt_, *st], (365, None)),
        "gross-windows-182-365-all": lambda: windows(
            g.gross, [*dt_, *st], (182, 365, None), "model"
        ),
    }
    for name in sys.argv[2:] or list(todo):
        t = time.perf_counter()
        out = todo[name]()
        print(f"{name} | {out} | {time.perf_counter() - t:.0f} s", flush=True)


if __name__ == "__main__":
    main()
