"""dbt after publishing: ``dbt build`` of the staging models and their tests, per environment.

The published schema is swapped in as a whole, so dbt's views are rebuilt after every publish
(views on the old schema follow it into ``__previous``). The dbt project lives in
``dbt_project/``; ``prodtwin dbt scaffold`` keeps its models in step with the schema.
"""

import re
from pathlib import Path

import dagster as dg

from orchestration.defs.resources import ProdtwinResource
from orchestration.defs.settings import REPO, Settings
from synth_assets.dbt_scaffold import dbt_env, model_names, run_dbt

PROJECT = REPO / "dbt_project"


def dbt_asset(settings: Settings, env: str) -> dg.AssetsDefinition:
    @dg.asset(
        key=dg.AssetKey(["dbt", env]),
        deps=[dg.AssetKey(["published", env, t]) for t in settings.schema.tables],
        group_name=f"published_{env}",
        description=f"dbt build of the staging models and their data tests on {env}.",
    )
    def dbt_build(context: dg.AssetExecutionContext, prodtwin: ProdtwinResource) -> None:
        config = prodtwin.load()
        warehouse = config.environments[env]
        models = sorted(model_names(settings.schema).values())  # the tables published here
        code, output = run_dbt(
            PROJECT,
            env,
            dbt_env(warehouse.url.get_secret_value(), warehouse.schema_name),
            ["build", "--select", *models, "--indirect-selection", "cautious"],
            work_dir=Path(settings.orchestration.storage_dir) / "dbt" / env,
        )
        summary = re.findall(r"Done\. PASS=\d+ WARN=\d+ ERROR=\d+ SKIP=\d+.*", output)
        context.add_output_metadata({"dbt": summary[-1] if summary else "no summary"})
        if code != 0:
            failing = [line.strip() for line in output.splitlines() if "FAIL" in line][:10]
            raise dg.Failure(
                description=f"dbt build failed on {env}",
                metadata={
                    "failures": dg.MetadataValue.md("\n".join(f"- {f}" for f in failing)),
                    "output": dg.MetadataValue.text(output[-5000:]),
                },
                allow_retries=False,
            )

    return dbt_build


def defs(settings: Settings) -> dg.Definitions:
    return dg.Definitions(assets=[dbt_asset(settings, env) for env in settings.environments])
