"""Great Expectations suites generated from production's profile, kept as files in git.

One JSON file per table (``<expectations_dir>/<schema>/<table>.json``), in GX 1.x's suite shape
without ids or timestamps, so regenerating an unchanged production gives a byte-identical file
and a changed one gives a readable diff. Generated expectations carry ``meta.prodtwin =
"generated"``; anything else in a file was added by a person and survives regeneration.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from synth_assets import roles as R
from synth_assets.carries import Carry
from synth_assets.config import Config
from synth_assets.extract import TableProfile
from synth_assets.profile import RANGED_KINDS
from synth_assets.schema import Column, Schema, Table
from synth_assets.sums import NULL, ZERO, RowRule, SumRule, factor, usable_row_rules

MARK = "generated"
SCHEMA_TOKEN = '"$schema"'  # replaced by the schema being validated (staging, then published)


def _expectation(
    expectation_type: str, /, description: str | None = None, **kwargs: Any
) -> dict[str, Any]:
    out: dict[str, Any] = {"type": expectation_type, "kwargs": kwargs, "meta": {"prodtwin": MARK}}
    if description:
        out["description"] = description
    return out


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def _widen(low: Any, high: Any, tolerance: float) -> tuple[Any, Any]:
    if tolerance <= 0 or low is None or high is None:
        return low, high
    span = high - low
    try:
        wide = span * tolerance
    except TypeError:
        return low, high
    # a sentinel such as 9999-12-31 or 0001-01-01 sits at the type's limit: widening past it
    # overflows (and no value lies beyond it), so that side stays at the sentinel
    with contextlib.suppress(OverflowError):
        low = low - wide
    with contextlib.suppress(OverflowError):
        high = high + wide
    return low, high


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _fk_query(table: Table, columns: tuple[str, ...], ref_table: str, ref: tuple[str, ...]) -> str:
    set_cols = " and ".join(f"c.{_q(c)} is not null" for c in columns)
    join = " and ".join(f"p.{_q(r)} = c.{_q(c)}" for c, r in zip(columns, ref, strict=True))
    return (
        f"with c as (select * from {{batch}}) select c.* from c where {set_cols} and not exists "
        f"(select 1 from {SCHEMA_TOKEN}.{_q(ref_table)} p where {join})"
    )


def _sql_tolerance(col: Column) -> str:
    """The gate's tolerance for a derived number: half a unit of its last digit."""
    tol = 0.5 if col.kind == "integer" else 0.5 * 10.0 ** -(col.numeric_scale or 9) + 1e-9
    return f"{tol:.12g}"


def _factor_sql(term: str) -> str:
    sign, name = factor(term)
    value = f"{_q(name)}::float8"
    return value if sign == 0 else f"(1 {'-' if sign < 0 else '+'} {value})"


def _sum_query(parent: Table, child: Table, rule: SumRule) -> str:
    """Parent rows whose value is not the sum of their children's (the gate's check)."""
    fk = next(f for f in child.foreign_keys if f.name == rule.fk)
    col = parent.column(rule.column)
    keys = ", ".join(f"{_q(c)} as k{i}" for i, c in enumerate(fk.columns))
    group = ", ".join(str(i + 1) for i in range(len(fk.columns)))
    join = " and ".join(f"p.{_q(r)} = s.k{i}" for i, r in enumerate(fk.ref_columns))
    product = " * ".join(_factor_sql(t) for t in rule.terms)
    value = f"p.{_q(col.name)}::float8"
    checks = [f"(s.k0 is not null and abs({value} - coalesce(s.total, 0)) > {_sql_tolerance(col)})"]
    if rule.empty == ZERO:
        checks.append(f"(s.k0 is null and {value} <> 0)")
    elif rule.empty == NULL:
        checks.append(f"(s.k0 is null and {value} is not null)")
    return (
        f"with p as (select * from {{batch}}), s as (select {keys}, sum({product}) as total "
        f"from {SCHEMA_TOKEN}.{_q(child.name)} group by {group}) "
        f"select p.* from p left join s on {join} where {' or '.join(checks)}"
    )


def _row_rule_query(rule: RowRule, col: Column) -> str:
    """Rows whose column is not its terms' sum or product (the gate's check)."""
    c, a, b = (_q(n) for n in rule.columns())
    return (
        f"with p as (select * from {{batch}}) select p.* from p where {c} is not null and "
        f"{a} is not null and {b} is not null and "
        f"abs({c}::float8 - ({a}::float8 {rule.op} {b}::float8)) > {_sql_tolerance(col)}"
    )


