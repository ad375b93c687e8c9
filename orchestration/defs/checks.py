"""Blocking checks between staging and publishing: the GX suite and the privacy gate per table.

GX 1.x is called directly (dagster-ge is 0.x only). The checks are declared on the staged
tables and evaluated by the staging step right after its load, against the staging schema; both
are ``blocking``, so when one fails Dagster does not run the ``published`` step and the
warehouse stays as it was.
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg

from synth_assets.config import Config
from synth_assets.extract import Extract
from synth_assets.publish import staging_name
from synth_assets.refresh import Model, evaluate_gate, prepare_suites
from synth_assets.schema import Schema

CHECKS = (
    ("expectations", "the table's Great Expectations suite (expectations/ in git)"),
    ("privacy", "no production row or personal value; distance to closest record"),
)


def gate_specs(tables: list[str], env: str) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            name, asset=dg.AssetKey(["staged", env, t]), blocking=True, description=text
        )
        for t in tables
        for name, text in CHECKS
    ]


def gate_results(
    config: Config, env: str, schema: Schema, data: Extract, model: Model, run_id: str
) -> Iterator[dg.AssetCheckResult]:
    suites = prepare_suites(config, schema, data, model.roles)
    target = config.environments[env].schema_name
    docs = Path(config.validation.reports_dir) / f"run-{run_id[:8]}" / "data_docs" / env
    report = evaluate_gate(
        config,
        config.environments[env].url.get_secret_value(),
        schema,
        data,
        model,
        suites,
        staging_name(target),
        docs,
    )
    for t in schema.tables:
        asset = dg.AssetKey(["staged", env, t])
        validation = report.validations.get(t)
        privacy = report.privacy[t]
        yield dg.AssetCheckResult(
            asset_key=asset,
            check_name="expectations",
            passed=validation is not None and not validation.failures,
            metadata={
                "passed": validation.passed if validation else 0,
                "total": validation.total if validation else 0,
                "failures": dg.MetadataValue.md(
                    "\n".join(f"- {f}" for f in validation.failures) if validation else "missing"
                ),
                "data docs": dg.MetadataValue.path(str((docs / "index.html").resolve())),
            },
        )
        ratio = privacy.dcr_ratio
        metadata: dict[str, Any] = {
            "copies": privacy.copies,
            "leaked values": sum(privacy.leaks.values()),
            "problems": dg.MetadataValue.md("\n".join(f"- {p}" for p in privacy.problems)),
        }
        if privacy.reference:  # copied by configuration: only its personal data is checked
            metadata["reference table"] = f"production's rows (tables.overrides.{t}.reference)"
        if ratio is not None:  # -1 stands for infinite: real rows repeat, synthetic ones do not
            metadata["DCR ratio"] = round(ratio, 3) if ratio != float("inf") else -1.0
        if privacy.relative_synthetic is not None and privacy.relative_holdout is not None:
            # with the plain ratio, what the gate decides on: a table is refused when both are
            # low (near the training rows, and no nearer the holdout)
            metadata["relative DCR (synthetic)"] = round(privacy.relative_synthetic, 3)
            metadata["relative DCR (holdout)"] = round(privacy.relative_holdout, 3)
        if privacy.unique_synthetic is not None and privacy.unique_fresh is not None:
            # a table of categories only: shares of rows with a pair (or more) of values that
            # one training row alone has, what the gate decides on there
            metadata["rare combinations (synthetic)"] = round(privacy.unique_synthetic, 3)
            metadata["rare combinations (unseen real rows)"] = round(privacy.unique_fresh, 3)
        if privacy.near_synthetic is not None and privacy.near_fresh is not None:
            # shares of rows far nearer one training row than real unseen rows come to each
            # other: what tells a model that copies part of its rows
            metadata["rows close to one training row (synthetic)"] = round(
                privacy.near_synthetic, 3
            )
            metadata["rows close to one training row (unseen real rows)"] = round(
                privacy.near_fresh, 3
            )
        yield dg.AssetCheckResult(
            asset_key=asset, check_name="privacy", passed=privacy.passed, metadata=metadata
        )
