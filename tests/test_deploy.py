"""The deployment files in deploy/, checked against Dagster's own config schemas.

No cluster and no database: each file is validated with the schema Dagster itself uses when it
loads that file (instance config, run launcher, executor, workspace), and each check is also run
on a deliberately broken copy to show that it can fail.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster import job, op, validate_run_config
from dagster._config import process_config, validate_config
from dagster._core.errors import DagsterInvalidConfigError
from dagster._core.instance.config import dagster_instance_config
from dagster._core.instance.ref import InstanceRef
from dagster._core.run_coordinator import QueuedRunCoordinator
from dagster._core.workspace.load import location_origins_from_yaml_paths
from dagster_k8s import K8sRunLauncher, k8s_job_executor
from dagster_postgres import DagsterPostgresStorage
from dagster_postgres.run_storage import PostgresRunStorage

from synth_assets.config import load_config
from synth_assets.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
DEFINITIONS_MODULE = "orchestration.definitions"
SECRET_ENV = ("PRODTWIN_SOURCE_URL", "PRODTWIN_DEV_URL", "PRODTWIN_TEST_URL")
FAKE_URLS = {name: f"postgresql://user@host:5432/{name.lower()}" for name in SECRET_ENV}

PG_ENV = {
    "DAGSTER_PG_HOST": "dagster-metadata.internal",
    "DAGSTER_PG_USER": "dagster",
    "DAGSTER_PG_PASSWORD": "not-a-real-password",
    "DAGSTER_PG_DB": "dagster",
    "DAGSTER_PG_PORT": "5433",
}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@pytest.fixture
def pg_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name, value in PG_ENV.items():
        monkeypatch.setenv(name, value)
    return PG_ENV


def write_instance(folder: Path, config: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return folder


def resolved_storage(config_dir: Path, base_dir: Path) -> dict[str, Any]:
    """The unified storage's config after Dagster resolves its `env:` entries (no connection)."""
    ref = InstanceRef.from_dir(str(base_dir), config_dir=str(config_dir))
    data = ref.storage_data
    assert data is not None
    assert (data.module_name, data.class_name) == ("dagster_postgres", "DagsterPostgresStorage")
    result = process_config(DagsterPostgresStorage.config_type(), data.config_dict)
    assert result.success, result.errors
    return dict(result.value)


# --------------------------------------------------------------------------------------------
# deploy/dagster.yaml
# --------------------------------------------------------------------------------------------


def test_instance_config_validates_against_dagster_schema(pg_env: dict[str, str]) -> None:
    config, custom_class = dagster_instance_config(str(DEPLOY))
    assert custom_class is None
    postgres_db = config["storage"]["postgres"]["postgres_db"]
    assert postgres_db == {
        "hostname": {"env": "DAGSTER_PG_HOST"},
        "username": {"env": "DAGSTER_PG_USER"},
        "password": {"env": "DAGSTER_PG_PASSWORD"},
        "db_name": {"env": "DAGSTER_PG_DB"},
        "port": {"env": "DAGSTER_PG_PORT"},
    }
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert config["telemetry"] == {"enabled": False}
    assert config["retention"]["schedule"]["purge_after_days"] > 0


def test_instance_storage_env_vars_resolve(pg_env: dict[str, str], tmp_path: Path) -> None:
    postgres_db = resolved_storage(DEPLOY, tmp_path)["postgres_db"]
    assert postgres_db["hostname"] == pg_env["DAGSTER_PG_HOST"]
    assert postgres_db["username"] == pg_env["DAGSTER_PG_USER"]
    assert postgres_db["password"] == pg_env["DAGSTER_PG_PASSWORD"]
    assert postgres_db["db_name"] == pg_env["DAGSTER_PG_DB"]
    assert postgres_db["port"] == 5433  # IntSource: the env string becomes an int


