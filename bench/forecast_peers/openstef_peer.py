"""OpenSTEF 4.7 as a day-ahead forecaster, run by bench/forecast.py in bench/.openstef-venv
(Python 3.12, which OpenSTEF 4.7 requires).

One argument: a JSON spec ``{"input": parquet of series_id, ts (UTC), value; "output":
parquet to write; "issues": [[issue ISO, target start ISO, target end ISO], ...];
"retrain_days", "train_days", "step_s", "country"}``. It uses OpenSTEF's own preset
(``create_forecasting_workflow``, model ``xgboost``: OpenSTEF's default; the ``lgbm``
preset needs an extra that the 4.7 wheel does not pull in) with P10/P50/P90, a lead time
to the end of the target day and the country's holidays, retrained every
``retrain_days`` on the ``train_days`` before the issue time, exactly as Metrify is in
the backtest. Each forecast gets the load before its issue time only. Prints one JSON
line with the count and time.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
import warnings

import numpy as np
import pandas as pd
from openstef_core.datasets import TimeSeriesDataset
from openstef_core.types import LeadTime, Q
from openstef_models.presets import ForecastingWorkflowConfig, create_forecasting_workflow
from openstef_models.presets.forecasting_workflow import LocationConfig


def main() -> None:
    warnings.filterwarnings("ignore")
    with open(sys.argv[1]) as handle:
        spec = json.load(handle)
    data = pd.read_parquet(spec["input"])
    data["ts"] = pd.to_datetime(data["ts"], utc=True)
    step = dt.timedelta(seconds=spec["step_s"])
    issues = [(pd.Timestamp(a), pd.Timestamp(b), pd.Timestamp(c)) for a, b, c in spec["issues"]]
    lead = max(c - a for a, _, c in issues)
    started = time.perf_counter()
    out, failures, last_error = [], 0, None
    for series_id, frame in data.groupby("series_id", sort=False):
        load = frame.set_index("ts")["value"].sort_index().rename("load")
        load = load.reindex(pd.date_range(load.index[0], load.index[-1], freq=step)).to_frame()
        block = 0
        while block < len(issues):
            first = issues[block][0]
            chunk = [
                i for i in issues[block:] if i[0] - first < pd.Timedelta(days=spec["retrain_days"])
            ]
            block += len(chunk)
            config = ForecastingWorkflowConfig(
                model_id=f"bench-{series_id}",
                model="xgboost",
                quantiles=[Q(0.1), Q(0.5), Q(0.9)],
                sample_interval=step,
                horizons=[LeadTime(lead.to_pytimedelta())],
                location=LocationConfig(country_code=spec["country"]),
                mlflow_storage=None,
                verbosity=0,
            )
            try:
                workflow = create_forecasting_workflow(config)
                train = load[
                    (load.index < first)
                    & (load.index >= first - pd.Timedelta(days=spec["train_days"]))
                ]
                workflow.fit(TimeSeriesDataset(train, sample_interval=step))
            except Exception as exc:
                failures += len(chunk)
                last_error = repr(exc)
                continue
            for issue, start, end in chunk:
                window = pd.date_range(
                    issue - pd.Timedelta(days=28), end, freq=step, inclusive="left"
                )
                known = load.reindex(window)
                known.loc[known.index >= issue, "load"] = np.nan
                try:
                    fc = workflow.predict(
                        TimeSeriesDataset(known, sample_interval=step),
                        forecast_start=issue.to_pydatetime(),
                    ).data
                except Exception as exc:
                    failures += 1
                    last_error = repr(exc)
                    continue
                fc = fc[(fc.index >= start) & (fc.index < end)]
                out.append(
                    pd.DataFrame(
                        {
                            "series_id": str(series_id),
                            "issued_at": issue,
                            "target_ts": fc.index,
                            "p10": fc["quantile_P10"].to_numpy(dtype=float),
                            "p50": fc["quantile_P50"].to_numpy(dtype=float),
                            "p90": fc["quantile_P90"].to_numpy(dtype=float),
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
    main()
