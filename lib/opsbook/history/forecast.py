"""Growth fits and "days until this limit", with an uncertainty band.

The model, in order:
1. Stitch: the series is made continuous across drops. For a counter (kind="counter") a decrease is a reset
   (pg_stat_reset, a restart): the value after it is the increment since the reset. For a gauge (sizes, users) a
   drop far outside the usual day-to-day change (deleted data, VACUUM FULL, a restore) is a level shift: the
   interval counts as a typical one. Growth is learned across the shift; the forecast starts from the current level.
2. Fit: a robust (Huber, IRLS) least-squares line, and a quadratic. Growth counts as accelerating only when the
   quadratic's curvature is positive, significant (t > 4 after correcting for autocorrelated residuals) and
   material (it moves the fitted level by more than 5% of the window's growth); then the quadratic or an
   exponential (a line through the logarithm: constant percentage growth), whichever fits better; when the data
   cannot tell them apart (root-mean-square residuals within 10%), the exponential, which reaches limits sooner.
   Otherwise the line is used.
3. Band: a 90% prediction band from the fit's parameter covariance (inflated by the lag-1 autocorrelation of
   the residuals) plus the residual noise; when growth accelerates, widened to take in the other candidate
   curves (the line, and the quadratic or exponential not chosen): far beyond the window, which curve holds is
   the biggest uncertainty. "Days until" a level: when the central forecast crosses it, and the
   earliest/latest dates when the upper/lower band cross it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

DAY_S = 86400.0
Z90 = 1.645  # two-sided 90% normal quantile
MAX_POINTS = 400  # longer series are binned to this many points before fitting
MAX_HORIZON_DAYS = 3650.0  # "days until" beyond ten years is reported as never
CURVATURE_T = 4.0
CURVATURE_SHARE = 0.05
JUMP_SIGMAS = 6.0
EXPONENTIAL_TIE = 1.10  # prefer the exponential unless the quadratic fits more than 10% better


@dataclass
class DaysUntil:
    """Days from the last observation until a level is reached: central estimate and 90% band (None = not within
    ten years / not growing)."""

    level: float
    days: float | None
    earliest: float | None
    latest: float | None

    def as_dict(self) -> dict[str, Any]:
        return {"level": self.level, "days": self.days, "earliest_days": self.earliest, "latest_days": self.latest}


@dataclass
class Forecast:
    model: str  # "linear", "quadratic", "exponential", "insufficient data"
    n_points: int
    span_days: float
    last_ts: float  # epoch seconds of the last observation
    last_value: float
    growth_per_day: float  # at the last observation
    coef: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))
    cov: np.ndarray = field(repr=False, default_factory=lambda: np.zeros((0, 0)))
    sigma: float = 0.0
    offset: float = 0.0  # stitched level minus raw level at the end
    resets: int = 0
    alternatives: list = field(default_factory=list, repr=False)  # (model, coef) of the curves not chosen

    @property
    def ok(self) -> bool:
        return self.model != "insufficient data"

    def predict(self, days_ahead) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(central, lower, upper) at `days_ahead` (days after the last observation)."""
        d = np.atleast_1d(np.asarray(days_ahead, dtype=float))
        if not self.ok:
            nan = np.full_like(d, np.nan)
            return nan, nan, nan
        X = _design(d, len(self.coef))
        centre = X @ self.coef
        var = np.einsum("ij,jk,ik->i", X, self.cov, X) + self.sigma ** 2
        half = Z90 * np.sqrt(np.maximum(var, 0))
        with np.errstate(over="ignore"):
            if self.model == "exponential":  # fitted in log space
                mean, lo, hi = np.exp(centre), np.exp(centre - half), np.exp(centre + half)
            else:
                mean, lo, hi = centre, centre - half, centre + half
            for model, coef in self.alternatives:
                alt = _design(d, len(coef)) @ coef
                alt = np.exp(alt) if model == "exponential" else alt
                lo, hi = np.minimum(lo, alt), np.maximum(hi, alt)
        return mean - self.offset, lo - self.offset, hi - self.offset

    def frame(self, horizon_days: float, step_days: float = 1.0):
        """The forecast as a DataFrame (ts, value, lower, upper) from the last observation to the horizon."""
        import pandas as pd  # noqa: PLC0415

        d = np.arange(0.0, horizon_days + step_days / 2, step_days)
        mean, lo, hi = self.predict(d)
        ts = pd.to_datetime(self.last_ts + d * DAY_S, unit="s", utc=True)
        return pd.DataFrame({"ts": ts, "value": mean, "lower": lo, "upper": hi})

    def days_until(self, level: float) -> DaysUntil:
        if not self.ok:
            return DaysUntil(level, None, None, None)
        if self.last_value >= level:
            return DaysUntil(level, 0.0, 0.0, 0.0)
        grid = np.linspace(0.0, MAX_HORIZON_DAYS, int(MAX_HORIZON_DAYS * 4) + 1)
        mean, lo, hi = self.predict(grid)
        return DaysUntil(level, _first_crossing(grid, mean, level), _first_crossing(grid, hi, level),
                         _first_crossing(grid, lo, level))

    def describe(self) -> str:
        if not self.ok:
            return f"not enough history to fit a trend ({self.n_points} points over {self.span_days:.1f} days)"
        resets = f"; {self.resets} reset(s)/drop(s) stitched" if self.resets else ""
        return (f"{self.model} fit over {self.n_points} points spanning {self.span_days:.1f} days "
                f"(robust Huber least squares, 90% band){resets}")


