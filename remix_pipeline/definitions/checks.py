"""Asset checks on the lineage table: completeness, lineage and failure rate."""

import dagster as dg
import pandas as pd

from remix_pipeline.client.gateways import upstream_id
from remix_pipeline.definitions.session import ExperimentSession
from remix_pipeline.lineage import read_lineage
from remix_pipeline.request_table import TableUnreadableError, read_request_table

TERMINAL_STATES = ("completed", "failed")


def _latest_attempts(frame: pd.DataFrame) -> pd.DataFrame:
    if not len(frame):
        return frame
    return frame.sort_values(["key", "attempt"]).groupby("key", as_index=False).tail(1)


def _as_upstream(video_id: object) -> str | None:
    return upstream_id(video_id) if isinstance(video_id, str) and video_id else None


def build_checks(session: ExperimentSession) -> list[dg.AssetChecksDefinition]:
    return [
        build_terminal_record_check(session),
        build_remixed_from_check(session),
        build_failure_rate_check(session),
    ]


def build_terminal_record_check(session: ExperimentSession) -> dg.AssetChecksDefinition:
    settings = session.settings

    @dg.asset_check(
        asset=session.keys.lineage,
        name="every_variant_has_terminal_record",
        description="Every variant in the request table has an attempt that ended.",
    )
    def every_variant_has_terminal_record() -> dg.AssetCheckResult:
        try:
            table = read_request_table(settings.table_path, strict=settings.strict)
        except TableUnreadableError as exc:
            return dg.AssetCheckResult(passed=False, metadata={"error": str(exc)})
        latest = _latest_attempts(read_lineage(session.lineage_path))
        ended = set(latest.loc[latest["state"].isin(TERMINAL_STATES), "key"])
        missing = sorted({r.key for r in table.requests} - ended)
        return dg.AssetCheckResult(
            passed=not missing,
            metadata={
                "variants": len(table.requests),
                "missing": len(missing),
                "missing_keys": dg.MetadataValue.json(missing[:100]),
            },
        )

    return every_variant_has_terminal_record


def build_remixed_from_check(session: ExperimentSession) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=session.keys.lineage,
        name="remixed_from_matches_source",
        description="Every video's remixed_from_video_id is the source the table asked for "
        "(none for a create or an edit of an uploaded file).",
    )
    def remixed_from_matches_source() -> dg.AssetCheckResult:
        frame = read_lineage(session.lineage_path)
        with_video = frame[frame["video_id"].notna()]
        # A create, or an edit of an uploaded file, derives from no stored video: its answer
        # names none. Through a gateway the source may be named in its encoding and the
        # answer in the upstream's own: compared as the upstream knows them.
        differs = [
            _as_upstream(asked) != _as_upstream(answered)
            for asked, answered in zip(
                with_video["source_video_id"], with_video["remixed_from_video_id"], strict=True
            )
        ]
        wrong = with_video[differs]
        return dg.AssetCheckResult(
            passed=wrong.empty,
            metadata={
                "checked": len(with_video),
                "mismatched": len(wrong),
                "mismatched_keys": dg.MetadataValue.json(wrong["key"].tolist()[:100]),
            },
        )

    return remixed_from_matches_source


def build_failure_rate_check(session: ExperimentSession) -> dg.AssetChecksDefinition:
    settings = session.settings

    @dg.asset_check(
        asset=session.keys.lineage,
        name="failure_rate_below_threshold",
        description="The share of variants whose latest attempt failed stays under the threshold.",
    )
    def failure_rate_below_threshold() -> dg.AssetCheckResult:
        latest = _latest_attempts(read_lineage(session.lineage_path))
        ended = latest[latest["state"].isin(TERMINAL_STATES)]
        failed = int((ended["state"] == "failed").sum())
        rate = failed / len(ended) if len(ended) else 0.0
        return dg.AssetCheckResult(
            passed=rate <= settings.failure_rate_warn_threshold,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "failed": failed,
                "ended": len(ended),
                "failure_rate": round(rate, 4),
                "threshold": settings.failure_rate_warn_threshold,
            },
        )

    return failure_rate_below_threshold
