"""A table mixing good and bad rows, run end to end: the good rows complete, each bad one is
reported with its row and column. (The 40-case corpus is tested in tests/test_requests.py and
tests/test_cli_validate.py; an unknown source's 404 in tests/definitions/test_headless.py.)"""

from __future__ import annotations

BAD_LINES = [
    "video_src_harbor,b1,   ,t,1",  # whitespace prompt
    "../../etc/passwd,b2,Escape the folder,t,1",  # hostile source id
    "video_src_forest,b3,Zero copies,t,0",  # replicates 0
]


def test_bad_rows_are_reported_by_row_and_column_while_the_good_rows_complete(make_project):
    project = make_project(6)
    project.write_table(BAD_LINES)

    result = project.run()

    assert result.returncode == 0, result.stderr
    skipped = [line for line in result.stderr.splitlines() if "skipped invalid row" in line]
    assert len(skipped) == 3
    expected = [(7, "prompt"), (8, "source_video_id"), (9, "replicates")]
    for line, (row, column) in zip(skipped, expected, strict=True):
        assert f"row {row}, column {column}" in line
    frame = project.lineage()
    assert sorted(zip(frame["source_video_id"], frame["prompt"], strict=True)) == sorted(
        project.variants
    )
    assert set(frame["state"]) == {"completed"}
    assert sorted(project.remix_jobs()) == sorted(project.variants)
