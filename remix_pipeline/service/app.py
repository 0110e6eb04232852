"""The embedded Videos API as a Starlette app: every operation of the spec under `/v1`.

Starlette rather than FastAPI because every error, including a malformed request, must be an
OpenAI envelope rather than a framework-shaped 422.

Choices where the contract is silent:

- `GET /videos` defaults to `limit=20`, `order=desc` (newest first); an `after` id this
  server does not hold is a 400 naming `after`, never a silent restart or an empty page that
  a paginating client would take for data (docs/conformance.md argues it; a deleted
  video's id stays a valid cursor).
- Deleting a queued or in-progress job is a 400 (the spec only promises deletion of completed
  or failed videos). Deleted videos are gone from the store.
- Content of an unfinished job is a 400; of a failed job, or after `expires_at`, a 404.
- Remix, edit and extension need a `completed` source, inherit its model, size and motion,
  and record it in `remixed_from_video_id` (the one lineage field the Video has). An
  extension's `seconds` is the stitched total, at most 120.
- An edit or an extension may upload its source instead (a `video` file part, as the spec
  allows for both). `remixed_from_video_id` is then null, as there is no source video; the
  job keeps the upload's sha256, and `uploads` says which files are accepted and how the
  result derives from one (an extension's `seconds` is again the stitched total). `model` is
  accepted only with an upload (the guide: "If you upload a new video instead of editing an
  existing generation, set `model` explicitly"; with `video[id]` the model is the source's).
  Absent, it is `sora-2`, as for a create: the official SDKs' `edit()` and `extend()` have no
  `model` argument, so requiring one would refuse every SDK user who does not know to add it
  by `extra_body`.
- With `sdk_fixtures`, `video_123` and `char_123` exist and `video_123` comes back after a
  delete (`fixtures`).
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from remix_pipeline.contract import (
    DEFAULT_MODEL,
    DEFAULT_SECONDS,
    DEFAULT_SIZE,
    Allowed,
    ContentVariant,
    DeletedVideo,
    Order,
    VideoCharacter,
    VideoList,
    VideoStatus,
    allowed_values,
    dump_video,
    id_problem,
)
from remix_pipeline.service.bodies import Body, UploadedFile, read_body
from remix_pipeline.service.catalogue import load_catalogue, source_jobs
from remix_pipeline.service.config import ServiceConfig
from remix_pipeline.service.dialects import dialect_middleware
from remix_pipeline.service.errors import (
    ApiError,
    handle_api_error,
    handle_http_exception,
    invalid_request,
    not_found,
)
from remix_pipeline.service.faults import FaultInjector
from remix_pipeline.service.fields import (
    character_name_field,
    character_video_field,
    input_reference_field,
    model_field,
    prompt_field,
    reject_unknown,
    seconds_field,
    size_field,
    video_source_field,
)
from remix_pipeline.service.fixtures import (
    FIXTURE_VIDEO_ID,
    fixture_character,
    fixture_video,
)
from remix_pipeline.service.gateway import Gateway
from remix_pipeline.service.lifecycle import Timing, ends_at, is_expired, status_at, video_at
from remix_pipeline.service.records import (
    CharacterRecord,
    JobKind,
    JobRecord,
    motion_seed_for,
    new_character_id,
    new_video_id,
)
from remix_pipeline.service.render_ahead import (
    RENDER_LEAD_SECONDS,
    RenderAhead,
    shared_render_ahead,
)
from remix_pipeline.service.stats import ServiceStats
from remix_pipeline.service.store import JobStore, UnknownCursorError

if TYPE_CHECKING:
    from remix_pipeline.service.media import MediaSpec
    from remix_pipeline.service.uploads import VideoUpload

DEFAULT_LIST_LIMIT = 20
MAX_LIST_LIMIT = 100
DEFAULT_ORDER = Order.DESC
MAX_EXTENDED_SECONDS = 120


@dataclass
class ServiceState:
    """Everything a handler needs, shared by the routes of one app instance."""

    config: ServiceConfig
    store: JobStore
    faults: FaultInjector
    stats: ServiceStats
    clock: Callable[[], float]
    timing: Timing
    allowed: Allowed
    ahead: RenderAhead = field(default_factory=shared_render_ahead)

    async def insert(self, job: JobRecord) -> None:
        """Store a new job; one that will complete has its media made before it ends."""
        await run_in_threadpool(self.store.insert_video, job)
        if self.config.render_ahead and job.failure is None:
            delay = ends_at(job, self.timing) - RENDER_LEAD_SECONDS - self.clock()
            self.ahead.schedule(job.id, delay, lambda: self._render_if_kept(job.id))

    def _render_if_kept(self, video_id: str) -> None:
        """The render ahead, on the worker thread; a job deleted meanwhile leaves no files."""
        job = self.store.get_video(video_id)
        if job is not None:
            from remix_pipeline.service.media import render_media

            render_media(media_spec(self.config, job), self.config.media_cache_dir)

    def video_response(self, job: JobRecord) -> Response:
        video = video_at(job, self.clock(), self.timing)
        return JSONResponse(
            dump_video(video), headers={"openai-poll-after-ms": str(self.config.poll_after_ms)}
        )

    def is_fixture(self, video_id: str) -> bool:
        return self.config.sdk_fixtures and video_id == FIXTURE_VIDEO_ID

    async def job(self, video_id: str) -> JobRecord:
        problem = id_problem(video_id)
        found = None if problem else await run_in_threadpool(self.store.get_video, video_id)
        if found is None and self.is_fixture(video_id):
            found = await run_in_threadpool(self.store.restore_video, fixture_video(self.clock()))
        if found is None:
            raise not_found(f"No video found with id '{video_id[:128]}'.", param="video_id")
        return found

    async def completed_source(self, video_id: str, action: str, param: str) -> JobRecord:
        source = await self.job(video_id)
        status = status_at(source, self.clock(), self.timing)
        if status is not VideoStatus.COMPLETED:
            raise ApiError(
                400,
                f"Video '{video_id}' cannot be {action}: its status is '{status}'. "
                f"Only a completed video can be {action}.",
                param=param,
                code="invalid_video_status",
            )
        return source

    def derived_job(
        self, source: JobRecord, kind: JobKind, prompt: str, seconds: str | None = None
    ) -> JobRecord:
        return JobRecord(
            id=new_video_id(),
            kind=kind,
            model=source.model,
            prompt=prompt,
            size=source.size,
            seconds=seconds or source.seconds,
            created_at=self.clock(),
            remixed_from_video_id=source.id,
            failure=self.faults.outcome(prompt),
            motion_seed=source.motion_seed,
        )

    def uploaded_job(
        self,
        upload: VideoUpload,
        kind: JobKind,
        prompt: str,
        model: str,
        seconds: str | None = None,
    ) -> JobRecord:
        return JobRecord(
            id=new_video_id(),
            kind=kind,
            model=model,
            prompt=prompt,
            size=upload.size,
            seconds=seconds or upload.seconds,
            created_at=self.clock(),
            remixed_from_video_id=None,
            failure=self.faults.outcome(prompt),
            motion_seed=upload.motion_seed,
            upload_sha256=upload.sha256,
        )


def _state(request: Request) -> ServiceState:
    return request.app.state.service


async def create_video(request: Request) -> Response:
    state = _state(request)
    body = await read_body(request)
    reject_unknown(body, ("prompt", "model", "seconds", "size", "input_reference"))
    prompt = prompt_field(body)
    model = model_field(body, state.allowed, DEFAULT_MODEL)
    size = size_field(body, state.allowed, DEFAULT_SIZE)
    seconds = seconds_field(body, state.allowed, DEFAULT_SECONDS)
    input_reference_field(body)
    job = JobRecord(
        id=new_video_id(),
        kind=JobKind.CREATE,
        model=model,
        prompt=prompt,
        size=size,
        seconds=seconds,
        created_at=state.clock(),
        remixed_from_video_id=None,
        failure=state.faults.outcome(prompt),
        motion_seed=motion_seed_for(prompt),
    )
    await state.insert(job)
    return state.video_response(job)


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit")
    if raw is None:
        return DEFAULT_LIST_LIMIT
    try:
        value = int(raw)
    except ValueError:
        raise invalid_request(
            f"Invalid 'limit': expected an integer, but got '{raw[:40]}' instead.",
            param="limit",
            code="invalid_type",
        ) from None
    if not 0 <= value <= MAX_LIST_LIMIT:
        raise invalid_request(
            f"Invalid 'limit': expected an integer from 0 to {MAX_LIST_LIMIT}, but got {value}.",
            param="limit",
            code="invalid_value",
        )
    return value


_Choice = TypeVar("_Choice", bound=StrEnum)


def _choice(request: Request, name: str, choices: type[_Choice], default: _Choice) -> _Choice:
    """A query parameter that must be one of an enum's values, with the API's error when not."""
    raw = request.query_params.get(name, default.value)
    try:
        return choices(raw)
    except ValueError:
        quoted = [f"'{choice.value}'" for choice in choices]
        expected = f"{', '.join(quoted[:-1])} or {quoted[-1]}"
        raise invalid_request(
            f"Invalid '{name}': expected {expected}, but got '{raw[:40]}' instead.",
            param=name,
            code="invalid_value",
        ) from None


async def list_videos(request: Request) -> Response:
    state = _state(request)
    limit, order = _limit(request), _choice(request, "order", Order, DEFAULT_ORDER)
    after = request.query_params.get("after")
    if after is not None and id_problem(after) is not None:
        raise invalid_request(f"Invalid 'after': {id_problem(after)}.", param="after")
    try:
        jobs, has_more = await run_in_threadpool(
            lambda: state.store.list_videos(limit=limit, order=order, after=after)
        )
    except UnknownCursorError:
        raise invalid_request(
            f"Invalid 'after': no video with id '{after}' exists.", param="after"
        ) from None
    now = state.clock()
    # Each Video is validated as it is built; the page around them is only assembled, since
    # validating it would check the hundred Videos again (0.93 against 1.5 ms a page).
    page = VideoList.model_construct(
        data=[video_at(job, now, state.timing) for job in jobs],
        first_id=jobs[0].id if jobs else None,
        last_id=jobs[-1].id if jobs else None,
        has_more=has_more,
    )
    # Encoded by pydantic in one pass: a tick at 100,000 jobs asks for 1,000 pages, and a
    # dict per video through json.dumps cost the server 2 of its 4.5 s in such a listing.
    return Response(page.model_dump_json(), media_type="application/json")


async def retrieve_video(request: Request) -> Response:
    state = _state(request)
    return state.video_response(await state.job(request.path_params["video_id"]))


async def delete_video(request: Request) -> Response:
    state = _state(request)
    job = await state.job(request.path_params["video_id"])
    status = status_at(job, state.clock(), state.timing)
    if not status.is_terminal:
        raise ApiError(
            400,
            f"Video '{job.id}' is still '{status}' and cannot be deleted yet. Only a completed "
            "or failed video can be deleted.",
            param="video_id",
            code="invalid_video_status",
        )
    deleted = await run_in_threadpool(state.store.delete_video, job.id)
    # A fixture deleted by a concurrent request is gone all the same (see `fixtures`).
    if not deleted and not state.is_fixture(job.id):
        raise not_found(f"No video found with id '{job.id}'.", param="video_id")
    shutil.rmtree(_media_dir(state.config, job.id), ignore_errors=True)
    return JSONResponse(DeletedVideo(id=job.id, deleted=True).model_dump(mode="json"))


def _media_dir(config: ServiceConfig, video_id: str) -> Path:
    """Where `render_media` caches one video's files, under every render setting."""
    return config.media_cache_dir / video_id


