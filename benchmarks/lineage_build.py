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


def lineage_build(plan: Plan, workdir: Path, report: Report) -> None:
    path = workdir / "lineage" / "ledger.db"
    in_child(fill, path, plan.lineage_rows)
    result, baseline, peak = in_child(build, path, plan.render_repeats)
    n = f"{plan.lineage_rows:,}"
    if plan.lineage_rows == 100_000:
        ok = result["seconds"] <= 5 and peak <= 1536
        report.findings.append(
            f"lineage from 100,000 rows: {result['seconds']:.1f} s, peak RSS {peak:.0f} MiB "
            f"(target at most 5 s and 1.5 GB: {'met' if ok else 'NOT met'})"
        )
    report.add(
        Row(
            "5",
            "build_lineage_frame, completed attempts with media",
            n,
            result["seconds"],
            "s",
            "",
            f"median of {plan.render_repeats}; {result['rows']:.0f} rows out",
        )
    )
    report.add(
        Row(
            "5",
            "build_lineage_frame, peak RSS of its process",
            n,
            peak,
            "MiB",
            "",
            f"process RSS before the build {baseline:.0f} MiB",
        )
    )
