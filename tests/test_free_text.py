"""Free text and codes are generated, never copied, even when the generator could hit one.

Chinook's album table is (id, title, artist_id): its title is the only non-key column, so one
generated title equal to a real one is a copied row and the privacy gate refuses the refresh.
The fixture plants the worst case: every production title is a word of the generator's own
word pool, of the length the generator aims at.
"""

from __future__ import annotations

import psycopg

from synth_assets.pii import FakePools
from synth_assets.refresh import run_refresh
from tests.conftest import make_config
from tests.helpers import column_values


def test_generated_titles_are_never_production_titles(make_database) -> None:  # type: ignore[no-untyped-def]
    words = [w.capitalize() for w in FakePools(42).words if 3 <= len(w) <= 10][:120]
    source = make_database("titles")
    with psycopg.connect(source) as conn:
        conn.execute(
            "create table album (id int primary key, title varchar(12) not null);"
            "create table track (id int primary key, album_id int not null references album(id),"
            " code text not null)"
        )
        conn.cursor().executemany(
            "insert into album values (%s, %s)", [(i, w) for i, w in enumerate(words)]
        )
        # non-unique codes of few digits: random codes of the same shape hit real ones too
        conn.execute(
            f"insert into track select i, i % {len(words)}, 'T-' || lpad((i % 97)::text, 2, '0') "
            "from generate_series(1, 400) i"
        )
    dev = make_database("titles_dev")
    run_refresh(make_config(source, {"dev": dev}))  # the gate passes
    for table, column in (("album", "title"), ("track", "code")):
        real = column_values(source, table, column)
        synthetic = column_values(dev, table, column)
        assert synthetic and not synthetic & real, (table, synthetic & real)