async def video_content(request: Request) -> Response:
    state = _state(request)
    variant = _choice(request, "variant", ContentVariant, ContentVariant.VIDEO)
    job = await state.job(request.path_params["video_id"])
    now = state.clock()
    status = status_at(job, now, state.timing)
    if status is VideoStatus.FAILED:
        raise not_found(f"Video '{job.id}' failed and has no content.", param="video_id")
    if status is not VideoStatus.COMPLETED:
        raise ApiError(
            400,
            f"Video '{job.id}' is not ready: its status is '{status}'. Content can be "
            "downloaded once the status is 'completed'.",
            param="video_id",
            code="video_not_ready",
        )
    if is_expired(job, now, state.timing):
        raise not_found(f"The content of video '{job.id}' has expired.", param="video_id")
    paths = await _rendered(state, job)
    return FileResponse(paths[variant], media_type=variant.media_type, filename=variant.file_name)


async def _rendered(state: ServiceState, job: JobRecord) -> dict[ContentVariant, Path]:
    """Render once per video: a request that finds a render of it under way (another
    request's, or the render ahead's) waits for that one and reuses its files."""
    try:
        from remix_pipeline.service.media import render_media
    except ImportError:
        raise ApiError(
            501, "Media rendering is not available on this server.", type="server_error"
        ) from None
    spec = media_spec(state.config, job)
    claimed, mine = state.ahead.claim(job.id)
    if not mine:
        await asyncio.wrap_future(claimed)  # then reuse its files, or render if it failed
        return await run_in_threadpool(render_media, spec, state.config.media_cache_dir)
    try:
        return await run_in_threadpool(render_media, spec, state.config.media_cache_dir)
    finally:
        state.ahead.release(job.id, claimed)


