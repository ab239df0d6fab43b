import pytest

from leeway import windows
from leeway.errors import InvalidRequest, UnsupportedWindow
from leeway.jobs import Window

ALL = tuple(Window)


@pytest.mark.parametrize(
    ("requested", "background", "expected"),
    [
        ("asap", False, Window.ASAP),
        ("priority", False, Window.PRIORITY),
        ("standard", True, Window.STANDARD),
        ("flex", True, Window.FLEX),
        ("15m", False, Window.PRIORITY),
        ("24h", True, Window.FLEX),
        (None, False, Window.STANDARD),
        (None, True, Window.STANDARD),
    ],
)
def test_explicit_windows_aliases_and_default(requested, background, expected):
    assert windows.resolve(requested, ALL, background=background) is expected


def test_without_standard_background_falls_back_to_flex_else_asap():
    supported = (Window.ASAP, Window.FLEX)
    assert windows.resolve(None, supported, background=True) is Window.FLEX
    assert windows.resolve(None, supported, background=False) is Window.ASAP


def test_explicit_unsupported_window_lists_the_supported_ones():
    with pytest.raises(UnsupportedWindow) as e:
        windows.resolve("standard", (Window.ASAP, Window.FLEX), background=True)
    assert "'asap', 'flex'" in e.value.message
    assert e.value.status == 400 and e.value.type == "invalid_request_error"
    assert e.value.param == "metadata.completion_window"


def test_unknown_window_name_is_rejected_with_the_list():
    with pytest.raises(UnsupportedWindow) as e:
        windows.resolve("tomorrow", ALL, background=True)
    assert "'tomorrow'" in e.value.message and "'priority'" in e.value.message


def test_flex_requires_background():
    with pytest.raises(InvalidRequest, match="background"):
        windows.resolve("flex", ALL, background=False)
    with pytest.raises(InvalidRequest, match="background"):
        windows.resolve("24h", ALL, background=False)


def test_no_usable_default_is_an_error_not_a_silent_choice():
    with pytest.raises(UnsupportedWindow, match="'flex'"):
        windows.resolve(None, (Window.FLEX,), background=False)


def test_deadline_adds_the_window_target():
    targets = {Window.ASAP: 0, Window.PRIORITY: 60, Window.STANDARD: 300, Window.FLEX: 86400}
    assert windows.deadline(Window.PRIORITY, 1000.0, targets) == 1060.0
    assert windows.deadline(Window.FLEX, 1000.0, targets) == 87400.0
