"""The gate: Great Expectations suites run against the staging schema before the swap.

Validation reads the staging schema through GX's SQL data source, so what is checked is exactly
what would be published. A failed expectation raises ``GateError`` naming table, expectation,
observed and expected values; the publisher then drops the staging schema and the warehouse
stays as it was. Data Docs (GX's HTML) are written for every run, passed or not.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
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
    if config.get("type") == "expect_table_row_count_to_equal" and kwargs.get("value") == 0:
        # a row check (expectations' unexpected_rows_query): the rows found break its rule
        found = _observed(result)
        rows = "row breaks" if found == "1" else "rows break"
        return f"{table}: {found} {rows} the check: {what}"
    name = f"{config.get('type')}({target})" if target else str(config.get("type"))
    return f"{table}: {name} failed: observed {_observed(result)}; expected {what}"


def _batches(
    table: str, schema: str, expectations: list[dict[str, Any]]
) -> list[tuple[str, str, list[Any]]]:
    """(asset name, query, expectations) for GX: the table, then one query per row check.

    An ``unexpected_rows_expectation`` runs as its own query asset whose row count must be 0:
    GX wraps such queries in an alias-less subquery, which PostgreSQL before 16 rejects.
    """
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    relation = f"{_quote(schema)}.{_quote(table)}"
    plain, batches = [], []
    for exp in expectations:
        kwargs = dict(exp["kwargs"])
        if exp["type"] != "unexpected_rows_expectation":
            plain.append(
                ExpectationConfiguration(
                    type=exp["type"],
                    kwargs=kwargs,
                    meta=exp.get("meta"),
                    description=exp.get("description"),
                )
            )
            continue
        query = (
            kwargs["unexpected_rows_query"]
            .replace(SCHEMA_TOKEN, _quote(schema).replace("'", "''"))
            .replace("{batch}", f"(select * from {relation}) as batch_rows")
        )
        check = ExpectationConfiguration(
            type="expect_table_row_count_to_equal",
            kwargs={"value": 0},
            meta=exp.get("meta"),
            description=exp.get("description") or "no unexpected rows",
        )
        # GX insists that a query asset starts with SELECT
        query = f"SELECT * from ({query}) as unexpected_rows"
        batches.append((f"{table}.rows_{len(batches) + 1}", query, [check]))
    return [(table, f"select * from {relation}", plain), *batches]


def _domain_object(table: str, config: Any) -> Any:
    """A suite's expectation as GX runs it; one a hand edit made invalid (a maximum below the
    minimum) is an error naming the table's suite, the expectation and GX's reason."""
    try:
        return config.to_domain_obj()
    except Exception as error:
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        reason = re.sub(r"\s*\(type=[^)]*\)$", "", lines[-1]) if lines else type(error).__name__
        raise ProdtwinError(
            f"the expectation suite of table {table} is invalid: {config.type} "
            f"{json.dumps(dict(config.kwargs), default=str)}: {reason}; fix it in the suite "
            "file or regenerate the suite (prodtwin expectations generate)"
        ) from None


def _close(sources: list[Any]) -> None:
    """Close every data source's connection pool now: GX keeps one pool per data source (one
    per table here) until its objects are garbage collected, and a warehouse's connection slots
    run out long before that."""
    for source in sources:
        with contextlib.suppress(Exception):
            source.get_execution_engine().close()
        with contextlib.suppress(Exception):
            source.get_engine().dispose()


COUNTS, DETAILS = "BOOLEAN_ONLY", "SUMMARY"


def _run(
    context: Any, name: str, definitions: list[Any], actions: list[Any], result_format: str
) -> Any:
    import great_expectations as gx

    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name=name,
            validation_definitions=definitions,
            actions=actions,
            result_format={"result_format": result_format},
        )
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return checkpoint.run()


def validate_schema(
    url: str,
    schema: str,
    suites: dict[str, dict[str, Any]],
    docs_dir: Path | None,
    result_format: str = COUNTS,
) -> dict[str, TableValidation]:
    """Run every table's suite against ``schema`` in the warehouse; write Data Docs if asked.

    The run counts what breaks each expectation (``BOOLEAN_ONLY``: GX computes the counts of a
    table in few aggregate queries); only the tables whose suite fails run again with examples
    of the unexpected values, which GX fetches with a query per expectation."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

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
    sources: list[Any] = []
    try:
        definitions = []
        owner: dict[str, str] = {}  # asset name -> table
        for i, (table, suite_data) in enumerate(suites.items()):
            # one data source per table: GX caches column-name case per data source, so "Code"
            # of one table would shadow "code" of another
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # GX suggests its PostgresDatasource (no sockets)
                source = context.data_sources.add_sql(
                    name=f"warehouse_{i}", connection_string=sqlalchemy_url(url)
                )
                sources.append(source)
            for name, query, configs in _batches(table, schema, suite_data["expectations"]):
                owner[name] = table
                # query assets: GX lower-cases the schema of table assets; we quote ourselves
                asset = source.add_query_asset(name=name, query=query)
                batch = asset.add_batch_definition_whole_table("all rows")
                suite = gx.ExpectationSuite(name=f"{suite_data['name']}{name[len(table) :]}")
                for config in configs:
                    # add_expectation, not add_expectation_configuration: the latter upserts
                    # by domain, so a second expectation of a kind would replace the first
                    suite.add_expectation(_domain_object(table, config))
                suite = context.suites.add(suite)
                definitions.append(
                    context.validation_definitions.add(
                        gx.ValidationDefinition(name=name, data=batch, suite=suite)
                    )
                )
        actions = []
        if docs_dir is not None:
            actions.append(gx.checkpoint.UpdateDataDocsAction(name="docs", site_names=["prodtwin"]))
        run = _run(context, "prodtwin_gate", definitions, actions, result_format)
        failing = {str(v.asset_name) for v in run.run_results.values() if not v.success}
        failed = [d for d in definitions if d.name in failing]
        if failed and result_format != DETAILS:
            # what failed, again with the values that explain it: the first run only counted
            # (a sample of unexpected values costs a scan of the table per expectation)
            details = _run(context, "prodtwin_gate_details", failed, actions, DETAILS)
            by_name = {str(v.asset_name): v for v in details.run_results.values()}
            results = [by_name.get(str(v.asset_name), v) for v in run.run_results.values()]
        else:
            results = list(run.run_results.values())
    except ProdtwinError:
        raise
    except Exception as error:
        raise ProdtwinError(
            f"running the expectation suites failed: {scrub(str(error), url)}"
        ) from None
    finally:
        _close(sources)

    out: dict[str, TableValidation] = {}
    for validation in results:
        table = owner.get(str(validation.asset_name), str(validation.asset_name))
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
