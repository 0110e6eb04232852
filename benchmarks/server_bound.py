"""The server-bound limit: the embedded service's own time to accept N jobs, let them run and
serve every media file, measured with a client that does nothing else.

"Nothing else" means:
- raw HTTP/1.1 over asyncio streams on a few keep-alive connections: no HTTP library, no
  JSON parsing beyond finding the new job's id, no validation of any answer;
- no status requests at all: the client is told the server's job duration (an oracle no real
  client has) and asks for a job's media the moment the job must have ended; an early ask is
  answered 400 (not ready) and is retried 50 ms later (the rows count the retries);
- media bodies are read off the socket and dropped, never written to disk;
- submissions before downloads: a ready download waits while a submission is left, which
  makes the last job start, and so end, as early as the server allows.

So no real client can end sooner than this, and the pipeline's and the floor's distance from
it is what their own work costs on top of the server's.
"""

from __future__ import annotations

import asyncio
import heapq
import json
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from benchmarks.variants import MEDIA, Variant

CONNECTIONS = 8
RETRY_SECONDS = 0.05


@dataclass(frozen=True)
class LimitOutcome:
    completed: int
    failed: int
    seconds: float
    early_asks: int


class _Connection:
    """One keep-alive HTTP/1.1 connection; one request at a time."""

    def __init__(self, host: str, port: int, prefix: str) -> None:
        self.host, self.port, self.prefix = host, port, prefix
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        head = f"{method} {self.prefix}{path} HTTP/1.1\r\nHost: {self.host}\r\n"
        if body:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        message = head.encode() + b"\r\n" + body
        # The server closes a connection idle for its keep-alive timeout (uvicorn: 5 s); a
        # request sent on one it has closed reads nothing and is sent again on a new one.
        for _ in range(2):
            if self._writer is None:
                self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
            assert self._reader is not None
            self._writer.write(message)
            try:
                first = await self._reader.readline()
            except ConnectionError:
                first = b""
            if first:
                break
            await self.close()
        else:
            raise ConnectionError(f"{method} {path}: the server closed the connection twice")
        status = int(first.split()[1])
        length = 0
        close = False
        while (line := await self._reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        payload = await self._reader.readexactly(length)
        if close:
            await self.close()
        return status, payload

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            self._reader = None


async def _limit(url: str, rows: list[Variant], job_seconds: float) -> tuple[int, int, int]:
    parts = urlsplit(url)
    prefix = parts.path.rstrip("/") + "/"
    # (not before, order, kind, argument): submissions are due at 0, before any download.
    due: list[tuple[float, int, str, str]] = [
        (0.0, i, "remix", json.dumps({"prompt": row.prompt}) + "\0" + row.source_video_id)
        for i, row in enumerate(rows)
    ]
    heapq.heapify(due)
    counts = {"completed": 0, "failed": 0, "early": 0, "outstanding": len(rows)}
    order = len(rows)

    async def worker() -> None:
        nonlocal order
        connection = _Connection(parts.hostname or "127.0.0.1", parts.port or 80, prefix)
        try:
            while counts["outstanding"]:
                if not due:
                    await asyncio.sleep(RETRY_SECONDS)
                    continue
                wait = due[0][0] - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(min(wait, RETRY_SECONDS))
                    continue
                _, _, kind, argument = heapq.heappop(due)
                if kind == "remix":
                    body, _, source = argument.partition("\0")
                    status, payload = await connection.request(
                        "POST", f"videos/{source}/remix", body.encode()
                    )
                    if status != 200:
                        raise RuntimeError(f"remix answered {status}: {payload[:200]!r}")
                    video_id = json.loads(payload)["id"]
                    order += 1
                    heapq.heappush(due, (time.monotonic() + job_seconds, order, "media", video_id))
                    continue
                for variant in MEDIA:
                    status, _ = await connection.request(
                        "GET", f"videos/{argument}/content?variant={variant.value}"
                    )
                    if status != 200:
                        break
                if status == 400:  # not ready yet: ask again shortly
                    counts["early"] += 1
                    order += 1
                    heapq.heappush(due, (time.monotonic() + RETRY_SECONDS, order, kind, argument))
                    continue
                counts["completed" if status == 200 else "failed"] += 1
                counts["outstanding"] -= 1
        finally:
            await connection.close()

    await asyncio.gather(*(worker() for _ in range(CONNECTIONS)))
    return counts["completed"], counts["failed"], counts["early"]


def server_bound(url: str, rows: list[Variant], out_dir: Path, job_seconds: float) -> LimitOutcome:
    """Accept, run and serve `rows` as fast as the server allows (`out_dir` is unused: the
    media are dropped)."""
    del out_dir
    started = time.perf_counter()
    completed, failed, early = asyncio.run(_limit(url, rows, job_seconds))
    return LimitOutcome(completed, failed, time.perf_counter() - started, early)
