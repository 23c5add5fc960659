"""eemeter's baselines on the inputs ``bench/baselines.py`` wrote, in bench/.eemeter-venv.

Argument: a JSON spec ``{"daily": parquet, "hourly": parquet, "out": folder,
"models": ["daily", "daily_legacy", "hourly"]}``. The parquet files hold, per meter,
the same use and temperatures (°C; converted to °F here, as eemeter wants) that
Metrify's models get, with ``train`` marking the points a model may fit on; the others
are held out. Writes ``<out>/eemeter_<model>.parquet`` with ``meter``, the point
(``day`` or ``ts``) and ``predicted`` for every point, and prints one JSON line with
the seconds each model took and the meters that failed.

* ``daily``: ``eemeter.DailyModel()`` (eemeter 4's daily model, the default settings);
* ``daily_legacy``: ``eemeter.DailyModel(model="legacy")``, its CalTRACK 2.0 settings;
* ``hourly``: ``eemeter.HourlyCaltrackModel`` (CalTRACK's hourly TOWT, three-month
  weighted segments), on local-time hours.
"""

from __future__ import annotations

import json
import sys
import time
import warnings

import eemeter
import numpy as np
import pandas as pd
from eemeter import eemeter as em  # the models live in the subpackage in 4.x

warnings.filterwarnings("ignore")
TZ = "Europe/London"


def f(celsius: pd.Series) -> pd.Series:
    return celsius * 9.0 / 5.0 + 32.0


def daily(frame: pd.DataFrame, legacy: bool) -> tuple[pd.DataFrame, dict[str, str]]:
    out, failed = [], {}
    for meter, rows in frame.groupby("meter", sort=True):
        rows = rows.sort_values("day")
        index = pd.DatetimeIndex(pd.to_datetime(rows["day"])).tz_localize(TZ)
        full = pd.date_range(index.min(), index.max(), freq="D", tz=TZ)
        df = pd.DataFrame(
            {
                "observed": rows["kwh"].where(rows["train"]).to_numpy(),
                "temperature": f(rows["temperature_c"]).to_numpy(),
            },
            index=index,
        ).reindex(full)
        try:
            data = em.DailyBaselineData(df, is_electricity_data=False)
            model = em.DailyModel(model="legacy") if legacy else em.DailyModel()
            model.fit(data, ignore_disqualification=True)
            report = em.DailyReportingData(df.assign(observed=np.nan), is_electricity_data=False)
            pred = model.predict(report, ignore_disqualification=True)["predicted"]
            got = pred.reindex(index).to_numpy()
        except Exception as exc:  # a peer failing on a meter is recorded, not fatal
            failed[str(meter)] = f"{type(exc).__name__}: {exc}"[:300]
            got = np.full(len(index), np.nan)
        out.append(pd.DataFrame({"meter": meter, "day": rows["day"].to_numpy(), "predicted": got}))
    return pd.concat(out), failed


def hourly(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    out, failed = [], {}
    for meter, rows in frame.groupby("meter", sort=True):
        rows = rows.sort_values("ts")
        index = pd.DatetimeIndex(rows["ts"]).tz_convert(TZ)
        full = pd.date_range(index.min(), index.max(), freq="h")
        observed = pd.Series(rows["kwh"].where(rows["train"]).to_numpy(), index=index)
        temp = pd.Series(f(rows["temperature_c"]).to_numpy(), index=index)
        observed, temp = observed.reindex(full), temp.reindex(full)
        try:
            data = em.HourlyCaltrackBaselineData.from_series(
                observed, temp, is_electricity_data=False
            )
            model = em.HourlyCaltrackModel().fit(data)
            report = em.HourlyCaltrackReportingData.from_series(
                None, temp, is_electricity_data=False
            )
            pred = model.predict(report)["predicted"]
            got = pred.reindex(index).to_numpy()
        except Exception as exc:
            failed[str(meter)] = f"{type(exc).__name__}: {exc}"[:300]
            got = np.full(len(index), np.nan)
        out.append(pd.DataFrame({"meter": meter, "ts": rows["ts"].to_numpy(), "predicted": got}))
    return pd.concat(out), failed


def main() -> None:
    with open(sys.argv[1]) as fh:
        spec = json.load(fh)
    seconds, failures = {}, {}
    for name in spec["models"]:
        t0 = time.perf_counter()
        if name == "hourly":
            result, failed = hourly(pd.read_parquet(spec["hourly"]))
        else:
            result, failed = daily(pd.read_parquet(spec["daily"]), legacy=name == "daily_legacy")
        seconds[name] = time.perf_counter() - t0
        failures[name] = failed
        result.to_parquet(f"{spec['out']}/eemeter_{name}.parquet")
    print(json.dumps({"seconds": seconds, "failed": failures, "eemeter": eemeter.__version__}))


if __name__ == "__main__":
    main()
