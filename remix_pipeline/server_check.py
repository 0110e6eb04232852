"""`remix-pipeline check-server`: what works through a Videos API server or gateway.

Every check is free by default: requests that cannot start a job (a remix and a delete of an
id no server holds, a list, a retrieve of a listed video). What only a real job can show (the
content variants, a remix of a raw upstream id) is checked with `--create`, which pays for one
4-second video, and `--remix-source ID`, which pays for one remix of it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from remix_pipeline.client import (
    APIStatusError,
    ClientSettings,
    ListUnavailableError,
    NotFoundError,
    VideosAPIError,
    VideosClient,
)
from remix_pipeline.client.bulk import ROUTE_MISSING
from remix_pipeline.client.client import REMIX_PROBE_ID
from remix_pipeline.client.gateways import is_gateway_encoded
from remix_pipeline.contract import ContentVariant
from remix_pipeline.derived_media import EXPECTED_TYPES, media_type_of
from remix_pipeline.servers import resolve_server

CREATE_TIMEOUT_SECONDS = 600.0


@dataclass(frozen=True)
class Check:
    name: str
    works: bool | None  # None: could not be told without paying, or not applicable
    detail: str

    def line(self, width: int) -> str:
        mark = {True: "ok", False: "NO", None: "--"}[self.works]
        return f"{self.name:<{width}}  {mark:<2}  {self.detail}"


def add_check_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--base-url-env",
        default="OPENAI_BASE_URL",
        metavar="VAR",
        help="variable holding the server's base URL (unset: the embedded service)",
    )
    parser.add_argument(
        "--api-key-env", default="OPENAI_API_KEY", metavar="VAR", help="variable holding the key"
    )
    parser.add_argument(
        "--model", default="sora-2", help="model a gateway routes by (LiteLLM's model_name)"
    )
    parser.add_argument(
        "--create",
        action="store_true",
        help="pay for one 4-second video to check the content variants",
    )
    parser.add_argument(
        "--remix-source",
        metavar="VIDEO_ID",
        help="pay for one remix of this raw id (e.g. a video the upstream holds)",
    )


def check_command(args: argparse.Namespace) -> int:
    server = resolve_server(args.base_url_env)
    settings = ClientSettings(
        base_url=server.base_url,
        api_key_env=args.api_key_env,
        gateway_model=args.model,
        max_attempts=2,
        max_retry_seconds=20.0,
    )
    print(f"checking {server.label}")
    try:
        checks = asyncio.run(_run_checks(settings, args))
    except VideosAPIError as exc:
        print(f"error: the server cannot be reached or refuses us: {exc}", file=sys.stderr)
        return 2
    width = max(len(c.name) for c in checks)
    for check in checks:
        print(check.line(width))
    return 0


async def _run_checks(settings: ClientSettings, args: argparse.Namespace) -> list[Check]:
    async with VideosClient.from_settings(settings) as client:
        checks = [await _remix_route(client)]
        profile = client.profile
        gateway = profile.gateway.value if profile.gateway else "none recognised"
        checks.append(Check("gateway", None, gateway))
        listed, list_check = await _listing(client)
        checks += list_check
        checks.append(await _delete_route(client))
        if listed:
            checks.append(await _retrieve_listed(client, listed[0]))
        created = await _created(client) if args.create else None
        if created is not None:
            checks += await _content_variants(client, created)
        else:
            checks.append(Check("content variants", None, "not checked (pass --create)"))
        if args.remix_source:
            checks.append(await _remix_raw(client, args.remix_source))
        else:
            checks.append(
                Check("remix of raw ids", None, "not checked (pass --remix-source VIDEO_ID)")
            )
        ids = [v for v in [*listed, created] if v is not None]
        longest = max((len(v) for v in ids), default=0)
        encoded = any(is_gateway_encoded(v) for v in ids)
        checks.append(
            Check(
                "id length",
                None if not ids else longest <= 512,
                f"up to {longest} characters" + (", gateway-encoded" if encoded else "")
                if ids
                else "no id seen",
            )
        )
        retry = sorted(profile.retry_headers_seen)
        checks.append(
            Check("retry headers", None, ", ".join(retry) if retry else "none seen (no 429 met)")
        )
        checks.append(
            Check(
                "openai-poll-after-ms",
                profile.poll_after_seen if ids else None,
                "sent" if profile.poll_after_seen else "not seen",
            )
        )
        return checks


async def _remix_route(client: VideosClient) -> Check:
    try:
        served = await client.supports_remix()
    except APIStatusError as exc:
        return Check("remix route", None, f"HTTP {exc.status_code}: {exc.message[:120]}")
    detail = "POST /videos/{id}/remix is served" if served else "no remix route"
    return Check("remix route", served, detail)


async def _listing(client: VideosClient) -> tuple[list[str], list[Check]]:
    ids: list[str] = []
    try:
        async for video in client.list(limit=2):
            ids.append(video.id)
            if len(ids) >= 4:
                break
    except ListUnavailableError as exc:
        detail = f"{exc}; jobs are polled one by one and lost answers cannot be found"
        return [], [Check("list", False, detail), Check("pagination", None, "no list")]
    listing = Check("list", True, f"GET /videos answered ({len(ids)} videos read)")
    if client.profile.list_ignores_cursor:
        paging = Check("pagination", False, "'after' is ignored: only the first page is read")
    elif len(ids) > 2:
        paging = Check("pagination", True, "'after' moves to the next page")
    else:
        paging = Check("pagination", None, "too few videos to tell")
    return ids, [listing, paging]


async def _delete_route(client: VideosClient) -> Check:
    try:
        await client.delete(REMIX_PROBE_ID)
    except NotFoundError:
        return Check("delete", True, "DELETE /videos/{id} is served")
    except APIStatusError as exc:
        if exc.status_code in ROUTE_MISSING:
            return Check("delete", False, f"no DELETE route (HTTP {exc.status_code})")
        return Check("delete", None, f"HTTP {exc.status_code}: {exc.message[:120]}")
    return Check("delete", True, "DELETE /videos/{id} is served")


async def _retrieve_listed(client: VideosClient, video_id: str) -> Check:
    try:
        video = await client.retrieve(video_id)
    except VideosAPIError as exc:
        return Check("retrieve of a listed id", False, str(exc)[:160])
    same = video.id == video_id
    detail = "answers with the same id" if same else "answers with another id for it"
    return Check("retrieve of a listed id", True, detail)


async def _created(client: VideosClient) -> str | None:
    video = await client.create(
        "A quiet lake at dawn (remix-pipeline check-server)",
        model=client.settings.gateway_model,
        seconds="4",
    )
    deadline = time.monotonic() + CREATE_TIMEOUT_SECONDS
    while not video.is_terminal and time.monotonic() < deadline:
        await asyncio.sleep(2.0)
        video = await client.retrieve(video.id)
    return video.id if video.status.value == "completed" else None


async def _content_variants(client: VideosClient, video_id: str) -> list[Check]:
    checks: list[Check] = []
    with tempfile.TemporaryDirectory(prefix="remix-check-") as folder:
        for variant in ContentVariant:
            target = Path(folder) / variant.file_name
            try:
                await client.download(video_id, variant, target)
            except VideosAPIError as exc:
                checks.append(Check(f"content {variant.value}", False, str(exc)[:160]))
                continue
            found = media_type_of(target) or "unknown bytes"
            ok = found == EXPECTED_TYPES[variant]
            detail = found if ok else f"{found} instead of {EXPECTED_TYPES[variant]}"
            checks.append(Check(f"content {variant.value}", ok, detail))
    return checks


async def _remix_raw(client: VideosClient, source: str) -> Check:
    try:
        video = await client.remix(source, "The same scene, one hour later")
    except VideosAPIError as exc:
        return Check("remix of raw ids", False, str(exc)[:160])
    return Check("remix of raw ids", True, f"job {video.id[:60]} made")
