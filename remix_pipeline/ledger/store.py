"""`Ledger`: the submission ledger at one database URL, safe to share between processes.

Writes go through `transitions` (the legal moves); reads through `queries` and `frames`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from remix_pipeline.contract import Video
from remix_pipeline.ledger import file_guard, queries, transitions
from remix_pipeline.ledger.engine import open_engine, reading, writing
from remix_pipeline.ledger.errors import LedgerError, UnknownAttemptError, VideoAlreadyClaimedError
from remix_pipeline.ledger.frames import lineage_columns
from remix_pipeline.ledger.queries import CHUNK, to_attempt
from remix_pipeline.ledger.records import (
    CARRIED_FIELDS,
    MEDIA_VARIANTS,
    Attempt,
    AttemptState,
    LedgerEvent,
    MediaRecord,
    RunningJob,
)
from remix_pipeline.ledger.schema import attempts_table, events_table, media_table, stored_video
from remix_pipeline.ledger.transitions import NO_VIOLATION, Step
from remix_pipeline.request_table import VariantRequest

if TYPE_CHECKING:
    import pyarrow as pa


class Ledger:
    """What was asked for, sent and claimed, across every process: exactly-once submission
    rests on it (see `transitions`)."""

    def __init__(self, url: str) -> None:
        self._engine = open_engine(url)

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
            with writing(self._engine) as conn:
                existing = queries.latest_row(conn, request.key)
                if existing is not None:
                    return to_attempt(existing)
                values = transitions.intent_values(
                    request, table_hash=table_hash, run_id=run_id, now=now, server=server
                )
                conn.execute(attempts_table.insert().values(**values))
                transitions.record_event(
                    conn,
                    transitions.event_values(
                        request.key,
                        1,
                        now,
                        None,
                        AttemptState.INTENT,
                        transitions.run_detail(run_id),
                    ),
                )
                return to_attempt(queries.row(conn, request.key, 1))
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
        detail = transitions.run_detail(run_id)
        with writing(self._engine) as conn:
            known: set[str] = set()
            for start in range(0, len(batch), CHUNK):
                chunk = [request.key for request in batch[start : start + CHUNK]]
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
                        transitions.intent_values(
                            r, table_hash=table_hash, run_id=run_id, now=now, server=server
                        )
                        for r in new
                    ],
                )
                conn.execute(
                    events_table.insert(),
                    [
                        transitions.event_values(r.key, 1, now, None, AttemptState.INTENT, detail)
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
        with writing(self._engine) as conn:
            latest = queries.latest_row(conn, key)
            if latest is None:
                raise UnknownAttemptError(f"no attempt recorded for {key}")
            transitions.require(latest, Step.RETRY)
            number = latest.attempt + 1
            carried = {name: getattr(latest, name) for name in CARRIED_FIELDS}
            conn.execute(
                attempts_table.insert().values(
                    **transitions.new_attempt(
                        carried, number, run_id=run_id, now=now, server=server
                    )
                )
            )
            transitions.record_event(
                conn,
                transitions.event_values(
                    key,
                    number,
                    now,
                    None,
                    AttemptState.INTENT,
                    f"retry of attempt {latest.attempt}",
                ),
            )
            return to_attempt(queries.row(conn, key, number))

    def mark_sent(self, key: str, attempt: int, *, sent_at: float) -> None:
        """Stamp the moment just before the POST: orphans are looked for from the intent on."""
        with writing(self._engine) as conn:
            state = transitions.require(queries.row(conn, key, attempt, lock=True), Step.SEND)
            transitions.update(conn, key, attempt, sent_at=sent_at)
            transitions.record_event(
                conn, transitions.event_values(key, attempt, sent_at, state, state, "sent")
            )

    def mark_submitted(
        self, key: str, attempt: int, video: Video, *, now: float, adopted: bool = False
    ) -> Attempt:
        """Claim `video` for this attempt; a terminal video also ends the attempt."""
        try:
            with writing(self._engine) as conn:
                return transitions.claim(conn, key, attempt, video, now, adopted=adopted)
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
            with writing(self._engine) as conn:
                return [
                    transitions.claim_or_error(conn, k, a, video, now) for k, a, video in claims
                ]
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
        with writing(self._engine) as conn:
            row = queries.row(conn, key, attempt, lock=True)
            state = transitions.require(row, Step.MARK_UNKNOWN)
            transitions.update(conn, key, attempt, state=AttemptState.UNKNOWN.value)
            transitions.record_event(
                conn,
                transitions.event_values(key, attempt, now, state, AttemptState.UNKNOWN, reason),
            )
            return to_attempt(queries.row(conn, key, attempt))

    def update_video(self, key: str, attempt: int, video: Video, *, now: float) -> Attempt:
        """Keep the latest Video record; a terminal status ends the attempt."""
        ended = self.update_videos([(key, attempt, video)], now=now)
        return ended[0] if ended else self.get(key, attempt)

    def update_videos(
        self, updates: Sequence[tuple[str, int, Video]], *, now: float
    ) -> list[Attempt]:
        """`update_video` for many attempts in one transaction (a poll of many jobs); returns
        the attempts that these records ended.

        Jobs still running only get their record replaced: one read and one batched write for
        all of them (three statements each cost 15 s of a tick with 22,000 changed jobs), and
        no attempt built for them. Jobs that ended take the full path, with its event.
        """
        finishing = transitions.LEGAL_MOVES[Step.FINISH]
        with writing(self._engine) as conn:
            rows = queries.locked_rows(
                conn,
                [(key, attempt) for key, attempt, _ in updates],
                (attempts_table.c.state, attempts_table.c.video_id),
            )
            ended: list[Attempt] = []
            records: list[dict[str, object]] = []
            for key, attempt, video in updates:
                row = rows.get((key, attempt))
                if row is None:
                    raise UnknownAttemptError(f"no attempt {attempt} recorded for {key}")
                if row.video_id != video.id:
                    raise transitions.InvalidTransitionError(
                        f"{key} attempt {attempt} holds video {row.video_id}, not {video.id}"
                    )
                record = transitions.video_json(video)
                if AttemptState(row.state) in finishing and video.is_terminal:
                    transitions.update(conn, key, attempt, video=record, **NO_VIOLATION)
                    transitions.finish(conn, key, attempt, video, now)
                    ended.append(to_attempt(queries.row(conn, key, attempt)))
                    continue
                records.append({"k": key, "a": attempt, "record": record})
            if records:
                conn.execute(
                    attempts_table.update()
                    .where(
                        attempts_table.c.key == sa.bindparam("k"),
                        attempts_table.c.attempt == sa.bindparam("a"),
                    )
                    .values(video=sa.bindparam("record"), **NO_VIOLATION),
                    records,
                )
            return ended

    def assign_server(self, server: str, *, recorded: str | None) -> int:
        """Record `server` on the attempts that have `recorded` as theirs: None for attempts
        written before attempts recorded their server (a ledger of an older version), or an
        earlier name of the same server (a renamed host). Returns how many changed."""
        condition = (
            attempts_table.c.server.is_(None)
            if recorded is None
            else attempts_table.c.server == recorded
        )
        with writing(self._engine) as conn:
            return conn.execute(
                attempts_table.update().where(condition).values(server=server)
            ).rowcount

    def record_poll_violations(
        self, pairs: Sequence[tuple[str, int]], *, reason: str, now: float
    ) -> list[Attempt]:
        """Count one more status answer that broke the contract for each in-flight attempt;
        a good answer (`update_videos`) starts the count again."""
        reason = reason[:500]
        with writing(self._engine) as conn:
            rows = queries.locked_rows(conn, list(pairs))
            for (key, attempt), row in rows.items():
                transitions.update(
                    conn,
                    key,
                    attempt,
                    poll_violations=row.poll_violations + 1,
                    violation=reason,
                    violation_since=row.violation_since or now,
                )
            return [to_attempt(queries.row(conn, key, attempt)) for key, attempt in rows]

    def mark_failed(
        self, key: str, attempt: int, *, code: str, message: str, now: float
    ) -> Attempt:
        """End the attempt for good: the video failed, or the submission can never succeed."""
        with writing(self._engine) as conn:
            row = queries.row(conn, key, attempt, lock=True)
            if row.state == AttemptState.FAILED.value:
                return to_attempt(row)
            state = transitions.require(row, Step.FAIL)
            transitions.fail(conn, key, attempt, state, code=code, message=message, now=now)
            return to_attempt(queries.row(conn, key, attempt))

    def mark_reported(self, pairs: Iterable[tuple[str, int]]) -> None:
        """Remember which finished attempts Dagster already knows about."""
        pairs = list(pairs)
        with writing(self._engine) as conn:
            for start in range(0, len(pairs), CHUNK):
                chunk = pairs[start : start + CHUNK]
                conn.execute(
                    attempts_table.update()
                    .where(sa.tuple_(attempts_table.c.key, attempts_table.c.attempt).in_(chunk))
                    .values(reported=True)
                )

    def record_media(self, records: Sequence[MediaRecord]) -> None:
        """Record (or replace, after a re-download) downloaded files of attempts (an
        attempt's three, say) in one transaction."""
        with writing(self._engine) as conn:
            for record in records:
                queries.row(conn, record.key, record.attempt, lock=True)
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
        with reading(self._engine) as conn:
            return to_attempt(queries.row(conn, key, attempt))

    def media(self, key: str, attempt: int) -> dict[str, MediaRecord]:
        with reading(self._engine) as conn:
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
        with reading(self._engine) as conn:
            for start in range(0, len(pairs), CHUNK):
                chunk = pairs[start : start + CHUNK]
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
        with reading(self._engine) as conn:
            if wanted is None or len(wanted) > 20 * CHUNK:
                rows = list(conn.execute(queries.by_key()))
            else:
                rows = []
                for start in range(0, len(wanted), CHUNK):
                    chunk = wanted[start : start + CHUNK]
                    rows.extend(conn.execute(queries.by_key(attempts_table.c.key.in_(chunk))))
        # Rows come in (key, attempt) order, so the last row of each key is its latest attempt.
        rows = list({row.key: row for row in rows}.values())
        found = {row.key: to_attempt(row) for row in rows}
        if wanted is not None:
            found = {key: found[key] for key in wanted if key in found}
        return found

    def latest_states(self, keys: Iterable[str]) -> list[tuple[AttemptState, bool]]:
        """For each key's latest attempt: its state and whether every media file is recorded.

        Two narrow reads and no Video parsing, so a progress display can ask every second.
        """
        wanted = set(keys)
        latest: dict[str, tuple[int, str]] = {}
        with reading(self._engine) as conn:
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

    def in_flight(self, *, min_violations: int = 0) -> list[Attempt]:
        """Attempts whose server job is running (and whose status answers broke the contract
        at least `min_violations` times in a row)."""
        return self._where(
            attempts_table.c.state == AttemptState.SUBMITTED.value,
            attempts_table.c.poll_violations >= min_violations,
        )

    def running_jobs(self, server: str | None = None) -> list[RunningJob]:
        """The in-flight jobs sent to `server` (a label) or with no server recorded, or all
        of them, in one narrow read: the Video's status and progress come out in SQL."""
        attempts = attempts_table
        video = stored_video(self._engine.dialect.name)
        where = [attempts.c.state == AttemptState.SUBMITTED.value, attempts.c.video_id.is_not(None)]
        if server is not None:
            where.append(sa.or_(attempts.c.server.is_(None), attempts.c.server == server))
        query = sa.select(
            attempts.c.key,
            attempts.c.attempt,
            attempts.c.video_id,
            sa.func.coalesce(attempts.c.sent_at, attempts.c.intent_at),
            video["status"].as_string(),
            video["progress"].as_integer(),
            attempts.c.poll_violations,
        ).where(*where)
        with reading(self._engine) as conn:
            return [RunningJob(*row) for row in conn.execute(query)]

    def servers_in_flight(self) -> set[str]:
        """The servers that hold jobs still running (one narrow read, no attempts built)."""
        with reading(self._engine) as conn:
            rows = conn.execute(
                sa.select(attempts_table.c.server)
                .distinct()
                .where(
                    attempts_table.c.state == AttemptState.SUBMITTED.value,
                    attempts_table.c.video_id.is_not(None),
                    attempts_table.c.server.is_not(None),
                )
            )
            return set(rows.scalars())

    def finished_unreported(self) -> list[Attempt]:
        """Terminal attempts (completed or failed) not yet reported to Dagster."""
        return self._where(
            attempts_table.c.state.in_([AttemptState.COMPLETED.value, AttemptState.FAILED.value]),
            attempts_table.c.reported.is_(False),
        )

    def claimed_video_ids(self) -> set[str]:
        with reading(self._engine) as conn:
            rows = conn.execute(
                sa.select(attempts_table.c.video_id).where(attempts_table.c.video_id.is_not(None))
            )
            return {row.video_id for row in rows}

    def history(self, pairs: Iterable[tuple[str, int]]) -> dict[tuple[str, int], list[LedgerEvent]]:
        """Each attempt's steps, oldest first: what the Dagster UI shows as its history."""
        wanted = set(pairs)
        keys = list(dict.fromkeys(key for key, _ in wanted))
        found: dict[tuple[str, int], list[LedgerEvent]] = {pair: [] for pair in wanted}
        with reading(self._engine) as conn:
            for start in range(0, len(keys), CHUNK):
                rows = conn.execute(
                    sa.select(events_table)
                    .where(events_table.c.key.in_(keys[start : start + CHUNK]))
                    .order_by(events_table.c.id)
                )
                for row in rows:
                    if (row.key, row.attempt) in wanted:
                        found[(row.key, row.attempt)].append(queries.to_event(row))
        return found

    def lineage_columns(self, experiment: str | None = None) -> pa.Table:
        """Every attempt with its Video fields and media as columns (`frames`), read with
        this process's own connections off the file (`file_guard`)."""
        with file_guard.bulk_read(self._engine):
            return lineage_columns(self._engine.url, experiment)

    # Plumbing ----------------------------------------------------------------------------

    def _where(self, *conditions: object) -> list[Attempt]:
        with reading(self._engine) as conn:
            return [to_attempt(row) for row in conn.execute(queries.by_intent(*conditions))]

    def _latest_or_fail(self, key: str) -> Attempt:
        with reading(self._engine) as conn:
            row = queries.latest_row(conn, key)
        if row is None:
            raise UnknownAttemptError(f"no attempt recorded for {key}")
        return to_attempt(row)
