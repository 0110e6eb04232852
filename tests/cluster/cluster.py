"""A local Dagster cluster made of real parts, and the chaos done to it.

PostgreSQL (scripts/postgres.sh) holds Dagster's run, event and schedule storage and the
ledger, each cluster in databases of its own; Redis (scripts/redis.sh) is the Celery broker
and result backend; `remix-pipeline serve` is the shared Videos API, with a key passed by
environment variable only; a `dagster api grpc` code server serves tests/cluster/location.py;
`dagster-daemon run` drives sensors, the schedule, the run queue, run monitoring and run
retries; two or more `dagster-celery worker start` processes execute the steps. Nothing is
called in-process: the daemon launches every run.

The counts are taken where the truth is: remix jobs at the service's own job store (a second
job for a variant is a second payment), terminal attempts in the ledger, media files on disk
against the digests the ledger recorded, runs in Dagster's storage.
"""

from __future__ import annotations

import os
import random
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from hashlib import sha256
from pathlib import Path

import sqlalchemy as sa
import yaml

from remix_pipeline.ledger import AttemptState, Ledger
from remix_pipeline.request_table import read_request_table
from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
LOCATION = Path(__file__).with_name("location.py")
INSTANCE_YAML = ROOT / "deploy" / "cluster" / "dagster.yaml"
CELERY_YAML = ROOT / "deploy" / "cluster" / "celery.yaml"
TABLE_HEADER = "source_video_id,variant,prompt,experiment,replicates\n"
SOURCES = ("video_src_dunes", "video_src_harbor", "video_src_forest")
UNFINISHED_RUNS = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING")


def write_table(path: Path, variants: int, experiment: str) -> dict[str, tuple[str, str]]:
    """A request table of `variants` distinct remix variants; returns variant -> (source,
    prompt), the pair a remix job at the service is counted by."""
    rows, prompts = [], {}
    for i in range(variants):
        source = SOURCES[i % len(SOURCES)]
        prompt = f"Cluster variation number {i} of {source}"
        rows.append(f"{source},v{i},{prompt},{experiment},1\n")
        prompts[f"v{i}"] = (source, prompt)
    path.write_text(TABLE_HEADER + "".join(rows))
    return prompts


def start_script_server(script: str, env: dict[str, str]) -> str:
    """Start a server with one of the project's scripts (postgres.sh, redis.sh) and return
    the URL it prints."""
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / script)],
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class ClusterSettings:
    """How big and how fast: the CI test uses small numbers, the full matrix larger ones."""

    variants: int = 40
    workers: int = 2
    run_seconds: float = 1.0  # how long the service's jobs take
    requests_per_minute: int | None = None  # slows the submission step so a kill lands in it
    visibility_timeout: int = 30  # seconds before an unacknowledged step is redelivered
    media_scale: float | None = None  # smaller videos render faster at the service
    name: str = "chaos"


@dataclass
class Counts:
    """What the assertions are made on."""

    variants: int
    terminal: int
    lost: int  # variants of the table with no terminal attempt in the ledger
    duplicate_jobs: int  # remix jobs at the service beyond one per variant
    stray_jobs: int  # remix jobs at the service for no variant of the table
    service_jobs: int
    completed: int
    failed: int
    media_missing: int  # completed attempts without a recorded, present video file
    partial_media: int  # temp files, or files whose bytes do not match the ledger's digest
    lineage_rows: int
    unfinished_runs: int  # runs not in a final state once the cluster went quiet
    runs: dict[str, int] = field(default_factory=dict)  # Dagster runs by status

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


class Process:
    """A child in a session of its own, so that a kill reaches its whole tree."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log: Path) -> None:
        self.name, self.args, self.env, self.log = name, args, env, log
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                self.args,
                env=self.env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.popen is None:
            return
        with suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)
        try:
            self.popen.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 15 s: a clean stop at the end."""
        if not self.alive():
            return
        assert self.popen is not None
        try:
            os.killpg(self.popen.pid, signal.SIGTERM)
            self.popen.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()
        except ProcessLookupError:
            pass


