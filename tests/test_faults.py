"""Faults during a refresh: killed connections, a vanishing source, a dead warehouse, SIGKILL,
and readers querying the warehouse while it is swapped. The source is fitted once; the tests
publish the two synthetic versions (seeds 1 and 2) again and again.
"""

from __future__ import annotations

import pickle
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from synth_assets.errors import ProdtwinError
from synth_assets.refresh import publish_to, read_source
from synth_assets.retry import Backoff, with_retries
from tests.conftest import make_config
from tests.helpers import fit_once, schemas, table_checksums

REPO = Path(__file__).resolve().parents[1]
ONCE = Backoff(attempts=1)
SOURCE = """
create table region (id int primary key, name text not null unique);
create table shop (id serial primary key, region_id int not null references region(id),
                   opened date not null, size numeric(6,1) check (size > 0));
create index shop_opened on shop (opened);
create table sale (id int primary key, shop_id int not null references shop(id),
                   amount numeric(8,2) not null, at timestamptz not null);
create index sale_at on sale (at);
insert into region select i, 'region ' || i from generate_series(1, 6) i;
insert into shop (region_id, opened, size)
  select 1 + i % 6, date '2020-01-01' + i * 11, 10 + i % 40 from generate_series(1, 40) i;
insert into sale select i, 1 + i % 40, (i % 23) * 2.5, timestamptz '2024-01-01' + i * interval '1 hour'
  from generate_series(1, 300) i;
"""


@pytest.fixture(scope="module")
def source(make_database) -> str:  # type: ignore[no-untyped-def]
    url = make_database("fault_src")
    with psycopg.connect(url) as conn:
        conn.execute(SOURCE)
    return url


@pytest.fixture(scope="module")
def versions(source):  # type: ignore[no-untyped-def]
    """Two synthetic versions of the source: what was published, and what replaces it."""
    out = []
    for seed in (1, 2):
        config = make_config(source, {"dev": source}, seed=seed)
        out.append(fit_once(config))
    return out


def _terminate_others(url: str) -> int:
    """pg_terminate_backend every other connection to the database of ``url``."""
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(
            "select count(pg_terminate_backend(pid, 5000)) from pg_stat_activity "
            "where datname = current_database() and pid <> pg_backend_pid()"
        ).fetchone()[0]


def _publish(config, version, **kwargs):  # type: ignore[no-untyped-def]
    schema, plan, synthetic = version
    return publish_to(config, "dev", schema, plan, synthetic, **kwargs)


def _validate(conn: psycopg.Connection, staging: str) -> None:
    """Stands in for the gate: a query on the staging schema before the swap."""
    with psycopg.connect(conn.info.dsn) as reader:
        reader.execute(
            sql.SQL("select count(*) from {}.sale").format(sql.Identifier(staging))
        ).fetchone()


def _labels(config, version) -> list[str]:  # type: ignore[no-untyped-def]
    seen: list[str] = []
    _publish(config, version, before_swap=_validate, on_step=seen.append)
    return seen


def _kill_points(labels: list[str], seed: int, n: int = 10) -> list[int]:
    """One random step of each kind (COPY, index, constraint, validation, swap), then any."""
    rng = random.Random(seed)
    kinds = ["copy ", "index ", "foreign key ", "validate", "swap: lock", "swap: rename"]
    points = [rng.choice([i for i, lab in enumerate(labels) if lab.startswith(k)]) for k in kinds]
    return points + [rng.randrange(len(labels)) for _ in range(n - len(points))]


