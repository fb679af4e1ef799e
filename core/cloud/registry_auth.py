"""Registry credentials from the clouds: Amazon ECR and Google Artifact Registry / GCR.

Each provider answers only for its own registry hosts and returns None for any other, so they
chain after the docker config provider. SDKs are imported when a matching host is first seen.
Tokens are cached per host until shortly before they expire.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.errors import AuthError
from core.registry.credentials import Credentials

log = logging.getLogger(__name__)

ECR_HOST = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")
GOOGLE_USERNAME = "oauth2accesstoken"
GOOGLE_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
METADATA_TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token"
_MARGIN = 300.0

Clock = Callable[[], float]
#: region -> an ECR client (boto3's `client("ecr", region_name=...)` by default)
EcrClientFactory = Callable[[str], Any]
#: () -> (access token, expiry as epoch seconds)
TokenSource = Callable[[], tuple[str, float]]


def _bare_host(registry: str) -> str:
    return registry.lower().rsplit(":", 1)[0] if ":" in registry else registry.lower()


def is_ecr_host(registry: str) -> bool:
    return ECR_HOST.match(_bare_host(registry)) is not None


def is_google_host(registry: str) -> bool:
    host = _bare_host(registry)
    return host == "gcr.io" or host.endswith(".gcr.io") or host.endswith(".pkg.dev")


@dataclass(frozen=True)
class _Cached:
    credentials: Credentials
    expires_at: float


class _TokenCache:
    """Per-host credentials until `expires_at - margin`."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, _Cached] = {}

    def get(self, key: str) -> Credentials | None:
        with self._lock:
            entry = self._entries.get(key)
        if entry is None or entry.expires_at - _MARGIN <= self._clock():
            return None
        return entry.credentials

    def put(self, key: str, credentials: Credentials, expires_at: float) -> None:
        with self._lock:
            self._entries[key] = _Cached(credentials, expires_at)


def _boto3_ecr_client(region: str) -> Any:
    import boto3

    # a session of its own: boto3's default session is not safe to make clients from in
    # two threads at once (two builds in one process fetching ECR credentials)
    return boto3.session.Session().client("ecr", region_name=region)


class EcrCredentialProvider:
    """`AWS` + the password from ECR `get_authorization_token`, for ECR hosts only."""

    def __init__(self, *, client_factory: EcrClientFactory = _boto3_ecr_client,
                 clock: Clock = time.time) -> None:
        self._client_factory = client_factory
        self._cache = _TokenCache(clock)

    def __call__(self, registry: str) -> Credentials | None:
        match = ECR_HOST.match(_bare_host(registry))
        if match is None:
            return None
        cached = self._cache.get(registry)
        if cached is not None:
            return cached
        credentials, expires_at = self._fetch(registry, match["account"], match["region"])
        self._cache.put(registry, credentials, expires_at)
        return credentials

    def _fetch(self, registry: str, account: str, region: str) -> tuple[Credentials, float]:
        try:
            client = self._client_factory(region)
            reply = client.get_authorization_token(registryIds=[account])
            data = reply["authorizationData"][0]
            decoded = base64.b64decode(data["authorizationToken"]).decode("utf-8")
        except ImportError:
            raise AuthError("boto3 is needed for ECR credentials", registry=registry) from None
        except (KeyError, IndexError, binascii.Error, UnicodeDecodeError):
            raise AuthError("ECR sent an unreadable authorization token",
                            registry=registry) from None
        except Exception as exc:  # botocore's errors (no credentials, denied, network)
            raise AuthError(f"ECR get_authorization_token failed ({type(exc).__name__})",
                            registry=registry, retryable=False) from None
        username, _, password = decoded.partition(":")
        expires = data.get("expiresAt")
        expires_at = expires.timestamp() if isinstance(expires, datetime) else time.time() + 3600
        log.debug("ECR credentials for %s valid until %s", registry, expires)
        return Credentials(username=username, password=password), expires_at


def metadata_token(timeout: float = 3.0) -> tuple[str, float]:
    """An access token from the GCE/Cloud Run metadata server (`GCE_METADATA_HOST` honoured)."""
    host = os.environ.get("GCE_METADATA_HOST", "metadata.google.internal")
    request = urllib.request.Request(f"http://{host}{METADATA_TOKEN_PATH}",
                                     headers={"Metadata-Flavor": "Google"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        doc = json.loads(response.read().decode("utf-8"))
    return str(doc["access_token"]), time.time() + float(doc.get("expires_in", 0))


def google_default_token() -> tuple[str, float]:
    """A token from `google.auth.default()` credentials, else from the metadata server."""
    try:
        import google.auth
        import google.auth.exceptions
        import google.auth.transport.requests
    except ImportError:
        return metadata_token()
    creds: Any
    try:
        creds, _ = google.auth.default(scopes=[GOOGLE_SCOPE])
        creds.refresh(google.auth.transport.requests.Request())
    except google.auth.exceptions.GoogleAuthError:
        return metadata_token()
    expiry = creds.expiry.timestamp() if creds.expiry else time.time() + 3600
    return str(creds.token), expiry


class GoogleCredentialProvider:
    """`oauth2accesstoken` + an access token, for gcr.io, *.gcr.io and *.pkg.dev only."""

    def __init__(self, *, token_source: TokenSource = google_default_token,
                 clock: Clock = time.time) -> None:
        self._token_source = token_source
        self._cache = _TokenCache(clock)

    def __call__(self, registry: str) -> Credentials | None:
        if not is_google_host(registry):
            return None
        cached = self._cache.get(registry)
        if cached is not None:
            return cached
        try:
            token, expires_at = self._token_source()
        except (OSError, ValueError, KeyError, urllib.error.URLError) as exc:
            log.info("no Google credentials for %s (%s); trying anonymously", registry,
                     type(exc).__name__)
            return None
        credentials = Credentials(username=GOOGLE_USERNAME, password=token)
        self._cache.put(registry, credentials, expires_at)
        return credentials
