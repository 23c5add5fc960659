"""The CalTRACK daily method: use per day against heating and cooling degree days, with
the balance points found by a grid search; and, by default, the year cut into seasons
and day types where the household's own data say that predicts better.

CalTRACK 2.0 (section 3.4) fits four candidate models by ordinary least squares on the
baseline period's days::

    intercept-only   use = b0
    HDD-only         use = b0 + bh * HDD(Th)                 HDD(T) = max(T - t, 0)
    CDD-only         use = b0 + bc * CDD(Tc)                 CDD(T) = max(t - Tc, 0)
    HDD+CDD          use = b0 + bh * HDD(Th) + bc * CDD(Tc)  with Th <= Tc

where ``t`` is the day's mean temperature. Each balance point runs over a grid (CalTRACK
2.0: 30-90 °F in 1 °F steps; here :data:`BALANCE_POINTS`, -1 to 32 °C in 0.5 °C steps,
the same range in steps a little under 1 °F). A candidate qualifies when each of its
slopes is positive and significant (p-value below :data:`MAX_P_VALUE`, 0.1) and each of
its degree-day series has at least 10 days above zero and at least 20 °F-days in all
(11.1 °C-days); among the qualifying candidates of every balance point the one with the
highest adjusted R² is the model. The intercept-only model always qualifies.

Two extensions, on by default:

* **weekend term** (off with ``weekend=False``): each candidate is also tried with a
  shift of use on Saturdays and Sundays, held to the same rules (significant at p < 0.1,
  chosen by adjusted R²). A household's weekend is not its weekday.
* **season and day-type split** (off with ``split=False``; never with ``weekend=False``):
  the year is cut into segments (:data:`PARTITIONS`: the whole year, winter against the
  rest, winter and shoulder against summer, or the three seasons of :data:`SEASONS`;
  each either for the whole week with the weekend term, or apart for weekdays and
  weekends) and every segment gets its own CalTRACK search above, on its own days. A
  household's winter is not only colder: the lights are on longer, the heating runs on
  a timer, the summer has holidays. Which cut is used is decided by a **blocked
  cross-validation on the baseline days themselves** (:data:`CV_FOLDS` folds of whole
  weeks): each segment's chosen form is refitted without one fold's weeks and predicts
  them, and the cut with the smallest out-of-week squared error wins (ties to the
  simpler cut). A cut is only tried when the days span most of a year
  (:data:`MIN_SPLIT_SPAN_DAYS`) and each of its segments has :data:`MIN_SEGMENT_DAYS`.
  More segments fit the baseline days better by construction; only a cut that also
  predicts weeks it has not seen better is kept, so a household whose winter is just a
  colder summer keeps the one-year model.

The search is vectorised: every balance point (pair) of a model family is fitted at
once through the normal equations, so a year of days costs milliseconds per segment.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, field
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
import polars as pl

from metrify.analytics.baselines import metrics

__all__ = [
    "BALANCE_POINTS",
    "CV_FOLDS",
    "MAX_P_VALUE",
    "PARTITIONS",
    "SEASONS",
    "DailyModel",
    "DailySegment",
    "day_calendar",
    "fit_daily",
]

#: candidate balance points, °C
BALANCE_POINTS: Final = np.round(np.arange(-1.0, 32.0 + 1e-9, 0.5), 1)
MAX_P_VALUE: Final = 0.1
MIN_NONZERO_DAYS: Final = 10
#: 20 °F-days, in °C-days
MIN_DEGREE_DAYS: Final = 20.0 * 5.0 / 9.0
#: fewer days than this and no model is fitted
MIN_DAYS: Final = 15
#: the seasons a year is cut into (northern hemisphere; eemeter 4's definition)
SEASONS: Final = {
    "winter": (1, 2, 11, 12),
    "shoulder": (3, 4, 5, 10),
    "summer": (6, 7, 8, 9),
}
_ALL: Final = tuple(range(1, 13))
_W, _SH, _SU = SEASONS["winter"], SEASONS["shoulder"], SEASONS["summer"]
#: the cuts of the year tried, by name: each a tuple of month groups
SEASON_CUTS: Final[dict[str, tuple[tuple[int, ...], ...]]] = {
    "year": (_ALL,),
    "winter|rest": (_W, tuple(sorted(_SH + _SU))),
    "winter+shoulder|summer": (tuple(sorted(_W + _SH)), _SU),
    "seasons": (_W, _SH, _SU),
}
DayType = Literal["all", "weekday", "weekend"]
#: every partition tried: a cut of the year, whole weeks or weekdays apart from weekends
PARTITIONS: Final = (
    ("year", "week"),
    ("year", "weekday|weekend"),
    *((cut, "week") for cut in SEASON_CUTS if cut != "year"),
)
MIN_SEGMENT_DAYS: Final = 20
#: the balance points a segment's search runs over: 1 °C steps (a segment has a
#: fraction of the year's days, a finer grid only fits their noise)
SEGMENT_BALANCE_POINTS: Final = BALANCE_POINTS[::2]
#: a segment's balance point must have MIN_NONZERO_DAYS of its days on either side:
#: a "heating" line through every day of a summer (balance point above its warmest
#: day) is a straight line in temperature that fits whatever else went on that summer
SEGMENT_BEND: Final = True
#: a season is cut off only when the days span most of a year (else a season's model
#: would be fitted on a few weeks at one end of it)
MIN_SPLIT_SPAN_DAYS: Final = 330
CV_FOLDS: Final = 5
#: a cut replaces the whole-year model only when its out-of-week error is lower by this
#: many standard errors of the week-by-week difference: the search tries several cuts,
#: and one that is better by chance must not win. 0.5 was chosen on the London
#: households' training weeks alone (half of them fitted, the other half scored); 1.0
#: and 1.645 kept the whole-year model for households it predicts worse
MIN_IMPROVEMENT_Z: Final = 0.5

Kind = Literal["intercept_only", "hdd_only", "cdd_only", "hdd_cdd"]


@dataclass(frozen=True)
class DailySegment:
    """One segment of a daily model: the months and day type it covers and its own
    CalTRACK model (coefficients in kWh per day and per °C-day)."""

    months: tuple[int, ...]
    days: DayType
    kind: Kind
    intercept: float
    heating_balance_c: float | None
    heating_slope: float | None
    cooling_balance_c: float | None
    cooling_slope: float | None
    weekend_shift: float | None
    n: int

    def covers(self, month: np.ndarray, weekend: np.ndarray) -> np.ndarray:
        """Which of the days (by month 1-12 and weekend flag) this segment predicts."""
        rows = np.isin(month, self.months)
        if self.days == "weekday":
            rows &= ~weekend
        elif self.days == "weekend":
            rows &= weekend
        return np.asarray(rows)

    @property
    def coefficients(self) -> int:
        return 1 + sum(
            v is not None for v in (self.heating_slope, self.cooling_slope, self.weekend_shift)
        )

    def weather_part(self, t: np.ndarray) -> np.ndarray:
        out = np.zeros(t.shape)
        if self.heating_slope is not None and self.heating_balance_c is not None:
            out += self.heating_slope * np.maximum(self.heating_balance_c - t, 0.0)
        if self.cooling_slope is not None and self.cooling_balance_c is not None:
            out += self.cooling_slope * np.maximum(t - self.cooling_balance_c, 0.0)
        return out

    def base_part(self, weekend: np.ndarray) -> np.ndarray:
        out = np.full(weekend.shape, self.intercept)
        if self.weekend_shift is not None:
            out = out + self.weekend_shift * weekend
        return out


@dataclass(frozen=True)
class DailyModel:
    """A fitted daily model.

    The top-level coefficients are the **whole-year** CalTRACK fit (with the weekend
    term when it qualified): the household's heating and cooling line over the year.
    Predictions come from ``segments``, one per part of the year and day type of the
    chosen ``split`` (a single segment equal to the whole-year fit when ``split`` is
    ``"year/week"``). ``n``, ``p``, R², CV(RMSE) and NMBE are those of the predictions,
    ``p`` counting every segment's coefficients."""

    kind: Kind
    intercept: float
    heating_balance_c: float | None
    heating_slope: float | None
    cooling_balance_c: float | None
    cooling_slope: float | None
    weekend_shift: float | None
    n: int
    p: int
    r2: float
    r2_adj: float
    cvrmse: float
    nmbe: float
    mean_kwh: float
    split: str = "year/week"
    segments: tuple[DailySegment, ...] = field(default=())

    @property
    def is_split(self) -> bool:
        return len(self.segments) > 1

    def _parts(
        self,
        temperature_c: npt.ArrayLike,
        weekend: npt.ArrayLike,
        month: npt.ArrayLike | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per day: the base use (intercept and weekend shift) and the weather's part."""
        t = np.asarray(temperature_c, dtype=float)
        we = np.broadcast_to(np.asarray(weekend, dtype=bool), t.shape)
        if not self.is_split:
            whole = self.segments[0] if self.segments else self._whole()
            return whole.base_part(we.astype(float)), whole.weather_part(t)
        if month is None:
            raise ValueError("a model split by season and day type needs each day's month")
        m = np.broadcast_to(np.asarray(month, dtype=int), t.shape)
        base, weather = np.full(t.shape, np.nan), np.full(t.shape, np.nan)
        for seg in self.segments:
            rows = seg.covers(m, we)
            base[rows] = seg.base_part(we[rows].astype(float))
            weather[rows] = seg.weather_part(t[rows])
        return base, weather

    def _whole(self) -> DailySegment:
        return DailySegment(
            _ALL, "all", self.kind, self.intercept, self.heating_balance_c, self.heating_slope,
            self.cooling_balance_c, self.cooling_slope, self.weekend_shift, self.n,
        )  # fmt: skip

    def predict(
        self,
        temperature_c: npt.ArrayLike,
        weekend: npt.ArrayLike,
        month: npt.ArrayLike | None = None,
    ) -> np.ndarray:
        """Use per day (kWh) at the given daily mean temperatures, on days that are
        (1) or are not (0) Saturdays or Sundays, in the given months (1-12; needed by a
        split model only)."""
        base, weather = self._parts(temperature_c, weekend, month)
        return np.asarray(base + weather)

    def predict_days(self, days: pl.DataFrame) -> np.ndarray:
        """Use per day for a frame with ``day`` and ``temperature_c``."""
        weekend, month = day_calendar(days)
        return self.predict(days["temperature_c"].to_numpy(), weekend, month)

    def weather_part(
        self,
        temperature_c: npt.ArrayLike,
        weekend: npt.ArrayLike | None = None,
        month: npt.ArrayLike | None = None,
    ) -> np.ndarray:
        """The degree-day terms alone: what the weather adds to a day's use (kWh), each
        day by its own segment's terms."""
        t = np.asarray(temperature_c, dtype=float)
        we = np.zeros(t.shape, dtype=bool) if weekend is None else weekend
        return self._parts(t, we, month)[1]

    def base_part(self, weekend: npt.ArrayLike, month: npt.ArrayLike | None = None) -> np.ndarray:
        """What a day uses whatever the weather (intercept and weekend shift of its
        segment): the calendar's part."""
        we = np.asarray(weekend, dtype=bool)
        return self._parts(np.zeros(we.shape), we, month)[0]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def day_calendar(days: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per day: weekend (Saturday or Sunday) and month."""
    return (
        (days["day"].dt.weekday() >= 6).to_numpy(),
        days["day"].dt.month().to_numpy().astype(int),
    )


@dataclass
class _Best:
    kind: Kind
    beta: tuple[float, ...]
    th: float | None
    tc: float | None
    weekend: bool
    r2_adj: float

    def design(self, t: np.ndarray, we: np.ndarray) -> np.ndarray:
        """The chosen form's columns on the days ``t`` / ``we``, in ``beta``'s order."""
        cols = [np.ones(t.size)]
        if self.weekend:
            cols.append(we)
        if self.th is not None:
            cols.append(np.maximum(self.th - t, 0.0))
        if self.tc is not None:
            cols.append(np.maximum(t - self.tc, 0.0))
        return np.column_stack(cols)

    def segment(self, months: tuple[int, ...], days: DayType, n: int) -> DailySegment:
        b = list(self.beta)
        intercept = b.pop(0)
        shift = b.pop(0) if self.weekend else None
        heating = b.pop(0) if self.th is not None else None
        cooling = b.pop(0) if self.tc is not None else None
        return DailySegment(
            months, days, self.kind, intercept, self.th, heating, self.tc, cooling, shift, n
        )


def _adj(r2: np.ndarray, n: int, k: int) -> np.ndarray:
    """Adjusted R² with ``k`` explanatory variables besides the intercept."""
    return np.asarray(1.0 - (1.0 - r2) * (n - 1) / (n - k - 1))


def _degree_days_ok(dd: np.ndarray, bend: bool = False) -> np.ndarray:
    """Per column: enough days above zero and enough degree days in all; with
    ``bend`` also as many days at zero (the balance point lies inside the days'
    temperatures, so the model bends there)."""
    nonzero = (dd > 0).sum(axis=0)
    ok = (nonzero >= MIN_NONZERO_DAYS) & (dd.sum(axis=0) >= MIN_DEGREE_DAYS)
    if bend:
        ok &= dd.shape[0] - nonzero >= MIN_NONZERO_DAYS
    return np.asarray(ok)


class _Gram:
    """The cross-products every candidate's normal equations are assembled from: the
    fixed columns ``F`` (intercept, weekend) and the pool ``G`` of every HDD and CDD
    column. A candidate is ``F`` plus a few pool columns, so its ``X'X`` and ``X'y`` are
    gathered from these, never built from a candidates x days array."""

    def __init__(
        self, fixed: np.ndarray, pool: np.ndarray, y: np.ndarray, gg: np.ndarray, gy: np.ndarray
    ) -> None:
        self.f = fixed.shape[1]
        self.ff, self.fg, self.gg = fixed.T @ fixed, fixed.T @ pool, gg
        self.fy, self.gy = fixed.T @ y, gy
        self.yy, self.n = float(y @ y), y.size

    def fit(self, idx: np.ndarray, sst: float) -> tuple[np.ndarray, ...]:
        """Least squares for the candidates ``idx`` (candidates x pool columns):
        (beta, whether every coefficient after the intercept is significant at
        :data:`MAX_P_VALUE`, R²). A singular design gets NaN and never qualifies.

        Significance compares |t| with the t distribution's critical value for the
        candidates' degrees of freedom (p < 0.1 exactly when |t| exceeds it), one
        quantile per family instead of a p-value per coefficient."""
        count = idx.shape[0]
        f, k, n = self.f, self.f + idx.shape[1], self.n
        xtx = np.empty((count, k, k))
        xtx[:, :f, :f] = self.ff
        xtx[:, :f, f:] = self.fg[:, idx].transpose(1, 0, 2)
        xtx[:, f:, :f] = xtx[:, :f, f:].transpose(0, 2, 1)
        xtx[:, f:, f:] = self.gg[idx[:, :, None], idx[:, None, :]]
        xty = np.concatenate([np.broadcast_to(self.fy, (count, f)), self.gy[idx]], axis=1)
        ok = np.abs(np.linalg.det(xtx)) > 1e-9
        inv = np.full(xtx.shape, np.nan)
        inv[ok] = np.linalg.inv(xtx[ok])
        beta = np.einsum("pab,pb->pa", inv, xty)
        critical = _critical_t(n - k)
        with np.errstate(invalid="ignore", divide="ignore"):
            rss = np.maximum(self.yy - np.einsum("pa,pa->p", beta, xty), 0.0)
            sigma2 = rss / (n - k)
            diag = np.diagonal(inv, axis1=1, axis2=2)[:, 1:]
            t = np.abs(beta[:, 1:] / np.sqrt(sigma2[:, None] * diag))
            significant = t > critical
            r2 = 1.0 - rss / sst if sst > 0 else np.zeros(count)
        return beta, significant, r2


@functools.lru_cache(maxsize=1024)
def _critical_t(dof: int) -> float:
    """|t| above which a coefficient is significant at :data:`MAX_P_VALUE` (two-sided)."""
    # SciPy loads here, not with the module: every `metrify` command imports this one
    # (for its help) and SciPy took about a second of each command's start.
    from scipy import stats  # type: ignore[import-untyped]

    return float(stats.t.isf(MAX_P_VALUE / 2.0, dof)) if dof > 0 else float("inf")


def _search(
    y: np.ndarray,
    t: np.ndarray,
    we: np.ndarray,
    weekend: bool,
    grid: np.ndarray = BALANCE_POINTS,
    bend: bool = False,
) -> _Best:
    """CalTRACK's candidate search (with the weekend term when ``weekend``) on these
    days over the balance points ``grid``: the qualifying candidate with the highest
    adjusted R²."""
    n = y.size
    sst = float(((y - y.mean()) ** 2).sum())
    best = _Best("intercept_only", (float(y.mean()),), None, None, False, 0.0)

    hdd = np.maximum(grid[None, :] - t[:, None], 0.0)
    cdd = np.maximum(t[:, None] - grid[None, :], 0.0)
    h_ok, c_ok = _degree_days_ok(hdd, bend), _degree_days_ok(cdd, bend)
    # only balance points whose degree days qualify are fitted at all; pool columns
    # 0..m-1 are the HDD columns, m..2m-1 the CDD ones
    m = grid.size
    hs, cs = np.nonzero(h_ok)[0], np.nonzero(c_ok)[0]
    pairs = np.nonzero(grid[hs][:, None] <= grid[cs][None, :])
    hi, ci = hs[pairs[0]], cs[pairs[1]]
    families: list[tuple[Kind, np.ndarray, np.ndarray | None, np.ndarray | None]] = [
        # kind, pool columns per candidate, heating index, cooling index
        ("hdd_only", hs[:, None], hs, None),
        ("cdd_only", m + cs[:, None], None, cs),
        ("hdd_cdd", np.column_stack([hi, m + ci]), hi, ci),
    ]
    pool = np.hstack([hdd, cdd])
    gg, gy = pool.T @ pool, pool.T @ y
    ones = np.ones(n)
    for with_weekend in (False, True) if weekend and 0 < we.sum() < n else (False,):
        fixed = np.column_stack([ones, we]) if with_weekend else ones[:, None]
        gram = _Gram(fixed, pool, y, gg, gy)
        f = fixed.shape[1]
        if with_weekend:
            beta, significant, r2 = gram.fit(np.zeros((1, 0), dtype=int), sst)
            adj = _adj(r2, n, 1)
            if significant[0, 0] and adj[0] > best.r2_adj:
                best = _Best("intercept_only", (float(beta[0, 0]), float(beta[0, 1])), None,
                             None, True, float(adj[0]))  # fmt: skip
        for kind, idx, i, j in families:
            if idx.shape[0] == 0:
                continue
            beta, significant, r2 = gram.fit(idx, sst)
            slopes = beta[:, f:]
            qualifies = (slopes > 0).all(axis=1) & significant.all(axis=1)
            adj = np.where(qualifies, _adj(r2, n, f + idx.shape[1] - 1), -np.inf)
            k = int(np.argmax(adj))
            if np.isfinite(adj[k]) and adj[k] > best.r2_adj:
                best = _Best(
                    kind,
                    tuple(float(b) for b in beta[k]),
                    float(grid[i[k]]) if i is not None else None,
                    float(grid[j[k]]) if j is not None else None,
                    with_weekend,
                    float(adj[k]),
                )
    return best


def _cv_errors(x: np.ndarray, y: np.ndarray, fold: np.ndarray) -> np.ndarray:
    """Out-of-fold squared errors of least squares on ``x``, per day: each fold
    predicted by the coefficients fitted on the other folds (one small solve per fold,
    from the folds' cross-products). The balance points stay those the segment's search
    chose on all its days: searching them again per fold (tried) cost a third more time
    and chose no better on the training weeks."""
    onehot = (fold[:, None] == np.arange(CV_FOLDS)[None, :]).astype(float)
    g_f = np.einsum("if,ia,ib->fab", onehot, x, x)
    b_f = np.einsum("if,ia,i->fa", onehot, x, y)
    beta = np.einsum("fab,fb->fa", np.linalg.pinv(g_f.sum(0) - g_f), b_f.sum(0) - b_f)
    return np.asarray((y - np.einsum("ia,ia->i", x, beta[fold])) ** 2)


def fit_daily(days: pl.DataFrame, *, weekend: bool = True, split: bool = True) -> DailyModel:
    """Fit the daily model to ``days`` (columns ``day``, ``kwh`` and ``temperature_c``,
    one row per day of the baseline period).

    With ``weekend`` (the default) every candidate is also tried with a weekend term, a
    shift of use on Saturdays and Sundays kept only when significant like the slopes
    (p < 0.1) and chosen, like everything else, by adjusted R². With ``split`` (the
    default) the year may be cut into seasons and day types, each with its own model,
    when the blocked cross-validation on these days prefers it (see the module's doc).
    ``weekend=False`` is CalTRACK 2.0 exactly (and never split); ``split=False`` the
    whole-year model alone. Raises ValueError when fewer than :data:`MIN_DAYS` days
    are given."""
    y = days["kwh"].to_numpy().astype(float)
    t = days["temperature_c"].to_numpy().astype(float)
    n = y.size
    if n < MIN_DAYS:
        raise ValueError(f"{n} days with use and temperature; at least {MIN_DAYS} are needed")
    we_b, month = day_calendar(days)
    we = we_b.astype(float)
    whole = _search(y, t, we, weekend)
    segments: tuple[DailySegment, ...] = (whole.segment(_ALL, "all", n),)
    chosen = "year/week"
    epoch_days = days["day"].dt.epoch("d")
    span = int(epoch_days.max()) - int(epoch_days.min()) + 1  # type: ignore[arg-type]
    if weekend and split and span >= MIN_SPLIT_SPAN_DAYS:
        chosen, segments = _choose_split(days, y, t, we_b, month, whole)
    return _finish(whole, chosen, segments, y, t, we_b, month)


def _choose_split(
    days: pl.DataFrame,
    y: np.ndarray,
    t: np.ndarray,
    we: np.ndarray,
    month: np.ndarray,
    whole: _Best,
) -> tuple[str, tuple[DailySegment, ...]]:
    """The partition whose segments predict held-out weeks of these days best, when it
    beats the whole-year model clearly (see :data:`MIN_IMPROVEMENT_Z`)."""
    ordinal = days["day"].dt.epoch("d").to_numpy().astype(np.int64)
    # whole weeks (Monday to Sunday; 1970-01-01 was a Thursday) go to the folds in turn
    week = (ordinal + 3) // 7
    fold = week % CV_FOLDS
    _, week_index = np.unique(week, return_inverse=True)
    fitted: dict[tuple[tuple[int, ...], DayType], tuple[DailySegment, np.ndarray] | None] = {}

    def component(months: tuple[int, ...], kind: DayType) -> tuple[DailySegment, np.ndarray] | None:
        """The segment's model and its out-of-fold errors per day (0 off the segment)."""
        key = (months, kind)
        if key not in fitted:
            rows = np.isin(month, months)
            if kind != "all":
                rows &= we if kind == "weekend" else ~we
            if rows.sum() < MIN_SEGMENT_DAYS:
                fitted[key] = None
            else:
                yr, tr, wr = y[rows], t[rows], we[rows].astype(float)
                best = (
                    whole
                    if months == _ALL and kind == "all"
                    else _search(yr, tr, wr, True, SEGMENT_BALANCE_POINTS, SEGMENT_BEND)
                )
                errors = np.zeros(y.size)
                errors[rows] = _cv_errors(best.design(tr, wr), yr, fold[rows])
                fitted[key] = (best.segment(months, kind, int(rows.sum())), errors)
        return fitted[key]

    base = component(_ALL, "all")
    assert base is not None
    base_weeks = np.bincount(week_index, weights=base[1])
    segments: tuple[DailySegment, ...] = (base[0],)
    chosen, gain = "year/week", 0.0
    for cut, kinds in PARTITIONS[1:]:
        parts: list[tuple[DailySegment, np.ndarray] | None] = []
        for months in SEASON_CUTS[cut]:
            if kinds == "week":
                parts.append(component(months, "all"))
            else:
                parts += [component(months, "weekday"), component(months, "weekend")]
        if any(p is None for p in parts):
            continue
        errors = np.sum([p[1] for p in parts if p is not None], axis=0)
        # the gain over the whole-year model, week by week (weeks, not days, are the
        # independent units: a household's days within a week are alike)
        diff = base_weeks - np.bincount(week_index, weights=errors)
        spread = float(np.sqrt(diff.size) * diff.std(ddof=1)) if diff.size > 1 else np.inf
        total = float(diff.sum())
        if total > MIN_IMPROVEMENT_Z * spread and total > gain:
            chosen, gain = f"{cut}/{kinds}", total
            segments = tuple(p[0] for p in parts if p is not None)
    return chosen, segments


def _finish(
    whole: _Best,
    split: str,
    segments: tuple[DailySegment, ...],
    y: np.ndarray,
    t: np.ndarray,
    we: np.ndarray,
    month: np.ndarray,
) -> DailyModel:
    top = whole.segment(_ALL, "all", y.size)
    p = sum(s.coefficients for s in segments)
    model = DailyModel(
        top.kind, top.intercept, top.heating_balance_c, top.heating_slope,
        top.cooling_balance_c, top.cooling_slope, top.weekend_shift,
        n=y.size, p=p, r2=0.0, r2_adj=0.0, cvrmse=0.0, nmbe=0.0, mean_kwh=float(y.mean()),
        split=split, segments=segments,
    )  # fmt: skip
    yhat = model.predict(t, we, month)
    sst = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float(((y - yhat) ** 2).sum()) / sst if sst > 0 else 0.0
    return DailyModel(
        **{
            **{k: getattr(model, k) for k in model.__dataclass_fields__},
            "r2": r2,
            "r2_adj": float(_adj(np.array(r2), y.size, p - 1)) if p > 1 else 0.0,
            "cvrmse": metrics.cvrmse(y, yhat, p),
            "nmbe": metrics.nmbe(y, yhat, p),
        }
    )