def test_instance_storage_fails_without_env(
    pg_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DAGSTER_PG_PORT")
    ref = InstanceRef.from_dir(str(tmp_path), config_dir=str(DEPLOY))
    assert ref.storage_data is not None
    result = process_config(DagsterPostgresStorage.config_type(), ref.storage_data.config_dict)
    assert not result.success
    assert "DAGSTER_PG_PORT" in str(result.errors)


def test_instance_run_coordinator_is_a_real_queued_coordinator(
    pg_env: dict[str, str], tmp_path: Path
) -> None:
    ref = InstanceRef.from_dir(str(tmp_path), config_dir=str(DEPLOY))
    assert ref.run_coordinator_data is not None
    # rehydrate() imports the module/class named in dagster.yaml and processes its config
    coordinator = ref.run_coordinator_data.rehydrate(as_type=QueuedRunCoordinator)
    max_runs = load_yaml(DEPLOY / "dagster.yaml")["run_coordinator"]["config"][
        "max_concurrent_runs"
    ]
    assert coordinator.get_run_queue_config().max_concurrent_runs == max_runs > 0


def _break_unknown_top_key(config: dict[str, Any]) -> None:
    config["telemetryy"] = {"enabled": False}


def _break_postgres_key(config: dict[str, Any]) -> None:
    config["storage"]["postgres"]["postgres_db"]["host"] = {"env": "DAGSTER_PG_HOST"}


def _break_second_storage(config: dict[str, Any]) -> None:
    config["run_storage"] = {"module": "dagster_postgres", "class": "PostgresRunStorage"}


@pytest.mark.parametrize(
    "breakage", [_break_unknown_top_key, _break_postgres_key, _break_second_storage]
)
def test_broken_instance_config_is_rejected(
    pg_env: dict[str, str], tmp_path: Path, breakage: Any
) -> None:
    config = load_yaml(DEPLOY / "dagster.yaml")
    breakage(config)
    with pytest.raises(DagsterInvalidConfigError):
        dagster_instance_config(str(write_instance(tmp_path / "home", config)))


def test_broken_run_coordinator_config_is_rejected(pg_env: dict[str, str], tmp_path: Path) -> None:
    # The instance schema only sees `config:` as a permissive dict; the coordinator's own schema
    # catches the typo when Dagster builds it.
    config = load_yaml(DEPLOY / "dagster.yaml")
    config["run_coordinator"]["config"] = {"max_concurent_runs": 4}
    home = write_instance(tmp_path / "home", config)
    ref = InstanceRef.from_dir(str(tmp_path), config_dir=str(home))
    assert ref.run_coordinator_data is not None
    with pytest.raises(DagsterInvalidConfigError):
        ref.run_coordinator_data.rehydrate(as_type=QueuedRunCoordinator)


# --------------------------------------------------------------------------------------------
# deploy/helm/values.yaml, rendered the way the dagster/dagster chart renders its dagster.yaml
# (templates/helpers/instance/_run-launcher.tpl, _postgresql.tpl, _run-coordinator.tpl).
# Only the keys set in values.yaml are mapped; an unmapped key fails the test instead of being
# silently dropped.
# --------------------------------------------------------------------------------------------

RELEASE_NAME = "dagster"  # `helm upgrade --install dagster ...` -> chart fullname "dagster"
RELEASE_NAMESPACE = "dagster"


def render_k8s_run_launcher_config(values: dict[str, Any]) -> dict[str, Any]:
    """`run_launcher.config` as the chart's dagsterYaml.runLauncher.k8s template renders it."""
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    k8s = values["runLauncher"]["config"]["k8sRunLauncher"]
    global_ = values["global"]

    # Always rendered by the template, from the launcher values or chart-wide values.
    config: dict[str, Any] = {
        "load_incluster_config": k8s["loadInclusterConfig"],
        "job_namespace": k8s.get("jobNamespace") or RELEASE_NAMESPACE,
        "image_pull_policy": k8s["imagePullPolicy"],
        "service_account_name": global_["serviceAccountName"],
        "dagster_home": global_["dagsterHome"],
        "instance_config_map": f"{RELEASE_NAME}-instance",
        "postgres_password_secret": global_["postgresqlSecretName"],
    }
    always = {"loadInclusterConfig", "jobNamespace", "imagePullPolicy"}
    # Rendered only when set: camelCase value -> snake_case instance config, as-is.
    as_is = {
        "kubeconfigFile": "kubeconfig_file",
        "envVars": "env_vars",
        "volumeMounts": "volume_mounts",
        "volumes": "volumes",
        "labels": "labels",
        "resources": "resources",
        "schedulerName": "scheduler_name",
        "securityContext": "security_context",
    }
    for key, value in k8s.items():
        if key in always:
            continue
        if key in as_is:
            if value:
                config[as_is[key]] = value
        elif key == "envSecrets":
            if value:
                config["env_secrets"] = [item["name"] for item in value if "name" in item]
        elif key == "envConfigMaps":
            if value:
                config["env_config_maps"] = [item["name"] for item in value if "name" in item]
        elif key == "failPodOnRunFailure":
            if value:
                config["fail_pod_on_run_failure"] = True
        else:
            pytest.fail(f"runLauncher.config.k8sRunLauncher.{key} is not mapped by this test")
    if values.get("imagePullSecrets"):
        config["image_pull_secrets"] = values["imagePullSecrets"]
    return config


def render_postgres_config(values: dict[str, Any]) -> dict[str, Any]:
    """The storages' `config` as the chart's dagsterYaml.postgresql.config template renders it."""
    pg = values["postgresql"]
    config = {
        "postgres_db": {
            "username": pg["postgresqlUsername"],
            "password": {"env": "DAGSTER_PG_PASSWORD"},
            # dagster.postgresql.host: postgresqlHost when the bundled database is disabled
            "hostname": pg["postgresqlHost"],
            "db_name": pg["postgresqlDatabase"],
            "port": pg["service"]["port"],
            "params": pg.get("postgresqlParams") or {},
        }
    }
    if pg.get("postgresqlScheme"):
        config["postgres_db"]["scheme"] = pg["postgresqlScheme"]
    return config


def render_run_coordinator_config(values: dict[str, Any]) -> dict[str, Any]:
    coordinator = values["dagsterDaemon"]["runCoordinator"]
    assert coordinator["enabled"] and coordinator["type"] == "QueuedRunCoordinator"
    queued = coordinator["config"]["queuedRunCoordinator"]
    mapping = {"maxConcurrentRuns": "max_concurrent_runs"}
    unmapped = set(queued) - set(mapping)
    assert not unmapped, f"queuedRunCoordinator keys not mapped by this test: {unmapped}"
    return {mapping[key]: value for key, value in queued.items()}


@pytest.fixture
def values() -> dict[str, Any]:
    return load_yaml(DEPLOY / "helm" / "values.yaml")


def test_helm_run_launcher_validates_against_k8s_run_launcher_schema(
    values: dict[str, Any],
) -> None:
    config = render_k8s_run_launcher_config(values)
    result = validate_config(K8sRunLauncher.config_type(), config)
    assert result.success, result.errors
    assert config["resources"]["requests"]["memory"]
    assert config["env_secrets"] == ["prodtwin-database-urls"]
    # process_config also resolves defaults, as the instance does when it builds the launcher
    processed = process_config(K8sRunLauncher.config_type(), config)
    assert processed.success, processed.errors
    assert processed.value["job_namespace"] == RELEASE_NAMESPACE


def test_helm_run_launcher_values_typo_is_rejected(values: dict[str, Any]) -> None:
    broken = copy.deepcopy(values)
    resources = broken["runLauncher"]["config"]["k8sRunLauncher"]["resources"]
    resources["request"] = resources.pop("requests")  # passed through the chart verbatim
    result = validate_config(K8sRunLauncher.config_type(), render_k8s_run_launcher_config(broken))
    assert not result.success


def test_broken_run_launcher_config_is_rejected(values: dict[str, Any]) -> None:
    config = render_k8s_run_launcher_config(values)
    wrong_type = {**config, "load_incluster_config": "yes"}
    unknown_key = {**config, "job_namespce": "dagster"}
    missing = {k: v for k, v in config.items() if k != "instance_config_map"}
    for broken in (wrong_type, unknown_key, missing):
        assert not validate_config(K8sRunLauncher.config_type(), broken).success


def test_helm_rendered_instance_validates(
    values: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The instance yaml the chart builds from these values passes Dagster's instance schema."""
    assert values["postgresql"]["enabled"] is False
    assert values["generatePostgresqlPasswordSecret"] is False
    pg_config = render_postgres_config(values)
    instance = {
        "schedule_storage": {
            "module": "dagster_postgres.schedule_storage",
            "class": "PostgresScheduleStorage",
            "config": pg_config,
        },
        "run_storage": {
            "module": "dagster_postgres.run_storage",
            "class": "PostgresRunStorage",
            "config": pg_config,
        },
        "event_log_storage": {
            "module": "dagster_postgres.event_log",
            "class": "PostgresEventLogStorage",
            "config": pg_config,
        },
        "run_launcher": {
            "module": "dagster_k8s",
            "class": "K8sRunLauncher",
            "config": render_k8s_run_launcher_config(values),
        },
        "run_coordinator": {
            "module": "dagster._core.run_coordinator",
            "class": "QueuedRunCoordinator",
            "config": render_run_coordinator_config(values),
        },
        "telemetry": {"enabled": values["telemetry"]["enabled"]},
        "retention": {
            kind: {"purge_after_days": values["retention"][kind]["purgeAfterDays"]}
            for kind in ("schedule", "sensor")
        },
    }
    home = write_instance(tmp_path / "home", instance)
    config, _ = dagster_instance_config(str(home))
    assert config["telemetry"] == {"enabled": False}

    # The storages' and the coordinator's own schemas (the instance schema sees permissive dicts)
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", "not-a-real-password")
    storage = process_config(PostgresRunStorage.config_type(), pg_config)
    assert storage.success, storage.errors
    assert storage.value["postgres_db"]["hostname"] == values["postgresql"]["postgresqlHost"]
    coordinator = validate_config(
        QueuedRunCoordinator.config_type(), render_run_coordinator_config(values)
    )
    assert coordinator.success, coordinator.errors

    broken_pg = copy.deepcopy(pg_config)
    broken_pg["postgres_db"]["port"] = "five-four-three-two"
    assert not process_config(PostgresRunStorage.config_type(), broken_pg).success


def test_helm_code_location_matches_image_and_secrets(values: dict[str, Any]) -> None:
    user = values["dagster-user-deployments"]
    assert user["enabled"] is True
    (deployment,) = user["deployments"]
    assert deployment["dagsterApiGrpcArgs"] == ["-m", DEFINITIONS_MODULE]
    assert deployment["port"] == dockerfile_port(read_dockerfile())
    assert {"name": "prodtwin-database-urls"} in deployment["envSecrets"]
    # the secret's keys are documented where it is created
    text = (DEPLOY / "helm" / "values.yaml").read_text()
    for name in SECRET_ENV:
        assert f"--from-literal={name}=" in text


def test_helm_code_location_config_and_storage_are_mounted(values: dict[str, Any]) -> None:
    """PRODTWIN_CONFIG and the paths in deploy/prodtwin.yaml fall inside the volumes mounted."""
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert deployment["includeConfigInLaunchedRuns"]["enabled"] is True  # run/step pods too
    env = {item["name"]: item["value"] for item in deployment["env"]}
    volumes = {volume["name"]: volume for volume in deployment["volumes"]}
    mounts = {mount["mountPath"]: mount["name"] for mount in deployment["volumeMounts"]}
    assert set(mounts.values()) <= set(volumes)

    def volume_of(path: str) -> dict[str, Any]:
        (mount,) = [m for m in mounts if Path(path).is_relative_to(m)]
        return volumes[mounts[mount]]

    assert volume_of(env["PRODTWIN_CONFIG"])["configMap"]["name"] == "prodtwin-config"
    assert Path(env["PRODTWIN_CONFIG"]).name == "prodtwin.yaml"
    config = load_config(DEPLOY / "prodtwin.yaml", environ=FAKE_URLS)
    assert "configMap" in volume_of(config.orchestration.snapshot)
    assert "persistentVolumeClaim" in volume_of(config.orchestration.storage_dir)


# --------------------------------------------------------------------------------------------
# deploy/prodtwin.yaml: prodtwin's own configuration loader
# --------------------------------------------------------------------------------------------


def test_prodtwin_config_loads_with_the_secret_env_vars() -> None:
    config = load_config(DEPLOY / "prodtwin.yaml", environ=FAKE_URLS)
    assert config.source.url.get_secret_value() == FAKE_URLS["PRODTWIN_SOURCE_URL"]
    assert set(config.environments) == {"dev", "test"}
    assert config.environments["dev"].url.get_secret_value() == FAKE_URLS["PRODTWIN_DEV_URL"]
    assert config.environments["test"].url.get_secret_value() == FAKE_URLS["PRODTWIN_TEST_URL"]
    # the code location reads these without expanding ${VAR}s: they must be literal and absolute
    assert Path(config.orchestration.snapshot).is_absolute()
    assert Path(config.orchestration.storage_dir).is_absolute()


def test_broken_prodtwin_config_is_rejected(tmp_path: Path) -> None:
    missing = {k: v for k, v in FAKE_URLS.items() if k != "PRODTWIN_TEST_URL"}
    with pytest.raises(ConfigError, match="PRODTWIN_TEST_URL"):
        load_config(DEPLOY / "prodtwin.yaml", environ=missing)
    broken = load_yaml(DEPLOY / "prodtwin.yaml")
    broken["orchestration"]["storage"] = broken["orchestration"].pop("storage_dir")
    (tmp_path / "prodtwin.yaml").write_text(yaml.safe_dump(broken))
    with pytest.raises(ConfigError, match="unknown key"):
        load_config(tmp_path / "prodtwin.yaml", environ=FAKE_URLS)


# --------------------------------------------------------------------------------------------
# deploy/k8s_executor.yaml
# --------------------------------------------------------------------------------------------


@op
def _one_table() -> None:
    """A step; stands in for one table of a prodtwin job, so run config can be checked."""


@job(executor_def=k8s_job_executor)
def _k8s_job() -> None:
    _one_table()


@pytest.fixture
def run_config() -> dict[str, Any]:
    return load_yaml(DEPLOY / "k8s_executor.yaml")


def test_executor_config_validates_against_k8s_job_executor(run_config: dict[str, Any]) -> None:
    executor_config = run_config["execution"]["config"]
    schema = k8s_job_executor.config_schema.config_type
    result = validate_config(schema, executor_config)
    assert result.success, result.errors
    assert executor_config["max_concurrent"] > 0
    resources = executor_config["step_k8s_config"]["container_config"]["resources"]
    assert set(resources) == {"requests", "limits"}


def test_executor_run_config_validates_for_a_k8s_job(run_config: dict[str, Any]) -> None:
    # `execution: config:` is where Dagster expects it in a job's run config; the processed
    # config comes back keyed by the executor it configured.
    validated = validate_run_config(_k8s_job, run_config)
    processed = validated["execution"][k8s_job_executor.name]
    assert k8s_job_executor.name == "k8s"
    assert processed["max_concurrent"] == run_config["execution"]["config"]["max_concurrent"]
    assert processed["enable_owner_references"] is True


def test_broken_executor_config_is_rejected(run_config: dict[str, Any]) -> None:
    schema = k8s_job_executor.config_schema.config_type
    executor_config = run_config["execution"]["config"]
    unknown_key = {**executor_config, "max_concurrency": 4}
    wrong_type = {**executor_config, "max_concurrent": "four"}
    bad_k8s_key = copy.deepcopy(executor_config)
    bad_k8s_key["step_k8s_config"]["container"] = {}
    for broken in (unknown_key, wrong_type, bad_k8s_key):
        assert not validate_config(schema, broken).success

    misplaced = {"execution": executor_config}  # missing the `config:` level
    with pytest.raises(DagsterInvalidConfigError):
        validate_run_config(_k8s_job, misplaced)


# --------------------------------------------------------------------------------------------
# deploy/workspace.yaml and deploy/Dockerfile
# --------------------------------------------------------------------------------------------


def workspace_location(path: Path) -> tuple[str, str, str | None]:
    """(location name, module, working directory) of the single location, as Dagster loads it."""
    (origin,) = location_origins_from_yaml_paths([str(path)])
    target = origin.loadable_target_origin
    assert target.module_name is not None
    return origin.location_name, target.module_name, target.working_directory


def test_workspace_loads_the_definitions_module() -> None:
    name, module, working_directory = workspace_location(DEPLOY / "workspace.yaml")
    assert (name, module) == ("prodtwin", DEFINITIONS_MODULE)
    # relative to the repository root, where Dagster is started from
    assert working_directory is not None
    assert (ROOT / working_directory / "orchestration").is_dir()
    # the module exists (found, not imported: importing builds the whole asset graph)
    assert importlib.util.find_spec(DEFINITIONS_MODULE) is not None


def test_broken_workspace_is_rejected(tmp_path: Path) -> None:
    workspace = load_yaml(DEPLOY / "workspace.yaml")
    typo = copy.deepcopy(workspace)
    typo["load_from"][0]["python_module"]["modul_name"] = DEFINITIONS_MODULE
    (tmp_path / "typo.yaml").write_text(yaml.safe_dump(typo))
    with pytest.raises(DagsterInvalidConfigError):
        workspace_location(tmp_path / "typo.yaml")

    other = copy.deepcopy(workspace)
    other["load_from"][0]["python_module"]["module_name"] = "orchestration"
    (tmp_path / "other.yaml").write_text(yaml.safe_dump(other))
    assert workspace_location(tmp_path / "other.yaml")[1] != DEFINITIONS_MODULE


def read_dockerfile(text: str | None = None) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with line continuations joined and comments dropped."""
    if text is None:
        text = (DEPLOY / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    instructions = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, args = line.strip().partition(" ")
            instructions.append((keyword.upper(), args.strip()))
    return instructions


def dockerfile_port(instructions: list[tuple[str, str]]) -> int:
    (expose,) = [args for keyword, args in instructions if keyword == "EXPOSE"]
    return int(expose.split("/")[0])


def dockerfile_problems(instructions: list[tuple[str, str]]) -> list[str]:
    problems = []
    bases = [args.split()[0] for keyword, args in instructions if keyword == "FROM"]
    if not bases or bases[-1] != "python:3.11-slim":
        problems.append(f"final stage is not python:3.11-slim: {bases}")
    users = [args for keyword, args in instructions if keyword == "USER"]
    if not users or users[-1].split(":")[0] in {"root", "0"}:
        problems.append(f"runs as root: {users}")
    cmds = [args for keyword, args in instructions if keyword == "CMD"]
    try:
        cmd = json.loads(cmds[-1]) if cmds else None
    except json.JSONDecodeError:
        cmd = None  # shell form: no signals to the server, and no argv to check
    expected = ["dagster", "api", "grpc", "-m", DEFINITIONS_MODULE, "-h", "0.0.0.0", "-p"]
    if not isinstance(cmd, list) or cmd[:-1] != expected:
        problems.append(f"CMD is not `dagster api grpc -m {DEFINITIONS_MODULE}`: {cmds}")
    elif int(cmd[-1]) != dockerfile_port(instructions):
        problems.append("CMD port differs from EXPOSE")
    if not any(keyword == "RUN" and "pip install ." in args for keyword, args in instructions):
        problems.append("the project is not installed with `pip install .`")
    return problems


def test_dockerfile_serves_the_definitions_module() -> None:
    instructions = read_dockerfile()
    assert dockerfile_problems(instructions) == []
    assert dockerfile_port(instructions) == 4000


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('"-m", "orchestration.definitions"', '"-m", "orchestration"'),
        (
            'CMD ["dagster", "api", "grpc", "-m", "orchestration.definitions", '
            '"-h", "0.0.0.0", "-p", "4000"]',
            "CMD dagster api grpc -m orchestration.definitions -h 0.0.0.0 -p 4000",
        ),
        ("USER 10001:10001", "USER root"),
        ("EXPOSE 4000", "EXPOSE 3030"),
    ],
)
def test_broken_dockerfile_is_rejected(old: str, new: str) -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert old in text
    assert dockerfile_problems(read_dockerfile(text.replace(old, new))) != []


def test_deploy_config_runs_every_step_in_its_own_pod(tmp_path: Path) -> None:
    """executor: k8s in deploy/prodtwin.yaml gives every job dagster-k8s' step-per-pod executor."""
    import dataclasses

    from dagster import EnvVar

    from orchestration.defs import build_definitions
    from orchestration.defs.settings import load_settings

    config = load_config(DEPLOY / "prodtwin.yaml", environ=FAKE_URLS)
    assert config.orchestration.executor == "k8s"
    demo = load_settings()  # the demo's snapshot stands in for the deployment's
    orchestration = config.orchestration.model_copy(update={"storage_dir": str(tmp_path)})
    settings = dataclasses.replace(
        demo, config_path=str(DEPLOY / "prodtwin.yaml"), orchestration=orchestration
    )
    defs = build_definitions(settings)
    jobs = [j for j in defs.resolve_all_job_defs() if j.name.startswith(("nightly", "refresh"))]
    assert len(jobs) == 3
    assert all(job.executor_def.name == k8s_job_executor.name for job in jobs)
    # the database URLs reach Dagster as EnvVars, never as values
    assert defs.resources["source"].url == EnvVar("PRODTWIN_SOURCE_URL")
    assert defs.resources["warehouse_test"].url == EnvVar("PRODTWIN_TEST_URL")
