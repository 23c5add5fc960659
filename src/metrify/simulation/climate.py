"""Weather as smooth functions of time, per station: what drives the load, and what is observed.

One climate feeds both the meters (heating, cooling, lighting, rooftop PV) and the
stations' hourly observations, which is why temperature and cloud visibly drive load in
the simulated data, as they do in a utility's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from metrify.contracts.records import TS, WEATHER
from metrify.simulation.arrays import F64Array, I64Array
from metrify.simulation.noise import hash_pairs, normalish, uniform
from metrify.simulation.spec import DAY_S

__all__ = ["Climate"]


def _sines(t_s: F64Array, periods_s: F64Array, amps: F64Array, phases: F64Array) -> F64Array:
    """Sum of sinusoids. phases (K,) gives a (T,) series; phases (S, K) gives (S, T)."""
    if phases.ndim == 1:
        out = np.zeros(t_s.shape)
        for k in range(periods_s.size):
            out += amps[k] * np.sin(2.0 * np.pi * t_s / periods_s[k] + phases[k])
        return out
    out = np.zeros((phases.shape[0], t_s.size))
    for k in range(periods_s.size):
        out += amps[k] * np.sin(2.0 * np.pi * t_s[None, :] / periods_s[k] + phases[:, k : k + 1])
    return out


@dataclass(frozen=True)
class Climate:
    """Weather as smooth functions of time per station, so any instant can be evaluated.

    Temperature = station mean + season + diurnal cycle (damped by cloud) + weather systems
    (a fleet-wide and a station part, sums of slow sinusoids with random phases). The same
    function feeds the hourly observations and the meters' heating and PV, which is why
    temperature and cloud visibly drive load.
    """

    lat: F64Array
    lon: F64Array
    mean_c: F64Array
    salt: int
    temp_p: F64Array
    temp_a: F64Array
    temp_ph: F64Array
    temp_st_p: F64Array
    temp_st_a: F64Array
    temp_st_ph: F64Array
    cloud_p: F64Array
    cloud_a: F64Array
    cloud_ph: F64Array
    cloud_st_p: F64Array
    cloud_st_a: F64Array
    cloud_st_ph: F64Array

    @classmethod
    def draw(
        cls, rng: np.random.Generator, lat: F64Array, lon: F64Array, elevation: F64Array, salt: int
    ) -> Climate:
        n = lat.size
        day = float(DAY_S)

        def periods(k: int, lo: float, hi: float) -> F64Array:
            return np.exp(rng.uniform(math.log(lo), math.log(hi), k)) * day

        mean_c = 10.6 - 0.0065 * elevation - 0.55 * (lat - 52.0) + rng.normal(0.0, 0.3, n)
        return cls(
            lat=lat,
            lon=lon,
            mean_c=mean_c,
            salt=salt,
            temp_p=periods(8, 2.0, 20.0),
            temp_a=np.full(8, 1.2),
            temp_ph=rng.uniform(0, 2 * np.pi, 8),
            temp_st_p=periods(3, 1.0, 8.0),
            temp_st_a=np.full(3, 0.5),
            temp_st_ph=rng.uniform(0, 2 * np.pi, (n, 3)),
            cloud_p=periods(6, 0.25, 6.0),
            cloud_a=np.full(6, 0.9),
            cloud_ph=rng.uniform(0, 2 * np.pi, 6),
            cloud_st_p=periods(3, 0.1, 2.0),
            cloud_st_a=np.full(3, 0.5),
            cloud_st_ph=rng.uniform(0, 2 * np.pi, (n, 3)),
        )

    def fields(self, t_s: F64Array, st: I64Array) -> dict[str, F64Array]:
        """Weather of stations ``st`` at instants ``t_s``, each field shaped (len(st), T).

        temperature_c; cloud (0..1); sin_el, the sine of the solar elevation; ghi_clear,
        clear-sky irradiance in W/m2; signal, the weather-system index behind cloud, wind
        and pressure.
        """
        days = t_s / DAY_S
        annual = -np.cos(2.0 * np.pi * (days - 19.0) / 365.2422)
        decl = 0.409 * np.sin(2.0 * np.pi * (days - 80.0) / 365.2422)
        utc_h = (t_s % DAY_S) / 3600.0
        solar_h = utc_h[None, :] + self.lon[st][:, None] / 15.0
        lat = np.radians(self.lat[st])[:, None]
        hour_angle = np.cos(2.0 * np.pi * (solar_h - 12.0) / 24.0)
        sin_el = np.sin(lat) * np.sin(decl)[None, :]
        sin_el += np.cos(lat) * np.cos(decl)[None, :] * hour_angle
        signal = _sines(t_s, self.cloud_p, self.cloud_a, self.cloud_ph)[None, :] + _sines(
            t_s, self.cloud_st_p, self.cloud_st_a, self.cloud_st_ph[st]
        )
        cloud = 1.0 / (1.0 + np.exp(-(0.8 + signal)))
        diurnal_amp = (3.2 + 1.5 * decl / 0.409)[None, :] * (1.0 - 0.45 * cloud)
        temp = (
            self.mean_c[st][:, None]
            + 6.5 * annual[None, :]
            + diurnal_amp * np.cos(2.0 * np.pi * (solar_h - 15.0) / 24.0)
            + _sines(t_s, self.temp_p, self.temp_a, self.temp_ph)[None, :]
            + _sines(t_s, self.temp_st_p, self.temp_st_a, self.temp_st_ph[st])
        )
        ghi = 1080.0 * np.power(np.clip(sin_el, 0.0, None), 1.2)
        return {
            "temperature_c": temp,
            "cloud": cloud,
            "sin_el": sin_el,
            "ghi_clear": ghi,
            "signal": signal,
        }

    def hourly(self, station_ids: pl.Series, epoch_s: int, days: int) -> pl.DataFrame:
        """Hourly observations per station over ``days`` days from ``epoch_s`` (UTC)."""
        frames = []
        s_n = len(station_ids)
        st_idx = np.arange(s_n, dtype=np.uint64)
        for d0 in range(0, days, 31):
            nd = min(31, days - d0)
            hours = np.arange(d0 * 24, (d0 + nd) * 24, dtype=np.int64)
            t_s = (epoch_s + hours * 3600).astype(np.float64)
            f = self.fields(t_s, np.arange(s_n))
            bits = hash_pairs(self.salt, st_idx, hours.astype(np.uint64))
            noise = normalish(bits)
            u = uniform(bits)
            cloud = f["cloud"]
            temp = f["temperature_c"]
            humidity = np.clip(
                58.0 + 30.0 * cloud - 2.2 * (temp - self.mean_c[:, None]) + 4.0 * noise,
                15.0,
                100.0,
            )
            wind = 2.0 + 5.0 / (1.0 + np.exp(-f["signal"])) + 1.2 * u
            wind_dir = (235.0 + 70.0 * np.tanh(f["signal"]) + 25.0 * noise) % 360.0
            pressure = 1013.0 - 6.0 * f["signal"] + 1.0 * noise
            precip = np.where(cloud > 0.85, (cloud - 0.85) * 10.0 * u, 0.0)
            solar = f["ghi_clear"] * (1.0 - 0.75 * cloud**3)
            rows = s_n * hours.size
            ts_us = np.tile((epoch_s + hours * 3600) * 1_000_000, s_n)
            frames.append(
                pl.DataFrame(
                    {
                        "station_id": station_ids.gather(np.repeat(np.arange(s_n), hours.size)),
                        "ts": pl.Series(ts_us).cast(TS),
                        "temperature_c": np.round(temp, 1).ravel(),
                        "humidity_pct": np.round(humidity, 0).ravel(),
                        "wind_speed_ms": np.round(wind, 1).ravel(),
                        "wind_dir_deg": np.round(wind_dir, 0).ravel() % 360.0,
                        "pressure_hpa": np.round(pressure, 1).ravel(),
                        "precipitation_mm": np.round(precip, 1).ravel(),
                        "solar_wm2": np.round(solar, 0).ravel(),
                        "cloud_cover_pct": np.round(100.0 * cloud, 0).ravel(),
                    },
                    schema=WEATHER.schema,
                    height=rows,
                )
            )
        return pl.concat(frames)
