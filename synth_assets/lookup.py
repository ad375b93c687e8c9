"""Tables that look like lookup data, named in the refresh's notes.

A genre, a currency or a shipper table is published as new words unless it is configured as a
reference table (``tables.overrides.<table>.reference``); nothing decides that on its own,
since a small table can be about people. The note says which tables look like it, so that the
setting is found where it is wanted.
"""

from __future__ import annotations

import pandas as pd

from synth_assets import roles as R
from synth_assets.config import Config
from synth_assets.schema import Schema

MAX_LOOKUP_ROWS = 50  # as many as relations.MAX_REFERENCE_LABELS: each row its own label


def lookup_hints(
    schema: Schema,
    frames: dict[str, pd.DataFrame],
    roles: dict[str, dict[str, R.ColumnRole]],
    config: Config,
) -> list[str]:
    """A note per table that other tables reference, of at most MAX_LOOKUP_ROWS rows, with no
    personal-data column and a text column of names (each value its own, generated as new
    words), whose parents are reference tables or none."""
    referenced = {fk.ref_table for t in schema.tables.values() for fk in t.foreign_keys}
    references = config.reference_tables()
    notes = []
    for name, table in schema.tables.items():
        mine = roles.get(name, {})
        if (
            name in references
            or name not in referenced
            or not 0 < len(frames[name]) <= MAX_LOOKUP_ROWS
            or any(r.role == R.PII for r in mine.values())
        ):
            continue
        if any(fk.ref_table not in (name, *references) for fk in table.foreign_keys):
            continue
        frame = frames[name]
        named = [
            c
            for c, r in mine.items()
            if r.role == R.WORDS and c in frame and frame[c].notna().any() and frame[c].is_unique
        ]
        if named:
            notes.append(
                f"table {name} looks like lookup data ({len(frames[name])} rows, "
                f"{', '.join(named)} generated as new words): if it is, "
                f"tables.overrides.{name}.reference: true publishes production's rows"
            )
    return notes