def fit(ts, values, kind: str = "gauge", min_points: int = 3, min_span_days: float = 1.0) -> Forecast:
    """Fit growth to a series. `ts`: datetimes or epoch seconds; `kind`: "gauge" or "counter"."""
    t_s = _epoch_seconds(ts)
    y = np.asarray(values, dtype=float)
    keep = np.isfinite(t_s) & np.isfinite(y)
    t_s, y = t_s[keep], y[keep]
    order = np.argsort(t_s, kind="stable")
    t_s, y = t_s[order], y[order]
    n = len(y)
    span = float((t_s[-1] - t_s[0]) / DAY_S) if n else 0.0
    if n < min_points or span < min_span_days:
        return Forecast("insufficient data", n, span, float(t_s[-1]) if n else float("nan"),
                        float(y[-1]) if n else float("nan"), float("nan"))
    z, resets = stitch(t_s, y, kind)
    t = (t_s - t_s[-1]) / DAY_S
    tb, zb = _bin(t, z, MAX_POINTS)
    lin = _huber(_design(tb, 2), zb)
    quad = _huber(_design(tb, 3), zb) if len(tb) >= 6 else None
    chosen, model = lin, "linear"
    candidates = {"linear": lin[0]}
    if quad is not None:
        c2, se2 = quad[0][2], np.sqrt(max(quad[1][2, 2], 0.0))
        growth_over_window = abs(lin[0][1]) * span + 1e-12
        material = abs(c2) * span ** 2 > CURVATURE_SHARE * growth_over_window
        if c2 > 0 and material and (se2 == 0 or c2 / se2 > CURVATURE_T):
            chosen, model = quad, "quadratic"
            candidates["quadratic"] = quad[0]
            if zb.min() > 0:
                expo = _huber(_design(tb, 2), np.log(zb))
                candidates["exponential"] = expo[0]
                if _rms(np.exp(_design(tb, 2) @ expo[0]), zb) <= EXPONENTIAL_TIE * _rms(_design(tb, 3) @ quad[0], zb):
                    chosen, model = expo, "exponential"
    coef, cov, sigma = chosen
    growth = float(coef[1])  # derivative at t=0 for the line and the quadratic
    if model == "exponential":
        growth = float(coef[1] * np.exp(coef[0]))
    offset = float(z[-1] - y[-1])
    alternatives = [(m, c) for m, c in candidates.items() if m != model] if model != "linear" else []
    return Forecast(model, n, span, float(t_s[-1]), float(y[-1]), growth, coef, cov, sigma, offset, resets,
                    alternatives)