def _carry_query(child: Table, rule: Carry) -> str:
    """Rows whose carried column differs from their parent's, returned when more of them
    differ than production's share allows (the gate's check)."""
    fk = next(f for f in child.foreign_keys if f.name == rule.fk)
    join = " and ".join(
        f"p.{_q(r)} = c.{_q(c)}" for c, r in zip(fk.columns, fk.ref_columns, strict=True)
    )
    differs = f"c.{_q(rule.column)} is distinct from p.{_q(rule.parent_column)}"
    return (
        f"with c as (select * from {{batch}}), j as (select c.*, ({differs}) as prodtwin_differs "
        f"from c join {SCHEMA_TOKEN}.{_q(fk.ref_table)} p on {join}) "
        f"select * from j where prodtwin_differs and (select count(*) from j where "
        f"prodtwin_differs) > {rule.allowed_differing():.4f} * (select count(*) from j)"
    )


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _types_query(table: Table) -> str:
    """Columns whose type differs from production's (enums and domains compared by name)."""
    expected = ", ".join(
        f"({_literal(c.name)}, {_literal(c.local_type or c.sql_type)})" for c in table.columns
    )
    relation = _literal(f"{SCHEMA_TOKEN}.{_q(table.name)}")
    actual = (
        "coalesce(case when t.typtype in ('e', 'd') then t.typname end, "
        "format_type(a.atttypid, a.atttypmod))"
    )
    return (
        # GX wants every such query to mention {batch}; an unused CTE satisfies it harmlessly
        f"with batch as (select * from {{batch}} limit 0) "
        f"select e.name, e.type, {actual} as actual from (values {expected}) as e(name, type) "
        f"left join pg_attribute a on a.attrelid = {relation}::regclass and a.attname = e.name "
        f"and not a.attisdropped left join pg_type t on t.oid = a.atttypid "
        f"where a.attname is null or {actual} <> e.type"
    )


def build_suite(
    schema: Schema,
    table: Table,
    profile: TableProfile,
    roles: dict[str, R.ColumnRole],
    config: Config,
    sums: Sequence[SumRule] = (),
) -> dict[str, Any]:
    """The generated expectations of one table, in a stable order. ``sums`` are the rules
    generation enforces on it (sums.enforceable): a column that is its children's sum is checked
    as that sum, not against production's range (more or dearer lines make a larger total)."""
    derived = usable_row_rules(getattr(profile, "row_rules", []), roles)
    summed = {r.column for r in sums} | {r.column for r in derived}
    v = config.validation
    rows = profile.rows
    target = rows * config.scale_for(table.name)
    exps = [
        _expectation(
            "expect_table_columns_to_match_set",
            column_set=[c.name for c in table.columns],
            exact_match=True,
        ),
        _expectation(
            "expect_table_row_count_to_be_between",
            min_value=math.floor(target * (1 - v.row_count_tolerance)),
            max_value=math.ceil(target * (1 + v.row_count_tolerance)),
        ),
    ]
    stats = profile.stats
    exps.append(
        _expectation(
            "unexpected_rows_expectation",
            description=f"column types of {table.name} are production's",
            unexpected_rows_query=_types_query(table),
        )
    )
    for col in table.columns:
        st = stats.columns.get(col.name) if stats else None
        role = roles[col.name].role
        if st is None or rows == 0:
            continue
        null_fraction = 1 - st.non_null / rows
        if st.non_null == rows:
            exps.append(_expectation("expect_column_values_to_not_be_null", column=col.name))
        elif role not in (R.KEY,):
            # allow sampling noise on small tables: three standard errors at least
            noise = 3 * math.sqrt(null_fraction * (1 - null_fraction) / rows)
            tolerance = max(v.null_tolerance, noise)
            upper = null_fraction + tolerance
            lower = null_fraction - tolerance
            if upper < 1:
                exps.append(
                    _expectation(
                        "expect_column_values_to_not_be_null",
                        column=col.name,
                        mostly=round(1 - upper, 4),
                    )
                )
            if lower > 0:
                exps.append(
                    _expectation(
                        "expect_column_values_to_be_null", column=col.name, mostly=round(lower, 4)
                    )
                )
        if role != R.MODEL:
            continue
        if col.kind in RANGED_KINDS and st.minimum is not None and col.name not in summed:
            low, high = _widen(st.minimum, st.maximum, v.range_tolerance)
            low, high = _json_value(low), _json_value(high)
            if not any(isinstance(x, float) and not math.isfinite(x) for x in (low, high)):
                exps.append(
                    _expectation(
                        "expect_column_values_to_be_between",
                        column=col.name,
                        min_value=low,
                        max_value=high,
                    )
                )
        if col.kind == "text" and st.values is not None:  # an enum's type restricts it already
            exps.append(
                _expectation(
                    "expect_column_values_to_be_in_set",
                    column=col.name,
                    value_set=list(st.values),
                )
            )
    for cols in table.unique_sets():
        if len(cols) == 1:
            exps.append(_expectation("expect_column_values_to_be_unique", column=cols[0]))
        else:
            exps.append(
                _expectation(
                    "expect_compound_columns_to_be_unique",
                    column_list=list(cols),
                    ignore_row_if="any_value_is_missing",
                )
            )
    for rel in stats.relations if stats else []:
        exps.append(
            _expectation(
                "expect_column_pair_values_a_to_be_greater_than_b",
                column_A=rel.left,
                column_B=rel.right,
                or_equal=rel.op == ">=",
                ignore_row_if="either_value_is_missing",
            )
        )
    for row_rule in derived:
        exps.append(
            _expectation(
                "unexpected_rows_expectation",
                description=row_rule.describe(table.name),
                unexpected_rows_query=_row_rule_query(row_rule, table.column(row_rule.column)),
            )
        )
    for rule in sums:
        exps.append(
            _expectation(
                "unexpected_rows_expectation",
                description=rule.describe(table.name),
                unexpected_rows_query=_sum_query(table, schema.tables[rule.child], rule),
            )
        )
    fks = {fk.name: fk for fk in table.foreign_keys if fk.ref_table in schema.tables}
    for carried in getattr(profile, "carries", []):  # none in profiles pickled before
        if carried.fk in fks:
            exps.append(
                _expectation(
                    "unexpected_rows_expectation",
                    description=carried.describe(table.name, fks[carried.fk].ref_table),
                    unexpected_rows_query=_carry_query(table, carried),
                )
            )
    for fk in table.foreign_keys:
        if fk.ref_table not in schema.tables:
            continue
        exps.append(
            _expectation(
                "unexpected_rows_expectation",
                description=f"foreign key {fk.name}: ({', '.join(fk.columns)}) -> "
                f"{fk.ref_table}({', '.join(fk.ref_columns)}) has no orphans",
                unexpected_rows_query=_fk_query(table, fk.columns, fk.ref_table, fk.ref_columns),
            )
        )
    return {
        "name": f"{schema.name}.{table.name}",
        "meta": {"prodtwin": {"source_rows": rows, "scale": config.scale_for(table.name)}},
        "expectations": exps,
    }


