"""The lineage table's file handling and chain tracing."""

import uuid
from pathlib import Path

import pandas as pd
import pytest

from remix_pipeline import lineage
from remix_pipeline.lineage import read_lineage, trace, write_parquet_atomically


def test_parquet_is_replaced_whole_and_leaves_no_temporary_file(tmp_path: Path):
    target = tmp_path / "out" / "lineage.parquet"
    write_parquet_atomically(pd.DataFrame({"a": [1, 2]}), str(target))
    write_parquet_atomically(pd.DataFrame({"a": [3]}), str(target))

    assert read_lineage(str(target))["a"].tolist() == [3]
    assert [p.name for p in target.parent.iterdir()] == ["lineage.parquet"]


def test_a_local_table_is_read_by_pyarrow_from_its_path_and_a_remote_one_on_one_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """pyarrow's threads reading a Python file object can abort the interpreter at exit."""
    local = write_parquet_atomically(pd.DataFrame({"a": [1]}), str(tmp_path / "l.parquet"))
    remote = write_parquet_atomically(
        pd.DataFrame({"a": [2]}), f"memory://lineage-{uuid.uuid4().hex[:12]}/l.parquet"
    )
    calls: list[tuple[object, dict[str, object]]] = []
    real = pd.read_parquet

    def recording(source: object, **options: object) -> pd.DataFrame:
        calls.append((source, options))
        return real(source, **options)

    monkeypatch.setattr(lineage.pd, "read_parquet", recording)

    assert read_lineage(local)["a"].tolist() == [1]
    assert read_lineage(remote)["a"].tolist() == [2]
    assert calls[0] == (local, {})
    assert calls[1][1] == {"use_threads": False}


def test_trace_follows_a_multi_generation_chain_back_to_the_root():
    frame = pd.DataFrame(
        [
            {"video_id": "video_b", "source_video_id": "video_a", "prompt": "second"},
            {"video_id": "video_c", "source_video_id": "video_b", "prompt": "third"},
        ]
    )

    chain = trace(frame, "video_c")

    assert [step["video_id"] for step in chain] == ["video_c", "video_b", "video_a"]
    assert chain[-1]["root"] is True


def test_trace_stops_on_a_cycle():
    frame = pd.DataFrame(
        [
            {"video_id": "video_a", "source_video_id": "video_b"},
            {"video_id": "video_b", "source_video_id": "video_a"},
        ]
    )

    assert [step["video_id"] for step in trace(frame, "video_a")] == ["video_a", "video_b"]


def test_trace_walks_an_operations_chain_back_to_the_prompt_it_began_with() -> None:
    import pandas as pd

    from remix_pipeline.lineage import trace

    frame = pd.DataFrame(
        [
            {
                "video_id": "video_made",
                "source_video_id": None,
                "operation": "create",
                "prompt": "A lighthouse",
                "source_sha256": None,
            },
            {
                "video_id": "video_longer",
                "source_video_id": "video_made",
                "operation": "extend",
                "prompt": "The storm",
                "source_sha256": None,
            },
            {
                "video_id": "video_mine",
                "source_video_id": None,
                "operation": "edit",
                "prompt": "Rain",
                "source_sha256": "ab" * 32,
            },
        ]
    )
    chain = trace(frame, "video_longer")
    assert [c["video_id"] for c in chain] == ["video_longer", "video_made", None]
    assert chain[-1] == {"video_id": None, "root": "prompt", "prompt": "A lighthouse"}
    assert trace(frame, "video_mine")[-1]["root"] == "upload"
