"""Request in, response out: the HTTP edge, and the only place that knows the wire formats.

One module per surface (``responses``, ``chat``, ``messages``: wire models, draft, rendering,
stream, and the surface's own routes), one create flow for all of them (``create``, over the table
in ``surfaces``), what the SDKs offer beside it (``response_routes`` and ``response_items``,
``chat_store``, ``tokens``, ``models``, ``service_tier``), the batch APIs (``batches``, and
Anthropic's ``message_batches`` on the same machinery) and the file API, auth, limits,
idempotency, request ids (``request_ids``), and errors rendered once (``errors``). It knows the store and the runtime port (``leeway.runtime``), never the engines or
the dispatcher.
"""
