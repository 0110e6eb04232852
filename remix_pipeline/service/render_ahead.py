"""A job's media made while the job runs, as a real server makes its video, not on download.

Rendered on the first download, a completed video's content took the render's time to
arrive, and a batch of downloads waited on the server's renders one after another (in the
sample run, most of the media step). A real server's content endpoint serves a file it made
while the job was in progress.

One daemon thread per process renders each scheduled job when it falls due, a little before
the job ends, so a long job costs nothing until then and the renders of a listing's 100,000
hour-long jobs do not compete with the listing. A download that arrives first renders on
demand as before (a render is safe to run twice at once and skips a finished one); one that
arrives during this render waits for it rather than starting another.
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
    """Renders run one at a time, each at the monotonic time it is due."""

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

    def rendering(self, video_id: str) -> Future[None] | None:
        """The render of `video_id` under way now, if there is one."""
        with self._wake:
            return self._running.get(video_id)

    def _work(self) -> None:
        while True:
            with self._wake:
                while not self._due or self._due[0][0] > time.monotonic():
                    self._wake.wait(self._due[0][0] - time.monotonic() if self._due else None)
                _, _, video_id, render = heapq.heappop(self._due)
                done: Future[None] = Future()
                self._running[video_id] = done
            try:
                render()
            except Exception:
                # The download renders again and answers with what went wrong.
                logger.debug("render ahead of %s failed", video_id, exc_info=True)
            finally:
                with self._wake:
                    del self._running[video_id]
                done.set_result(None)


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
