"""A blob of a registry read as a stream, never stored whole: extraction and header reads
consume base layers straight from the registry.

`BlobReader` is a readable binary stream; a thread fetches the blob (verified by digest and
size, resumed after broken connections, see `RegistryClient.fetch_blob`) into a bounded queue,
so memory is a few network reads. A failure of the fetch (a digest mismatch included) is raised
by the read that reaches it; the consumer reads to the end (extraction drains the stream) to
learn that the blob was whole. Closing early stops the fetch. A `tee` (the base layer cache)
receives every byte too and is committed only after the fetch verified the blob.
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import logging
import queue
import threading
from collections.abc import Callable
from typing import BinaryIO, Protocol

from core.errors import BuildError

log = logging.getLogger(__name__)

_DEPTH = 8  # queued network reads (up to 1 MiB each)
_POLL = 0.2


class Tee(Protocol):
    """A second home for the bytes: `write` them, then `commit` (whole and verified) or
    `abort`."""

    def write(self, data: bytes, /) -> int: ...
    def commit(self) -> None: ...
    def abort(self) -> None: ...


Fetch = Callable[[BinaryIO], object]


class _Stopped(BuildError):
    """The reader was closed: the fetch stops."""


class _QueueSink:
    """The fetch thread's sink: bytes go into the reader's queue (and the tee)."""

    def __init__(self, reader: _Reader, tee: Tee | None) -> None:
        self._reader = reader
        self._tee = tee

    def write(self, data: bytes, /) -> int:
        if self._tee is not None:
            self._tee.write(data)
        self._reader.put(bytes(data))
        return len(data)


class _Reader(io.RawIOBase):
    def __init__(self, fetch: Fetch, *, name: str, tee: Tee | None) -> None:
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=_DEPTH)
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._current = memoryview(b"")
        self._ended = False
        self._tee = tee
        self._thread = threading.Thread(  # in the caller's context: its log records stay its
            target=contextvars.copy_context().run, args=(self._run, fetch), daemon=True,
            name=f"fetch-{name[-12:]}")
        self._thread.start()

    def put(self, item: bytes | None) -> None:
        while True:
            if self._stop.is_set():
                raise _Stopped("stopped")
            try:
                self._queue.put(item, timeout=_POLL)
                return
            except queue.Full:
                continue

    def _run(self, fetch: Fetch) -> None:
        try:
            fetch(_QueueSink(self, self._tee))  # type: ignore[arg-type]
            if self._tee is not None:
                self._tee.commit()
        except BaseException as error:  # handed to the reading thread
            self._error = error
            if self._tee is not None:
                self._tee.abort()
        with contextlib.suppress(_Stopped):
            self.put(None)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._current:
            if self._ended:
                return 0
            item = self._queue.get()
            if item is None:
                self._ended = True
                self._thread.join()
                if self._error is not None and not isinstance(self._error, _Stopped):
                    raise self._error
                return 0
            self._current = memoryview(item)
        count = min(len(buffer), len(self._current))
        buffer[:count] = self._current[:count]
        self._current = self._current[count:]
        return count

    def close(self) -> None:
        if not self.closed:
            self._stop.set()
            self._thread.join()
        super().close()


def open_blob(fetch: Fetch, *, name: str, tee: Tee | None = None) -> BinaryIO:
    """A buffered stream over the bytes `fetch` writes into the sink it is given."""
    return io.BufferedReader(_Reader(fetch, name=name, tee=tee), buffer_size=1 << 16)