def test_killed_connection_at_ten_random_points_of_a_publish(
    make_database, source, versions
) -> None:  # type: ignore[no-untyped-def]
    dev = make_database("fault_kill")
    config = make_config(source, {"dev": dev})
    labels = _labels(config, versions[0])  # also the first published version
    assert {"copy sale", "index sale.sale_at", "validate", "swap: rename staging"} <= set(labels)
    current = 0
    for k in _kill_points(labels, seed=7):
        before = table_checksums(dev)
        replacement = 1 - current

        steps: list[str] = []

        def kill(label: str, k: int = k, steps: list[str] = steps) -> None:
            steps.append(label)
            if len(steps) - 1 == k:
                assert _terminate_others(dev) >= 1

        with pytest.raises(ProdtwinError, match="environment dev: ") as caught:
            _publish(
                config, versions[replacement], before_swap=_validate, on_step=kill, backoff=ONCE
            )
        assert "Traceback" not in str(caught.value)
        assert table_checksums(dev) == before, f"killed at {labels[k]}: warehouse changed"
        # the next run cleans up whatever the killed one left, and succeeds
        _publish(config, versions[replacement], backoff=ONCE)
        assert "public__staging" not in schemas(dev)
        assert table_checksums(dev) != before
        assert table_checksums(dev, "public__previous") == before
        current = replacement


def test_a_dropped_connection_is_retried_with_backoff(make_database, source, versions) -> None:  # type: ignore[no-untyped-def]
    dev = make_database("fault_retry")
    config = make_config(source, {"dev": dev})
    kills = []

    def kill_once(label: str) -> None:
        if label == "copy sale" and not kills:
            kills.append(_terminate_others(dev))

    result = _publish(config, versions[0], on_step=kill_once, backoff=Backoff(2, 0.05))
    # every connection of the publish (publish_connections) was dropped once, then it succeeded
    assert len(kills) == 1 and 1 <= kills[0] <= config.publish_connections
    assert result.rows["sale"] == 300
    assert "public__staging" not in schemas(dev)


def test_transient_errors_are_retried_and_others_are_not(source) -> None:  # type: ignore[no-untyped-def]
    attempts, waits = [], []

    def serialization_failure_once() -> str:
        attempts.append(1)
        with psycopg.connect(source) as conn:
            if len(attempts) == 1:
                conn.execute(
                    "do $$ begin raise exception 'could not serialize access' "
                    "using errcode = 'serialization_failure'; end $$"
                )
            return "done"

    assert with_retries("t", serialization_failure_once, Backoff(3, 0.5), waits.append) == "done"
    assert len(attempts) == 2 and waits == [0.5]

    def missing_table() -> None:
        attempts.append(1)
        with psycopg.connect(source) as conn:
            conn.execute("select * from no_such_table")

    attempts.clear()
    with pytest.raises(psycopg.errors.UndefinedTable):
        with_retries("t", missing_table, Backoff(3, 0.5), waits.append)
    assert len(attempts) == 1


def test_readers_see_the_old_or_the_new_warehouse_never_a_mix(
    make_database, source, versions
) -> None:  # type: ignore[no-untyped-def]
    dev = make_database("fault_readers")
    config = make_config(source, {"dev": dev})
    query = (
        "select (select count(*) from public.shop), (select sum(amount) from public.sale), "
        "(select md5(string_agg(name, ',' order by id)) from public.region)"
    )
    states = []
    for version in versions:
        _publish(config, version)
        with psycopg.connect(dev) as conn:
            states.append(conn.execute(query).fetchone())
    assert states[0] != states[1]
    errors: list[str] = []
    stop = threading.Event()

    def reader(seen: list) -> None:
        """A QA query every 2 ms, each statement on its own (prepared after 5, by psycopg)."""
        with psycopg.connect(dev, autocommit=True) as conn:
            while not stop.is_set():
                try:
                    seen.append(conn.execute(query).fetchone())
                except psycopg.Error as error:  # pragma: no cover - the assertion shows it
                    errors.append(repr(error))
                time.sleep(0.002)

    for old, new in ((1, 0), (0, 1)):  # publish versions[new] over versions[old]
        streams: list[list] = [[], []]
        threads = [threading.Thread(target=reader, args=(seen,)) for seen in streams]
        for thread in threads:
            thread.start()
        try:
            time.sleep(0.05)
            _publish(config, versions[new], before_swap=_validate)
            time.sleep(0.1)
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        stop.clear()
        assert errors == []
        for seen in streams:
            # complete old answers, then complete new ones: never a mix, never back
            switched = seen.index(states[new])
            assert set(seen[:switched]) == {states[old]}, "a reader saw a mix"
            assert set(seen[switched:]) == {states[new]}, "a reader went back to old data"


