"""Remix chains in the request table: a row whose source is another row's result."""

from pathlib import Path

import pytest

from remix_pipeline.request_table import read_request_table, variant_key

HEADER = "source_video_id,variant,prompt,source_variant\n"


def table(tmp_path: Path, *rows: str) -> Path:
    path = tmp_path / "t.csv"
    path.write_text(HEADER + "".join(f"{row}\n" for row in rows))
    return path


def test_a_chained_row_points_at_its_parents_first_replicate(tmp_path):
    requests = read_request_table(
        table(tmp_path, "video_a,noir,Make it noir,", "video_a,rainy,Add rain,noir")
    ).requests

    parent, child = requests
    assert parent.parent_key is None
    assert child.parent_key == parent.key == variant_key("video_a", "Make it noir", 1)


def test_a_chained_key_changes_when_an_ancestors_prompt_changes(tmp_path):
    def child_key(parent_prompt: str) -> str:
        rows = (f"video_a,noir,{parent_prompt},", "video_a,rainy,Add rain,noir")
        return read_request_table(table(tmp_path, *rows)).requests[1].key

    assert child_key("Make it noir") == child_key("Make it noir")
    assert child_key("Make it noir") != child_key("Make it neo-noir")


def test_three_generations_chain_through_each_parent(tmp_path):
    requests = read_request_table(
        table(
            tmp_path,
            "video_a,noir,Make it noir,",
            "video_a,rainy,Add rain,noir",
            "video_a,night,Make it night,rainy",
        )
    ).requests

    assert [r.parent_key for r in requests] == [None, requests[0].key, requests[1].key]


@pytest.mark.parametrize(
    ("rows", "bad_rows", "reason", "good"),
    [
        (("video_a,noir,Noir,", "video_a,rainy,Rain,sepia"), [2], "names no valid row", ["noir"]),
        (("video_a,noir,Noir,", "video_b,rainy,Rain,noir"), [2], "names no valid row", ["noir"]),
        (("video_a,x,One,y", "video_a,y,Two,x"), [1, 2], "cycle", []),
        (("video_a,x,One,x",), [1], "cycle", []),
        (("video_a,x,One,missing", "video_a,y,Two,x"), [1, 2], "", []),
    ],
    ids=["dangling", "other-source", "cycle", "self", "descendant-of-bad"],
)
def test_bad_chains_are_row_problems_and_good_rows_proceed(tmp_path, rows, bad_rows, reason, good):
    result = read_request_table(table(tmp_path, *rows, "video_c,ok,Fine,"))

    assert sorted(p.row_number for p in result.problems) == bad_rows
    assert all(p.column == "source_variant" for p in result.problems)
    assert all(reason in p.reason for p in result.problems)
    assert [r.variant for r in result.requests] == [*good, "ok"]
