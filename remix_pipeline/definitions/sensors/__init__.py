"""Sensors: turn new table rows into partitions and one run; follow jobs to their end.

Both sensors keep their truth in the ledger and the event log, so a tick killed half-way, a
restarted daemon or a tick evaluated twice neither loses nor repeats work; the fan-out
sensor's cursor only saves re-requesting a table run for a table it has already seen.
"""

from remix_pipeline.definitions.sensors.automation import build_automation_sensor
from remix_pipeline.definitions.sensors.completion import build_completion_sensor
from remix_pipeline.definitions.sensors.fanout import build_fanout_sensor
from remix_pipeline.definitions.submission_runs import RANGE_END_TAG, RANGE_START_TAG

__all__ = [
    "RANGE_END_TAG",
    "RANGE_START_TAG",
    "build_automation_sensor",
    "build_completion_sensor",
    "build_fanout_sensor",
]
