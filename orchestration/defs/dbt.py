"""dbt after publishing, through dagster-dbt: every staging model and data test is an asset or an
asset check of its own, downstream of the published table it reads, per environment.

One dbt project (``dbt_project/``) serves every environment: each environment gets its own
``@dbt_assets`` (keys ``dbt/<env>/<model>``; the project's sources map to
``published/<env>/<table>``) and runs ``dbt build --target <env>`` with that warehouse's
connection in ``PRODTWIN_DBT_*`` variables, never on the command line. dbt's manifest is parsed
once per change of the project (``dbt parse`` connects to nothing), so loading the code location
stays free of databases. The published schema is swapped in as a whole, so the views are rebuilt
after every publish (views on the old schema follow it into ``__previous``).
"""

import contextlib
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from orchestration.defs.resources import resource_keys, run_config
from orchestration.defs.settings import REPO, Settings
from synth_assets.dbt_scaffold import dbt_env, model_names, run_dbt
from synth_assets.errors import ProdtwinError

PROJECT = REPO / "dbt_project"
PARSE_DIR = REPO / ".prodtwin" / "dbt" / "parse"
# profiles.yml needs values to render; parsing never connects
PARSE_ENV = dbt_env("postgresql://parse@localhost:5432/parse", "public")


def _newest_source(project: Path) -> float:
    files = [project / "dbt_project.yml", project / "profiles.yml"]
    for folder in ("models", "tests", "macros"):
        files += [p for p in (project / folder).rglob("*") if p.is_file()]
    return max((p.stat().st_mtime for p in files if p.exists()), default=0.0)


def manifest_path(project: Path = PROJECT, work: Path = PARSE_DIR) -> Path:
    """dbt's manifest of the project, parsed again when a model or test changed."""
    manifest = work / "target" / "manifest.json"
    if manifest.is_file() and manifest.stat().st_mtime >= _newest_source(project):
        return manifest
    code, output = run_dbt(project, "dev", PARSE_ENV, ["parse"], work_dir=work, timeout=600)
    if code != 0 or not manifest.is_file():
        raise ProdtwinError(f"dbt parse of {project} failed:\n{output[-3000:]}")
    return manifest


class WarehouseTranslator(DagsterDbtTranslator):
    """dbt nodes of one environment: models under ``dbt/<env>``, sources = published tables."""

    def __init__(self, env: str) -> None:
        super().__init__()
        self.env = env

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            table = dbt_resource_props.get("identifier") or dbt_resource_props["name"]
            return dg.AssetKey(["published", self.env, table])
        return dg.AssetKey(["dbt", self.env, dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return f"dbt_{self.env}"


@contextlib.contextmanager
def environ(values: dict[str, str]) -> Iterator[None]:
    """dbt reads its connection from the environment of the step's process, then it is undone."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _failures(invocation: Any) -> list[str]:
    """The failing models and tests with dbt's message, for the run's failure."""
    try:
        results = invocation.get_artifact("run_results.json")["results"]
    except Exception:  # no artifact: dbt stopped before running anything
        return ["dbt did not run; see the step's logs"]
    return [
        f"- {r['unique_id']}: {r['status']}: {(r.get('message') or '').strip()[:300]}"
        for r in results
        if r.get("status") in ("fail", "error")
    ][:20]


def dbt_assets_for(
    settings: Settings, env: str, project: DbtProject, models: list[str]
) -> dg.AssetsDefinition:
    @dbt_assets(
        manifest=project.manifest_path,
        project=project,
        name=f"dbt_{env}",
        select=" ".join(models),
        dagster_dbt_translator=WarehouseTranslator(env),
        required_resource_keys=resource_keys(settings) | {"dbt"},
    )
    def build(context: dg.AssetExecutionContext) -> Iterator[Any]:
        config = run_config(context.resources, settings.environments)
        warehouse = config.environments[env]
        dbt: DbtCliResource = context.resources.dbt
        with environ(dbt_env(warehouse.url.get_secret_value(), warehouse.schema_name)):
            # cautious: a relationships test to a model of a table this schema lacks is skipped
            args = ["build", "--target", env, "--indirect-selection", "cautious"]
            invocation = dbt.cli(args, context=context, raise_on_error=False)
            yield from invocation.stream()
        if not invocation.is_successful():
            raise dg.Failure(
                description=f"dbt build failed on {env}:\n" + "\n".join(_failures(invocation)),
                allow_retries=False,
            )

    return build


def defs(settings: Settings) -> dg.Definitions:
    wanted = set(model_names(settings.schema).values())
    existing = {p.stem for p in (PROJECT / "models" / "staging").glob("stg_*.sql")}
    models = sorted(wanted & existing)  # tables without a model yet: prodtwin dbt scaffold
    if not models:
        return dg.Definitions()
    project = DbtProject(
        project_dir=PROJECT, profiles_dir=PROJECT, target_path=PARSE_DIR / "target"
    )
    manifest_path()
    return dg.Definitions(
        assets=[dbt_assets_for(settings, env, project, models) for env in settings.environments],
        resources={
            "dbt": DbtCliResource(
                project_dir=project,
                profiles_dir=str(PROJECT),
                # the dbt of this Python's environment, on PATH or not (a venv not activated)
                dbt_executable=str(Path(sys.executable).parent / "dbt"),
            )
        },
    )