def suite_path(config: Config, schema: str, table: str) -> Path:
    return Path(config.validation.expectations_dir) / schema / f"{table}.json"


def _signature(exp: dict[str, Any]) -> str:
    return json.dumps(exp, sort_keys=True)


def is_generated(exp: dict[str, Any]) -> bool:
    return (exp.get("meta") or {}).get("prodtwin") == MARK


@dataclass
class SuiteChange:
    table: str
    path: Path
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    kept_by_hand: int = 0
    created: bool = False

    def describe(self) -> str:
        if self.created:
            return f"{self.table}: created {self.path} ({len(self.added)} expectations)"
        if not self.added and not self.removed:
            return f"{self.table}: unchanged ({self.kept_by_hand} added by hand kept)"
        return (
            f"{self.table}: +{len(self.added)} -{len(self.removed)} generated, "
            f"{self.kept_by_hand} added by hand kept"
            + "".join(f"\n    + {a}" for a in self.added[:5])
            + "".join(f"\n    - {r}" for r in self.removed[:5])
        )


def _short(exp: dict[str, Any]) -> str:
    if exp.get("description"):
        return f"{exp['type']}: {exp['description']}"
    kw = exp["kwargs"]
    target = kw.get("column") or kw.get("column_list") or kw.get("column_A") or ""
    return f"{exp['type']}({target})" if target else exp["type"]


def write_suite(path: Path, generated: dict[str, Any], table: str) -> SuiteChange:
    """Write a regenerated suite, keeping every expectation a person added."""
    change = SuiteChange(table, path)
    old: dict[str, Any] | None = None
    if path.is_file():
        old = json.loads(path.read_text())
    by_hand = [e for e in (old or {}).get("expectations", []) if not is_generated(e)]
    old_generated = {_signature(e) for e in (old or {}).get("expectations", []) if is_generated(e)}
    new_generated = {_signature(e) for e in generated["expectations"]}
    change.created = old is None
    change.added = [
        _short(e) for e in generated["expectations"] if _signature(e) not in old_generated
    ]
    change.removed = [_short(json.loads(s)) for s in sorted(old_generated - new_generated)]
    change.kept_by_hand = len(by_hand)
    suite = dict(generated)
    suite["expectations"] = generated["expectations"] + by_hand
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(suite, indent=2, ensure_ascii=False) + "\n")
    return change


def read_suite(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())
