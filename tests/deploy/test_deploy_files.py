"""The configuration files in deploy/ load, and say what docs/deploy.md says they do."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from dagster._core.instance.config import dagster_instance_config

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def load(name: str) -> dict:
    return yaml.safe_load((DEPLOY / name).read_text())


@pytest.mark.parametrize("path", sorted(DEPLOY.glob("*.yaml")), ids=lambda p: p.name)
def test_every_deploy_file_is_a_yaml_mapping(path: Path) -> None:
    assert isinstance(yaml.safe_load(path.read_text()), dict)


def test_dagster_yaml_passes_dagsters_own_instance_schema(monkeypatch) -> None:
    for name in ("DAGSTER_PG_HOST", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB"):
        monkeypatch.setenv(name, "x")
    config, _ = dagster_instance_config(str(DEPLOY))
    assert "postgres" in config["storage"]
    assert config["concurrency"]["pools"]["default_limit"] >= 1


def test_helm_values_use_the_k8s_run_launcher_and_a_user_deployment() -> None:
    values = load("helm-values.yaml")
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    deployment = values["dagster-user-deployments"]["deployments"][0]
    assert {"name", "image", "dagsterApiGrpcArgs", "port", "envSecrets"} <= set(deployment)
    assert values["dagsterDaemon"]["runCoordinator"]["type"] == "QueuedRunCoordinator"


def test_executor_configs_name_their_executors_keys() -> None:
    assert "step_k8s_config" in load("k8s-executor.yaml")["execution"]["config"]
    assert {"broker", "backend"} <= set(load("celery.yaml")["execution"]["config"])


def test_workspace_points_at_a_grpc_code_server() -> None:
    location = load("workspace.yaml")["load_from"][0]["grpc_server"]
    assert {"host", "port", "location_name"} <= set(location)


def test_the_deploy_doc_names_every_file_in_deploy() -> None:
    doc = (ROOT / "docs" / "deploy.md").read_text()
    for path in DEPLOY.glob("*.yaml"):
        assert f"deploy/{path.name}" in doc


def test_cluster_instance_passes_dagsters_own_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    """deploy/cluster/dagster.yaml is the file the cluster test copies into DAGSTER_HOME."""
    monkeypatch.setenv("DAGSTER_PG_URL", "postgresql+psycopg2://u:p@127.0.0.1:5432/d")
    config, _ = dagster_instance_config(str(DEPLOY / "cluster"))
    assert "postgres_url" in config["storage"]["postgres"]
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert config["run_monitoring"]["enabled"] is True
    assert config["run_monitoring"]["max_runtime_seconds"] > 0
    assert config["run_retries"]["enabled"] is True
    assert config["concurrency"]["pools"]["default_limit"] >= 1


def test_cluster_celery_config_passes_the_executors_schema(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`dagster-celery worker start -y deploy/cluster/celery.yaml` validates it this way."""
    from dagster_celery.cli import get_validated_config

    monkeypatch.setenv("DAGSTER_CELERY_BROKER_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("DAGSTER_CELERY_BACKEND_URL", "redis://127.0.0.1:1/0")
    config = get_validated_config(str(DEPLOY / "cluster" / "celery.yaml"))
    assert config["broker"] == "redis://127.0.0.1:1/0"
    assert config["config_source"]["task_acks_late"] is True


def test_the_deploy_doc_names_the_cluster_files() -> None:
    doc = (ROOT / "docs" / "deploy.md").read_text()
    for path in (DEPLOY / "cluster").glob("*.yaml"):
        assert f"deploy/cluster/{path.name}" in doc
