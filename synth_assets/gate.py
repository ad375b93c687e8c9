"""The gate: Great Expectations suites run against the staging schema before the swap.

Validation reads the staging schema through GX's SQL data source, so what is checked is exactly
what would be published. A failed expectation raises ``GateError`` naming table, expectation,
observed and expected values; the publisher then drops the staging schema and the warehouse
stays as it was. Data Docs (GX's HTML) are written for every run, passed or not.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synth_assets.db import scrub, sqlalchemy_url
from synth_assets.errors import ProdtwinError
from synth_assets.expectations import SCHEMA_TOKEN

EXPECTED_KEYS = ("min_value", "max_value", "value_set", "type_", "column_set", "mostly", "or_equal")


class GateError(ProdtwinError):
    """The synthetic data broke an expectation or the privacy rules; nothing was published."""


@dataclass
class TableValidation:
    passed: int = 0
    total: int = 0
    failures: list[str] = field(default_factory=list)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _observed(result: dict[str, Any]) -> str:
    if "observed_value" in result and result["observed_value"] is not None:
        value = result["observed_value"]
        return str(value)[:200]
    count = result.get("unexpected_count")
    if count is not None:
        sample = result.get("partial_unexpected_list") or []
        shown = ", ".join(str(s) for s in sample[:3])
        pct = result.get("unexpected_percent")
        share = f" ({pct:.1f}%)" if isinstance(pct, float) else ""
        return f"{count} unexpected rows{share}" + (f", e.g. {shown}" if shown else "")
    return "?"


def _exception(info: Any) -> str | None:
    """The first line of the error GX caught while computing a metric, if any."""
    items = info.values() if isinstance(info, dict) and "raised_exception" not in info else [info]
    for item in items:
        if isinstance(item, dict) and item.get("exception_message"):
            return str(item["exception_message"]).strip().splitlines()[0][:300]
    return None


def describe_failure(table: str, config: dict[str, Any], result: dict[str, Any]) -> str:
    kwargs = config.get("kwargs", {})
    target = kwargs.get("column") or kwargs.get("column_list") or ""
    if "column_A" in kwargs:
        target = f"{kwargs['column_A']} > {kwargs['column_B']}"
    expected = {k: kwargs[k] for k in EXPECTED_KEYS if k in kwargs}
    what = config.get("description") or ", ".join(f"{k}={v}" for k, v in expected.items())
    if isinstance(what, str) and len(what) > 200:
        what = what[:200] + "..."
    name = f"{config.get('type')}({target})" if target else str(config.get("type"))
    return f"{table}: {name} failed: observed {_observed(result)}; expected {what}"


def validate_schema(
    url: str,
    schema: str,
    suites: dict[str, dict[str, Any]],
    docs_dir: Path | None,
) -> dict[str, TableValidation]:
    """Run every table's suite against ``schema`` in the warehouse; write Data Docs if asked."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    for name in ("great_expectations", "great_expectations.data_context.types.base"):
        logging.getLogger(name).setLevel(logging.ERROR)  # the second sets INFO on itself
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    if docs_dir is not None:
        context.add_data_docs_site(
            site_name="prodtwin",
            site_config={
                "class_name": "SiteBuilder",
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(docs_dir.resolve()),
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
    try:
        definitions = []
        for i, (table, suite_data) in enumerate(suites.items()):
            # one data source per table: GX caches column-name case per data source, so "Code"
            # of one table would shadow "code" of another
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # GX suggests its PostgresDatasource (no sockets)
                source = context.data_sources.add_sql(
                    name=f"warehouse_{i}", connection_string=sqlalchemy_url(url)
                )
            # a query asset: GX lower-cases schema names of table assets; we quote ourselves
            asset = source.add_query_asset(
                name=table, query=f"select * from {_quote(schema)}.{_quote(table)}"
            )
            batch = asset.add_batch_definition_whole_table("all rows")
            suite = gx.ExpectationSuite(name=suite_data["name"])
            for exp in suite_data["expectations"]:
                kwargs = dict(exp["kwargs"])
                if "unexpected_rows_query" in kwargs:
                    kwargs["unexpected_rows_query"] = kwargs["unexpected_rows_query"].replace(
                        SCHEMA_TOKEN, _quote(schema).replace("'", "''")
                    )
                # add_expectation, not add_expectation_configuration: the latter upserts by
                # domain, so a table's second UnexpectedRowsExpectation would replace its first
                suite.add_expectation(
                    ExpectationConfiguration(
                        type=exp["type"],
                        kwargs=kwargs,
                        meta=exp.get("meta"),
                        description=exp.get("description"),
                    ).to_domain_obj()
                )
            suite = context.suites.add(suite)
            definitions.append(
                context.validation_definitions.add(
                    gx.ValidationDefinition(name=table, data=batch, suite=suite)
                )
            )
        actions = []
        if docs_dir is not None:
            actions.append(gx.checkpoint.UpdateDataDocsAction(name="docs", site_names=["prodtwin"]))
        checkpoint = context.checkpoints.add(
            gx.Checkpoint(
                name="prodtwin_gate",
                validation_definitions=definitions,
                actions=actions,
                result_format={"result_format": "SUMMARY"},
            )
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run = checkpoint.run()
    except ProdtwinError:
        raise
    except Exception as error:
        raise ProdtwinError(
            f"running the expectation suites failed: {scrub(str(error), url)}"
        ) from None

    out: dict[str, TableValidation] = {}
    for validation in run.run_results.values():
        table = str(validation.asset_name)
        tv = out.setdefault(table, TableValidation())
        for r in validation.results:
            tv.total += 1
            if r.success:
                tv.passed += 1
            else:
                result = dict(r.result)
                error = _exception(r.exception_info)
                if error:
                    result["observed_value"] = f"an error: {scrub(error, url)}"
                tv.failures.append(
                    describe_failure(table, r.expectation_config.to_json_dict(), result)
                )
    return out
