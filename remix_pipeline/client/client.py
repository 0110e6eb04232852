"""VideosClient: the async client every part of the product uses to talk to a Videos API server.

It owns the rules that protect users' money and data: a POST that may have started a paid
job is never repeated (OutcomeUnknownError hands the question to the ledger), ids are checked
before they enter a URL, every request passes the shared rate limiter, response bodies are
size-capped, and downloads only ever appear complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Generator,
    Mapping,
    Sequence,
)
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from remix_pipeline.client.bulk import LIST_UNAVAILABLE, ROUTE_MISSING
from remix_pipeline.client.bulk import stream_status as _stream_status
from remix_pipeline.client.deviations import (
    Deviation,
    DeviationLog,
    needs_no_normalising,
    normalise_list,
    normalise_video,
)
from remix_pipeline.client.download import DownloadResult, stream_to_file
from remix_pipeline.client.errors import (
    APIStatusError,
    ConnectionFailedError,
    ContractViolationError,
    InvalidArgumentError,
    InvalidVideoIdError,
    ListUnavailableError,
    OutcomeUnknownError,
    RequestTimeoutError,
    ResponseTooLargeError,
    VideosAPIError,
)
from remix_pipeline.client.gateways import gateway_of, same_video
from remix_pipeline.client.limiter import RateLimiter, shared_limiter
from remix_pipeline.client.profile import ServerProfile, shared_profile
from remix_pipeline.client.responses import (
    parse_as_sent,
    parse_model,
    read_capped,
    status_error,
)
from remix_pipeline.client.retry import (
    RetryPolicy,
    server_delay,
    status_is_retryable,
    transport_error_is_retryable,
)
from remix_pipeline.client.settings import ClientSettings
from remix_pipeline.client.stats import ClientStats
from remix_pipeline.contract import (
    PROMPT_MAX_CHARS,
    ContentVariant,
    DeletedVideo,
    Order,
    Video,
    VideoList,
    validate_id,
)
from remix_pipeline.version import __version__

if TYPE_CHECKING:
    from remix_pipeline.service.config import ServiceConfig

BASE_URL_ENV = "OPENAI_BASE_URL"
EMBEDDED_BASE_URL = "http://embedded/v1"
EMBEDDED_SERVER = "embedded"

ResultT = TypeVar("ResultT")
ModelT = TypeVar("ModelT", bound=BaseModel)
OnSuccess = Callable[[httpx.Response], Awaitable[ResultT]]

KEEPALIVE_EXPIRY_SECONDS = 3.0


class _BearerAuth(httpx.Auth):
    """Adds the key to each request; holds it where no repr or log line reaches it."""

    __slots__ = ("_header",)

    def __init__(self, key: str) -> None:
        self._header = f"Bearer {key}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request

    def __repr__(self) -> str:
        return "_BearerAuth(<hidden>)"


class _PostContext:
    """What the caller needs to find a job whose creation response was lost."""

    __slots__ = ("prompt", "source_video_id")

    def __init__(self, source_video_id: str | None, prompt: str) -> None:
        self.source_video_id = source_video_id
        self.prompt = prompt


class _UnexpectedJob(ContractViolationError):
    """A paid POST answered with a job that breaks the contract; its id is still known."""

    def __init__(self, message: str, *, job_id: str) -> None:
        super().__init__(message)
        self.job_id = job_id


class VideosClient:
    """Async client for one Videos API server; share one instance among coroutines."""

    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        settings: ClientSettings,
        base_url: str,
        limiter: RateLimiter,
        profile: ServerProfile | None = None,
    ) -> None:
        self._http = http
        self._settings = settings
        self._limiter = limiter
        self._retry = RetryPolicy(
            max_attempts=settings.max_attempts,
            max_retry_seconds=settings.max_retry_seconds,
            base_seconds=settings.backoff_base_seconds,
            max_backoff_seconds=settings.backoff_max_seconds,
        )
        self.base_url = base_url
        self.stats = ClientStats()
        self.deviations = DeviationLog(base_url)
        self.profile = profile or ServerProfile()

    @classmethod
    def from_settings(
        cls,
        settings: ClientSettings,
        *,
        embedded: ServiceConfig | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> VideosClient:
        """Build a client: settings.base_url, else $OPENAI_BASE_URL, else the embedded service.

        `EMBEDDED_BASE_URL` as the base URL names the embedded service explicitly, so that a
        caller that has already resolved the server is never second-guessed by the variable.
        """
        url = settings.base_url or os.environ.get(BASE_URL_ENV) or None
        key = os.environ.get(settings.api_key_env) or None
        # What is learned about a server is shared by the process's clients of it; a client
        # on a transport of its own (a test's) learns alone.
        profile = ServerProfile() if transport is not None else None
        if url is None or url.rstrip("/") == EMBEDDED_BASE_URL:
            url = EMBEDDED_BASE_URL
            if transport is None:
                from remix_pipeline.service import default_service_config, embedded_transport

                config = embedded or default_service_config()
                transport = embedded_transport(config)
                key = key or config.api_key
                limiter_key = f"embedded:{config.db_path.resolve()}"
            else:
                limiter_key = f"{url}#transport-{id(transport)}"
        else:
            limiter_key = _display_url(url)
        base_url = _check_base_url(url)
        limiter = shared_limiter(
            limiter_key,
            requests=settings.requests_per_minute,
            window_seconds=settings.rate_window_seconds,
            max_in_flight=settings.max_in_flight,
        )
        http = httpx.AsyncClient(
            base_url=base_url,
            transport=transport,
            auth=_BearerAuth(key) if key else None,
            timeout=httpx.Timeout(
                settings.timeout_seconds,
                connect=min(settings.connect_timeout_seconds, settings.timeout_seconds),
            ),
            limits=httpx.Limits(
                max_connections=settings.max_in_flight,
                max_keepalive_connections=settings.max_in_flight,
                # Below uvicorn's 5 s keep-alive: a connection the server is closing must not
                # carry a paid POST, whose lost answer would be an outcome to resolve.
                keepalive_expiry=KEEPALIVE_EXPIRY_SECONDS,
            ),
            follow_redirects=True,
            headers={"User-Agent": f"remix-pipeline/{__version__}"},
        )
        return cls(
            http=http,
            settings=settings,
            base_url=_display_url(base_url),
            limiter=limiter,
            profile=profile or shared_profile(limiter_key),
        )

    def __repr__(self) -> str:
        return f"VideosClient(base_url={self.base_url!r})"

    @property
    def server_label(self) -> str:
        """The server as recorded and shown: its URL without credentials, or "embedded"."""
        return server_label(self.base_url)

    @property
    def settings(self) -> ClientSettings:
        """The settings the client was built with (they name the key's variable, never a key)."""
        return self._settings

    async def __aenter__(self) -> VideosClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # Operations ---------------------------------------------------------------------------

    async def remix(self, video_id: str, prompt: str) -> Video:
        video_id = _checked_id(video_id)
        prompt = _checked_prompt(prompt)
        body = self._derivation_body({"prompt": prompt})
        return await self._call(
            "remix",
            "POST",
            f"videos/{_path_id(video_id)}/remix",
            json=body,
            on_success=self._derived_from(video_id),
            post=_PostContext(video_id, prompt),
        )

    async def learn_server(self) -> ServerProfile:
        """What the server is (a gateway or not), asked once per process and server with a
        request that can start no job; the answer shapes the bodies of paid requests."""
        if not self.profile.answered:
            # On failure the profile stays unknown: requests are then sent as the contract says.
            with contextlib.suppress(VideosAPIError):
                await self.supports_remix()
        return self.profile

    def _derivation_body(self, body: dict[str, Any]) -> dict[str, Any]:
        """The body as this server needs it: call `learn_server` first, before paid calls."""
        if self.profile.sends_model_on_derivations:
            return {**body, "model": self._settings.gateway_model}
        return body

    def _derived_from(self, source_id: str) -> OnSuccess[Video]:
        parse = self._model(Video)

        async def parse_derived(response: httpx.Response) -> Video:
            # A job naming another source is not the one asked for. It was paid for all the
            # same, so its id travels with the error and the job is recorded, not lost.
            video = await parse(response)
            source = video.remixed_from_video_id
            if source is not None and not same_video(source, source_id):
                raise _UnexpectedJob(
                    f"asked to derive a video from {source_id[:80]!r}, the server answered "
                    f"with one derived from {source[:80]!r}",
                    job_id=video.id,
                )
            return video

        return parse_derived

    async def supports_remix(self) -> bool:
        """Whether the server has `POST /videos/{id}/remix`, asked without starting a job.

        The probe names no real video and sends no prompt, so no server can start a paid job
        from it: a server with remix refuses the body (400/422) or the unknown source (404
        naming `video_id`); one without the route answers 404, 405 or 501 for the URL itself.
        """

        async def accepted(response: httpx.Response) -> bool:
            return True

        try:
            return await self._call(
                "remix_probe",
                "POST",
                f"videos/{REMIX_PROBE_ID}/remix",
                json={},
                on_success=accepted,
            )
        except APIStatusError as error:
            if error.status_code in (400, 422):
                return True
            if error.status_code == 404 and error.param == "video_id":
                return True
            if error.status_code in ROUTE_MISSING:
                return False
            raise

    async def create(
        self,
        prompt: str,
        *,
        model: str | None = None,
        size: str | None = None,
        seconds: str | None = None,
        input_reference: str | Path | None = None,
        characters: Sequence[str] = (),
    ) -> Video:
        """Create a video job, sent as multipart like the official SDK (servers expect it).

        `input_reference` is an image file (a `Path`, uploaded as a file part) or an image
        URL (a `str`, sent as `input_reference[image_url]`). `characters` (ids) go as JSON
        `characters: [{"id": ...}]`, the guide's shape, which has no multipart form.
        """
        prompt = _checked_prompt(prompt)
        fields = {"prompt": prompt, "model": model, "size": size, "seconds": seconds}
        for name, value in fields.items():
            if value is not None and (not isinstance(value, str) or not value):
                raise InvalidArgumentError(f"{name} must be a non-empty string")
        given = {name: value for name, value in fields.items() if value is not None}
        post = _PostContext(None, prompt)
        if characters:
            if isinstance(input_reference, Path):
                raise InvalidArgumentError("characters cannot go with an uploaded image")
            body: dict[str, Any] = {**given, "characters": [{"id": c} for c in characters]}
            if input_reference is not None:
                body["input_reference"] = {"image_url": str(input_reference)}
            return await self._call(
                "create", "POST", "videos", json=body, on_success=self._model(Video), post=post
            )
        parts: dict[str, Any] = {name: (None, value) for name, value in given.items()}
        if isinstance(input_reference, Path):
            parts["input_reference"] = _file_part(input_reference)
        elif input_reference is not None:
            parts["input_reference[image_url]"] = (None, str(input_reference))
        return await self._call(
            "create", "POST", "videos", files=parts, on_success=self._model(Video), post=post
        )

    async def edit(self, video: str | Path, prompt: str, *, model: str | None = None) -> Video:
        """Edit a video: a stored one by id (JSON `video: {id}`), or footage uploaded from a
        local file (`Path`, multipart with a `video` file part; `model` only then)."""
        return await self._derive("edit", "videos/edits", video, prompt, model=model)

    async def extend(
        self, video: str | Path, prompt: str, seconds: str, *, model: str | None = None
    ) -> Video:
        """Extend a video by `seconds` (the length to add; the answer's `seconds` is the
        stitched total): a stored one by id, or footage uploaded from a local file."""
        if not isinstance(seconds, str) or not seconds:
            raise InvalidArgumentError("seconds must be a non-empty string such as '8'")
        return await self._derive(
            "extend", "videos/extensions", video, prompt, model=model, seconds=seconds
        )

    async def _derive(
        self,
        operation: str,
        path: str,
        video: str | Path,
        prompt: str,
        *,
        model: str | None,
        seconds: str | None = None,
    ) -> Video:
        prompt = _checked_prompt(prompt)
        extra = {} if seconds is None else {"seconds": seconds}
        if isinstance(video, Path):
            if model is not None and (not isinstance(model, str) or not model):
                raise InvalidArgumentError("model must be a non-empty string")
            parts: dict[str, Any] = {"prompt": (None, prompt), "video": _file_part(video)}
            parts.update({name: (None, value) for name, value in extra.items()})
            if model is not None:
                parts["model"] = (None, model)
            return await self._call(
                operation,
                "POST",
                path,
                files=parts,
                on_success=self._model(Video),
                post=_PostContext(None, prompt),
            )
        if model is not None:
            raise InvalidArgumentError(
                f"model can be given to {operation} only with an uploaded video; "
                "a stored video's own model is used"
            )
        video_id = _checked_id(video)
        body = self._derivation_body({"video": {"id": video_id}, "prompt": prompt, **extra})
        return await self._call(
            operation,
            "POST",
            path,
            json=body,
            on_success=self._derived_from(video_id),
            post=_PostContext(video_id, prompt),
        )

    async def retrieve(self, video_id: str) -> Video:
        # The answer's id is not compared with the one asked for: gateways such as LiteLLM
        # answer a raw id with their own encoding of it. The ledger refuses to store a job's
        # record under another job's id.
        video_id = _checked_id(video_id)
        return await self._call(
            "retrieve", "GET", f"videos/{_path_id(video_id)}", on_success=self._model(Video)
        )

    async def delete(self, video_id: str) -> DeletedVideo:
        video_id = _checked_id(video_id)
        return await self._call(
            "delete",
            "DELETE",
            f"videos/{_path_id(video_id)}",
            on_success=self._model(DeletedVideo),
        )

    def list(
        self, *, order: str = "desc", after: str | None = None, limit: int | None = None
    ) -> AsyncIterator[Video]:
        """Every video on the server, following pages; `limit` is the page size.

        Arguments are checked here, at the call, not at the first iteration.
        """
        checked_order = _checked_order(order)
        page_size = self._settings.list_page_size if limit is None else limit
        if (
            isinstance(page_size, bool)
            or not isinstance(page_size, int)
            or not 1 <= page_size <= 100
        ):
            raise InvalidArgumentError("limit must be an integer from 1 to 100")
        cursor = None if after is None else _checked_id(after, kind="after cursor")
        return self._pages(checked_order, cursor, page_size)

    async def _pages(
        self, order: str, cursor: str | None, page_size: int
    ) -> AsyncGenerator[Video, None]:
        seen: set[str] = set()
        first_ids: set[str] = set()
        while True:
            page = await self._list_page(order=order, after=cursor, limit=page_size)
            if page.data and page.data[0].id in first_ids:
                # The same page again: the server (a gateway that drops the query) ignores
                # `after`, so every page is the first one. What it holds has been read.
                self._note_cursor_ignored()
                return
            first_ids.update(video.id for video in page.data[:1])
            for video in page.data:
                yield video
            if not page.has_more or not page.data:
                return
            cursor = page.last_id or page.data[-1].id
            if cursor in seen:
                self._note_cursor_ignored()
                return
            seen.add(cursor)

    def _note_cursor_ignored(self) -> None:
        self.profile.list_ignores_cursor = True
        self.deviations.note(Deviation.LIST_IGNORES_CURSOR, "the same page after 'after'")

    async def download(
        self, video_id: str, variant: ContentVariant | str, target: Path
    ) -> DownloadResult:
        """Stream one media variant to `target`, which appears only when complete."""
        video_id = _checked_id(video_id)
        try:
            chosen = ContentVariant(variant)
        except ValueError:
            choices = ", ".join(v.value for v in ContentVariant)
            raise InvalidArgumentError(
                f"variant {str(variant)[:40]!r} is not one of {choices}"
            ) from None
        target = Path(target)

        async def save(response: httpx.Response) -> DownloadResult:
            return await stream_to_file(response, target, chosen)

        return await self._call(
            "download",
            "GET",
            f"videos/{_path_id(video_id)}/content",
            params={"variant": chosen.value},
            headers={"Accept": "application/binary"},
            on_success=save,
        )

    async def bulk_status(
        self, video_ids: Collection[str], *, created_after: float | None = None
    ) -> dict[str, Video]:
        """Current state of many jobs; ids the server does not know are absent from the result.

        `created_after` (unix seconds, e.g. the earliest submission time of the wanted jobs)
        lets listing stop once pages reach older jobs.
        """
        found: dict[str, Video] = {}
        async for part in self.stream_status(video_ids, created_after=created_after):
            found.update(part)
        return found

    def stream_status(
        self,
        video_ids: Collection[str],
        *,
        created_after: float | None = None,
        newest_first: bool = False,
    ) -> AsyncIterator[dict[str, Video]]:
        """`bulk_status` a list page (or a chunk of retrievals) at a time, for a caller that
        watches more jobs than it wants to hold records of at once. Ids given `newest_first`
        (in the server's list order) let the listing be read in several places at once."""
        if isinstance(video_ids, str):
            raise InvalidArgumentError("video_ids must be a collection of ids, not one string")
        wanted = [_checked_id(video_id) for video_id in video_ids]
        settings = self._settings

        async def fetch_page(after: str | None) -> VideoList:
            return await self._list_page(
                order=Order.DESC.value, after=after, limit=settings.list_page_size
            )

        return _stream_status(
            wanted,
            fetch_page=None if self.profile.list_unavailable else fetch_page,
            retrieve=self.retrieve,
            page_size=settings.list_page_size,
            extra_pages=settings.bulk_extra_pages,
            concurrency=settings.bulk_retrieve_concurrency,
            created_after=created_after,
            newest_first=newest_first,
            segments=settings.list_concurrency,
        )

    # Machinery ----------------------------------------------------------------------------

    async def _list_page(self, *, order: str, after: str | None, limit: int) -> VideoList:
        """One page; `ListUnavailableError` once the server has shown it cannot list."""
        if self.profile.list_unavailable:
            raise ListUnavailableError(f"{self.base_url} cannot list its videos")
        params: dict[str, str | int] = {"order": order, "limit": limit}
        if after is not None:
            params["after"] = _checked_id(after, kind="after cursor")
        try:
            return await self._call(
                "list", "GET", "videos", params=params, on_success=self._model(VideoList)
            )
        except APIStatusError as error:
            # A request this plain is refused only by a server that has no usable list
            # (LiteLLM without a default model answers 400 "LLM Provider NOT provided");
            # a refused cursor says nothing of the list, only of the cursor.
            if after is not None or error.status_code not in LIST_UNAVAILABLE:
                raise
            self.profile.list_unavailable = True
            self.deviations.note(Deviation.NO_LIST, f"HTTP {error.status_code}: {error.message}")
            raise ListUnavailableError(
                f"{self.base_url} cannot list its videos (HTTP {error.status_code})"
            ) from None

    def _model(self, model: type[ModelT]) -> OnSuccess[ModelT]:
        cap = self._settings.max_json_bytes

        prepare = _NORMALISERS.get(model)
        log = self.deviations

        async def parse(response: httpx.Response) -> ModelT:
            body = await read_capped(response, cap)
            if prepare is None:
                return parse_model(model, body)
            if not log.reshapes:
                parsed = parse_as_sent(model, body)
                if parsed is not None and needs_no_normalising(parsed):
                    return parsed
            return parse_model(model, body, lambda data: prepare(data, log))

        return parse

    async def _call(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        on_success: OnSuccess[ResultT],
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        files: Mapping[str, tuple[str | None, Any] | tuple[str, bytes, str]] | None = None,
        post: _PostContext | None = None,
    ) -> ResultT:
        """Send one operation, retrying only where a repeat cannot start a second job."""
        safe = post is None
        budget = self._retry.start()
        while True:
            request = self._http.build_request(
                method, path, params=params, headers=headers, json=json, files=files
            )
            sent_at = time.time()
            try:
                async with self._limiter.slot():
                    self.stats.requests[operation] += 1
                    sent_at = time.time()
                    response = await self._http.send(request, stream=True)
                    self._observe(response)
                    try:
                        if response.is_success:
                            try:
                                return await on_success(response)
                            except (ContractViolationError, ResponseTooLargeError) as error:
                                self.stats.malformed += 1
                                if post is not None:
                                    raise self._unknown(
                                        operation,
                                        post,
                                        sent_at,
                                        error,
                                        job_id=getattr(error, "job_id", None),
                                    ) from None
                                if isinstance(error, ResponseTooLargeError):
                                    raise
                                malformed = error
                        else:
                            body = await read_capped(response, self._settings.max_json_bytes)
                    finally:
                        await response.aclose()
                retry_error: VideosAPIError
                if response.is_success:
                    # A garbled answer to a safe request is asked for again, as a 5xx would
                    # be; one that stays garbled is the error.
                    retry_error = malformed
                    delay = budget.next_delay(None)
                else:
                    retry_error = self._status_failure(response, body, operation, post, sent_at)
                    delay = budget.next_delay(server_delay(response.headers))
                if delay is None:
                    raise retry_error
            except httpx.RequestError as failure:
                self.stats.transport_errors += 1
                if not transport_error_is_retryable(failure, safe_to_repeat=safe):
                    assert post is not None
                    raise self._unknown(operation, post, sent_at, failure) from None
                delay = budget.next_delay(None)
                if delay is None:
                    raise _transport_failure(operation, failure, budget.attempts) from None
            self.stats.retries += 1
            await asyncio.sleep(delay)

    def _observe(self, response: httpx.Response) -> None:
        self.profile.answered = True
        headers = response.headers
        self.profile.poll_after_seen |= "openai-poll-after-ms" in headers
        self.profile.retry_headers_seen.update(
            name for name in headers if name.endswith(("retry-after", "retry-after-ms"))
        )
        gateway = gateway_of(response.headers)
        if gateway is not None and self.profile.gateway is None:
            self.profile.gateway = gateway
            self.deviations.note(Deviation.GATEWAY, gateway.value)

    def _status_failure(
        self,
        response: httpx.Response,
        body: bytes,
        operation: str,
        post: _PostContext | None,
        sent_at: float,
    ) -> APIStatusError:
        """The error for a failed status; raises it when no retry may follow."""
        error = status_error(response, body)
        if response.status_code == 429:
            self.stats.rate_limited += 1
        if response.status_code >= 500:
            self.stats.server_errors += 1
        if not response.is_error:
            raise ContractViolationError(
                f"{operation}: unexpected HTTP {response.status_code} without a body to use"
            )
        retryable = status_is_retryable(response.status_code, safe_to_repeat=post is None)
        if response.headers.get("x-should-retry", "").lower() == "false":
            retryable = False
        if post is not None and response.status_code >= 500:
            raise self._unknown(operation, post, sent_at, error)
        if not retryable:
            raise error
        return error

    def _unknown(
        self,
        operation: str,
        post: _PostContext,
        sent_at: float,
        cause: BaseException,
        *,
        job_id: str | None = None,
    ) -> OutcomeUnknownError:
        self.stats.outcome_unknown += 1
        return OutcomeUnknownError(
            operation=operation,
            source_video_id=post.source_video_id,
            prompt=post.prompt,
            sent_at=sent_at,
            cause=cause,
            job_id=job_id,
        )


REMIX_PROBE_ID = "video_remix_pipeline_capability_probe"
_NORMALISERS: dict[type[BaseModel], Callable[[Any, DeviationLog], Any]] = {
    Video: normalise_video,
    VideoList: normalise_list,
}


_IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
}
_VIDEO_TYPES = {".mp4": "video/mp4", ".mov": "video/quicktime", ".webm": "video/webm"}


