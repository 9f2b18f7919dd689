"""When the provider's failure hands the question to the offline model, and how that failure is told.

pydantic-ai's ``ModelFallback`` capability asks ``FallbackRecorder.falls_back(exc)`` about every
failed model request (after the provider SDK's own retries). Falling back on:

- the provider could not be reached or its stream broke (``ModelConnectionError``, incl. a
  per-attempt ``ModelTimeoutError``);
- the request ran out of ``request_timeout`` (``ModelRequestTimeout``);
- rate limits and provider-side errors (HTTP 408, 409, 429, 5xx; ``ModelRateLimitError``,
  ``ModelUnavailableError``, ``ModelServerError``).

Not falling back on a refusal of the request itself (400, 401, 403, 404, 402 quota): the
configuration is wrong, and answering offline would hide it; those stay errors (HTTP 503 / exit 2)
with a hint naming the setting to fix.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic_ai.exceptions import (
    ModelAPIError,
    ModelConnectionError,
    ModelHTTPError,
    ModelRateLimitError,
    ModelRequestTimeout,
    ModelServerError,
    ModelUnavailableError,
)

# Statuses the Stainless SDKs (OpenAI, Anthropic) retry: openai/_base_client.py _should_retry.
RETRIED_STATUSES = frozenset({408, 409, 429})


def is_provider_failure(exc: BaseException) -> bool:
    """True for a failure the offline model may answer in place of (see the module docstring)."""
    if isinstance(exc, ModelRequestTimeout | ModelConnectionError):
        return True
    if isinstance(exc, ModelRateLimitError | ModelUnavailableError | ModelServerError):
        return True
    if isinstance(exc, ModelHTTPError):
        return exc.status_code >= 500 or exc.status_code in RETRIED_STATUSES
    return False


def attempts_made(exc: BaseException) -> int | None:
    """How many HTTP attempts the provider SDK made before giving up, from the
    ``x-stainless-retry-count`` header of its last request (OpenAI and Anthropic SDKs send it);
    None when the SDK's exception carries no request."""
    cause = exc.__cause__
    response = getattr(cause, "response", None)
    request = getattr(response, "request", None) or getattr(cause, "request", None)
    headers = getattr(request, "headers", None)
    if headers is None:
        return None
    try:
        return int(headers.get("x-stainless-retry-count", "0")) + 1
    except ValueError:
        return None


def describe_failure(exc: BaseException) -> str:
    """What went wrong, in words, without the provider's response body (it may echo a key):
    ``"answered HTTP 500 (3 attempts)"``, ``"did not answer within 5 s"``, ``"could not be reached"``."""
    n = attempts_made(exc)
    tries = f" ({n} attempts)" if n and n > 1 else ""
    if isinstance(exc, ModelRequestTimeout):
        return f"did not answer within {exc.timeout:g} s"
    if isinstance(exc, ModelHTTPError):
        return f"answered HTTP {exc.status_code}{tries}"
    if isinstance(exc, ModelConnectionError):
        cause = type(exc.__cause__).__name__ if exc.__cause__ is not None else type(exc).__name__
        return f"could not be reached ({cause}){tries}"
    return f"failed ({type(exc).__name__}){tries}"


@dataclass
class FallbackRecorder:
    """The ``fallback_on`` predicate of one run: decides and remembers each provider failure the
    offline model answered for (``failures``, in order)."""

    failures: list[ModelAPIError] = field(default_factory=list)

    def falls_back(self, exc: Exception) -> bool:
        if isinstance(exc, ModelAPIError) and is_provider_failure(exc):
            self.failures.append(exc)
            return True
        return False
