"""The webhook fields of a request's metadata, checked when it is submitted (on every surface).

``metadata.completion_webhook`` is an http(s) URL the URL guard does not visibly refuse (a host name
is resolved, and checked again, only when a delivery is sent); ``metadata.webhook_token`` is sent as
``Authorization: Bearer``, so it must be header-safe.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from leeway.errors import InvalidRequest
from leeway.jobs import Webhook
from leeway.webhooks.guard import Guard

URL_FIELD, TOKEN_FIELD = "completion_webhook", "webhook_token"
_TOKEN = re.compile(r"^[\x21-\x7e]+$")  # visible ASCII: nothing that could end a header


def webhook(metadata: Mapping[str, str], guard: Guard) -> Webhook | None:
    """The webhook the metadata names, if any; 400 naming the field if it is visibly unusable."""
    url = metadata.get(URL_FIELD)
    if url is not None and (problem := guard.url_problem(url)) is not None:
        param = f"metadata.{URL_FIELD}"
        raise InvalidRequest(f"Invalid '{param}': the URL {problem}.", param=param)
    if (token := metadata.get(TOKEN_FIELD)) is not None and not _TOKEN.match(token):
        param = f"metadata.{TOKEN_FIELD}"
        raise InvalidRequest(
            f"Invalid '{param}': it is sent as 'Authorization: Bearer <token>', so it must be "
            "visible ASCII characters without spaces.",
            param=param,
        )
    return None if url is None else Webhook(url, token)
