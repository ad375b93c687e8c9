"""Tables larger than ``chunk_rows`` are generated and published in chunks, and still hold.

The planted fixture of test_relations (customer -> orders -> order_item <- product, about 2,000
orders and 4,000 items) is refreshed with ``chunk_rows: 500``: orders and order_item are made
in several chunks, each drawn and dropped before the next.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import psycopg
import pytest

from synth_assets.generate import Generation
from synth_assets.refresh import fit_all, read_source, run_refresh
from tests.conftest import make_config
from tests.helpers import orphan_counts, table_checksums
from tests.test_relations import PLANTED

CHUNK = 500
PER_PARENT = {
    "orders": "select count(*) from orders group by customer_id",
    "order_item": "select count(*) from order_item group by order_id",
}


def _counts(url: str, query: str) -> np.ndarray:
    with psycopg.connect(url) as conn:
        return np.array([r[0] for r in conn.execute(query)])


def _rows(url: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        return int(conn.execute(f"select count(*) from {table}").fetchone()[0])


@pytest.fixture(scope="module")
def chunked(make_database):  # type: ignore[no-untyped-def]
    source = make_database("chunks")
    with psycopg.connect(source) as conn:
        conn.execute(PLANTED)
    devs = [make_database("chunks_dev"), make_database("chunks_again")]
    configs = [make_config(source, {"dev": d}, chunk_rows=CHUNK) for d in devs]
    reports = [run_refresh(c) for c in configs]
    return source, devs, configs, reports


def test_chunked_tables_publish_with_valid_keys_and_production_s_rows(chunked) -> None:  # type: ignore[no-untyped-def]
    source, (dev, _), _, (report, _) = chunked
    assert _rows(source, "order_item") > 3 * CHUNK  # the fixture is large enough to chunk
    assert set(orphan_counts(dev, report.schema).values()) == {0}
    for table in ("customer", "orders", "product"):
        assert _rows(dev, table) == _rows(source, table), table
    # link rows whose (order, product) pair came out twice are dropped, as in a whole table
    assert abs(_rows(dev, "order_item") - _rows(source, "order_item")) <= 0.02 * _rows(
        source, "order_item"
    )
    with psycopg.connect(dev) as conn:
        distinct, total = conn.execute("select count(distinct id), count(*) from orders").fetchone()
        pairs = conn.execute(
            "select count(*) from (select distinct order_id, product_id from order_item) p"
        ).fetchone()[0]
    assert distinct == total
    assert pairs == _rows(dev, "order_item")


def test_chunked_tables_keep_children_per_parent(chunked) -> None:  # type: ignore[no-untyped-def]
    source, (dev, _), _, _ = chunked
    for table, query in PER_PARENT.items():
        prod, synth = _counts(source, query), _counts(dev, query)
        assert abs(np.median(prod) - np.median(synth)) <= 1, table
        assert abs(prod.max() - synth.max()) <= 2, table
        assert abs(prod.mean() - synth.mean()) <= 0.1 * prod.mean(), table


def test_same_seed_same_chunked_output(chunked) -> None:  # type: ignore[no-untyped-def]
    _, (dev, again), _, _ = chunked
    assert table_checksums(dev) == table_checksums(again)


def test_the_spill_is_gone_after_the_refresh(chunked) -> None:  # type: ignore[no-untyped-def]
    _, _, configs, _ = chunked
    spill = Path(configs[0].orchestration.storage_dir) / "spill"
    assert not spill.exists() or not any(spill.iterdir())


def test_generation_yields_chunks_and_keeps_only_parent_keys(chunked) -> None:  # type: ignore[no-untyped-def]
    source, (dev, _), configs, _ = chunked
    config = configs[0]
    schema, plan, data = read_source(config)
    fitted = fit_all(config, schema, data, {})
    generation = Generation(
        schema,
        plan,
        data,
        {n: f.model for n, f in fitted.items()},
        {n: f.roles for n, f in fitted.items()},
        config,
    )
    sizes: dict[str, list[int]] = {}
    for name, chunk in generation.chunks():
        sizes.setdefault(name, []).append(len(chunk))
        if name == "order_item":  # its parents are done: children saw keys, not rows
            view = generation.views["orders"]
            assert list(view.keys.columns) == ["id"]
            assert view.rows == _rows(dev, "orders")
    for table, query in PER_PARENT.items():
        biggest_family = int(_counts(dev, query).max())
        assert len(sizes[table]) >= 3, sizes[table]
        # a parent's children are never split, so a chunk exceeds the size by at most one family
        assert max(sizes[table]) <= CHUNK + biggest_family, sizes[table]
    assert sizes["customer"] == [_rows(source, "customer")]  # small tables stay one piece
