"""A job's media made while the job runs, as a real server makes its video, not on download.

Rendered on the first download, a completed video's content took the render's time to
arrive, and a batch of downloads waited on the server's renders one after another (in the
sample run, most of the media step). A real server's content endpoint serves a file it made
while the job was in progress.

One daemon thread per process renders each scheduled job when it falls due, a little before
the job ends, so a long job costs nothing until then and the renders of a listing's 100,000
hour-long jobs do not compete with the listing. A download that arrives first renders on
demand as before; whichever comes second waits for the first (`claim`), so no video is
rendered twice at once, and a finished render is reused.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

# How long before a job's end its render starts. A render at the default scale takes a tenth
# of a second; at full size about a second. Jobs shorter than this render as they start.
RENDER_LEAD_SECONDS = 10.0

logger = logging.getLogger(__name__)


class RenderAhead:
    """Its own renders run one at a time, each at the monotonic time it is due; downloads
    render on their own threads and `claim` like it."""

    def __init__(self) -> None:
        self._due: list[tuple[float, int, str, Callable[[], object]]] = []
        self._order = itertools.count()
        self._running: dict[str, Future[None]] = {}
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def schedule(self, video_id: str, delay: float, render: Callable[[], object]) -> None:
        """Call `render` in `delay` seconds (at once if not positive), on the worker thread."""
        with self._wake:
            entry = (time.monotonic() + max(0.0, delay), next(self._order), video_id, render)
            heapq.heappush(self._due, entry)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._work, name="remix-render-ahead", daemon=True
                )
                self._thread.start()
            self._wake.notify()

    def claim(self, video_id: str) -> tuple[Future[None], bool]:
        """Who renders `video_id` now: the render already under way (False: wait for it, then
        reuse its files), or a new one the caller owns (True: render, then `release` it).
        Downloads and this worker both claim, so no video is rendered twice at once."""
        with self._wake:
            running = self._running.get(video_id)
            if running is not None:
                return running, False
            claimed: Future[None] = Future()
            self._running[video_id] = claimed
            return claimed, True

    def release(self, video_id: str, claimed: Future[None]) -> None:
        """End a claimed render (however it went); whoever waited for it goes on."""
        with self._wake:
            if self._running.get(video_id) is claimed:
                del self._running[video_id]
        claimed.set_result(None)

    def _work(self) -> None:
        while True:
            with self._wake:
                while not self._due or self._due[0][0] > time.monotonic():
                    self._wake.wait(self._due[0][0] - time.monotonic() if self._due else None)
                _, _, video_id, render = heapq.heappop(self._due)
            claimed, mine = self.claim(video_id)
            if not mine:
                continue  # a download is rendering it
            try:
                render()
            except Exception:
                # The download renders again and answers with what went wrong.
                logger.debug("render ahead of %s failed", video_id, exc_info=True)
            finally:
                self.release(video_id, claimed)


_shared: RenderAhead | None = None
_shared_lock = threading.Lock()


def shared_render_ahead() -> RenderAhead:
    """The process's one worker: every app instance of the embedded service (a client builds
    one each) schedules on it, so no app leaves a thread behind."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = RenderAhead()
        return _shared
