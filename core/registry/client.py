"""`RegistryClient`: the registry API the build engine uses, over one connection per registry.

All options are keyword-only. The client is safe to share between threads; close it (or use
it as a context manager) to release its HTTP sessions. `on_secret` hears every credential the
client looks up and every token it fetches (from any thread), so that a build can redact them.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

from core.errors import DigestMismatchError
from core.image.digest import Writable, sha256_digest
from core.image.manifest import Descriptor, Platform
from core.image.mediatypes import ACCEPT_HEADER
from core.image.reference import DOCKER_HUB, DOCKER_HUB_API, Reference, Repository
from core.registry.auth import Authenticator
from core.registry.connection import Connection
from core.registry.credentials import (
    ChainProvider,
    CredentialProvider,
    DockerConfigProvider,
    run_helper,
)
from core.registry.pull import (
    ManifestResponse,
    PulledImage,
    fetch_blob,
    fetch_manifest,
    head_manifest,
)
from core.registry.pull import resolve_image as _resolve_image
from core.registry.push import BlobPushResult, BlobSource, blob_exists, push_blobs
from core.registry.push import push_blob as _push_blob
from core.registry.push import push_manifest as _push_manifest
from core.registry.transport import SessionFactory, Transport, TransportOptions
from core.registry.upload import MiB, UploadOptions, upload_stream

Located = Reference | Repository


def default_credentials(docker_config: Path | None = None,
                        helper_env: Mapping[str, str] | None = None) -> CredentialProvider:
    """docker config.json first, then ECR and Google registries' own credentials.
    `docker_config`: the config's directory (None: `$DOCKER_CONFIG`, else `~/.docker`);
    `helper_env`: variables credential helpers get on top of this process's environment."""
    from core.cloud.registry_auth import EcrCredentialProvider, GoogleCredentialProvider

    helpers = functools.partial(run_helper, env=helper_env) if helper_env else run_helper
    return ChainProvider((DockerConfigProvider(docker_config, helpers),
                          EcrCredentialProvider(), GoogleCredentialProvider()))


