"""Turn registry responses and transport failures into the `RegistryError` family.

The distribution spec answers errors with `{"errors": [{"code", "message", "detail"}]}`.
Messages name the registry, repository and (for auth failures) the scope; they never carry
credentials, tokens or request headers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import requests

from core.errors import AuthError, RegistryError

#: HTTP statuses after which the same request may succeed
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
#: spec error codes that mean the credentials or the grant were refused
AUTH_CODES = frozenset({"UNAUTHORIZED", "DENIED"})
#: spec error codes that a retry may fix
RETRYABLE_CODES = frozenset({"TOOMANYREQUESTS", "UNAVAILABLE"})
_MAX_MESSAGE = 300


@dataclass(frozen=True)
class ErrorBody:
    """What the spec's error JSON said (codes in order, first message)."""

    codes: tuple[str, ...] = ()
    message: str = ""


def parse_error_body(body: bytes) -> ErrorBody:
    """Read the spec's error JSON; anything else gives an empty `ErrorBody`."""
    try:
        doc = json.loads(body.decode("utf-8", errors="replace"))
    except ValueError:
        return ErrorBody()
    errors = doc.get("errors") if isinstance(doc, dict) else None
    if not isinstance(errors, list):
        return ErrorBody()
    codes: list[str] = []
    message = ""
    for item in errors:
        if not isinstance(item, dict):
            continue
        code = item.get("code")
        if isinstance(code, str):
            codes.append(code.upper())
        text = item.get("message")
        if not message and isinstance(text, str):
            message = text[:_MAX_MESSAGE]
    return ErrorBody(tuple(codes), message)


def _body_of(response: requests.Response) -> bytes:
    try:
        return response.content[:65536]
    except (requests.RequestException, RuntimeError):
        return b""


def error_from_response(
    response: requests.Response,
    *,
    registry: str,
    repository: str = "",
    action: str,
    scope: str = "",
) -> RegistryError:
    """The error for an unexpected `response` to `action` (e.g. "fetch manifest latest")."""
    body = parse_error_body(_body_of(response))
    status = response.status_code
    retryable = status in RETRYABLE_STATUSES or any(c in RETRYABLE_CODES for c in body.codes)
    detail = f": {body.message}" if body.message else ""
    codes = f" [{', '.join(body.codes)}]" if body.codes else ""
    if status in (401, 403) or any(c in AUTH_CODES for c in body.codes):
        return auth_error(registry=registry, repository=repository, scope=scope,
                          status=status, codes=body.codes, reason=f"{action}{detail}")
    return RegistryError(f"{action} failed{codes}{detail}", registry=registry,
                         repository=repository, status=status, codes=body.codes,
                         retryable=retryable)


def auth_error(*, registry: str, repository: str = "", scope: str = "", status: int | None,
               codes: tuple[str, ...] = (), reason: str = "",
               insufficient_scope: bool = False) -> AuthError:
    """An `AuthError` saying which scope was refused (`str()` adds the registry)."""
    target = f"scope {scope!r}" if scope else f"registry {registry}"
    if insufficient_scope:
        text = f"{target} was not granted (insufficient_scope)"
    elif status == 403 or "DENIED" in codes:
        text = f"access denied for {target}"
    else:
        text = f"authentication required or refused for {target}"
    if reason:
        text += f" ({reason})"
    return AuthError(text, registry=registry, repository=repository, status=status,
                     codes=codes, retryable=False)


def transport_error(exc: Exception, *, registry: str, repository: str = "",
                    action: str) -> RegistryError:
    """A connection-level failure (refused, reset, timeout, TLS). Retryable except for TLS."""
    tls = isinstance(exc, requests.exceptions.SSLError)
    kind = "TLS verification failed" if tls else f"connection failed ({type(exc).__name__})"
    return RegistryError(f"{action}: {kind}", registry=registry, repository=repository,
                         retryable=not tls)
