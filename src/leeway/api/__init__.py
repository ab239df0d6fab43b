"""Request in, response out: the HTTP edge, and the only place that knows the wire formats.

One module per surface (``responses``, ``chat``, ``messages``: wire models, draft, rendering,
stream, and the surface's own routes), one create flow for all of them (``create``, over the table
in ``surfaces``), the batch and file APIs, auth, limits, idempotency, and errors rendered once
(``errors``). It knows the store and the runtime port (``leeway.runtime``), never the engines or
the dispatcher.
"""
