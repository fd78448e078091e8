"""Forecasts on synthetic series with known answers: linear, accelerating, noisy, reset in the middle.

Tolerances proven here (days until the level, from the last observation):
- linear, no noise: within 0.5 day;
- accelerating (quadratic truth): within 3%; exponential truth (1.5%/day, also with 2% noise): within 15%;
- linear with noise (iid, sigma 4% of the level): within 10%, and the true date inside the 90% band;
- counter with a stats reset in the middle: within 2%; gauge with a level drop (data archived): within 3%;
- an accelerating fit's band takes in the straight line (model uncertainty), so its latest date is later.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from opsbook.history import forecast

DAY = 86400.0
T0 = 1_780_000_000.0  # an arbitrary epoch second


def days(n: int, per_day: int = 1) -> np.ndarray:
    return np.arange(n * per_day + 1) / per_day


def ts(d: np.ndarray) -> np.ndarray:
    return T0 + d * DAY


def test_linear_exact():
    d = days(60)
    y = 100e6 + 2e6 * d  # 100 MB growing 2 MB/day: at day 60, 220 MB
    f = forecast.fit(ts(d), y)
    assert f.model == "linear"
    assert f.growth_per_day == pytest.approx(2e6, rel=1e-6)
    u = f.days_until(500e6)  # (500 - 220) / 2 = 140 days
    assert u.days == pytest.approx(140, abs=0.5)
    assert u.earliest <= u.days <= u.latest


def test_accelerating_quadratic():
    d = days(60)
    y = 100e6 + 1e6 * d + 0.05e6 * d ** 2
    f = forecast.fit(ts(d), y)
    assert f.model == "quadratic"
    # truth: 100 + (60 + x) + 0.05 (60 + x)^2 = 800 (MB)
    a, b, c = 0.05, 1.0, 100.0 - 800.0
    true_t = (-b + np.sqrt(b * b - 4 * a * c)) / (2 * a) - 60
    assert f.days_until(800e6).days == pytest.approx(true_t, rel=0.03)


def test_accelerating_exponential_is_not_underestimated_as_a_line():
    d = days(60)
    y = 100e6 * np.exp(0.015 * d)
    f = forecast.fit(ts(d), y)
    true_t = np.log(8.0) / 0.015 - 60  # 800 MB
    got = f.days_until(800e6).days
    assert got == pytest.approx(true_t, rel=0.15)
    line = (800e6 - y[-1]) / ((y[-1] - y[0]) / 60)
    assert got < line  # a straight line through the window would say later than the accelerating fit


def test_noisy_linear_within_band():
    rng = np.random.default_rng(7)
    d = days(60, per_day=4)
    truth = 200e6 + 3e6 * d
    y = truth + rng.normal(0, 0.04 * 300e6, len(d))
    f = forecast.fit(ts(d), y)
    assert f.model == "linear"
    true_t = (1000e6 - truth[-1]) / 3e6
    u = f.days_until(1000e6)
    assert u.days == pytest.approx(true_t, rel=0.10)
    assert u.earliest <= true_t <= u.latest


@pytest.mark.parametrize("seed", range(20))
def test_noise_does_not_fake_acceleration(seed):
    rng = np.random.default_rng(seed)
    d = days(60)
    y = 100e6 + 1e6 * d + rng.normal(0, 3e6, len(d))
    assert forecast.fit(ts(d), y).model == "linear"


def test_counter_with_stats_reset_in_the_middle():
    d = days(60, per_day=24)
    total = 1000.0 * d
    y = np.where(d < 30, total, total - 1000.0 * 30)  # pg_stat_reset() on day 30: counts restart at 0
    f = forecast.fit(ts(d), y, kind="counter")
    assert f.resets == 1
    assert f.growth_per_day == pytest.approx(1000, rel=0.01)
    # raw counter now 30,000, growing 1,000/day: 100,000 in 70 days
    assert f.days_until(100_000).days == pytest.approx(70, rel=0.02)
    naive = forecast.fit(ts(d), y, kind="gauge")
    assert naive.resets == 1  # the gauge rule treats it as a level drop and still learns the growth
    assert naive.days_until(100_000).days == pytest.approx(70, rel=0.03)


def test_gauge_level_drop_keeps_growth_rate():
    rng = np.random.default_rng(3)
    d = days(60)
    y = 300e6 + 2e6 * d + rng.normal(0, 0.2e6, len(d))
    y[d >= 40] -= 150e6  # old rows archived on day 40
    f = forecast.fit(ts(d), y)
    assert f.resets == 1
    true_t = (800e6 - (300e6 + 120e6 - 150e6)) / 2e6
    assert f.days_until(800e6).days == pytest.approx(true_t, rel=0.03)


def test_flat_and_shrinking_never_reach():
    d = days(30)
    assert forecast.fit(ts(d), np.full(len(d), 5e6)).days_until(10e6).days is None
    assert forecast.fit(ts(d), 10e6 - 1e4 * d).days_until(20e6).days is None


def test_already_past_the_level_is_zero_days():
    d = days(10)
    assert forecast.fit(ts(d), 100 + d).days_until(50).days == 0.0


def test_insufficient_data():
    f = forecast.fit(ts(np.array([0.0, 0.1])), [1.0, 2.0])
    assert not f.ok and f.days_until(10).days is None
    assert "not enough history" in f.describe()


def test_datetimes_and_frame():
    d = days(20)
    stamps = pd.to_datetime(ts(d), unit="s", utc=True)
    f = forecast.fit(stamps, 50 + 5 * d)
    frame = f.frame(30)
    assert list(frame.columns) == ["ts", "value", "lower", "upper"]
    assert frame["value"].iloc[-1] == pytest.approx(150 + 150, rel=1e-6)
    assert (frame["lower"] <= frame["upper"]).all()


def test_long_series_is_binned_and_still_right():
    d = np.arange(0, 90, 1 / 1440)  # one point a minute for 90 days
    y = 1e9 + 5e6 * d
    f = forecast.fit(ts(d), y)
    assert f.days_until(2e9).days == pytest.approx((2e9 - y[-1]) / 5e6, abs=0.5)


@pytest.mark.parametrize("seed", range(10))
def test_noisy_acceleration_picks_the_right_curve(seed):
    rng = np.random.default_rng(seed)
    d = days(60)
    noise = 1 + rng.normal(0, 0.02, len(d))
    expo = forecast.fit(ts(d), 100e6 * np.exp(0.015 * d) * noise)
    assert expo.model == "exponential"
    assert expo.days_until(800e6).days == pytest.approx(np.log(8.0) / 0.015 - 60, rel=0.15)
    quad = forecast.fit(ts(d), (100e6 + 1e6 * d + 0.05e6 * d ** 2) * noise)
    assert quad.model == "quadratic"


def test_band_of_accelerating_fit_takes_in_the_straight_line():
    d = days(60)
    y = 100e6 + 1e6 * d + 0.05e6 * d ** 2
    f = forecast.fit(ts(d), y)
    line = forecast.fit(ts(d[-20:]), y[-20:])  # a line through the recent window: slower than the curve
    u, lu = f.days_until(2e9), line.days_until(2e9)
    assert f.model == "quadratic" and u.days < lu.days
    assert u.latest >= forecast.fit(ts(d), y).days_until(2e9).days and u.latest > u.days * 1.2
