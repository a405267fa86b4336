"""HTTP for the STAC provider: one retrying session, and remote files read by byte ranges.

``retrying_session`` retries HTTP 429, 500, 502, 503 and 504 and dropped connections
``attempts`` times with exponential backoff from ``backoff_s``, and waits as long as a
``Retry-After`` header says when the server sends one. ``RangeFile`` is a read-only,
seekable file over a URL that fetches aligned blocks with ``Range`` requests through
that session; ``pipeline.fetch.cog`` reads COG windows through it, so only the
header and the internal tiles a window needs are downloaded, with the same retries.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass, field

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

RETRY_STATUS = (429, 500, 502, 503, 504)
BLOCK = 64 * 1024
"""Granularity of the cache: one read that spans several missing blocks is one request."""


@dataclass
class Traffic:
    """Requests made and bytes received, for the ledger and the cost figures."""

    requests: int = 0
    bytes: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, n_bytes: int) -> None:
        with self._lock:
            self.requests += 1
            self.bytes += n_bytes


def retrying_session(*, attempts: int, backoff_s: float) -> requests.Session:
    retry = Retry(
        total=max(attempts - 1, 0),
        connect=max(attempts - 1, 0),
        read=max(attempts - 1, 0),
        status=max(attempts - 1, 0),
        backoff_factor=backoff_s,
        status_forcelist=RETRY_STATUS,
        allowed_methods=None,  # POST searches are safe to repeat
        respect_retry_after_header=True,
        raise_on_status=True,
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry, pool_maxsize=16)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class RemoteBlocks:
    """The blocks of one remote file fetched so far (shared by every open of that URL)."""

    def __init__(
        self,
        url: str,
        session: requests.Session,
        *,
        timeout: float,
        traffic: Traffic | None = None,
    ) -> None:
        self.url = url
        self._session = session
        self._timeout = timeout
        self._traffic = traffic
        self._size: int | None = None
        self._blocks: dict[int, bytes] = {}
        self._lock = threading.Lock()

    @property
    def length(self) -> int:
        """The file's size in bytes (known from the first range response)."""
        if self._size is None:
            self.fetch(0, 0)
        assert self._size is not None
        return self._size

    def fetch(self, first: int, last: int) -> dict[int, bytes]:
        """Blocks ``first`` to ``last``; each run of missing ones is one range request."""
        with self._lock:
            missing = [i for i in range(first, last + 1) if i not in self._blocks]
            if self._size is not None:
                missing = [i for i in missing if i * BLOCK < self._size]
            runs: list[list[int]] = []
            for i in missing:
                if runs and runs[-1][-1] == i - 1:
                    runs[-1].append(i)
                else:
                    runs.append([i])
            for run in runs:
                self._get(run[0], run[-1])
            return {i: self._blocks.get(i, b"") for i in range(first, last + 1)}

    def _get(self, first: int, last: int) -> None:
        start, stop = first * BLOCK, (last + 1) * BLOCK - 1
        response = self._session.get(
            self.url, headers={"Range": f"bytes={start}-{stop}"}, timeout=self._timeout
        )
        if response.status_code == 416:  # past the end
            data = b""
        else:
            response.raise_for_status()
            data = response.content
        if self._traffic is not None:
            self._traffic.add(len(data))
        if response.status_code == 200:  # the server ignored the range: the whole file
            start = 0
            self._size = len(data)
        elif self._size is None:
            total = response.headers.get("Content-Range", "").rpartition("/")[2]
            self._size = int(total) if total.isdigit() else start + len(data)
        for k in range(0, len(data), BLOCK):
            self._blocks[(start + k) // BLOCK] = data[k : k + BLOCK]
        for i in range(first, last + 1):
            self._blocks.setdefault(i, b"")

    def open(self) -> RangeFile:
        return RangeFile(self)


class RangeFile(io.RawIOBase):
    """A read-only, seekable view of a remote file; bytes come from ``RemoteBlocks``."""

    def __init__(self, blocks: RemoteBlocks) -> None:
        super().__init__()
        self._remote = blocks
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            self._pos = offset
        elif whence == io.SEEK_CUR:
            self._pos += offset
        elif whence == io.SEEK_END:
            self._pos = self._remote.length + offset
        else:
            raise ValueError(f"bad whence {whence}")
        return self._pos

    def read(self, size: int | None = -1) -> bytes:
        total = self._remote.length
        end = total if size is None or size < 0 else min(self._pos + size, total)
        if end <= self._pos:
            return b""
        blocks = self._remote.fetch(self._pos // BLOCK, (end - 1) // BLOCK)
        out = bytearray()
        while self._pos < end:
            index, offset = divmod(self._pos, BLOCK)
            block = blocks[index]
            if offset >= len(block):
                break
            chunk = block[offset : offset + (end - self._pos)]
            out += chunk
            self._pos += len(chunk)
        return bytes(out)

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def, override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)
