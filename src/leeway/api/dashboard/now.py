"""*Now* (each window's queue, turn times and deadline attainment over the last hour; each
engine's sequences, tokens/s and health) and *Models and pricing*.

Windows are read from the store (every process's jobs; a tenant's key sees only its tenant's);
sequences in use per model too (jobs running in any process). Readiness and capacity come from this
process's runtime, and tokens/s from its metrics: an API-only process (``--role api``) runs no
engine and shows none."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families
from starlette.requests import Request
from starlette.responses import Response

from leeway.api.dashboard.render import page
from leeway.api.dashboard.sessions import Viewer
from leeway.api.models import prices
from leeway.jobs import Window
from leeway.runtime import Runtime
from leeway.settings import Settings
from leeway.store import DashboardStore
from leeway.store.operator_views import WindowNow

HOUR = 3600.0
REFRESH_SECONDS = 5


@dataclass(frozen=True, slots=True)
class EngineNow:
    model: str
    ready: bool
    parallel: int
    running: int  # jobs of this model running in any process
    tokens_per_second: float | None  # measured here; None: no engine of it runs here

    @property
    def utilization(self) -> float | None:
        return self.running / self.parallel if self.parallel else None


class NowPages:
    def __init__(
        self,
        settings: Settings,
        store: DashboardStore,
        runtime: Runtime,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings, self._store, self._runtime, self._clock = settings, store, runtime, clock

    async def now(self, request: Request, viewer: Viewer) -> Response:
        found = await self._store.windows_now(viewer.tenant, self._clock() - HOUR)
        windows = [(w.value, found.get(w.value, WindowNow())) for w in Window]
        targets = {w.value: s for w, s in self._settings.window_targets.items()}
        return page(
            "now.html",
            viewer,
            windows=windows,
            targets=targets,
            engines=await self._engines(),
            refresh=REFRESH_SECONDS,
        )

    async def models(self, request: Request, viewer: Viewer) -> Response:
        models = [
            {
                "id": m.id,
                "aliases": list(m.aliases),
                "windows": [w.value for w in m.windows],
                "prices": prices(m),
            }
            for m in self._settings.models
        ]
        return page("models.html", viewer, models=models, all_windows=[w.value for w in Window])

    async def _engines(self) -> list[EngineNow]:
        health = await self._runtime.health()
        running = await self._store.running_by_model()
        rates = tokens_per_second((await self._runtime.metrics()).decode())
        return [
            EngineNow(
                model,
                bool(state.get("ready")),
                int(state.get("parallel", 0)),
                running.get(model, 0),
                rates.get(model),
            )
            for model, state in sorted(health.engines.items())
        ]


def tokens_per_second(metrics: str) -> dict[str, float]:
    """Per model, the output tokens/s this process measured (``leeway_engine_tokens_per_second``)."""
    return {
        sample.labels["model"]: sample.value
        for family in text_string_to_metric_families(metrics)
        if family.name == "leeway_engine_tokens_per_second"
        for sample in family.samples
    }
