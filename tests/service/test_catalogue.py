"""The seeded source catalogue: found in a checkout, validated, turned into completed jobs."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from remix_pipeline.contract import InvalidIdError, validate_id
from remix_pipeline.service.catalogue import load_catalogue, source_jobs
from remix_pipeline.service.records import JobKind, motion_seed_for


def test_checkout_catalogue_loads_with_url_safe_ids() -> None:
    entries = load_catalogue()
    assert len(entries) >= 1
    for entry in entries:
        assert validate_id(entry.id) == entry.id


def test_source_jobs_are_catalogue_kind_with_a_prompt_derived_motion_seed() -> None:
    entry = load_catalogue()[0]
    (job,) = source_jobs([entry], 5.0)
    assert job.kind is JobKind.CATALOGUE
    assert (job.created_at, job.motion_seed) == (5.0, motion_seed_for(entry.prompt))


def test_an_entry_with_an_unsafe_id_is_refused() -> None:
    text = '[{"id": "../x", "prompt": "p", "size": "1280x720", "seconds": "4"}]'
    with pytest.raises(InvalidIdError):
        load_catalogue(text)


def test_an_entry_with_an_unknown_key_is_refused() -> None:
    text = '[{"id": "v", "prompt": "p", "size": "1280x720", "seconds": "4", "x": 1}]'
    with pytest.raises(ValidationError):
        load_catalogue(text)
