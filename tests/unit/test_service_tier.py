"""``service_tier`` as a completion window: which window a tier asks for, when it and
``metadata.completion_window`` disagree (400 naming both), and the tier a window is shown as."""

from __future__ import annotations

import pytest

from leeway.api import service_tier
from leeway.errors import InvalidRequest
from leeway.jobs import Window


@pytest.mark.parametrize(
    "tier, metadata, asked",
    [
        (None, {}, None),
        ("auto", {}, None),
        ("default", {"completion_window": "asap"}, "asap"),
        ("flex", {}, "flex"),
        ("priority", {}, "priority"),
        ("priority", {"completion_window": "15m"}, "15m"),  # an alias of the same window
        ("flex", {"completion_window": "24h"}, "24h"),
        ("flex", {"completion_window": "flex"}, "flex"),
    ],
)
def test_the_window_a_tier_asks_for(tier, metadata, asked):
    assert service_tier.requested_window(tier, metadata) == asked


@pytest.mark.parametrize(
    "tier, window", [("flex", "priority"), ("priority", "standard"), ("flex", "15m")]
)
def test_a_tier_and_a_window_that_disagree_are_a_400_naming_both(tier, window):
    with pytest.raises(InvalidRequest) as e:
        service_tier.requested_window(tier, {"completion_window": window})
    assert e.value.param == "service_tier"
    assert "service_tier" in e.value.message and "metadata.completion_window" in e.value.message


def test_the_field_that_chose_the_window_is_named_in_errors():
    assert service_tier.window_param("flex", {}) == "service_tier"
    assert service_tier.window_param("flex", {"completion_window": "flex"}) == (
        "metadata.completion_window"
    )
    assert service_tier.window_param("auto", {}) == "metadata.completion_window"


def test_a_window_is_shown_as_its_tier():
    shown = {w: service_tier.tier(w) for w in Window}
    assert shown == {
        Window.ASAP: "default",
        Window.PRIORITY: "priority",
        Window.STANDARD: "default",
        Window.FLEX: "flex",
    }
