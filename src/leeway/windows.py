"""The completion-window contract: which window a request gets, and its deadline."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from leeway.errors import InvalidRequest, UnsupportedWindow
from leeway.jobs import WINDOW_ALIASES, Window

# seconds from arrival to deadline, per window (configurable: ``window_targets``)
DEFAULT_TARGETS: Mapping[Window, float] = {
    Window.ASAP: 0.0,
    Window.PRIORITY: 60.0,
    Window.STANDARD: 300.0,
    Window.FLEX: 86_400.0,
}


def resolve(
    requested: str | None,
    supported: Sequence[Window],
    *,
    background: bool,
    param: str = "metadata.completion_window",
) -> Window:
    """The window a request runs in (``param``: the field that asked for it, for errors).

    Omitted: ``standard`` where the model supports it, else ``flex`` for background requests, else
    ``asap``. Explicit: the window or its alias (``15m`` → priority, ``24h`` → flex); one the model does
    not support is rejected with its supported windows listed. ``flex`` needs ``background: true``.
    """
    if requested is None:
        for default, allowed in (
            (Window.STANDARD, True),
            (Window.FLEX, background),
            (Window.ASAP, True),
        ):
            if allowed and default in supported:
                return default
        raise UnsupportedWindow(
            f"This model has no completion window a request with background={str(background).lower()}"
            f" can use; its supported completion windows are {_names(supported)}.",
            param=param,
        )
    window: Window | None = WINDOW_ALIASES.get(requested) or _parse(requested)
    if window is None or window not in supported:
        raise UnsupportedWindow(
            f"Completion window {requested!r} is not supported for this model; its supported "
            f"completion windows are {_names(supported)}.",
            param=param,
        )
    if window is Window.FLEX and not background:
        raise InvalidRequest(
            "The flex completion window requires background: true.",
            param=param,
        )
    return window


def deadline(window: Window, arrival: float, targets: Mapping[Window, float]) -> float:
    return arrival + targets[window]


def _parse(value: str) -> Window | None:
    try:
        return Window(value)
    except ValueError:
        return None


def _names(windows: Sequence[Window]) -> str:
    return ", ".join(f"'{w.value}'" for w in windows)
