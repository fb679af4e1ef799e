"""The registry client: auth, transport with retries, pull and push over the distribution API.

`RegistryClient` is the facade the build engine uses; the modules below it are usable alone:
`auth` (challenges, Basic, Bearer tokens), `credentials` (docker config.json, helpers),
`transport` (TLS, timeouts, retries), `errors` (spec error JSON -> RegistryError), `pull`,
`upload` (the upload session protocol) and `push`.
"""

from core.registry.client import RegistryClient, default_credentials
from core.registry.credentials import (
    ChainProvider,
    CredentialProvider,
    Credentials,
    DockerConfigProvider,
    StaticProvider,
    anonymous,
)
from core.registry.pull import ManifestResponse, PulledImage
from core.registry.push import BlobPushResult, BlobSource

__all__ = [
    "BlobPushResult",
    "BlobSource",
    "ChainProvider",
    "CredentialProvider",
    "Credentials",
    "DockerConfigProvider",
    "ManifestResponse",
    "PulledImage",
    "RegistryClient",
    "StaticProvider",
    "anonymous",
    "default_credentials",
]
