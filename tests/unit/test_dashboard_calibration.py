"""The reliability diagram's arithmetic (app.dashboard.calibration, its pure part)."""

from __future__ import annotations

import pytest

from app.dashboard.calibration import reliability, served_temperature


def test_the_served_temperature_is_read_off_the_prompt_version():
    assert served_temperature("v3+T0.83") == pytest.approx(0.83)
    assert served_temperature("v3") == 1.0 and served_temperature(None) == 1.0
    assert served_temperature("v3+T0") == 1.0  # never a temperature that is not one


def test_bins_count_the_answers_their_confidence_and_the_agreement():
    bins = reliability([(0.95, True), (0.99, False), (0.91, True), (0.05, False), (1.0, True)])
    assert [b["count"] for b in bins] == [1, 0, 0, 0, 0, 0, 0, 0, 0, 4]
    top = bins[-1]
    assert top["confidence"] == pytest.approx((0.95 + 0.99 + 0.91 + 1.0) / 4)
    assert top["agreement"] == pytest.approx(3 / 4)
    assert bins[1]["agreement"] is None and (bins[1]["low"], bins[1]["high"]) == (0.1, 0.2)
