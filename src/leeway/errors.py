"""One exception tree. Raised anywhere, rendered once at the HTTP edge (``leeway.api.errors``).

    LeewayError                     500 server_error
    ├── InvalidRequest              400 invalid_request_error
    │   ├── UnsupportedParameter    400 (names the parameter)
    │   ├── UnsupportedWindow       400 (lists the model's windows)
    │   ├── IdempotencyMismatch     400 idempotency_error (a key reused with another body)
    │   └── ContextLengthExceeded   400 context_length_exceeded
    ├── AuthenticationFailed        401 invalid_api_key
    ├── PermissionDenied            403 permission_denied (a tenant's key on an admin route)
    ├── NotFound                    404 not_found
    │   └── ModelNotFound           404 model_not_found
    ├── RequestTimeout              408 request_timeout (a body too slow to arrive)
    ├── PayloadTooLarge             413 payload_too_large
    ├── ClientGone                  499 (the client left before its request was read: no one hears it)
    ├── RateLimited                 429 rate_limit_exceeded (with Retry-After)
    ├── QuotaExceeded               429 insufficient_quota (a tenant's monthly budget is spent)
    ├── EngineFailed                500 engine_error (stored as the job's error)
    │   └── EngineRejected          the engine refused the job (an upstream 4xx): its message
    ├── EngineUnavailable           503 (the engine could not run it now: the job is requeued)
    ├── ServerBusy                  503 server_busy (too many connections or bodies at once: retry)
    └── ConfigError                 (at start-up: the configuration is wrong)

Each class's docstring is its default message.
"""

from __future__ import annotations

from collections.abc import Mapping


class LeewayError(Exception):
    """The server had an error while processing your request."""

    status = 500
    type = "server_error"
    code: str | None = None

    def __init__(self, message: str | None = None, *, param: str | None = None) -> None:
        self.message = message or (type(self).__doc__ or "").strip()
        self.param = param
        super().__init__(self.message)


class InvalidRequest(LeewayError):
    """The request is invalid."""

    status = 400
    type = "invalid_request_error"


class UnsupportedParameter(InvalidRequest):
    """This parameter is not supported."""

    code = "unsupported_parameter"


class UnsupportedWindow(InvalidRequest):
    """This completion window is not supported for this model."""

    code = "unsupported_completion_window"


class ContextLengthExceeded(InvalidRequest):
    """The input is longer than the model's context allows."""

    code = "context_length_exceeded"


class IdempotencyMismatch(InvalidRequest):
    """This Idempotency-Key was already used with a different request body or endpoint."""

    code = "idempotency_error"

    def __init__(
        self, message: str | None = None, *, param: str | None = "Idempotency-Key"
    ) -> None:
        super().__init__(message, param=param)


class AuthenticationFailed(LeewayError):
    """Incorrect API key provided. Pass a Leeway key as `Authorization: Bearer <key>`."""

    status = 401
    type = "invalid_request_error"
    code = "invalid_api_key"


class PermissionDenied(LeewayError):
    """This API key may not do this: it needs an admin key."""

    status = 403
    type = "invalid_request_error"
    code = "permission_denied"


class NotFound(LeewayError):
    """No such object."""

    status = 404
    type = "invalid_request_error"
    code = "not_found"


class ModelNotFound(NotFound):
    """The model does not exist."""

    code = "model_not_found"


class RequestTimeout(LeewayError):
    """The request's body arrived too slowly; send it again, faster."""

    status = 408
    type = "invalid_request_error"
    code = "request_timeout"


class ClientGone(LeewayError):
    """The client disconnected before its request was read."""

    status = 499
    type = "invalid_request_error"
    code = "client_disconnected"


class PayloadTooLarge(LeewayError):
    """The request body is too large."""

    status = 413
    type = "invalid_request_error"
    code = "payload_too_large"


class RateLimited(LeewayError):
    """Too many requests: slow down and retry."""

    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"

    def __init__(
        self, message: str, *, retry_after: float, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.headers: Mapping[str, str] = headers or {}  # x-ratelimit-* where the tenant has limits


class QuotaExceeded(LeewayError):
    """You exceeded your current quota: this tenant's monthly budget is spent."""

    status = 429
    type = "insufficient_quota"
    code = "insufficient_quota"


class EngineFailed(LeewayError):
    """The inference engine failed while generating this response."""

    code = "engine_error"


class EngineRejected(EngineFailed):
    """The inference engine refused this request."""

    code = "engine_rejected"


class EngineUnavailable(LeewayError):
    """The inference engine is unavailable; the request will be retried."""

    status = 503
    code = "engine_unavailable"


class ServerBusy(LeewayError):
    """The server is at its limit of connections or of request bodies held at once; retry shortly."""

    status = 503
    code = "server_busy"


class ConfigError(LeewayError):
    """The configuration is invalid."""

    code = "config_error"
