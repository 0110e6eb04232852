"""Completion ticks lost, repeated and restarted: each finished video is reported exactly once."""

from __future__ import annotations

import os
import time
import warnings

import dagster as dg

from remix_pipeline.definitions.headless import HeadlessRunner
from remix_pipeline.experiment import ExperimentSettings
from tests.support.reliability import video_reports


def tick(runner: HeadlessRunner, instance: dg.DagsterInstance) -> dg.SensorResult:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sensor = runner.defs.get_sensor_def("t_completion_sensor")
        # As the daemon does: from the instance's ref, closed when the tick is done.
        with dg.build_sensor_context(
            instance_ref=instance.get_ref(), definitions=runner.defs
        ) as context:
            return sensor.evaluate_tick(context)


def test_lost_repeated_and_restarted_completion_ticks_report_each_video_once(
    make_project, monkeypatch
):
    project = make_project(24)
    monkeypatch.chdir(project.root)
    for name, value in project.env().items():
        monkeypatch.setenv(name, value)
    for name in [n for n in os.environ if n.startswith("OPENAI_")]:
        monkeypatch.delenv(name)
    settings = ExperimentSettings(name="t", table=str(project.table))
    with dg.DagsterInstance.get() as instance:
        runner = HeadlessRunner(settings, instance)
        runner.evaluate_sensor("t_fanout_sensor")
        ledger = runner.session.ledger()
        deadline = time.monotonic() + 60
        while not all(a.is_terminal for a in ledger.latest().values()):
            assert time.monotonic() < deadline
            tick(runner, instance)  # the daemon died before storing this tick's events
            time.sleep(0.1)

        first = tick(runner, instance)
        again = tick(runner, instance)  # the same tick evaluated twice, nothing stored yet
        assert len(first.asset_events) == len(again.asset_events) == 24
        for event in first.asset_events[:10]:  # the daemon stored part, then died
            instance.report_runless_asset_event(event)

    with dg.DagsterInstance.get() as restarted:  # a new daemon process on the same storage
        runner = HeadlessRunner(settings, restarted)
        rest = tick(runner, restarted)
        assert len(rest.asset_events) == 14
        for event in rest.asset_events:
            restarted.report_runless_asset_event(event)
        assert tick(runner, restarted).asset_events == []

    reports = video_reports(project)
    assert len(reports) == 24 and set(reports.values()) == {1}