def media_spec(config: ServiceConfig, job: JobRecord) -> MediaSpec:
    """What `job`'s media are rendered from, at this server's scale and frame rate."""
    from remix_pipeline.service.media import MediaSpec

    width, height = job.dimensions
    return MediaSpec(
        video_id=job.id,
        prompt=job.prompt,
        motion_seed=job.motion_seed,
        width=width,
        height=height,
        seconds=int(job.seconds),
        scale=config.media_scale,
        fps=config.media_fps,
    )


async def remix_video(request: Request) -> Response:
    state = _state(request)
    body = await read_body(request)
    reject_unknown(body, ("prompt",))
    prompt = prompt_field(body)
    source = await state.completed_source(request.path_params["video_id"], "remixed", "video_id")
    job = state.derived_job(source, JobKind.REMIX, prompt)
    await state.insert(job)
    return state.video_response(job)


async def edit_video(request: Request) -> Response:
    state = _state(request)
    body = await read_body(request)
    reject_unknown(body, ("video", "prompt", "model"))
    source = video_source_field(body)
    prompt = prompt_field(body)
    if isinstance(source, UploadedFile):
        model = model_field(body, state.allowed, DEFAULT_MODEL)
        job = state.uploaded_job(await _inspected(source), JobKind.EDIT, prompt, model)
    else:
        _no_model_with_a_reference(body, "edit")
        completed = await state.completed_source(source, "edited", "video[id]")
        job = state.derived_job(completed, JobKind.EDIT, prompt)
    await state.insert(job)
    return state.video_response(job)