def test_a_reader_transaction_is_not_swapped_under_its_feet(
    make_database, source, versions
) -> None:  # type: ignore[no-untyped-def]
    """A QA session's statements agree until it ends: the swap waits for it, then proceeds."""
    dev = make_database("fault_session")
    config = make_config(source, {"dev": dev})
    query = "select (select sum(amount) from public.sale), (select count(*) from public.shop)"
    _publish(config, versions[0])
    with psycopg.connect(dev) as session:
        first = session.execute(query).fetchone()
        done: list[object] = []
        publisher = threading.Thread(
            target=lambda: done.append(_try(lambda: _publish(config, versions[1])))
        )
        publisher.start()
        with psycopg.connect(dev, autocommit=True) as watcher:
            for _ in range(3000):  # until the swap waits for this session (or has finished)
                waiting = watcher.execute(
                    "select count(*) from pg_stat_activity where datname = current_database() "
                    "and wait_event_type = 'Lock'"
                ).fetchone()[0]
                if waiting or done:
                    break
                time.sleep(0.01)
        assert session.execute(query).fetchone() == first, "swapped inside a transaction"
        session.commit()
        publisher.join(60)
        assert done and not isinstance(done[0], Exception), done
        assert session.execute(query).fetchone() != first


def test_the_source_disappears_mid_extract(source) -> None:  # type: ignore[no-untyped-def]
    """The extract waits on a lock; its connection is terminated; then it is allowed again."""
    config = make_config(source, {"dev": source})

    def vanish_during_extract(backoff: Backoff) -> object:
        result: dict[str, object] = {}
        with psycopg.connect(source) as blocker:
            blocker.execute("lock table sale in access exclusive mode")
            thread = threading.Thread(
                target=lambda: result.update(out=_try(lambda: read_source(config, backoff)))
            )
            thread.start()
            with psycopg.connect(source, autocommit=True) as watcher:
                for _ in range(500):
                    killed = watcher.execute(
                        "select count(pg_terminate_backend(pid, 5000)) from pg_stat_activity "
                        "where datname = current_database() and wait_event_type = 'Lock' "
                        "and pid <> %s",
                        (blocker.info.backend_pid,),
                    ).fetchone()[0]
                    if killed:
                        break
                    time.sleep(0.01)
            assert killed == 1
        thread.join(60)
        return result["out"]

    failed = vanish_during_extract(ONCE)
    assert isinstance(failed, ProdtwinError), failed
    assert "reading the source failed: the connection" in str(failed)
    assert "Run the refresh again" in str(failed)
    retried = vanish_during_extract(Backoff(2, 0.05))
    assert not isinstance(retried, Exception), retried
    _, _, data = retried
    assert len(data.frames["sale"]) == 300


def _try(fn):  # type: ignore[no-untyped-def]
    try:
        return fn()
    except Exception as error:
        return error


def test_the_warehouse_is_down_at_start(source, versions) -> None:  # type: ignore[no-untyped-def]
    config = make_config(source, {"dev": "postgresql://postgres:pw@127.0.0.1:1/dev"})
    started = time.perf_counter()
    with pytest.raises(
        ProdtwinError,
        match=r"cannot connect to environment dev at postgresql://postgres:\*\*\*@127\.0\.0\.1:1/dev",
    ):
        _publish(config, versions[0], backoff=Backoff(3, 0.1))
    assert time.perf_counter() - started >= 0.3  # it waited 0.1 + 0.2 s between the tries


def test_the_source_is_down_at_start() -> None:
    """A source that refuses connections is tried again with backoff, then named."""
    config = make_config("postgresql://postgres:pw@127.0.0.1:1/prod", {"dev": "postgresql://h/d"})
    started = time.perf_counter()
    with pytest.raises(
        ProdtwinError, match=r"cannot connect to the source at postgresql://postgres:\*\*\*@127"
    ):
        read_source(config, Backoff(3, 0.1))
    assert time.perf_counter() - started >= 0.3  # it waited 0.1 + 0.2 s between the tries


