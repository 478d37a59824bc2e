"""Numbers as the reports write them."""

from __future__ import annotations

import pytest

from icp_research.formatting import fmt_p, fmt_p_is


@pytest.mark.parametrize(
    ("p", "text"),
    [
        (0.0004, "<0.001"),
        (0.0056, "0.006"),
        (0.0123, "0.01"),
        (0.0464, "0.046"),  # a q of 0.046 read "0.05" beside "significant at 0.05"
        (0.0540, "0.054"),
        (0.05, "0.05"),
        (0.0449, "0.04"),
        (0.43, "0.43"),
        (float("nan"), "–"),
    ],
)
def test_p_values_near_the_usual_threshold_keep_a_third_decimal(p, text):
    assert fmt_p(p) == text


def test_p_value_phrases():
    assert fmt_p_is(0.0002, "q") == "q < 0.001"
    assert fmt_p_is(0.0464, "q") == "q = 0.046"