def _no_model_with_a_reference(body: Body, operation: str) -> None:
    if "model" in body:
        raise invalid_request(
            f"'model' can only be set when uploading a video to {operation}; with "
            "'video[id]' the model is that video's.",
            param="model",
            code="unknown_parameter",
        )


async def _inspected(upload: UploadedFile) -> VideoUpload:
    """The upload checked by PyAV, imported on first use like the renderer (see `_rendered`)."""
    try:
        from remix_pipeline.service.uploads import inspect_upload
    except ImportError:
        raise ApiError(
            501, "Reading uploaded videos is not available on this server.", type="server_error"
        ) from None
    return await run_in_threadpool(inspect_upload, upload)


async def extend_video(request: Request) -> Response:
    state = _state(request)
    body = await read_body(request)
    reject_unknown(body, ("video", "prompt", "seconds", "model"))
    source = video_source_field(body)
    prompt = prompt_field(body)
    added = seconds_field(body, state.allowed, None)
    if isinstance(source, UploadedFile):
        model = model_field(body, state.allowed, DEFAULT_MODEL)
        upload = await _inspected(source)
        total = _stitched(upload.seconds, added)
        job = state.uploaded_job(upload, JobKind.EXTENSION, prompt, model, seconds=total)
    else:
        _no_model_with_a_reference(body, "extend")
        completed = await state.completed_source(source, "extended", "video[id]")
        total = _stitched(completed.seconds, added)
        job = state.derived_job(completed, JobKind.EXTENSION, prompt, seconds=total)
    await state.insert(job)
    return state.video_response(job)


