"""An authenticated conversation with one registry: transport + authenticator.

`Connection.request` adds the `Authorization` header for the scopes a request needs,
re-authenticates once after a 401, retries transient failures (through the transport) and turns
any status the caller did not expect into a `RegistryError`.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping

import requests

from core.errors import RegistryError
from core.registry.auth import Authenticator, parse_www_authenticate, repository_scope
from core.registry.errors import auth_error, error_from_response
from core.registry.transport import BodyFactory, Transport

log = logging.getLogger(__name__)


class Connection:
    """Requests to one registry host, authorised per scope."""

    def __init__(self, transport: Transport, auth: Authenticator) -> None:
        self.transport = transport
        self.auth = auth

    @property
    def host(self) -> str:
        return self.transport.host

    def url(self, path_or_url: str) -> str:
        return self.transport.url(path_or_url)

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        repository: str,
        scopes: tuple[str, ...],
        action: str,
        ok: Collection[int] = (200,),
        headers: Mapping[str, str] | None = None,
        body: BodyFactory | None = None,
        stream: bool = False,
        retries: int | None = None,
    ) -> requests.Response:
        """Send an authorised request; return it if its status is in `ok`, else raise."""
        url = self.url(path_or_url)
        response = self._send(method, url, repository, scopes, action, headers, body, stream,
                              retries)
        if response.status_code == 401 and self.auth.refresh_after_unauthorized(response, scopes):
            response.close()
            response = self._send(method, url, repository, scopes, action, headers, body,
                                  stream, retries)
        if response.status_code in ok:
            return response
        try:
            raise self.error(response, repository=repository, scopes=scopes, action=action)
        finally:
            response.close()

    def error(self, response: requests.Response, *, repository: str, scopes: tuple[str, ...],
              action: str) -> RegistryError:
        scope = " ".join(scopes)
        if response.status_code == 401:
            err = error_from_response(response, registry=self.host, repository=repository,
                                      action=action, scope=scope)
            challenges = parse_www_authenticate(response.headers.get("WWW-Authenticate", ""))
            insufficient = any(c.error == "insufficient_scope" for c in challenges)
            return auth_error(registry=self.host, repository=repository, scope=scope,
                              status=401, codes=err.codes, reason=action,
                              insufficient_scope=insufficient)
        return error_from_response(response, registry=self.host, repository=repository,
                                   action=action, scope=scope)

    def _send(self, method: str, url: str, repository: str, scopes: tuple[str, ...],
              action: str, headers: Mapping[str, str] | None, body: BodyFactory | None,
              stream: bool, retries: int | None) -> requests.Response:
        merged = dict(headers or {})
        if self.transport.is_same_host(url):
            authorization = self.auth.authorization(scopes)
            if authorization is not None:
                merged["Authorization"] = authorization
        return self.transport.send(method, url, headers=merged, body=body, stream=stream,
                                   action=action, repository=repository, retries=retries)

    def close(self) -> None:
        self.transport.close()


def pull_scope(repository: str) -> tuple[str, ...]:
    return (repository_scope(repository, "pull"),)


def push_scope(repository: str, *mount_from: str) -> tuple[str, ...]:
    extra = tuple(repository_scope(r, "pull") for r in mount_from if r != repository)
    return (repository_scope(repository, "pull,push"), *extra)

