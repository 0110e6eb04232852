"""Workload 5: `build_lineage_frame` over a ledger of N completed attempts with media.

The ledger is filled in bulk in one process; the frame is built in a fresh one, so the
reported peak memory is the build's (plus the imports, reported as the baseline).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import statistics
import time
from pathlib import Path

from benchmarks.child import in_child
from benchmarks.plan import Plan
from benchmarks.report import Report, Row
from remix_pipeline.contract import ContentVariant
from remix_pipeline.ledger import AttemptState, Ledger
from remix_pipeline.lineage import build_lineage_frame
from remix_pipeline.request_table import VariantRequest, variant_key

SOURCE = "video_src_harbor"


def fill(path: Path, count: int) -> int:
    requests = []
    for i in range(count):
        prompt = f"Lineage benchmark variant {i}"
        requests.append(
            VariantRequest(
                key=variant_key(SOURCE, prompt, 1),
                source_video_id=SOURCE,
                prompt=prompt,
                prompt_sha256=hashlib.sha256(prompt.encode()).hexdigest(),
                variant=f"v{i}",
                experiment="lineage",
                replicate=1,
                row_number=i + 1,
            )
        )
    with Ledger.for_path(path) as ledger:
        ledger.record_intents(requests, table_hash="c" * 64, run_id="run-bench", now=1.7e9)
    completed, media = [], []
    for i, request in enumerate(requests):
        video_id = f"video_bench{i:08d}"
        video = {
            "id": video_id,
            "object": "video",
            "model": "sora-2",
            "status": "completed",
            "progress": 100,
            "created_at": 1_700_000_000,
            "completed_at": 1_700_000_060,
            "expires_at": 1_700_003_660,
            "prompt": request.prompt,
            "remixed_from_video_id": SOURCE,
            "seconds": "4",
            "size": "1280x720",
            "error": None,
        }
        completed.append(
            (AttemptState.COMPLETED.value, video_id, json.dumps(video), 1.7e9, request.key)
        )
        for variant in ContentVariant:
            path_text = f"/data/output/media/{request.key}/attempt-1/{variant.file_name}"
            media.append((request.key, 1, variant.value, path_text, "d" * 64, 123_456))
    with sqlite3.connect(path) as db:
        db.executemany(
            "UPDATE attempts SET state = ?, video_id = ?, video = ?, submitted_at = ?, "
            "finished_at = submitted_at + 60 WHERE key = ? AND attempt = 1",
            completed,
        )
        db.executemany(
            "INSERT INTO media (key, attempt, variant, path, sha256, size_bytes) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            media,
        )
    return count


def build(path: Path, repeats: int) -> dict[str, float]:
    seconds = []
    rows = 0
    with Ledger.for_path(path) as ledger:
        for _ in range(repeats):
            started = time.perf_counter()
            frame = build_lineage_frame(ledger)
            seconds.append(time.perf_counter() - started)
            rows = len(frame)
            del frame
    return {"seconds": statistics.median(seconds), "rows": float(rows)}


TARGETS = {100_000: ("5", 1.0, 400.0), 1_000_000: ("5b", 10.0, 2048.0)}


def lineage_build(plan: Plan, workdir: Path, report: Report) -> None:
    """Workload 5 at the plan's first size; 5b (one build, not a median) at any larger one."""
    for index, count in enumerate(plan.lineage_sizes):
        workload, seconds_target, mib_target = TARGETS.get(
            count, ("5" if index == 0 else "5b", None, None)
        )
        if not report.wants(workload):
            continue
        path = workdir / "lineage" / f"ledger-{count}.db"
        in_child(fill, path, count)
        repeats = plan.render_repeats if index == 0 else 1
        result, baseline, peak = in_child(build, path, repeats)
        if seconds_target is not None and mib_target is not None:
            ok = result["seconds"] <= seconds_target and peak <= mib_target
            report.findings.append(
                f"lineage from {count:,} attempts: {result['seconds']:.1f} s, peak RSS "
                f"{peak:.0f} MiB (target at most {seconds_target:g} s and {mib_target:.0f} MiB: "
                f"{'met' if ok else 'NOT met'})"
            )
        report.add(
            Row(
                workload,
                "build_lineage_frame, completed attempts with media",
                f"{count:,}",
                result["seconds"],
                "s",
                "",
                f"median of {repeats}; {result['rows']:.0f} rows out",
            )
        )
        report.add(
            Row(
                workload,
                "build_lineage_frame, peak RSS of its process",
                f"{count:,}",
                peak,
                "MiB",
                "",
                f"process RSS before the build {baseline:.0f} MiB",
            )
        )
        path.unlink(missing_ok=True)
