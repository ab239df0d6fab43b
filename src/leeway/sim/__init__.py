"""A discrete-event simulator of a fleet of engines driven by the real scheduling policy.

    python -m leeway.sim --preset h100-8b --engines 100 --load 0.9 --seconds 300

Engines follow a fitted step-time model (``engine_model``); a workload (``workload``) of Poisson
arrivals per window, load phases and batch drops feeds the policy (``leeway.scheduler.policy``) through
the runner (``runner``); ``report`` prints SLO attainment, turn times and utilization per policy.
"""
