"""The command line's way into the Dagster definitions: one in-process run of the nightly job.

``prodtwin demo`` and ``prodtwin refresh`` execute the same assets, checks and dbt step as the
schedule and the UI; this module turns the run's events back into the summary a person reads.
"""

import contextlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg

from orchestration.defs import build_definitions
from orchestration.defs.settings import Settings
from synth_assets.config import Config
from synth_assets.errors import ProdtwinError
from synth_assets.refresh import read_schema


@dataclass
class RunSummary:
    tables: list[str]
    environments: list[str]
    values: dict[tuple[str, ...], Any] = field(default_factory=dict)  # (stage, table) -> metadata

    def get(self, *key: str, name: str, default: Any = None) -> Any:
        return self.values.get(key, {}).get(name, default)


def _metadata(entries: dict[str, Any]) -> dict[str, Any]:
    return {k: getattr(v, "value", v) for k, v in entries.items()}


def run_nightly(
    config_path: Path,
    config: Config,
    environments: list[str],
    force: bool = False,
    log_level: str = "WARNING",
) -> RunSummary:
    """Run the nightly job in this process; a failed step is one ProdtwinError with its reason
    (``log_level`` of Dagster's console: the CLI shows a failed step's stack only with --debug,
    as the error says why)."""
    schema = read_schema(config)
    settings = Settings(
        str(config_path), str(config_path.parent), tuple(environments), config.orchestration, schema
    )
    defs = build_definitions(settings)
    quiet = {
        "loggers": {"console": {"config": {"log_level": log_level}}},
        "ops": {"extract": {"config": {"force": force}}},
    }
    job = defs.resolve_job_def("nightly_refresh")
    # partitioned tables: the latest complete day, as the schedule would
    day = job.partitions_def.get_last_partition_key() if job.partitions_def else None
    # dbt's progress lines go to stderr: standard output is the summary alone
    with contextlib.redirect_stdout(sys.stderr):
        result = job.execute_in_process(run_config=quiet, raise_on_error=False, partition_key=day)
    summary = RunSummary(list(schema.tables), environments)
    for event in result.get_asset_materialization_events():
        mat = event.step_materialization_data.materialization
        summary.values[tuple(mat.asset_key.path)] = _metadata(mat.metadata)
    for check in result.get_asset_check_evaluations():
        key = (*check.asset_key.path, check.check_name)
        # "outcome": the check's own verdict; its metadata may hold a "passed" of its own (the
        # expectations check's count of expectations met), which once hid a failed check
        summary.values[key] = {
            "passed": check.passed,
            **_metadata(check.metadata),
            "outcome": check.passed,
        }
    if not result.success:
        raise ProdtwinError(_failure(result, summary))
    return summary


def _failure(result: dg.ExecuteInProcessResult, summary: RunSummary) -> str:
    failed_checks = [
        str(v.get("failures") or v.get("problems") or "")
        for k, v in summary.values.items()
        if len(k) == 4 and v.get("outcome") is False
    ]
    if failed_checks:
        return "the gate refused the synthetic data; nothing was published:\n" + "\n".join(
            f for f in failed_checks if f
        )
    for event in result.all_events:
        if event.event_type_value == "STEP_FAILURE":
            data = event.event_specific_data
            message = data.user_failure_data.description if data.user_failure_data else None
            return message or data.error.message.strip()
    return "the refresh run failed"


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def render(summary: RunSummary) -> str:
    """The table the CLI prints: the same columns as the engine's summary."""
    from synth_assets.summary import render_table, summary_headers

    envs = summary.environments
    first = envs[0]
    if not any(k[0] == "extract" for k in summary.values):
        return (
            "production and the settings are unchanged since the refresh every warehouse holds: "
            "nothing was refit or republished (prodtwin refresh --force refreshes anyway)"
        )
    headers = summary_headers(envs)
    rows = []
    for t in summary.tables:
        ratio = summary.get("staged", first, t, "privacy", name="DCR ratio")
        passed = summary.get("staged", first, t, "expectations", name="passed")
        total = summary.get("staged", first, t, "expectations", name="total")
        rows.append(
            [
                t,
                _fmt(summary.get("synthetic", t, name="production rows")),
                *[_fmt(summary.get("published", e, t, name="rows")) for e in envs],
                _fmt(summary.get("model", t, name="fit seconds")),
                _fmt(summary.get("synthetic", t, name="sample seconds")),
                _fmt(summary.get("staged", first, t, name="foreign keys checked")),
                _fmt(summary.get("quality_report", name=f"quality {t}")),
                "inf" if ratio == -1.0 else _fmt(ratio),
                f"{passed}/{total}" if total is not None else "-",
            ]
        )
    lines = [render_table(headers, rows)]
    score = summary.get("quality_report", name="quality score")
    if score is not None:
        lines.append(
            f"quality {score:.2f}; diagnostic "
            f"{_fmt(summary.get('quality_report', name='diagnostic score'))}"
        )
        lines.append(f"quality report: {summary.get('quality_report', name='report')}")
    docs = summary.get("staged", first, summary.tables[0], "expectations", name="data docs")
    if docs:
        lines.append(f"data docs ({first}): {docs}")
    for env in envs:
        lines.append(f"dbt {env}: {dbt_line(summary, env)}")
    return "\n".join(lines)


def dbt_line(summary: RunSummary, env: str) -> str:
    """Models built and data tests passed, from the dbt assets and checks of one environment."""
    models = [k for k in summary.values if len(k) == 3 and k[:2] == ("dbt", env)]
    tests = [v for k, v in summary.values.items() if len(k) == 4 and k[:2] == ("dbt", env)]
    if not models and not tests:
        return "not run"
    passed = sum(1 for v in tests if v.get("outcome"))
    return f"{len(models)} models built, {passed}/{len(tests)} data tests passed"