def stitch(t_s: np.ndarray, y: np.ndarray, kind: str = "gauge") -> tuple[np.ndarray, int]:
    """A continuous version of the series (see the module docstring) and how many drops were stitched."""
    if kind not in ("gauge", "counter"):
        raise ValueError(f"kind must be 'gauge' or 'counter', not {kind!r}")
    d = np.diff(y)
    if kind == "counter":
        bad = d < 0
        fixed = np.where(bad, y[1:], d)  # after a reset, the value is what accrued since the reset
    else:
        dt = np.maximum(np.diff(t_s), 1e-9)
        rate = d / dt
        med = np.median(rate)
        mad = 1.4826 * np.median(np.abs(rate - med))
        bad = (d < 0) & (rate < med - JUMP_SIGMAS * max(mad, abs(med) * 0.05, 1e-12))
        fixed = np.where(bad, med * dt, d)
    z = np.concatenate([[y[0]], y[0] + np.cumsum(fixed)])
    return z, int(bad.sum())


def growth_rate(ts, values, kind: str = "gauge") -> float:
    """Growth per day at the end of the series (NaN without enough data)."""
    return fit(ts, values, kind).growth_per_day


def _design(t: np.ndarray, k: int) -> np.ndarray:
    return np.vander(np.asarray(t, dtype=float), k, increasing=True)


def _huber(X: np.ndarray, y: np.ndarray, k: float = 1.345, iters: int = 30):
    """Huber-weighted least squares: (coef, covariance, robust sigma), covariance inflated for autocorrelation."""
    w = np.ones(len(y))
    scale_floor = 1e-9 * (np.abs(y).mean() + 1.0)
    for _ in range(iters):
        sw = np.sqrt(w)
        beta, *_ = np.linalg.lstsq(X * sw[:, None], y * sw, rcond=None)
        r = y - X @ beta
        s = max(1.4826 * np.median(np.abs(r - np.median(r))), scale_floor)
        u = np.abs(r) / (k * s)
        w_new = np.where(u <= 1, 1.0, 1.0 / np.maximum(u, 1e-12))
        if np.allclose(w_new, w, atol=1e-6):
            break
        w = w_new
    dof = max(len(y) - X.shape[1], 1)
    sigma = float(max(np.sqrt(np.sum(w * r ** 2) / dof), s if s > scale_floor else 0.0))
    rho = 0.0
    if len(r) > 3 and np.std(r) > 0:
        rho = float(np.clip(np.corrcoef(r[:-1], r[1:])[0, 1], 0.0, 0.9))
    inflation = (1 + rho) / (1 - rho)
    xtwx = (X * w[:, None]).T @ X
    cov = np.linalg.pinv(xtwx) * sigma ** 2 * inflation
    return beta, cov, sigma


def _rms(fitted: np.ndarray, z: np.ndarray) -> float:
    return float(np.sqrt(np.mean((z - fitted) ** 2)))


def _bin(t: np.ndarray, z: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    if len(t) <= max_points:
        return t, z
    edges = np.linspace(t[0], t[-1], max_points + 1)
    idx = np.clip(np.searchsorted(edges, t, side="right") - 1, 0, max_points - 1)
    tb, zb = [], []
    for i in np.unique(idx):
        sel = idx == i
        tb.append(np.median(t[sel]))
        zb.append(np.median(z[sel]))
    tb[-1], zb[-1] = t[-1], z[-1]  # keep the last observation as it is: the forecast starts there
    return np.asarray(tb), np.asarray(zb)


def _first_crossing(grid: np.ndarray, series: np.ndarray, level: float) -> float | None:
    above = np.nonzero(series >= level)[0]
    if len(above) == 0:
        return None
    i = above[0]
    if i == 0:
        return 0.0
    x0, x1, y0, y1 = grid[i - 1], grid[i], series[i - 1], series[i]
    return float(x0 + (level - y0) * (x1 - x0) / (y1 - y0)) if y1 != y0 else float(x1)


def _epoch_seconds(ts) -> np.ndarray:
    import pandas as pd  # noqa: PLC0415

    s = pd.Series(ts)
    if pd.api.types.is_datetime64_any_dtype(s):
        if s.dt.tz is None:
            s = s.dt.tz_localize("UTC")
        return (s - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy(dtype=float)
    return s.to_numpy(dtype=float)