class Cluster:
    """One cluster over one experiment, in `root`, on the given servers.

    `postgres_url` is a server URL (any database): the cluster makes and drops databases of its
    own for Dagster and for the ledger. `redis_url` is flushed at start: the cluster owns it.
    """

    def __init__(
        self,
        root: Path,
        postgres_url: str,
        redis_url: str,
        settings: ClusterSettings,
        log: Callable[[str], None] = lambda message: None,
    ) -> None:
        self.root, self.settings, self.say = root, settings, log
        self.redis_url = redis_url
        self.server = sa.engine.make_url(postgres_url).set(drivername="postgresql+psycopg2")
        suffix = uuid.uuid4().hex[:10]
        self.dagster_db, self.ledger_db = f"cluster_dagster_{suffix}", f"cluster_ledger_{suffix}"
        self.home = root / "dagster_home"
        self.output = root / "output"
        self.table = root / "requests.csv"
        self.service_db = root / "service.db"
        self.logs = root / "logs"
        self.api_key = secrets.token_hex(16)
        self.serve_port, self.grpc_port = free_port(), free_port()
        self.workers: list[Process] = []
        self.processes: list[Process] = []
        self.worker_serial = 0
        self.prompts: dict[str, tuple[str, str]] = {}

    # -- setup ------------------------------------------------------------------------------

    def url(self, database: str, driver: str = "postgresql+psycopg2") -> str:
        return self.server.set(drivername=driver, database=database).render_as_string(
            hide_password=False
        )

    def _admin(self) -> sa.Engine:
        return sa.create_engine(self.url("postgres"), isolation_level="AUTOCOMMIT")

    def _write_table(self) -> None:
        self.prompts = write_table(self.table, self.settings.variants, self.settings.name)

    def grow_table(self, variants: int) -> None:
        """Append variants to the table, as a user does while the cluster runs (written to a
        temporary file and renamed, so the sensor never reads half a table)."""
        self.settings.variants = variants
        staging = self.table.with_suffix(".tmp")
        table = self.table
        self.table = staging
        self._write_table()
        self.table = table
        os.replace(staging, table)

    def _write_celery_yaml(self) -> Path:
        config = yaml.safe_load(CELERY_YAML.read_text())
        options = config["execution"]["config"]["config_source"]
        options["broker_transport_options"]["visibility_timeout"] = self.settings.visibility_timeout
        path = self.root / "celery.yaml"
        path.write_text(yaml.safe_dump(config))
        return path

    def environment(self) -> dict[str, str]:
        """Every process's environment: addresses and the key, none of them in a file."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "DAGSTER_"))}
        env.update(
            DAGSTER_HOME=str(self.home),
            DAGSTER_PG_URL=self.url(self.dagster_db),
            DAGSTER_CELERY_BROKER_URL=self.redis_url,
            DAGSTER_CELERY_BACKEND_URL=self.redis_url,
            REMIX_PIPELINE_LEDGER_URL=self.url(self.ledger_db, "postgresql"),
            REMIX_PIPELINE_HOME=str(self.root / "state"),
            OPENAI_BASE_URL=f"http://127.0.0.1:{self.serve_port}/v1",
            OPENAI_API_KEY=self.api_key,
            REMIX_PIPELINE_SERVE_API_KEY=self.api_key,
            REMIX_CLUSTER_TABLE=str(self.table),
            REMIX_CLUSTER_OUTPUT=str(self.output),
            REMIX_CLUSTER_CELERY_YAML=str(self.root / "celery.yaml"),
            PYTHONPATH=str(ROOT),
            # `dagster-celery worker start` runs `celery` from the PATH.
            PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            PYTHONUNBUFFERED="1",
        )
        if self.settings.requests_per_minute:
            env["REMIX_CLUSTER_RPM"] = str(self.settings.requests_per_minute)
        return env

    def start(self) -> None:
        for path in (self.home, self.output, self.logs, self.root / "state"):
            path.mkdir(parents=True, exist_ok=True)
        shutil.copy(INSTANCE_YAML, self.home / "dagster.yaml")
        self._write_table()
        self._write_celery_yaml()
        engine = self._admin()
        with engine.connect() as conn:
            for name in (self.dagster_db, self.ledger_db):
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        import redis

        redis.Redis.from_url(self.redis_url).flushdb()
        env = self.environment()
        (self.root / "workspace.yaml").write_text(
            yaml.safe_dump(
                {
                    "load_from": [
                        {
                            "grpc_server": {
                                "host": "127.0.0.1",
                                "port": self.grpc_port,
                                "location_name": "cluster",
                            }
                        }
                    ]
                }
            )
        )
        self.serve = self._process(
            "serve",
            [
                str(BIN / "remix-pipeline"),
                "serve",
                "--host=127.0.0.1",
                f"--port={self.serve_port}",
                f"--db={self.service_db}",
                "--queued-seconds=0.2",
                f"--run-seconds={self.settings.run_seconds}",
                "--poll-after-ms=200",
                *(
                    [f"--media-scale={self.settings.media_scale}"]
                    if self.settings.media_scale
                    else []
                ),
            ],
            env,
        )
        self.code_server = self._process(
            "code-server",
            [
                str(BIN / "dagster"),
                "api",
                "grpc",
                "-f",
                str(LOCATION),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.grpc_port),
                "--location-name",
                "cluster",
            ],
            env,
        )
        for _ in range(self.settings.workers):
            self.add_worker()
        self._wait(lambda: port_open(self.serve_port), "the service listening", 60)
        self._wait(lambda: port_open(self.grpc_port), "the code server listening", 120)
        self.daemon = self._process("daemon", self._daemon_args(), env)

    def _daemon_args(self) -> list[str]:
        return [str(BIN / "dagster-daemon"), "run", "-w", str(self.root / "workspace.yaml")]

    def _process(self, name: str, args: list[str], env: dict[str, str]) -> Process:
        process = Process(name, args, env, self.logs / f"{name}.log")
        process.start()
        self.processes.append(process)
        return process

    def add_worker(self) -> Process:
        """One more `dagster-celery worker start`, one step at a time (the solo pool: the
        step runs in the worker process itself, so killing the worker kills the step)."""
        self.worker_serial += 1
        name = f"w{self.worker_serial}"
        worker = self._process(
            f"worker-{name}",
            [
                str(BIN / "dagster-celery"),
                "worker",
                "start",
                "-A",
                "dagster_celery.app",
                "-y",
                str(self.root / "celery.yaml"),
                "-n",
                name,
                "--",
                "--pool=solo",
            ],
            self.environment(),
        )
        self.workers.append(worker)
        return worker

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        engine = self._admin()
        try:
            with engine.connect() as conn:
                for name in (self.dagster_db, self.ledger_db):
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        except sa.exc.OperationalError:
            pass
        finally:
            engine.dispose()

    def _wait(self, condition: Callable[[], bool], what: str, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError(f"gave up waiting for {what}; logs in {self.logs}")
            time.sleep(0.2)

    # -- reading the state -----------------------------------------------------------------

    @contextmanager
    def _dagster_db(self) -> Iterator[sa.Connection]:
        engine = sa.create_engine(self.url(self.dagster_db), poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as conn:
                yield conn
        finally:
            engine.dispose()

    def _query(self, sql: str, **params: object) -> list[sa.Row]:
        try:
            with self._dagster_db() as conn:
                return list(conn.execute(sa.text(sql), params))
        except sa.exc.ProgrammingError:  # tables not made yet
            return []

    def run_statuses(self) -> Counter[str]:
        return Counter(dict(self._query("SELECT status, count(*) FROM runs GROUP BY status")))

    def started_ticks(self) -> int:
        rows = self._query("SELECT count(*) FROM job_ticks WHERE status = 'STARTED'")
        return int(rows[0][0]) if rows else 0

    def submission_step_worker(self) -> str | None:
        """The Celery worker running a submission step now, if one does."""
        rows = self._query(
            "SELECT r.run_id FROM runs r JOIN run_tags t ON t.run_id = r.run_id "
            "WHERE r.status = 'STARTED' AND t.key = 'remix_pipeline/step' AND t.value = 'submit'"
        )
        for (run_id,) in rows:
            events = self._query(
                "SELECT event FROM event_logs WHERE run_id = :run_id ORDER BY id", run_id=run_id
            )
            worker, done = None, False
            for (event,) in events:
                if "in celery worker" in event and '"Celery worker"' in event:
                    worker = next(
                        (w.name for w in self.workers if f'"{w.name[7:]}@' in event), None
                    )
                if "STEP_SUCCESS" in event or "STEP_FAILURE" in event:
                    done = True
            if worker and not done:
                return worker
        return None

    def _ledger(self) -> Ledger:
        return Ledger(self.url(self.ledger_db, "postgresql"))

    def ledger_attempts(self) -> int:
        try:
            with self._ledger() as ledger:
                return len(ledger.latest())
        except sa.exc.SQLAlchemyError:
            return 0

    def service_jobs(self) -> list[tuple[str, str]]:
        try:
            with sqlite3.connect(self.service_db) as db:
                rows = db.execute(
                    "SELECT remixed_from_video_id, prompt FROM videos WHERE kind = 'remix'"
                ).fetchall()
        except sqlite3.OperationalError:
            return []
        return [(str(source), str(prompt)) for source, prompt in rows]

    def counts(self) -> Counts:
        keys = {r.key for r in read_request_table(self.table).requests}
        with self._ledger() as ledger:
            latest = ledger.latest()
            terminal = {k for k, a in latest.items() if k in keys and a.is_terminal}
            completed = [a for a in latest.values() if a.state is AttemptState.COMPLETED]
            media_missing = partial = 0
            for attempt in completed:
                records = ledger.media(attempt.key, attempt.attempt)
                if "video" not in records:
                    media_missing += 1
                for record in records.values():
                    path = Path(record.path)
                    if not path.exists() or sha256(path.read_bytes()).hexdigest() != record.sha256:
                        partial += 1
        partial += sum(1 for p in self.output.rglob(".*") if p.is_file())
        jobs = Counter(self.service_jobs())
        wanted = set(self.prompts.values())
        lineage = list(self.output.rglob("*.parquet"))
        lineage_rows = 0
        if lineage:
            import pandas as pd

            lineage_rows = len(pd.read_parquet(max(lineage, key=lambda p: p.stat().st_mtime)))
        runs = self.run_statuses()
        return Counts(
            variants=len(keys),
            terminal=len(terminal),
            lost=len(keys) - len(terminal),
            duplicate_jobs=sum(n - 1 for job, n in jobs.items() if job in wanted),
            stray_jobs=sum(n for job, n in jobs.items() if job not in wanted),
            service_jobs=sum(jobs.values()),
            completed=len(completed),
            failed=sum(1 for a in latest.values() if a.state is AttemptState.FAILED),
            media_missing=media_missing,
            partial_media=partial,
            lineage_rows=lineage_rows,
            unfinished_runs=sum(runs[s] for s in UNFINISHED_RUNS),
            runs=dict(runs),
        )

    def settled(self) -> bool:
        """Every variant terminal with its media, and no run queued or running."""
        try:
            counts = self.counts()
        except sa.exc.SQLAlchemyError:
            return False
        return (
            counts.lost == 0
            and counts.media_missing == 0
            and counts.lineage_rows >= counts.variants
            and counts.unfinished_runs == 0
        )

    def wait_settled(self, seconds: float) -> Counts:
        """Wait until settled (then a little more, for runs a sensor may still request)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.settled():
                time.sleep(3)
                if self.settled():
                    return self.counts()
            time.sleep(1)
        return self.counts()

    # -- chaos -----------------------------------------------------------------------------

    def kill_worker_mid_submission(self, seconds: float = 120) -> str:
        """SIGKILL the worker running a submission step once it has recorded intents and
        before it has finished, and start a replacement, as a supervisor would."""
        before = self.ledger_attempts()  # a later wave's step must record its own
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            name = self.submission_step_worker()
            if name and self.ledger_attempts() > before:
                worker = next(w for w in self.workers if w.name == name)
                worker.kill()
                self.workers.remove(worker)
                self.add_worker()
                self.say(f"SIGKILLed {name} mid-submission ({self.ledger_attempts()} attempts)")
                return name
            time.sleep(0.1)
        raise TimeoutError("no submission step to kill a worker in")

    def kill_daemon_mid_tick(self, down_seconds: float | None = None) -> int:
        """SIGKILL the daemon while a sensor or schedule tick is in progress, then restart it."""
        deadline = time.monotonic() + 30
        while self.started_ticks() == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        ticks = self.started_ticks()
        self.daemon.kill()
        self.say(f"SIGKILLed the daemon ({ticks} ticks in progress)")
        time.sleep(down_seconds if down_seconds is not None else random.uniform(1, 5))
        self.daemon = self._process("daemon", self._daemon_args(), self.environment())
        return ticks

    def stop_broker(self, redis_env: dict[str, str], seconds: float = 30) -> None:
        """Stop Redis for `seconds` (its AOF keeps the queue), then start it again."""
        script = str(ROOT / "scripts" / "redis.sh")
        subprocess.run(["bash", script, "stop"], env={**os.environ, **redis_env}, check=True)
        self.say(f"broker stopped for {seconds:.0f} s")
        time.sleep(seconds)
        subprocess.run(
            ["bash", script], env={**os.environ, **redis_env}, check=True, capture_output=True
        )

    def restart_postgres(self, postgres_env: dict[str, str]) -> None:
        """Stop PostgreSQL (fast shutdown: every connection is cut) and start it again."""
        script = str(ROOT / "scripts" / "postgres.sh")
        env = {**os.environ, **postgres_env}
        subprocess.run(["bash", script, "stop"], env=env, check=True)
        self.say("PostgreSQL stopped")
        time.sleep(random.uniform(2, 6))
        subprocess.run(["bash", script], env=env, check=True, capture_output=True)

    def log_tail(self, lines: int = 40) -> str:
        parts = []
        for path in sorted(self.logs.glob("*.log")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"== {path.name}\n" + "\n".join(text))
        return "\n".join(parts)
