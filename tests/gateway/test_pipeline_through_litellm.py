"""The pipeline through the real LiteLLM proxy, configured as a new user configures it.

The user sets only OPENAI_BASE_URL (the proxy) and OPENAI_API_KEY (its master key), with the
plain config (one `model_list` entry per model, no database, no `completion_model`). Every
count is taken at the upstream itself, in its own SQLite, not from what the pipeline says.
"""

from __future__ import annotations

import csv
import io
import os
import re
import secrets
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from remix_pipeline.client.gateways import upstream_id
from remix_pipeline.contract import ContentVariant
from remix_pipeline.derived_media import holds_expected_media
from remix_pipeline.lineage import read_lineage
from remix_pipeline.submission import UNRESOLVED_CODE
from tests.support.gateway import Gateway, GatewayConfig
from tests.support.servers import CommandRun, Served, run_against

REMIX_PIPELINE = Path(sys.executable).parent / "remix-pipeline"
SAMPLE = Path(__file__).resolve().parents[2] / "data" / "requests.csv"
DEVIATION = re.compile(r"deviates from the Videos API contract: (?P<kind>[^;]+);")


def table_with_chain(tag: str) -> str:
    """The sample table plus a two-generation chain, every prompt tagged for this test (the
    upstream is shared with other tests, which count their own jobs the same way)."""
    with SAMPLE.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row["prompt"] += f" [{tag}]"
        row["source_variant"] = ""
    chain = {"source_video_id": "video_src_harbor", "experiment": "sample", "replicates": "1"}
    rows.append({**chain, "variant": "stormy", "prompt": f"A storm rolls in [{tag}]"})
    rows.append(
        {
            **chain,
            "variant": "stormynight",
            "prompt": f"Now make the storm at night [{tag}]",
            "source_variant": "stormy",
        }
    )
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


@dataclass
class PlainRun:
    ran: CommandRun
    tag: str

    @property
    def project(self) -> Path:
        return self.ran.project

    @property
    def output(self) -> str:
        return self.ran.output

    @property
    def result(self) -> subprocess.CompletedProcess[str]:
        return self.ran.result

    def lineage(self) -> pd.DataFrame:
        return read_lineage(str(self.project / "data" / "output" / "sample" / "lineage.parquet"))


@pytest.fixture(scope="module")
def plain_run(gateway: Gateway, tmp_path_factory: pytest.TempPathFactory) -> PlainRun:
    """`remix-pipeline run` told only OPENAI_BASE_URL (the proxy) and OPENAI_API_KEY."""
    tag = secrets.token_hex(4)
    proxy = Served(base_url=gateway.base_url, key=gateway.master_key, db_path=Path())
    ran = run_against(proxy, tmp_path_factory.mktemp("through-litellm"), table_with_chain(tag))
    return PlainRun(ran, tag)


def test_the_sample_and_a_chain_complete_through_the_plain_config(plain_run: PlainRun):
    assert plain_run.result.returncode == 0, plain_run.output[-3000:]
    frame = plain_run.lineage()
    assert len(frame) == 14  # 12 sample variants (one row has 2 replicates) and the chain's 2
    assert set(frame["state"]) == {"completed"}
    # The chain's source is named in the gateway's encoding, its answer in the upstream's.
    assert "remixed_from_matches_source passed" in plain_run.output
    # The raw sources cannot be described through the gateway: unpriced, not a failure.
    assert "14 could not be priced" in plain_run.output


def test_the_upstream_holds_exactly_one_remix_job_per_variant(
    plain_run: PlainRun, gateway: Gateway
):
    jobs = gateway.upstream_videos("kind = 'remix' AND prompt LIKE ?", f"%[{plain_run.tag}]%")
    per_prompt = Counter(job["prompt"] for job in jobs)
    frame = plain_run.lineage()
    assert len(jobs) == len(frame)
    expected = Counter(frame["prompt"])
    assert per_prompt == expected


def test_the_chain_remixes_its_parents_upstream_video(plain_run: PlainRun, gateway: Gateway):
    frame = plain_run.lineage().set_index("variant")
    (child,) = gateway.upstream_videos("prompt = ?", frame.loc["stormynight", "prompt"])
    (parent,) = gateway.upstream_videos("prompt = ?", frame.loc["stormy", "prompt"])
    assert child["remixed_from_video_id"] == parent["id"]


