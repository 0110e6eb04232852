"""The durable submission ledger: what was asked for, sent, and claimed, across every process.

Exactly-once submission rests on this table (DESIGN section 6). An attempt's intent is
committed before the paid POST, so a crash between the two leaves an INTENT or UNKNOWN row
that must be resolved (by finding the orphan job on the server) before anything is resent.
Each server job is claimed by at most one attempt: `video_id` is UNIQUE, so two processes
adopting the same orphan cannot both win.

SQLAlchemy Core over a URL: SQLite by default (WAL, a busy timeout, write transactions
taken with BEGIN IMMEDIATE so concurrent writers queue instead of failing mid-transaction),
and only portable types and constraints so a shared PostgreSQL works for a cluster. A ledger
written by an older version gains the columns added since when it is opened.
Every state change also appends to `events`, the attempt's history for audits and tests.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from remix_pipeline.contract import ContentVariant, Video, VideoStatus, dump_video
from remix_pipeline.requests import VariantRequest
from remix_pipeline.sqlite import enable_wal

SQLITE_BUSY_TIMEOUT_MS = 30_000
_CHUNK = 500
_READONLY = "remix_ledger_readonly"


class AttemptState(StrEnum):
    INTENT = "intent"
    UNKNOWN = "unknown"
    SUBMITTED = "submitted"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        return self in (AttemptState.COMPLETED, AttemptState.FAILED)


UNRESOLVED_STATES = (AttemptState.INTENT, AttemptState.UNKNOWN)


@dataclass(frozen=True)
class Attempt:
    """One try at one variant; retries are new attempts, so the lineage keeps them all."""

    key: str
    attempt: int
    state: AttemptState
    source_video_id: str
    prompt: str
    prompt_sha256: str
    variant: str
    experiment: str
    replicate: int
    table_hash: str
    row_number: int
    run_id: str | None
    intent_at: float
    sent_at: float | None
    submitted_at: float | None
    finished_at: float | None
    video_id: str | None
    video: dict[str, Any] | None
    error_code: str | None
    error_message: str | None
    adopted: bool
    reported: bool
    server: str | None  # where the POST went: a base URL without credentials, or "embedded"
    poll_violations: int  # status answers in a row that broke the contract for this job
    violation: str | None  # the latest of them
    violation_since: float | None  # when the current run of them began
    operation: str = "remix"  # remix, edit, extend or create (requests.OPERATIONS)
    source_sha256: str | None = None  # of the uploaded file an edit or extension derives from

    @property
    def is_terminal(self) -> bool:
        return self.state.is_terminal


@dataclass(frozen=True)
class MediaRecord:
    """A downloaded file of one attempt's video, with the digest that proves what it held."""

    key: str
    attempt: int
    variant: str
    path: str
    sha256: str
    size_bytes: int
    derived: bool = False  # made here from the MP4: the server could not supply this variant


@dataclass(frozen=True)
class LedgerEvent:
    """One step of one attempt, in commit order, for mirroring into Dagster."""

    event_id: int
    key: str
    attempt: int
    at: float
    from_state: AttemptState | None
    to_state: AttemptState
    detail: str | None


class LedgerError(Exception):
    """A ledger call that contradicts what the ledger already holds."""


