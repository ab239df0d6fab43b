"""One measured run: replay the workload at its phases' loads, report it, and (``sim``) set the
twin's prediction beside it. What ``leeway load`` runs once (or once per bisection step) and
``bench/contract.py`` once per policy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from leeway.jobs import Window
from leeway.load.capacity import Capacity
from leeway.load.client import Client
from leeway.load.fit import Fit, calibrated, fit
from leeway.load.plan import Plan
from leeway.load.records import requests
from leeway.load.replay import Replay, replay
from leeway.load.scrape import Sample, Scraper, window_of
from leeway.load.stats import Report, report
from leeway.load.table import as_json, table
from leeway.load.twin import gap_table, gaps, twin
from leeway.sim.workload import Phase, Workload, generate


@dataclass(frozen=True, slots=True)
class Outcome:
    replay: Replay
    measured: Report
    predicted: Report | None = None  # the twin's
    fitted: Fit | None = None
    policy: str | None = None  # the server's, as its /metrics says
    why_no_twin: str = ""

    def text(self) -> str:
        out = table(self.measured)
        if self.predicted is not None and self.fitted is not None:
            return f"{out}\n\n{gap_table(self.measured, self.predicted, self.fitted)}"
        return f"{out}\n\n{self.why_no_twin}" if self.why_no_twin else out

    def json(self) -> dict[str, Any]:
        data = as_json(self.measured)
        if self.predicted is not None and self.fitted is not None:
            m = self.fitted.model
            engine = {
                "engines": self.fitted.engines,
                "capacity": m.capacity,
                "step_base": m.step_base,
                "step_per_sequence": m.step_per_sequence,
                "prefill_per_token": m.prefill_per_token,
                "source": self.fitted.source,
            }
            data["twin"] = as_json(self.predicted, engine=engine, policy=self.policy)
            data["gaps"] = [
                {"window": g.window, "attained_points": g.attained_points,
                 "p50_share": g.turn_p50_share}
                for g in gaps(self.measured, self.predicted)
            ]  # fmt: skip
        return data


async def measure(
    client: Client,
    scraper: Scraper,
    plan: Plan,
    targets: Mapping[Window, float],
    *,
    capacity: Capacity | None,
    phases: Sequence[Phase] | None = None,
    sim: bool = False,
    progress: bool = True,
    label: str = "",
) -> Outcome:
    """Replay ``plan`` (its phases, or ``phases``) and report it; ``sim``: with its twin, fitted
    to this run's metrics and the calibration's."""
    workload = replace(plan.workload, phases=tuple(phases or plan.workload.phases))
    tokens = plan.tokens_per_second(capacity.tokens_per_second if capacity else None)
    reqs = requests(generate(workload, tokens))
    done = await replay(
        client, reqs, drain=plan.drain, scraper=scraper, progress=progress, label=label
    )
    utilization, server_rate = window_of(done.samples, plan.model)
    measured = report(
        done.records,
        targets,
        plan.seconds if phases is None else sum(p.seconds for p in phases),
        utilization=utilization,
        server_tokens_per_second=server_rate,
    )
    if not sim:
        return Outcome(done, measured)
    samples: list[Sample] = [*(capacity.samples if capacity else []), *done.samples]
    fitted = fit(samples, plan.model)
    if fitted is not None and capacity is not None:
        fitted = calibrated(fitted, capacity.tokens_per_second, _prompt_per_output(done, workload))
    policy = next((s.policy for s in reversed(samples) if s.policy), None)
    if fitted is None or policy is None:
        why = "the twin: the server reports no Leeway engine metrics to fit a model to"
        return Outcome(done, measured, why_no_twin=why)
    share = samples[-1].urgent_share
    predicted = twin(
        done.records, workload, fitted, policy, targets, measured.overall.seconds, done.ended,
        urgent_share=share,
    )  # fmt: skip
    return Outcome(done, measured, predicted, fitted, policy)


def _prompt_per_output(done: Replay, workload: Workload) -> float:
    """Prompt tokens per output token as the server counted them (chat template and system
    prompts included), else as the workload draws them."""
    prompt = sum(r.input_tokens or 0 for r in done.records if r.output_tokens)
    output = sum(r.output_tokens or 0 for r in done.records)
    return prompt / output if prompt and output else workload.prompt_per_output