CHILD = """
import pickle, sys, time
from synth_assets.config import config_from_dict
from synth_assets.refresh import publish_to
config, version = pickle.load(open(sys.argv[1], "rb"))
schema, plan, synthetic = version
def validating(conn, staging):
    print("VALIDATING", flush=True)
    time.sleep(60)
publish_to(config_from_dict(config), "dev", schema, plan, synthetic, before_swap=validating)
"""


def test_sigkill_mid_run_publishes_nothing_and_the_next_run_succeeds(
    make_database, source, versions, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    dev = make_database("fault_sigkill")
    config = make_config(source, {"dev": dev})
    _publish(config, versions[0])
    before = table_checksums(dev)
    raw = {
        "source": {"url": source},
        "environments": {"dev": {"url": dev}},
    }
    payload = tmp_path / "job.pickle"
    payload.write_bytes(pickle.dumps((raw, versions[1])))
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(payload)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "VALIDATING"
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(30)
    assert child.returncode == -signal.SIGKILL
    assert table_checksums(dev) == before
    assert "public__staging" in schemas(dev)  # the killed run's leftover
    _publish(config, versions[1])
    assert "public__staging" not in schemas(dev)
    assert table_checksums(dev) != before


def test_one_or_several_connections_publish_the_same_warehouse(
    make_database, source, versions
) -> None:  # type: ignore[no-untyped-def]
    """Loads, keys and FKs spread over connections (publish_connections) give the same tables,
    constraints and FK checks as one connection doing everything in turn."""
    results, sums, constraints = [], [], []
    for n in (1, 3):
        dev = make_database(f"fault_conns{n}")
        config = make_config(source, {"dev": dev}, publish_connections=n)
        results.append(_publish(config, versions[0], backoff=ONCE))
        sums.append(table_checksums(dev))
        with psycopg.connect(dev) as conn:
            constraints.append(
                conn.execute(
                    "select conrelid::regclass::text, conname, contype, convalidated "
                    "from pg_constraint c join pg_namespace n on n.oid = c.connamespace "
                    "where n.nspname = 'public' order by 1, 2"
                ).fetchall()
            )
    assert sums[0] == sums[1] and len(sums[0]) == 3
    assert constraints[0] == constraints[1]
    assert {c[2] for c in constraints[0]} >= {"p", "f", "u", "c"}
    assert (
        results[0].foreign_keys_checked
        == results[1].foreign_keys_checked
        == {
            "region": 0,
            "shop": 1,
            "sale": 1,
        }
    )


def test_a_failing_task_stops_the_others_and_is_raised(make_database) -> None:  # type: ignore[no-untyped-def]
    """The first error is raised as it was; a long statement on another connection is cancelled
    instead of being waited for, and tasks after the failure never start."""
    from synth_assets.errors import PublishError
    from synth_assets.tasks import Task, run_tasks

    url = make_database("fault_tasks")
    started: list[str] = []

    def sleep(cur: psycopg.Cursor) -> None:
        started.append("sleep")
        cur.execute("select pg_sleep(60)")

    def fail(cur: psycopg.Cursor) -> None:
        started.append("fail")
        cur.execute("select pg_sleep(0.5)")
        raise PublishError("table t: planted failure")

    tasks = [
        Task("sleep", sleep, frozenset({"a"})),
        Task("fail", fail, frozenset({"b"})),
        Task("later", lambda cur: started.append("later"), frozenset({"c"}), frozenset({"fail"})),
    ]
    conns = [psycopg.connect(url), psycopg.connect(url)]
    try:
        start = time.monotonic()
        with pytest.raises(PublishError, match="planted failure"):
            run_tasks(conns, tasks)
        assert time.monotonic() - start < 30, "waited for the 60 s statement instead of cancelling"
        assert sorted(started) == ["fail", "sleep"]
        with psycopg.connect(url) as conn:
            sleeping = conn.execute(
                "select count(*) from pg_stat_activity where datname = current_database() "
                "and query like 'select pg_sleep(60)%' and state = 'active'"
            ).fetchone()[0]
        assert sleeping == 0
    finally:
        for conn in conns:
            conn.close()
