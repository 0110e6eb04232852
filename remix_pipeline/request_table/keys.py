"""The variant key: the one format every partition, ledger row and media folder is named by.

A key is `<stem>.<hash>.r<replicate>`. The hash covers what makes two rows the same request
(the source or parent key, the prompt and, for operations other than remix, their
parameters), so the same table gives the same keys on any machine and a re-run never pays
for finished work twice. The stem keeps the key readable: a truncated source id for a remix.
"""

from __future__ import annotations

import hashlib
import re

from remix_pipeline.request_table.model import REMIX

KEY_HASH_CHARS = 12
KEY_SOURCE_CHARS = 48
KEY_MAX_CHARS = 80
KEY_PATTERN = re.compile(r"[A-Za-z0-9_.:-]{1,80}")


def content(operation: str, spec: str, source: str, prompt: str) -> str:
    """What a root row's key hashes. A remix hashes (source, prompt), as keys always have, so
    ledgers written before other operations existed keep their keys."""
    if operation == REMIX:
        return f"{source}\0{prompt}"
    return f"{operation}\0{spec}\0{source}\0{prompt}"


def chained_content(operation: str, spec: str, parent_key: str, prompt: str) -> str:
    """What a chained row's key hashes: its parent's key stands in for the source."""
    if operation == REMIX:
        return f"{parent_key}\0{prompt}"
    return f"{operation}\0{spec}\0{parent_key}\0{prompt}"


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:KEY_HASH_CHARS]


def stem_of(operation: str, source: str, source_path: object = None) -> str:
    if operation == REMIX:
        return source[:KEY_SOURCE_CHARS]
    if source:
        return f"{operation}-{source[:40]}"
    return f"{operation}-upload" if isinstance(source_path, str) and source_path else operation


def compose(stem: str, digest: str, replicate: int) -> str:
    return f"{stem}.{digest}.r{replicate}"


def variant_key(source_video_id: str, prompt: str, replicate: int) -> str:
    """The key of one replicate of a remix of `source_video_id` with `prompt` (a root row).

    Long source ids are truncated in the key; the hash covers the full id, so keys stay unique.
    """
    digest = content_hash(content(REMIX, "", source_video_id, prompt))
    return compose(stem_of(REMIX, source_video_id), digest, replicate)