def test_every_media_file_holds_what_its_name_says(plain_run: PlainRun):
    frame = plain_run.lineage()
    for row in frame.itertuples():
        for variant in ("video", "thumbnail", "spritesheet"):
            path = Path(getattr(row, f"{variant}_path"))
            assert holds_expected_media(path, ContentVariant(variant)), path
    # LiteLLM drops `variant`: the images were made here from the MP4, and say so.
    assert frame["thumbnail_derived"].all() and frame["spritesheet_derived"].all()
    assert not frame["video_derived"].any()


def test_the_lineage_names_the_model_and_the_server(plain_run: PlainRun, gateway: Gateway):
    frame = plain_run.lineage()
    assert set(frame["server"]) == {gateway.base_url}
    assert set(frame["model"]) <= {"sora-2", "sora-2-pro"} and frame["model"].notna().all()


def test_neither_key_is_in_any_file_or_in_the_output(plain_run: PlainRun, gateway: Gateway):
    keys = [gateway.master_key.encode(), gateway.upstream_key.encode()]
    assert not any(key.decode() in plain_run.output for key in keys)
    for path in plain_run.project.rglob("*"):
        if path.is_file() and path.stat().st_size < 50_000_000:
            data = path.read_bytes()
            assert not any(key in data for key in keys), path


def test_each_kind_of_deviation_is_warned_about_at_most_once(plain_run: PlainRun):
    kinds = Counter(m["kind"] for m in DEVIATION.finditer(plain_run.output))
    assert kinds, "the gateway's deviations must be named"
    assert max(kinds.values()) == 1, kinds


NO_RETRIES_DROPPING = GatewayConfig(
    upstream_options=("--drop-rate", "0.2", "--fault-seed", "5"), num_retries=0
)


def test_with_a_fifth_of_answers_dropped_no_job_is_paid_twice_and_nothing_is_lost(
    gateway_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Behind `router_settings.num_retries: 0` LiteLLM never repeats a POST. A remix whose
    answer was lost cannot be found through it (it cannot list), so that variant ends
    unresolved, named, once the listing grace is over: never a second paid job."""
    import dagster as dg

    from remix_pipeline.definitions.headless import HeadlessRunner
    from remix_pipeline.experiment import ExperimentSettings

    gateway = gateway_factory(NO_RETRIES_DROPPING)
    tag = secrets.token_hex(4)
    prompts = [f"Variation {n} [{tag}]" for n in range(20)]
    sources = ["video_src_harbor", "video_src_forest", "video_src_city", "video_src_dunes"]
    table = tmp_path / "requests.csv"
    table.write_text(
        "source_video_id,prompt\n"
        + "".join(f'{sources[n % 4]},"{p}"\n' for n, p in enumerate(prompts))
    )
    home = tmp_path / ".remix-pipeline"
    (home / "dagster_home").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith(("OPENAI_", "REMIX_", "DAGSTER_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("REMIX_PIPELINE_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster_home"))
    monkeypatch.setenv("OPENAI_BASE_URL", gateway.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", gateway.master_key)
    # A short request timeout keeps the listing grace (twice it) short.
    settings = ExperimentSettings(name="drop", table=str(table), request_timeout_seconds=3)
    with dg.DagsterInstance.get() as instance:
        summary = HeadlessRunner(settings, instance, poll_seconds=0.2).run(timeout_seconds=180)

    jobs = gateway.upstream_videos("kind = 'remix' AND prompt LIKE ?", f"%[{tag}]%")
    assert max(Counter(job["prompt"] for job in jobs).values()) == 1  # none paid twice
    assert summary.finished
    frame = read_lineage(summary.lineage_path)
    assert sorted(frame["prompt"]) == sorted(prompts)  # none lost
    unresolved = frame[frame["error_code"] == UNRESOLVED_CODE]
    assert set(frame["state"]) <= {"completed", "failed"}
    assert set(frame.loc[frame["state"] == "failed", "error_code"]) <= {UNRESOLVED_CODE}
    assert sorted(summary.unresolved) == sorted(
        f"{row.key} ({row.source_video_id}, {row.variant})" for row in unresolved.itertuples()
    )
    # Every lost answer is accounted for: a job the upstream made that no attempt holds is
    # exactly one of the variants reported unresolved.
    held = set(frame["video_id"].dropna())
    orphans = {job["prompt"] for job in jobs if job["id"] not in {upstream_id(v) for v in held}}
    assert orphans <= set(unresolved["prompt"])
