"""statsforecast's MSTL as a day-ahead forecaster, run by bench/forecast.py in
bench/.forecast-peers-venv (Python 3.11).

One argument: a JSON spec ``{"input": parquet of series_id, ts (UTC), value; "output":
parquet to write; "issues": [[issue ISO, target start ISO, target end ISO], ...];
"input_days": days of history each fit sees; "step_s": interval length}``. For every
issue time it fits MSTL (seasons of a day and a week, AutoETS trend, statsforecast's
defaults otherwise) on the readings before the issue time, forecasts to the end of the
target day with an 80% interval, and keeps the target day's rows: the same rolling
origin and the same data as Metrify gets. Prints one JSON line with the count and time.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import pandas as pd
from statsforecast import StatsForecast
from statsforecast.models import MSTL


def main() -> None:
    with open(sys.argv[1]) as handle:
        spec = json.load(handle)
    data = pd.read_parquet(spec["input"])
    data["ts"] = pd.to_datetime(data["ts"], utc=True)
    step = pd.Timedelta(seconds=spec["step_s"])
    per_day = int(pd.Timedelta(days=1) / step)
    started = time.perf_counter()
    out = []
    failures = 0
    last_error = None
    for series_id, frame in data.groupby("series_id", sort=False):
        frame = frame.set_index("ts")["value"].sort_index()
        full = frame.reindex(pd.date_range(frame.index[0], frame.index[-1], freq=step))
        for issue_s, start_s, end_s in spec["issues"]:
            issue = pd.Timestamp(issue_s)
            start, end = pd.Timestamp(start_s), pd.Timestamp(end_s)
            hist = full[
                (full.index < issue) & (full.index >= issue - pd.Timedelta(days=spec["input_days"]))
            ]
            # MSTL needs a gap-free series: fill the few gaps by the value a week before,
            # then by interpolation (what a forecaster would do before fitting)
            hist = hist.fillna(hist.shift(7 * per_day)).interpolate(limit_direction="both")
            if hist.isna().any() or len(hist) < 2 * 7 * per_day:
                failures += 1
                continue
            h = round((end - hist.index[-1]) / step) - 1
            df = pd.DataFrame(
                {"unique_id": str(series_id), "ds": hist.index.tz_localize(None), "y": hist.values}
            )
            sf = StatsForecast(
                models=[MSTL(season_length=[per_day, 7 * per_day])],
                freq=f"{spec['step_s'] // 60}min",
                n_jobs=1,
            )
            try:
                fc = sf.forecast(df=df, h=h, level=[80])
            except Exception as exc:
                failures += 1
                last_error = repr(exc)
                continue
            fc["ds"] = pd.to_datetime(fc["ds"]).dt.tz_localize("UTC")
            fc = fc[(fc["ds"] >= start) & (fc["ds"] < end)]
            out.append(
                pd.DataFrame(
                    {
                        "series_id": str(series_id),
                        "issued_at": issue,
                        "target_ts": fc["ds"].values,
                        "p10": fc["MSTL-lo-80"].values,
                        "p50": fc["MSTL"].values,
                        "p90": fc["MSTL-hi-80"].values,
                    }
                )
            )
    columns = ["series_id", "issued_at", "target_ts", "p10", "p50", "p90"]
    result = pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=columns)
    result["target_ts"] = pd.to_datetime(result["target_ts"], utc=True)
    result["issued_at"] = pd.to_datetime(result["issued_at"], utc=True)
    result.to_parquet(spec["output"], index=False)
    elapsed = time.perf_counter() - started
    print(
        json.dumps(
            {
                "rows": len(result),
                "failures": failures,
                "last_error": last_error,
                "seconds": elapsed,
            }
        )
    )


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
