"""The command line: exit codes and one clear line on failure, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg

from tests.helpers import scalar


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "synth_assets.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def test_missing_config_file_is_one_line_and_exit_1(tmp_path: Path) -> None:
    result = _run("refresh", "--config", str(tmp_path / "prodtwin.yaml"))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("prodtwin: configuration file")


def test_unreachable_source_names_host_without_password(tmp_path: Path) -> None:
    config = tmp_path / "prodtwin.yaml"
    config.write_text(
        "source: {url: 'postgresql://alice:s3cr3t-pw@127.0.0.1:1/prod'}\n"
        "environments: {dev: {url: 'postgresql://alice:s3cr3t-pw@127.0.0.1:1/dev'}}\n"
    )
    result = _run("refresh", "--config", str(config))
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert (
        "cannot connect to the source at postgresql://alice:***@127.0.0.1:1/prod" in result.stderr
    )
    assert "s3cr3t-pw" not in result.stderr + result.stdout


def test_refresh_prints_the_summary_and_exits_0(
    demo_source: str, make_database, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    dev = make_database("cli")
    config = tmp_path / "prodtwin.yaml"
    config.write_text(
        "source: {url: '${SRC}', schema: public}\n"
        "environments: {dev: {url: '${DEV}', schema: synthetic}}\n"
        "tables: {include: [customers, orders, addresses, employees]}\n"
        f"validation: {{expectations_dir: '{tmp_path}/exp', reports_dir: '{tmp_path}/reports'}}\n"
    )
    import os

    env = {**os.environ, "SRC": demo_source, "DEV": dev}
    result = _run("refresh", "--config", str(config), env=env)
    assert result.returncode == 0, result.stderr
    header = result.stdout.splitlines()[0].split()
    assert header[:3] == ["table", "prod", "rows"]
    assert "FKs" in header
    assert scalar(dev, "select count(*) from synthetic.customers") == 2000
    assert "quality report: " in result.stdout
    assert (tmp_path / "exp" / "public" / "orders.json").is_file()
    with psycopg.connect(dev) as conn:
        schemas = {r[0] for r in conn.execute("select nspname from pg_namespace")}
    assert "synthetic__staging" not in schemas


def test_a_refused_gate_is_its_reason_without_dagsters_stack(make_database, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    source, dev = make_database("cli_refused"), make_database("cli_refused_dev")
    with psycopg.connect(source) as conn:
        conn.execute(
            "select setseed(0.5); create table customer (id int primary key, country text not "
            "null, spend float8 not null); insert into customer select i, (array['DE', 'US', "
            "'GB'])[1 + floor(random() * 3)::int], random() * 900 from generate_series(1, 200) i"
        )
    config = tmp_path / "prodtwin.yaml"
    config.write_text(
        "source: {url: '${SRC}', schema: public}\n"
        "environments: {dev: {url: '${DEV}', schema: public}}\n"
        f"validation: {{expectations_dir: '{tmp_path}/exp', reports_dir: '{tmp_path}/reports'}}\n"
        f"orchestration: {{storage_dir: '{tmp_path}/storage', snapshot: '{tmp_path}/snap.json'}}\n"
    )
    import json
    import os

    env = {**os.environ, "SRC": source, "DEV": dev}
    assert _run("expectations", "generate", "--config", str(config), env=env).returncode == 0
    path = tmp_path / "exp" / "public" / "customer.json"

    def edit(**kwargs: int) -> subprocess.CompletedProcess[str]:
        suite = json.loads(path.read_text())
        for expectation in suite["expectations"]:
            if expectation["type"] == "expect_table_row_count_to_be_between":
                expectation["kwargs"].update(kwargs)
        path.write_text(json.dumps(suite))
        return _run("refresh", "--config", str(config), env=env)

    # a hand edit GX cannot run (a maximum below the minimum) names the suite and the reason
    result = edit(max_value=5)
    assert result.returncode == 1, result.stderr
    assert "prodtwin: the expectation suite of table customer is invalid: " in result.stderr
    assert "min_value (180) must be less than or equal to max_value (5)" in result.stderr
    # a reviewer tightens the suite in git beyond what the copy can meet: the gate refuses
    result = edit(min_value=0, max_value=5)
    assert result.returncode == 1, result.stderr
    assert "prodtwin: the gate refused the synthetic data; nothing was published" in result.stderr
    assert "customer: expect_table_row_count_to_be_between failed: observed 200" in result.stderr
    for noise in ("Traceback", "Stack Trace", "STEP_FAILURE", "stamp_revision"):
        assert noise not in result.stderr, noise
    assert scalar(dev, "select count(*) from pg_tables where schemaname = 'public'") == 0