def _file_part(path: Path) -> tuple[str, bytes, str]:
    """A file as a multipart part: a part is a file to servers only when it has a filename."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InvalidArgumentError(f"cannot read {Path(path).name!r}: {exc.strerror}") from None
    suffix = Path(path).suffix.lower()
    kind = _IMAGE_TYPES.get(suffix) or _VIDEO_TYPES.get(suffix) or "application/octet-stream"
    return (Path(path).name, data, kind)


def _transport_failure(
    operation: str, failure: httpx.RequestError, attempts: int
) -> RequestTimeoutError | ConnectionFailedError:
    kind = (
        RequestTimeoutError
        if isinstance(failure, httpx.TimeoutException)
        else ConnectionFailedError
    )
    detail = str(failure) or type(failure).__name__
    return kind(f"{operation} failed after {attempts} attempt(s): {detail[:200]}")


def _checked_id(value: object, *, kind: str = "video id") -> str:
    return validate_id(value, kind=kind, error=InvalidVideoIdError)


def _path_id(video_id: str) -> str:
    """An already checked id as one path segment: a gateway's `=` padding is escaped."""
    return quote(video_id, safe="")


def _checked_prompt(prompt: object) -> str:
    if not isinstance(prompt, str) or not prompt.strip():
        raise InvalidArgumentError("prompt must be a non-empty string")
    if len(prompt) > PROMPT_MAX_CHARS:
        raise InvalidArgumentError(
            f"prompt is {len(prompt)} characters long (at most {PROMPT_MAX_CHARS})"
        )
    return prompt


def _checked_order(order: object) -> str:
    try:
        return Order(order).value
    except ValueError:
        raise InvalidArgumentError(
            f"order must be 'asc' or 'desc', got {str(order)[:20]!r}"
        ) from None


def _check_base_url(url: str) -> str:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        raise InvalidArgumentError("base URL is not a valid URL") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise InvalidArgumentError(
            "base URL must start with http:// or https:// and name a host, "
            f"got {_display_url(url)!r}"
        )
    return url.rstrip("/") + "/"


def server_label(base_url: str) -> str:
    """A base URL as recorded and shown: without credentials or query, or "embedded"."""
    shown = _display_url(base_url)
    return EMBEDDED_SERVER if shown == EMBEDDED_BASE_URL else shown


def _display_url(url: str) -> str:
    """The URL without user info or query, which may hold credentials."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return "<invalid URL>"
    return str(parsed.copy_with(userinfo=b"", query=None, fragment=None)).rstrip("/")
