"""Workload 3: one completion-sensor tick with N jobs in flight, time and peak memory.

Setup (in its own process): N real remix jobs on a served service whose jobs run for an hour,
and a ledger holding N SUBMITTED attempts that point at them. Measurement (in a fresh
process): the experiment's own completion sensor evaluated as the daemon would, which polls
every in-flight job in bulk and writes what it learned to the ledger.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sqlite3
import statistics
import time
import warnings
from pathlib import Path

import dagster as dg
import httpx

from benchmarks.child import in_child
from benchmarks.plan import Plan
from benchmarks.report import Report, Row
from benchmarks.served import ServedService, ServiceSettings
from benchmarks.variants import Variant, variants, write_request_table
from remix_pipeline.contract import Video, dump_video
from remix_pipeline.definitions.build import build_experiment_definitions
from remix_pipeline.definitions.headless import ensure_dagster_home
from remix_pipeline.definitions.session import ExperimentSession
from remix_pipeline.experiment import ExperimentSettings
from remix_pipeline.ledger import AttemptState
from remix_pipeline.request_table import VariantRequest, variant_key

URL_ENV = "BENCH_TICK_BASE_URL"
CREATE_CONNECTIONS = 16
NAME = "tick"


def _settings(workdir: Path) -> ExperimentSettings:
    return ExperimentSettings(
        name=NAME,
        table=str(workdir / "requests.csv"),
        ledger_url=f"sqlite:///{workdir / 'ledger.db'}",
        base_url_env=URL_ENV,
    )


def _requests(rows: list[Variant]) -> list[VariantRequest]:
    return [
        VariantRequest(
            key=variant_key(row.source_video_id, row.prompt, 1),
            source_video_id=row.source_video_id,
            prompt=row.prompt,
            prompt_sha256=hashlib.sha256(row.prompt.encode()).hexdigest(),
            variant=row.label,
            experiment=NAME,
            replicate=1,
            row_number=i + 1,
        )
        for i, row in enumerate(rows)
    ]


def prepare(url: str, count: int, workdir: Path) -> int:
    """Create `count` jobs on the service and a ledger of SUBMITTED attempts pointing at them."""
    rows = variants(count, f"tick{count}")
    write_request_table(workdir / "requests.csv", rows, experiment=NAME)

    async def create_all() -> list[Video]:
        # Plain httpx rather than the pipeline's client: setup, not the measured call, and it
        # must survive a loaded machine. The expiry below the server's keep-alive timeout
        # (5 s) avoids reusing a connection the server is closing; a creation that fails in
        # transport is sent again (a stray extra job on the server changes nothing here).
        limits = httpx.Limits(
            max_connections=CREATE_CONNECTIONS,
            max_keepalive_connections=CREATE_CONNECTIONS,
            keepalive_expiry=3.0,
        )
        async with httpx.AsyncClient(base_url=url + "/", limits=limits, timeout=120) as http:
            gate = asyncio.Semaphore(CREATE_CONNECTIONS)

            async def create(row: Variant) -> Video:
                async with gate:
                    for attempt in range(5):
                        try:
                            response = await http.post(
                                f"videos/{row.source_video_id}/remix", json={"prompt": row.prompt}
                            )
                            return Video.model_validate(response.raise_for_status().json())
                        except httpx.TransportError:
                            if attempt == 4:
                                raise
                            await asyncio.sleep(0.5)
                raise AssertionError("unreachable")

            return list(await asyncio.gather(*(create(row) for row in rows)))

    # Each attempt is stamped sent before its job was created, as a submission stamps it; a
    # stamp after creating 50,000 jobs (minutes) would put the oldest jobs outside the
    # window a poll lists, and the tick would retrieve them one by one.
    now = time.time()
    videos = asyncio.run(create_all())
    requests = _requests(rows)
    settings = _settings(workdir)
    ledger = ExperimentSession(settings).ledger()
    ledger.record_intents(requests, table_hash="b" * 64, run_id=None, now=now)
    ledger.close()
    with sqlite3.connect(workdir / "ledger.db") as db:
        db.executemany(
            "UPDATE attempts SET state = ?, video_id = ?, video = ?, sent_at = ?, "
            "submitted_at = ? WHERE key = ? AND attempt = 1",
            [
                (
                    AttemptState.SUBMITTED.value,
                    video.id,
                    json.dumps(dump_video(video), separators=(",", ":"), sort_keys=True),
                    now,
                    now,
                    request.key,
                )
                for request, video in zip(requests, videos, strict=True)
            ],
        )
    # The fan-out sensor's partitions, added here so the measured process holds only the tick.
    os.environ["DAGSTER_HOME"] = str(workdir / "dagster_home")
    ensure_dagster_home()
    with dg.DagsterInstance.get() as instance:
        name = ExperimentSession(settings).keys.partitions.name
        instance.add_dynamic_partitions(name, [request.key for request in requests])
    return len(videos)


def _still_in_flight(workdir: Path) -> int:
    with sqlite3.connect(workdir / "ledger.db") as db:
        (count,) = db.execute(
            "SELECT COUNT(*) FROM attempts WHERE state = ?", (AttemptState.SUBMITTED.value,)
        ).fetchone()
    return int(count)


def measure(url: str, workdir: Path, repeats: int) -> dict[str, float]:
    """Evaluate the completion sensor `repeats` times, as the daemon or `run` would."""
    os.environ[URL_ENV] = url
    os.environ["DAGSTER_HOME"] = str(workdir / "dagster_home")
    ensure_dagster_home()
    settings = _settings(workdir)
    seconds: list[float] = []
    with dg.DagsterInstance.get() as instance, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        defs = build_experiment_definitions(settings)
        sensor = defs.get_sensor_def(f"{NAME}_completion_sensor")
        for _ in range(repeats):
            context = dg.build_sensor_context(instance=instance, definitions=defs)
            started = time.perf_counter()
            sensor.evaluate_tick(context)
            seconds.append(time.perf_counter() - started)
    return {"seconds": statistics.median(seconds), "in_flight": float(_still_in_flight(workdir))}


def sensor_tick(plan: Plan, workdir: Path, report: Report) -> None:
    settings = ServiceSettings(job_seconds=3600.0)
    for count in plan.tick_sizes:
        where = workdir / f"tick-{count}"
        where.mkdir(parents=True, exist_ok=True)
        with ServedService(settings, where / "server") as service:
            created, _, _ = in_child(prepare, service.url, count, where)
            before = service.status_requests()
            result, baseline, peak = in_child(measure, service.url, where, plan.tick_repeats)
            status = (service.status_requests() - before) / plan.tick_repeats
        note = (
            f"median of {plan.tick_repeats} ticks; {created} jobs, "
            f"{result['in_flight']:.0f} still in flight after; "
            f"{status:.0f} status requests per tick"
        )
        if count == 100_000:
            ok = result["seconds"] <= 5 and peak <= 400
            report.findings.append(
                f"sensor tick at 100,000 in flight: {result['seconds']:.1f} s, peak RSS "
                f"{peak:.0f} MiB (target at most 5 s and 400 MiB: {'met' if ok else 'NOT met'})"
            )
        report.add(
            Row(
                "3",
                "completion-sensor tick, all jobs in flight",
                f"{count:,}",
                result["seconds"],
                "s per tick",
                "",
                note,
            )
        )
        report.add(
            Row(
                "3",
                "completion-sensor tick, peak RSS of its process",
                f"{count:,}",
                peak,
                "MiB",
                "",
                f"process RSS before the ticks {baseline:.0f} MiB",
            )
        )