def _stitched(source_seconds: str, added: str) -> str:
    """An extension's `seconds`: the source's length plus the added part, at most 120."""
    total = int(source_seconds) + int(added)
    if total > MAX_EXTENDED_SECONDS:
        raise invalid_request(
            f"Invalid 'seconds': extending a {source_seconds}-second video by {added} seconds "
            f"gives {total} seconds; a video can be at most {MAX_EXTENDED_SECONDS} seconds.",
            param="seconds",
            code="invalid_value",
        )
    return str(total)


def _character_json(character: CharacterRecord) -> dict[str, Any]:
    return VideoCharacter(
        id=character.id, name=character.name, created_at=int(character.created_at)
    ).model_dump(mode="json")


async def create_character(request: Request) -> Response:
    state = _state(request)
    body = await read_body(request, multipart_only=True)
    reject_unknown(body, ("video", "name"))
    character_video_field(body)
    character = CharacterRecord(
        id=new_character_id(), name=character_name_field(body), created_at=state.clock()
    )
    await run_in_threadpool(state.store.insert_character, character)
    return JSONResponse(_character_json(character))


async def get_character(request: Request) -> Response:
    state = _state(request)
    character_id = request.path_params["character_id"]
    problem = id_problem(character_id, kind="character id")
    found = None if problem else await run_in_threadpool(state.store.get_character, character_id)
    if found is None:
        raise not_found(f"No character found with id '{character_id[:128]}'.", param="character_id")
    return JSONResponse(_character_json(found))


async def admin_stats(request: Request) -> Response:
    return JSONResponse(_state(request).stats.as_dict())


ROUTES: list[Route] = [
    Route("/v1/videos", create_video, methods=["POST"], name="create"),
    Route("/v1/videos", list_videos, methods=["GET"], name="list"),
    Route("/v1/videos/characters", create_character, methods=["POST"], name="character_create"),
    Route(
        "/v1/videos/characters/{character_id}",
        get_character,
        methods=["GET"],
        name="character_retrieve",
    ),
    Route("/v1/videos/edits", edit_video, methods=["POST"], name="edit"),
    Route("/v1/videos/extensions", extend_video, methods=["POST"], name="extension"),
    Route("/v1/videos/{video_id}", retrieve_video, methods=["GET"], name="retrieve"),
    Route("/v1/videos/{video_id}", delete_video, methods=["DELETE"], name="delete"),
    Route("/v1/videos/{video_id}/content", video_content, methods=["GET"], name="content"),
    Route("/v1/videos/{video_id}/remix", remix_video, methods=["POST"], name="remix"),
    Route("/_admin/stats", admin_stats, methods=["GET"], name="stats"),
]


def create_app(config: ServiceConfig, *, clock: Callable[[], float] = time.time) -> Starlette:
    """An app over `config.db_path`; the store and the seeded sources are ready on return."""
    store = JobStore(config.db_path)
    store.seed_sources(source_jobs(load_catalogue(), clock()))
    if config.sdk_fixtures:
        store.restore_video(fixture_video(clock()))
        store.restore_character(fixture_character(clock()))
    faults = FaultInjector(config.faults)
    stats = ServiceStats()
    dialect = dialect_middleware(
        config.dialect, api_key=config.api_key, media_scale=config.media_scale
    )
    app = Starlette(
        routes=ROUTES,
        middleware=[
            *dialect,
            Middleware(
                Gateway,
                routes=ROUTES,
                api_key=config.api_key,
                faults=faults,
                stats=stats,
                clock=clock,
            ),
        ],
        exception_handlers={ApiError: handle_api_error, HTTPException: handle_http_exception},
    )
    # `/v1/videos/` must be a 404 envelope like any unknown URL, not a redirect.
    app.router.redirect_slashes = False
    app.state.service = ServiceState(
        config=config,
        store=store,
        faults=faults,
        stats=stats,
        clock=clock,
        timing=Timing.from_config(config),
        allowed=allowed_values(config.mode),
    )
    app.state.stats = stats
    return app
