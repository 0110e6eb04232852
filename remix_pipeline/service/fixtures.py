"""The fixed ids openai-python's own tests use, served with `serve --sdk-fixtures`.

openai-python's generated suite (`tests/api_resources/test_videos.py`) is written against a
stateless mock that answers for any id, and it names two: it retrieves, remixes and deletes
video `video_123` and reads character `char_123`. With `ServiceConfig.sdk_fixtures` (the
`--sdk-fixtures` option) this server holds both, so that suite can run against it unchanged.

`video_123` is a completed source video that never expires, like a catalogue source.
It must outlive the suite's deletes (a test deletes it and later tests, or parallel
workers, retrieve and remix it again). Deleting it is a real delete: the answer is
`deleted: true`, the rendered media go and lists stop showing it. Then the next request that
names it by id (retrieve, content, remix, edit, extension, delete) finds it seeded again,
with a new `created_at` and at the end of the list order, as if the tests' mock had made it
anew. A delete that races another delete of it also answers `deleted: true`: either way the
video the client named is gone, as asked. The character cannot be deleted; it is seeded
when the app starts.

Both stay in the database after a restart without the option, like any other video.
"""

from __future__ import annotations

from remix_pipeline.contract import DEFAULT_MODEL, DEFAULT_SECONDS, DEFAULT_SIZE
from remix_pipeline.service.records import (
    CharacterRecord,
    JobKind,
    JobRecord,
    motion_seed_for,
)

FIXTURE_VIDEO_ID = "video_123"
FIXTURE_CHARACTER_ID = "char_123"
FIXTURE_PROMPT = "A paper boat drifting down a rain-soaked street (openai-python test fixture)"
FIXTURE_CHARACTER_NAME = "Fixture"


def fixture_video(now: float) -> JobRecord:
    return JobRecord(
        id=FIXTURE_VIDEO_ID,
        kind=JobKind.CATALOGUE,
        model=DEFAULT_MODEL,
        prompt=FIXTURE_PROMPT,
        size=DEFAULT_SIZE,
        seconds=DEFAULT_SECONDS,
        created_at=now,
        remixed_from_video_id=None,
        failure=None,
        motion_seed=motion_seed_for(FIXTURE_PROMPT),
    )


def fixture_character(now: float) -> CharacterRecord:
    return CharacterRecord(id=FIXTURE_CHARACTER_ID, name=FIXTURE_CHARACTER_NAME, created_at=now)
