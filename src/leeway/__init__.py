"""Leeway: a self-hosted, throughput-first LLM inference service.

The flow::

    client ─HTTP─▶ api/ ──▶ store/ ──claim──▶ scheduler/ ──▶ engines/ ──▶ store/
            (wire ↔ Job)   (durable)         (who runs next)  (llama.cpp, …)  (result + usage)

One record, the Job (``leeway.jobs``), moves through every stage; wire formats are converted to and
from it in ``leeway.api`` only.
"""

__version__ = "0.1.0"
