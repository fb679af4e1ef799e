"""Layer uploads that run while the build goes on, and where each blob is known to be.

A layer being written streams, as it is compressed, into one `StreamTarget` per registry: a
thread that feeds a `StreamUpload` (one chunk in memory) from a bounded queue. The layer writer
returns as soon as the last compressed byte is queued, so the upload's tail (last chunk, the
commit with the digest) overlaps the next step. At most `max_inflight` layer uploads run at a
time; starting one more waits, which bounds memory to a few chunks whatever the layer count.

`BlobLocations` records every repository a blob is known to be in (uploaded, mounted, or the
base image's own repository), so that the push can mount from, or copy from, the nearest one.
`after` runs follow-up work (cache entries) on one task thread once given uploads are done.
Errors of uploads are raised by `wait` (and by the next write to a failed target); follow-up
tasks handle their own errors.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import queue
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from core.errors import BuildError, RegistryError
from core.image.reference import Repository
from core.registry import RegistryClient
from core.registry.upload import MiB, StreamUpload

log = logging.getLogger(__name__)

#: chunk of a streamed upload (the registry client's chunk size, at most this)
STREAM_CHUNK = 8 * MiB
_DEPTH = 32  # queued compressed pieces per target (~128 KiB each)
_POLL = 0.2


class BlobLocations:
    """digest -> repositories holding the blob (thread-safe)."""

    def __init__(self) -> None:
        self._where: dict[str, list[Repository]] = {}
        self._lock = threading.Lock()

    def add(self, digest: str, repository: Repository) -> None:
        with self._lock:
            known = self._where.setdefault(digest, [])
            if repository not in known:
                known.append(repository)

    def where(self, digest: str) -> list[Repository]:
        with self._lock:
            return list(self._where.get(digest, ()))


class StreamTarget:
    """One registry's copy of a layer being written (fed from the layer writer's thread)."""

    def __init__(self, upload: StreamUpload, repository: Repository,
                 done: Callable[[], None], refused: Callable[[str], None], *,
                 optional: bool = False) -> None:
        self.repository = repository
        self.optional = optional  # a failure drops this copy instead of failing the layer
        self._refused = refused
        self.future: Future[str] = Future()
        self._upload = upload
        self._queue: queue.Queue[bytes | str | None] = queue.Queue(maxsize=_DEPTH)
        self._error: BaseException | None = None
        self._done = done
        self._thread = threading.Thread(  # in the build's context: its log records stay its
            target=contextvars.copy_context().run, args=(self._run,), daemon=True,
            name="layer-upload")
        self._thread.start()

    @property
    def refused(self) -> bool:
        """Whether the registry refused chunks (the layer was spooled and PUT whole)."""
        return self._upload.refused

    def write(self, data: bytes) -> None:
        self._put(data)

    def finish(self, digest: str) -> Future[str]:
        """Commit under `digest` once everything queued is sent (in the background)."""
        self._put(digest)
        return self.future

    def abort(self) -> None:
        """Stop: the thread drops what is queued and the upload is abandoned."""
        if self._thread.is_alive():
            self._error = self._error or BuildError("upload aborted")
            with contextlib.suppress(queue.Full):
                self._queue.put_nowait(None)
            self._thread.join()

    def _put(self, item: bytes | str) -> None:
        while True:
            if self._error is not None:
                if self.optional:
                    return
                raise self._error
            try:
                self._queue.put(item, timeout=_POLL)
                return
            except queue.Full:
                continue

    def _run(self) -> None:
        try:
            while (item := self._queue.get()) is not None and self._error is None:
                if isinstance(item, str):
                    size = self._upload.size  # finishing drops the buffers it counts
                    self._upload.finish(item)
                    log.info("streamed %s to %s (%d bytes%s)", item, self.repository,
                             size, ", spooled: chunks refused"
                             if self._upload.refused else "")
                    self.future.set_result(item)
                    return
                self._upload.write(item)
                if self._upload.refused:
                    self._refused(self.repository.registry)
            raise self._error or BuildError("upload ended without a digest")
        except BaseException as error:  # handed to the writer and to `wait`
            self._error = self._error or error
            self._upload.abort()
            self.future.set_exception(error)
        finally:
            self._done()


class Uploads:
    """The background uploads of one build."""

    def __init__(self, registry: RegistryClient, spool_dir: Path, *,
                 max_inflight: int = 2) -> None:
        self.registry = registry
        self.spool_dir = spool_dir
        self.locations = BlobLocations()
        self.refusing: set[str] = set()  # registries that refused chunked uploads
        self._slots = threading.BoundedSemaphore(max_inflight)
        self._uploads: dict[str, list[Future[str]]] = {}
        self._targets: list[StreamTarget] = []
        self._tasks = ThreadPoolExecutor(max_workers=1, thread_name_prefix="upload-task")
        self._pending_tasks: list[Future[None]] = []
        self._optional: set[int] = set()  # ids of futures whose errors are only logged
        self._lock = threading.Lock()

    def start(self, repositories: list[tuple[Repository, bool]]) -> list[StreamTarget]:
        """Streamed uploads of one new layer, one per (repository, optional) pair; waits for
        a free slot (a layer's targets share one). An optional target (a cache copy) never
        fails the layer or `wait`."""
        if not repositories:
            return []
        self._slots.acquire()
        left = [len(repositories)]
        lock = threading.Lock()

        def done() -> None:
            with lock:
                left[0] -= 1
                if left[0] == 0:
                    self._slots.release()

        targets: list[StreamTarget] = []
        try:
            for repository, optional in repositories:
                targets.append(self._target(repository, optional, done))
        except BaseException:
            for target in targets:
                target.abort()
            for _ in range(len(repositories) - len(targets)):
                done()
            raise
        with self._lock:
            self._targets.extend(targets)
        return targets

    def _target(self, repository: Repository, optional: bool,
                done: Callable[[], None]) -> StreamTarget:
        conn = self.registry.connection(repository.registry)
        options = self.registry.upload_options

        def pause(attempt: int, why: str) -> None:
            conn.transport.pause(attempt, None, why)

        upload = StreamUpload(conn, repository.repository, options=options, pause=pause,
                              spool_dir=self.spool_dir,
                              chunked=lambda: repository.registry not in self.refusing,
                              chunk_size=min(options.chunk_size, STREAM_CHUNK))
        return StreamTarget(upload, repository, done, self.refusing.add, optional=optional)

    def track(self, digest: str, target: StreamTarget, future: Future[str]) -> None:
        """Record where the blob will be once `future` (its upload) is done."""
        def landed(done: Future[str]) -> None:
            error = done.exception()
            if error is None:
                self.locations.add(digest, target.repository)
            elif target.optional:
                log.warning("could not stream %s to %s: %s", digest, target.repository, error)

        future.add_done_callback(landed)
        with self._lock:
            self._uploads.setdefault(digest, []).append(future)
            if target.optional:
                self._optional.add(id(future))

    def wait_for(self, digest: str) -> None:
        """Wait for the uploads of one blob (errors of required ones raised)."""
        with self._lock:
            futures = list(self._uploads.get(digest, ()))
            optional = set(self._optional)
        for future in futures:
            if id(future) in optional:
                future.exception()
            else:
                future.result()

    def after(self, digests: Iterable[str], task: Callable[[], None]) -> None:
        """Run `task` on the task thread once the uploads of `digests` are done (whatever
        their outcome: the task looks at `locations`)."""
        wanted = list(digests)

        def run() -> None:
            for digest in wanted:
                with contextlib.suppress(BaseException):  # `wait` raises upload errors
                    self.wait_for(digest)
            task()

        with self._lock:
            self._pending_tasks.append(self._tasks.submit(contextvars.copy_context().run, run))

    def wait(self) -> None:
        """Wait for every upload and task; raise the first upload error."""
        with self._lock:
            futures = [f for group in self._uploads.values() for f in group]
            tasks = list(self._pending_tasks)
            optional = set(self._optional)
        error: BaseException | None = None
        for future in futures:
            try:
                future.result()
            except BaseException as exc:
                if id(future) not in optional:
                    error = error or exc
        for task in tasks:
            try:
                task.result()
            except BaseException as exc:  # tasks log their own failures
                log.warning("background task failed: %s", exc)
        if error is not None:
            if isinstance(error, RegistryError):
                raise error
            raise BuildError(f"layer upload failed: {error}") from error

    def close(self) -> None:
        """Abort what still runs (a failed build) and stop the task thread."""
        with self._lock:
            targets, self._targets = list(self._targets), []
            tasks = list(self._pending_tasks)
        for task in tasks:
            task.cancel()
        for target in targets:
            target.abort()
        self._tasks.shutdown(wait=True, cancel_futures=True)