class RegistryClient:
    """Pull from and push to registries (see `core.registry` for the protocol pieces)."""

    def __init__(
        self,
        *,
        insecure_registries: Iterable[str] = (),
        skip_tls_verify: Iterable[str] = (),
        ca_bundle: str | None = None,
        retries: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        chunk_size: int = 16 * MiB,
        monolithic_threshold: int = 32 * MiB,
        max_concurrent_uploads: int = 3,
        credentials: CredentialProvider | None = None,
        session_factory: SessionFactory | None = None,
        on_secret: Callable[[str], None] | None = None,
    ) -> None:
        self.transport_options = TransportOptions(
            insecure_registries=frozenset(insecure_registries),
            skip_tls_verify=frozenset(skip_tls_verify), ca_bundle=ca_bundle,
            connect_timeout=connect_timeout, read_timeout=read_timeout, retries=retries,
            backoff_base=backoff_base, backoff_max=backoff_max,
            pool_size=max(8, 2 * max_concurrent_uploads))
        self.upload_options = UploadOptions(
            monolithic_threshold=monolithic_threshold, chunk_size=chunk_size, retries=retries,
            max_concurrent=max_concurrent_uploads)
        self._credentials = credentials if credentials is not None else default_credentials()
        self._session_factory = session_factory
        self._on_secret = on_secret
        self._connections: dict[str, Connection] = {}
        self._lock = threading.Lock()

    def connection(self, registry: str) -> Connection:
        """The connection for a registry name (`docker.io` talks to its API host)."""
        host = DOCKER_HUB_API if registry == DOCKER_HUB else registry
        with self._lock:
            conn = self._connections.get(host)
            if conn is None:
                transport = Transport(host, self.transport_options, self._session_factory)
                provider = self._credentials
                auth = Authenticator(transport, lambda: provider(registry),
                                     on_secret=self._on_secret)
                conn = self._connections[host] = Connection(transport, auth)
            return conn

    # --- pull ---------------------------------------------------------------------------

    def fetch_manifest(self, ref: Reference, *, accept: str = ACCEPT_HEADER) -> ManifestResponse:
        """The manifest or index `ref` names, exactly as served (digest verified)."""
        return fetch_manifest(self.connection(ref.registry), ref.repository, ref.identifier,
                              accept=accept)

    def head_manifest(self, ref: Reference, *, accept: str = ACCEPT_HEADER
                      ) -> Descriptor | None:
        """The descriptor of `ref`'s manifest without fetching it; None if it does not exist."""
        return head_manifest(self.connection(ref.registry), ref.repository, ref.identifier,
                             accept=accept)

    def pull(self, ref: Reference, *, platform: Platform) -> PulledImage:
        """Resolve `ref` (through an index to `platform`) to its manifest and config."""
        return _resolve_image(self.connection(ref.registry), ref.repository, ref.identifier,
                              platform=platform)

    def fetch_blob(self, where: Located, digest: str, sink: Writable, *,
                   size: int | None = None) -> int:
        """Stream a blob into `sink`, verified by digest (and size when given)."""
        return fetch_blob(self.connection(where.registry), where.repository, digest, sink,
                          size=size, max_resumes=self.transport_options.retries)

    # --- push ---------------------------------------------------------------------------

    def blob_exists(self, where: Located, digest: str) -> bool:
        return blob_exists(self.connection(where.registry), where.repository, digest)

    def push_blob(self, where: Located, source: BlobSource, *,
                  mount_from: Sequence[str] = ()) -> BlobPushResult:
        """Skip, mount (from repositories of the same registry) or upload one blob."""
        return _push_blob(self.connection(where.registry), where.repository, source,
                          options=self.upload_options, mount_from=mount_from)

    def upload_stream(self, where: Located, read: Callable[[int], bytes]) -> tuple[str, int]:
        """Upload bytes whose digest is not known yet (chunked); return (digest, size)."""
        conn = self.connection(where.registry)

        def pause(attempt: int, why: str) -> None:
            conn.transport.pause(attempt, None, why)

        return upload_stream(conn, where.repository, read, options=self.upload_options,
                             pause=pause)

    def push_manifest(self, ref: Reference, data: bytes, media_type: str) -> str:
        """PUT a manifest under `ref`'s tag (or digest); return its digest."""
        return _push_manifest(self.connection(ref.registry), ref.repository,
                              _push_identifier(ref, data), data, media_type)

    def push_image(self, destinations: Sequence[Reference], *, blobs: Sequence[BlobSource],
                   manifest: bytes, media_type: str, mount_from: Sequence[str] = ()) -> str:
        """Push one image to every destination; blobs go once per repository, manifest last.

        Repositories after the first on the same registry mount the blobs from it.
        """
        digest = ""
        pushed: dict[str, list[str]] = {}
        for repo, refs in _group(destinations).items():
            conn = self.connection(repo.registry)
            siblings = [*mount_from, *pushed.get(repo.registry, [])]
            push_blobs(conn, repo.repository, blobs, options=self.upload_options,
                       mount_from=siblings)
            for ref in refs:
                digest = _push_manifest(conn, repo.repository, _push_identifier(ref, manifest),
                                        manifest, media_type)
            pushed.setdefault(repo.registry, []).append(repo.repository)
        return digest

    # --- lifecycle ----------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            connections, self._connections = list(self._connections.values()), {}
        for conn in connections:
            conn.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _group(destinations: Sequence[Reference]) -> dict[Repository, list[Reference]]:
    groups: dict[Repository, list[Reference]] = {}
    for ref in destinations:
        groups.setdefault(ref.context(), []).append(ref)
    return groups


def _push_identifier(ref: Reference, manifest: bytes) -> str:
    """The tag to push under, else the digest (which must be the manifest's own)."""
    if ref.digest is not None and ref.digest != sha256_digest(manifest):
        raise DigestMismatchError(f"manifest has digest {sha256_digest(manifest)}, "
                                  f"not the {ref.digest} of {ref}", registry=ref.registry,
                                  repository=ref.repository)
    return ref.tag if ref.tag is not None else sha256_digest(manifest)