class UnknownAttemptError(LedgerError, KeyError):
    """No such (key, attempt) in the ledger."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown attempt"


class InvalidTransitionError(LedgerError):
    """The attempt is in a state from which this step is not allowed."""


class VideoAlreadyClaimedError(LedgerError):
    """That server job already belongs to another attempt: it must not be paid for twice."""

    def __init__(self, video_id: str, key: str | None = None, attempt: int | None = None) -> None:
        self.video_id = video_id
        self.owner = (key, attempt)
        owner = f" by {key} attempt {attempt}" if key is not None else ""
        super().__init__(f"video {video_id} is already claimed{owner}")


_metadata = sa.MetaData()

attempts_table = sa.Table(
    "attempts",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(200), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("source_video_id", sa.String(200), nullable=False),
    sa.Column("prompt", sa.Text, nullable=False),
    sa.Column("prompt_sha256", sa.String(64), nullable=False),
    sa.Column("variant", sa.Text, nullable=False),
    sa.Column("experiment", sa.Text, nullable=False),
    sa.Column("replicate", sa.Integer, nullable=False),
    sa.Column("table_hash", sa.String(64), nullable=False),
    sa.Column("row_number", sa.Integer, nullable=False),
    sa.Column("run_id", sa.String(200), nullable=True),
    sa.Column("intent_at", sa.Float, nullable=False),
    sa.Column("sent_at", sa.Float, nullable=True),
    sa.Column("submitted_at", sa.Float, nullable=True),
    sa.Column("finished_at", sa.Float, nullable=True),
    sa.Column("video_id", sa.String(200), nullable=True),
    sa.Column("video", sa.Text, nullable=True),
    sa.Column("error_code", sa.String(200), nullable=True),
    sa.Column("error_message", sa.Text, nullable=True),
    sa.Column("adopted", sa.Boolean, nullable=False, default=False),
    sa.Column("reported", sa.Boolean, nullable=False, default=False),
    sa.Column("server", sa.String(500), nullable=True),
    sa.Column("poll_violations", sa.Integer, nullable=False, server_default="0"),
    sa.Column("violation", sa.Text, nullable=True),
    sa.Column("violation_since", sa.Float, nullable=True),
    sa.Column("operation", sa.String(16), nullable=False, server_default="remix"),
    sa.Column("source_sha256", sa.String(64), nullable=True),
    sa.UniqueConstraint("key", "attempt", name="uq_attempts_key_attempt"),
    sa.UniqueConstraint("video_id", name="uq_attempts_video_id"),
    sa.Index("ix_attempts_state", "state"),
)

media_table = sa.Table(
    "media",
    _metadata,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("attempt", sa.Integer, primary_key=True),
    sa.Column("variant", sa.String(32), primary_key=True),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("derived", sa.Boolean, nullable=False, server_default=sa.false()),
)

events_table = sa.Table(
    "events",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(200), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("from_state", sa.String(16), nullable=True),
    sa.Column("to_state", sa.String(16), nullable=False),
    sa.Column("detail", sa.Text, nullable=True),
)

_ATTEMPT_COLUMNS = [c for c in attempts_table.columns if c.name != "id"]
_FIELDS = [f.name for f in fields(Attempt)]
if [c.name for c in _ATTEMPT_COLUMNS] != _FIELDS:
    raise RuntimeError("Attempt fields and attempts columns must be in the same order")
_STATE, _VIDEO, _ADOPTED, _REPORTED = (
    _FIELDS.index(name) for name in ("state", "video", "adopted", "reported")
)
MEDIA_VARIANTS: tuple[str, ...] = tuple(v.value for v in ContentVariant)
_NO_VIOLATION: dict[str, Any] = {"poll_violations": 0, "violation": None, "violation_since": None}


class Ledger:
    """The submission ledger at one database URL; safe to share between processes."""

    def __init__(self, url: str) -> None:
        try:
            parsed = sa.engine.make_url(url)
        except sa.exc.ArgumentError:
            # The message would echo the URL, and with it any password.
            raise LedgerError("the ledger URL is not a valid SQLAlchemy URL") from None
        try:
            self._engine = _engine(parsed)
            _metadata.create_all(self._engine)
            _add_missing_columns(self._engine)
        except (sa.exc.NoSuchModuleError, ImportError) as exc:
            raise LedgerError(f"no database driver for {parsed.drivername!r}: {exc}") from None
        except sa.exc.OperationalError as exc:
            where = parsed.render_as_string(hide_password=True)
            raise LedgerError(f"cannot open the ledger at {where}: {exc.orig}") from None

    @classmethod
    def for_path(cls, path: Path) -> Ledger:
        """A SQLite ledger in a local file, creating its folder."""
        path = Path(path).expanduser().resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        return cls(f"sqlite:///{path}")

    def __repr__(self) -> str:
        return f"Ledger({self._engine.url.render_as_string(hide_password=True)!r})"

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Writing -----------------------------------------------------------------------------

    def record_intent(
        self,
        request: VariantRequest,
        *,
        table_hash: str,
        run_id: str | None,
        now: float,
        server: str | None = None,
    ) -> Attempt:
        """Attempt 1 in INTENT, committed; if the key already has attempts, the latest, as is."""
        try:
            with self._write() as conn:
                existing = _latest_row(conn, request.key)
                if existing is not None:
                    return _attempt(existing)
                values = _intent_values(
                    request, table_hash=table_hash, run_id=run_id, now=now, server=server
                )
                conn.execute(attempts_table.insert().values(**values))
                _event(conn, request.key, 1, now, None, AttemptState.INTENT, _run_detail(run_id))
                return _attempt(_row(conn, request.key, 1))
        except sa.exc.IntegrityError:
            # Another process wrote attempt 1 between our read and our insert: theirs stands.
            return self._latest_or_fail(request.key)

    def record_intents(
        self,
        requests: Iterable[VariantRequest],
        *,
        table_hash: str,
        run_id: str | None,
        now: float,
        server: str | None = None,
    ) -> dict[str, Attempt]:
        """`record_intent` for a whole batch in one transaction; the latest attempt per key."""
        batch = list({request.key: request for request in requests}.values())
        with self._write() as conn:
            known: set[str] = set()
            for start in range(0, len(batch), _CHUNK):
                chunk = [request.key for request in batch[start : start + _CHUNK]]
                known.update(
                    conn.execute(
                        sa.select(attempts_table.c.key).where(attempts_table.c.key.in_(chunk))
                    ).scalars()
                )
            new = [request for request in batch if request.key not in known]
            if new:
                conn.execute(
                    attempts_table.insert(),
                    [
                        _intent_values(
                            r, table_hash=table_hash, run_id=run_id, now=now, server=server
                        )
                        for r in new
                    ],
                )
                conn.execute(
                    events_table.insert(),
                    [
                        _event_values(r.key, 1, now, None, AttemptState.INTENT, _run_detail(run_id))
                        for r in new
                    ],
                )
        return self.latest(request.key for request in batch)

    def start_retry(
        self, key: str, *, run_id: str | None, now: float, server: str | None = None
    ) -> Attempt:
        """A new attempt after an ended one (a failure, a video whose media expired before
        they were downloaded, or a start afresh on another server); the earlier attempt stays
        in the lineage."""
        with self._write() as conn:
            latest = _latest_row(conn, key)
            if latest is None:
                raise UnknownAttemptError(f"no attempt recorded for {key}")
            if not AttemptState(latest.state).is_terminal:
                raise InvalidTransitionError(
                    f"{key} attempt {latest.attempt} is {latest.state}; "
                    "only an ended attempt can be tried again"
                )
            number = latest.attempt + 1
            copied = {
                c.name: getattr(latest, c.name)
                for c in _ATTEMPT_COLUMNS
                if c.name
                in (
                    "key",
                    "source_video_id",
                    "prompt",
                    "prompt_sha256",
                    "variant",
                    "experiment",
                    "replicate",
                    "table_hash",
                    "row_number",
                    "operation",
                    "source_sha256",
                )
            }
            conn.execute(
                attempts_table.insert().values(
                    **copied,
                    attempt=number,
                    state=AttemptState.INTENT.value,
                    run_id=run_id,
                    intent_at=now,
                    adopted=False,
                    reported=False,
                    server=server,
                )
            )
            _event(
                conn,
                key,
                number,
                now,
                None,
                AttemptState.INTENT,
                f"retry of attempt {latest.attempt}",
            )
            return _attempt(_row(conn, key, number))

    def mark_sent(self, key: str, attempt: int, *, sent_at: float) -> None:
        """Stamp the moment just before the POST: orphans are looked for from the intent on."""
        with self._write() as conn:
            row = _locked_row(conn, key, attempt)
            state = AttemptState(row.state)
            _require(row, state in UNRESOLVED_STATES, "sent")
            _update(conn, key, attempt, sent_at=sent_at)
            _event(conn, key, attempt, sent_at, state, state, "sent")

    def mark_submitted(
        self, key: str, attempt: int, video: Video, *, now: float, adopted: bool = False
    ) -> Attempt:
        """Claim `video` for this attempt; a terminal video also ends the attempt."""
        try:
            with self._write() as conn:
                return _claim(conn, key, attempt, video, now, adopted=adopted)
        except sa.exc.IntegrityError:
            raise VideoAlreadyClaimedError(video.id) from None

    def mark_submitted_many(
        self, claims: Sequence[tuple[str, int, Video]], *, now: float
    ) -> list[Attempt | LedgerError]:
        """Claim many freshly created videos in one transaction: one commit, not one each.

        Each claim stands alone: one the ledger refuses comes back as its error (nothing of
        it written) and the others are recorded.
        """
        try:
            with self._write() as conn:
                return [_claim_or_error(conn, k, a, video, now) for k, a, video in claims]
        except sa.exc.IntegrityError:
            pass  # another writer claimed one of these videos meanwhile: one at a time
        results: list[Attempt | LedgerError] = []
        for key, attempt, video in claims:
            try:
                results.append(self.mark_submitted(key, attempt, video, now=now))
            except LedgerError as exc:
                results.append(exc)
        return results

    def mark_unknown(self, key: str, attempt: int, *, reason: str, now: float) -> Attempt:
        """The POST may or may not have created a job: resolve it before sending again.

        The reason goes to the event only: the attempt's error fields describe how it ended.
        """
        with self._write() as conn:
            row = _locked_row(conn, key, attempt)
            state = AttemptState(row.state)
            _require(row, state in UNRESOLVED_STATES, "marked unknown")
            _update(conn, key, attempt, state=AttemptState.UNKNOWN.value)
            _event(conn, key, attempt, now, state, AttemptState.UNKNOWN, reason)
            return _attempt(_row(conn, key, attempt))

    def update_video(self, key: str, attempt: int, video: Video, *, now: float) -> Attempt:
        """Keep the latest Video record; a terminal status ends the attempt."""
        (updated,) = self.update_videos([(key, attempt, video)], now=now)
        return updated

    def update_videos(
        self, updates: Sequence[tuple[str, int, Video]], *, now: float
    ) -> list[Attempt]:
        """`update_video` for many attempts in one transaction (a poll of many jobs).

        Jobs still running only get their record replaced: one read and one batched write for
        all of them (three statements each cost 15 s of a tick with 22,000 changed jobs).
        Jobs that ended take the full path, with its event.
        """
        with self._write() as conn:
            rows = _locked_rows(conn, [(key, attempt) for key, attempt, _ in updates])
            results: list[Attempt] = []
            records: list[dict[str, Any]] = []
            for key, attempt, video in updates:
                row = rows.get((key, attempt))
                if row is None:
                    raise UnknownAttemptError(f"no attempt {attempt} recorded for {key}")
                if row.video_id != video.id:
                    raise InvalidTransitionError(
                        f"{key} attempt {attempt} holds video {row.video_id}, not {video.id}"
                    )
                record = _video_json(video)
                if row.state == AttemptState.SUBMITTED.value and video.is_terminal:
                    _update(conn, key, attempt, video=record, **_NO_VIOLATION)
                    _finish(conn, key, attempt, video, now)
                    results.append(_attempt(_row(conn, key, attempt)))
                    continue
                records.append({"k": key, "a": attempt, "record": record})
                results.append(replace(_attempt(row), video=json.loads(record), **_NO_VIOLATION))
            if records:
                conn.execute(
                    attempts_table.update()
                    .where(
                        attempts_table.c.key == sa.bindparam("k"),
                        attempts_table.c.attempt == sa.bindparam("a"),
                    )
                    .values(video=sa.bindparam("record"), **_NO_VIOLATION),
                    records,
                )
            return results

    def assign_server(self, server: str, *, recorded: str | None) -> int:
        """Record `server` on the attempts that have `recorded` as theirs: None for attempts
        written before attempts recorded their server (a ledger of an older version), or an
        earlier name of the same server (a renamed host). Returns how many changed."""
        condition = (
            attempts_table.c.server.is_(None)
            if recorded is None
            else attempts_table.c.server == recorded
        )
        with self._write() as conn:
            return conn.execute(
                attempts_table.update().where(condition).values(server=server)
            ).rowcount

    def record_poll_violations(
        self, pairs: Sequence[tuple[str, int]], *, reason: str, now: float
    ) -> list[Attempt]:
        """Count one more status answer that broke the contract for each in-flight attempt;
        a good answer (`update_videos`) starts the count again."""
        reason = reason[:500]
        with self._write() as conn:
            rows = _locked_rows(conn, list(pairs))
            for (key, attempt), row in rows.items():
                _update(
                    conn,
                    key,
                    attempt,
                    poll_violations=row.poll_violations + 1,
                    violation=reason,
                    violation_since=row.violation_since or now,
                )
            return [_attempt(_row(conn, key, attempt)) for key, attempt in rows]

    def mark_failed(
        self, key: str, attempt: int, *, code: str, message: str, now: float
    ) -> Attempt:
        """End the attempt for good: the video failed, or the submission can never succeed."""
        with self._write() as conn:
            row = _locked_row(conn, key, attempt)
            state = AttemptState(row.state)
            if state is AttemptState.FAILED:
                return _attempt(row)
            _require(row, not state.is_terminal, "failed")
            _update(
                conn,
                key,
                attempt,
                state=AttemptState.FAILED.value,
                error_code=code,
                error_message=message,
                finished_at=now,
            )
            _event(conn, key, attempt, now, state, AttemptState.FAILED, f"{code}: {message}")
            return _attempt(_row(conn, key, attempt))

    def mark_reported(self, pairs: Iterable[tuple[str, int]]) -> None:
        """Remember which finished attempts Dagster already knows about."""
        pairs = list(pairs)
        with self._write() as conn:
            for start in range(0, len(pairs), _CHUNK):
                chunk = pairs[start : start + _CHUNK]
                conn.execute(
                    attempts_table.update()
                    .where(sa.tuple_(attempts_table.c.key, attempts_table.c.attempt).in_(chunk))
                    .values(reported=True)
                )

    def record_media(self, record: MediaRecord) -> None:
        """Record (or replace, after a re-download) one downloaded file of an attempt."""
        self.record_media_many([record])

    def record_media_many(self, records: Sequence[MediaRecord]) -> None:
        """Record several downloaded files (an attempt's three, say) in one transaction."""
        with self._write() as conn:
            for record in records:
                _locked_row(conn, record.key, record.attempt)
                conn.execute(
                    media_table.delete().where(
                        media_table.c.key == record.key,
                        media_table.c.attempt == record.attempt,
                        media_table.c.variant == record.variant,
                    )
                )
                conn.execute(
                    media_table.insert().values(
                        key=record.key,
                        attempt=record.attempt,
                        variant=record.variant,
                        path=record.path,
                        sha256=record.sha256,
                        size_bytes=record.size_bytes,
                        derived=record.derived,
                    )
                )

    # Reading -----------------------------------------------------------------------------

    def get(self, key: str, attempt: int) -> Attempt:
        with self._read() as conn:
            return _attempt(_row(conn, key, attempt))

    def media(self, key: str, attempt: int) -> dict[str, MediaRecord]:
        with self._read() as conn:
            rows = conn.execute(
                sa.select(media_table).where(
                    media_table.c.key == key, media_table.c.attempt == attempt
                )
            ).all()
        return {
            row.variant: MediaRecord(**{**row._asdict(), "derived": bool(row.derived)})
            for row in rows
        }

    def media_variants(self, pairs: Iterable[tuple[str, int]]) -> dict[tuple[str, int], set[str]]:
        """Which media variants each (key, attempt) already has, in one read for them all."""
        pairs = list(pairs)
        found: dict[tuple[str, int], set[str]] = {pair: set() for pair in pairs}
        with self._read() as conn:
            for start in range(0, len(pairs), _CHUNK):
                chunk = pairs[start : start + _CHUNK]
                rows = conn.execute(
                    sa.select(
                        media_table.c.key, media_table.c.attempt, media_table.c.variant
                    ).where(sa.tuple_(media_table.c.key, media_table.c.attempt).in_(chunk))
                )
                for row in rows:
                    found[(row.key, row.attempt)].add(row.variant)
        return found

    def latest(self, keys: Iterable[str] | None = None) -> dict[str, Attempt]:
        """The latest attempt of each key (of `keys`, when given)."""
        wanted = None if keys is None else list(dict.fromkeys(keys))
        with self._read() as conn:
            if wanted is None or len(wanted) > 20 * _CHUNK:
                rows = list(conn.execute(_by_key_query()))
            else:
                rows = []
                for start in range(0, len(wanted), _CHUNK):
                    chunk = wanted[start : start + _CHUNK]
                    rows.extend(conn.execute(_by_key_query(attempts_table.c.key.in_(chunk))))
        # Rows come in (key, attempt) order, so the last row of each key is its latest attempt.
        rows = list({row.key: row for row in rows}.values())
        found = {row.key: _attempt(row) for row in rows}
        if wanted is not None:
            found = {key: found[key] for key in wanted if key in found}
        return found

    def latest_states(self, keys: Iterable[str]) -> list[tuple[AttemptState, bool]]:
        """For each key's latest attempt: its state and whether every media file is recorded.

        Two narrow reads and no Video parsing, so a progress display can ask every second.
        """
        wanted = set(keys)
        latest: dict[str, tuple[int, str]] = {}
        with self._read() as conn:
            rows = conn.execute(
                sa.select(attempts_table.c.key, attempts_table.c.attempt, attempts_table.c.state)
            )
            for row in rows:
                if row.key in wanted and row.attempt > latest.get(row.key, (0, ""))[0]:
                    latest[row.key] = (row.attempt, row.state)
            files = {
                (row.key, row.attempt): row.files
                for row in conn.execute(
                    sa.select(
                        media_table.c.key,
                        media_table.c.attempt,
                        sa.func.count(sa.distinct(media_table.c.variant)).label("files"),
                    ).group_by(media_table.c.key, media_table.c.attempt)
                )
            }
        return [
            (AttemptState(state), files.get((key, attempt), 0) >= len(MEDIA_VARIANTS))
            for key, (attempt, state) in latest.items()
        ]

    def in_flight(self) -> list[Attempt]:
        """Attempts whose server job is running: the completion sensor polls these."""
        return self._where(attempts_table.c.state == AttemptState.SUBMITTED.value)

    def unresolved(self, keys: Iterable[str] | None = None) -> list[Attempt]:
        """Latest attempts whose POST outcome is not known: resolve before sending anything."""
        states = {s.value for s in UNRESOLVED_STATES}
        return [a for a in self.latest(keys).values() if a.state.value in states]

    def completed_unreported(self) -> list[Attempt]:
        """Completed attempts not yet reported to Dagster."""
        return self._where(
            attempts_table.c.state == AttemptState.COMPLETED.value,
            attempts_table.c.reported.is_(False),
        )

    def finished_unreported(self) -> list[Attempt]:
        """Terminal attempts (completed or failed) not yet reported to Dagster."""
        return self._where(
            attempts_table.c.state.in_([AttemptState.COMPLETED.value, AttemptState.FAILED.value]),
            attempts_table.c.reported.is_(False),
        )

    def claimed_video_ids(self) -> set[str]:
        with self._read() as conn:
            rows = conn.execute(
                sa.select(attempts_table.c.video_id).where(attempts_table.c.video_id.is_not(None))
            )
            return {row.video_id for row in rows}

    def events_since(self, event_id: int = 0, *, limit: int = 10_000) -> list[LedgerEvent]:
        """Events after `event_id`, oldest first; pass the last id seen to page on."""
        with self._read() as conn:
            rows = conn.execute(
                sa.select(events_table)
                .where(events_table.c.id > event_id)
                .order_by(events_table.c.id)
                .limit(limit)
            )
            return [
                LedgerEvent(
                    event_id=row.id,
                    key=row.key,
                    attempt=row.attempt,
                    at=row.at,
                    from_state=None if row.from_state is None else AttemptState(row.from_state),
                    to_state=AttemptState(row.to_state),
                    detail=row.detail,
                )
                for row in rows
            ]

    def attempts_frame(self) -> pd.DataFrame:
        """Every attempt with its media as wide columns (`<variant>_path`, `_sha256`, `_bytes`,
        `_derived`).

        Two bulk reads and one merge, so the lineage table costs no per-row queries. `video`
        is left as JSON text: parse it where it is needed.
        """
        names = [c.name for c in _ATTEMPT_COLUMNS]
        with self._read() as conn:
            rows = conn.execute(
                sa.select(*_ATTEMPT_COLUMNS).order_by(
                    attempts_table.c.key, attempts_table.c.attempt
                )
            ).all()
            media_rows = conn.execute(sa.select(media_table)).all()
        frame = pd.DataFrame(list(map(tuple, rows)), columns=names)
        for flag in ("adopted", "reported"):
            frame[flag] = frame[flag].astype(bool)
        media = pd.DataFrame(
            list(map(tuple, media_rows)), columns=[c.name for c in media_table.columns]
        )
        wide = _media_wide(media)
        frame = frame.merge(wide, on=["key", "attempt"], how="left")
        return frame.astype(
            {f"{variant}_bytes": "Int64" for variant in MEDIA_VARIANTS}
            | {f"{variant}_derived": "boolean" for variant in MEDIA_VARIANTS}
        )

    # Plumbing ----------------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self._engine.begin() as conn:
            yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with (
            self._engine.connect().execution_options(**{_READONLY: True}) as conn,
            conn.begin(),
        ):
            yield conn

    def _where(self, *conditions: Any) -> list[Attempt]:
        with self._read() as conn:
            rows = conn.execute(
                sa.select(attempts_table)
                .where(*conditions)
                .order_by(attempts_table.c.intent_at, attempts_table.c.id)
            )
            return [_attempt(row) for row in rows]

    def _latest_or_fail(self, key: str) -> Attempt:
        with self._read() as conn:
            row = _latest_row(conn, key)
        if row is None:
            raise UnknownAttemptError(f"no attempt recorded for {key}")
        return _attempt(row)


def _engine(parsed: sa.URL) -> Engine:
    if parsed.drivername == "postgresql":
        # SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3; the driver installed with
        # dagster-postgres (which the Dagster storage uses too) is psycopg2.
        parsed = parsed.set(drivername="postgresql+psycopg2")
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(parsed, pool_pre_ping=True)
    engine = sa.create_engine(
        parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
    )

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide where transactions begin (see `_on_begin`).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        if parsed.database not in (None, "", ":memory:"):
            enable_wal(cursor, timeout_seconds=SQLITE_BUSY_TIMEOUT_MS / 1000)
        # FULL: an intent must survive a power cut, not only a process crash.
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A write transaction takes the write lock up front, so two writers queue on the
        # busy timeout instead of one failing when it upgrades a read lock.
        readonly = conn.get_execution_options().get(_READONLY, False)
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

    return engine


def _row(conn: Connection, key: str, attempt: int) -> sa.Row[Any]:
    row = conn.execute(
        sa.select(attempts_table).where(
            attempts_table.c.key == key, attempts_table.c.attempt == attempt
        )
    ).first()
    if row is None:
        raise UnknownAttemptError(f"no attempt {attempt} recorded for {key}")
    return row


def _locked_row(conn: Connection, key: str, attempt: int) -> sa.Row[Any]:
    """The row, locked for this transaction where the database supports it (PostgreSQL)."""
    row = conn.execute(
        sa.select(attempts_table)
        .where(attempts_table.c.key == key, attempts_table.c.attempt == attempt)
        .with_for_update()
    ).first()
    if row is None:
        raise UnknownAttemptError(f"no attempt {attempt} recorded for {key}")
    return row


def _locked_rows(
    conn: Connection, pairs: Sequence[tuple[str, int]]
) -> dict[tuple[str, int], sa.Row[Any]]:
    """`_locked_row` for many (key, attempt) pairs, a chunk of keys per query.

    By key, not by (key, attempt) row values: SQLite scans the whole table for those.
    """
    wanted = set(pairs)
    keys = list(dict.fromkeys(key for key, _ in pairs))
    found: dict[tuple[str, int], sa.Row[Any]] = {}
    for start in range(0, len(keys), _CHUNK):
        rows = conn.execute(
            sa.select(attempts_table)
            .where(attempts_table.c.key.in_(keys[start : start + _CHUNK]))
            .with_for_update()
        )
        found.update(((r.key, r.attempt), r) for r in rows if (r.key, r.attempt) in wanted)
    return found


def _latest_row(conn: Connection, key: str) -> sa.Row[Any] | None:
    return conn.execute(
        sa.select(attempts_table)
        .where(attempts_table.c.key == key)
        .order_by(attempts_table.c.attempt.desc())
        .limit(1)
    ).first()


def _by_key_query(*conditions: Any) -> sa.Select[Any]:
    """Attempts in (key, attempt) order: one scan of the unique index, no grouping."""
    return (
        sa.select(attempts_table)
        .where(*conditions)
        .order_by(attempts_table.c.key, attempts_table.c.attempt)
    )


def _require(row: sa.Row[Any], allowed: bool, step: str) -> None:
    if not allowed:
        raise InvalidTransitionError(
            f"{row.key} attempt {row.attempt} is {row.state}; it cannot be {step}"
        )


def _update(conn: Connection, key: str, attempt: int, **values: Any) -> None:
    conn.execute(
        attempts_table.update()
        .where(attempts_table.c.key == key, attempts_table.c.attempt == attempt)
        .values(**values)
    )


def _claim(
    conn: Connection, key: str, attempt: int, video: Video, now: float, *, adopted: bool
) -> Attempt:
    """Give `video` to the attempt; every refusal is raised before anything is written."""
    row = _locked_row(conn, key, attempt)
    state = AttemptState(row.state)
    if row.video_id == video.id:
        return _attempt(row)
    _require(row, state in UNRESOLVED_STATES, f"given video {video.id}")
    owner = conn.execute(
        sa.select(attempts_table.c.key, attempts_table.c.attempt).where(
            attempts_table.c.video_id == video.id
        )
    ).first()
    if owner is not None:
        raise VideoAlreadyClaimedError(video.id, owner.key, owner.attempt)
    _update(
        conn,
        key,
        attempt,
        state=AttemptState.SUBMITTED.value,
        video_id=video.id,
        video=_video_json(video),
        submitted_at=now,
        adopted=adopted,
    )
    how = "adopted orphan" if adopted else "submitted"
    _event(conn, key, attempt, now, state, AttemptState.SUBMITTED, f"{how} {video.id}")
    if video.is_terminal:
        _finish(conn, key, attempt, video, now)
    return _attempt(_row(conn, key, attempt))


def _claim_or_error(
    conn: Connection, key: str, attempt: int, video: Video, now: float
) -> Attempt | LedgerError:
    try:
        return _claim(conn, key, attempt, video, now, adopted=False)
    except LedgerError as exc:
        return exc


def _finish(conn: Connection, key: str, attempt: int, video: Video, now: float) -> None:
    if video.status is VideoStatus.COMPLETED:
        _update(conn, key, attempt, state=AttemptState.COMPLETED.value, finished_at=now)
        _event(conn, key, attempt, now, AttemptState.SUBMITTED, AttemptState.COMPLETED, video.id)
        return
    code = video.error.code if video.error else "failed"
    message = video.error.message if video.error else "the video failed without an error"
    _update(
        conn,
        key,
        attempt,
        state=AttemptState.FAILED.value,
        finished_at=now,
        error_code=code,
        error_message=message,
    )
    _event(
        conn, key, attempt, now, AttemptState.SUBMITTED, AttemptState.FAILED, f"{code}: {message}"
    )


def _event(
    conn: Connection,
    key: str,
    attempt: int,
    at: float,
    from_state: AttemptState | None,
    to_state: AttemptState,
    detail: str | None,
) -> None:
    conn.execute(
        events_table.insert().values(
            **_event_values(key, attempt, at, from_state, to_state, detail)
        )
    )


def _event_values(
    key: str,
    attempt: int,
    at: float,
    from_state: AttemptState | None,
    to_state: AttemptState,
    detail: str | None,
) -> dict[str, Any]:
    return {
        "key": key,
        "attempt": attempt,
        "at": at,
        "from_state": None if from_state is None else from_state.value,
        "to_state": to_state.value,
        "detail": detail,
    }


def _run_detail(run_id: str | None) -> str | None:
    return None if run_id is None else f"run {run_id}"


def _intent_values(
    request: VariantRequest,
    *,
    table_hash: str,
    run_id: str | None,
    now: float,
    server: str | None,
) -> dict[str, Any]:
    return {
        "key": request.key,
        "attempt": 1,
        "state": AttemptState.INTENT.value,
        "source_video_id": request.source_video_id,
        "prompt": request.prompt,
        "prompt_sha256": request.prompt_sha256,
        "variant": request.variant,
        "experiment": request.experiment,
        "replicate": request.replicate,
        "table_hash": table_hash,
        "row_number": request.row_number,
        "run_id": run_id,
        "intent_at": now,
        "adopted": False,
        "reported": False,
        "server": server,
        "poll_violations": 0,
        "operation": request.operation,
        "source_sha256": request.source_sha256,
    }


def _video_json(video: Video) -> str:
    return json.dumps(dump_video(video), separators=(",", ":"), sort_keys=True)


def _attempt(row: sa.Row[Any]) -> Attempt:
    """Positional, not by name: reading 100,000 attempts stays well under a second."""
    values = list(row)[1:]  # every attempts query selects the whole table, id first
    values[_STATE] = AttemptState(values[_STATE])
    if values[_VIDEO] is not None:
        values[_VIDEO] = json.loads(values[_VIDEO])
    values[_ADOPTED] = bool(values[_ADOPTED])
    values[_REPORTED] = bool(values[_REPORTED])
    return Attempt(*values)


def _add_missing_columns(engine: Engine) -> None:
    """Columns added since a ledger was created, added to it (each has a default or is
    nullable). Two processes opening an old ledger at once may race: the loser finds the
    column there and carries on."""
    inspector = sa.inspect(engine)
    for table in _metadata.sorted_tables:
        present = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in present:
                continue
            ddl = sa.schema.CreateColumn(column).compile(dialect=engine.dialect)
            try:
                with engine.begin() as conn:
                    conn.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {ddl}")
            except (sa.exc.OperationalError, sa.exc.ProgrammingError):
                refreshed = {c["name"] for c in sa.inspect(engine).get_columns(table.name)}
                if column.name not in refreshed:
                    raise


_MEDIA_FIELDS = ("path", "sha256", "bytes", "derived")


def _media_wide(media: pd.DataFrame) -> pd.DataFrame:
    """One row per (key, attempt), four columns per media variant, always all present."""
    columns = ["key", "attempt"] + [
        f"{variant}_{field}" for variant in MEDIA_VARIANTS for field in _MEDIA_FIELDS
    ]
    if media.empty:
        return pd.DataFrame({name: pd.Series(dtype=object) for name in columns}).astype(
            {"attempt": "int64"}
        )
    media = media.rename(columns={"size_bytes": "bytes"})
    media["derived"] = media["derived"].astype(bool)
    wide = media.pivot(index=["key", "attempt"], columns="variant", values=list(_MEDIA_FIELDS))
    wide.columns = [f"{variant}_{field}" for field, variant in wide.columns]
    wide = wide.reset_index()
    for name in columns:
        if name not in wide.columns:
            wide[name] = None
    return wide[columns]
