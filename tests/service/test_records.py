"""Identifiers and motion seeds of stored jobs."""

from __future__ import annotations

import re

from remix_pipeline.contract import validate_id
from remix_pipeline.service.records import motion_seed_for, new_character_id, new_video_id


def test_video_ids_are_video_and_32_lowercase_hex_and_url_safe() -> None:
    ids = {new_video_id() for _ in range(50)}
    assert len(ids) == 50
    for video_id in ids:
        assert re.fullmatch(r"video_[0-9a-f]{32}", video_id)
        assert validate_id(video_id) == video_id


def test_character_ids_are_url_safe() -> None:
    assert validate_id(new_character_id(), kind="character id").startswith("char_")


def test_motion_seed_is_stable_per_prompt_and_fits_a_signed_64_bit_integer() -> None:
    assert motion_seed_for("a cat") == motion_seed_for("a cat")
    assert motion_seed_for("a cat") != motion_seed_for("a dog")
    assert 0 <= motion_seed_for("x" * 1000) < 2**63
