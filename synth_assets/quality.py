"""How close the synthetic copy is to production: SDMetrics reports, as JSON and one HTML page.

``evaluate_quality`` runs SDMetrics' multi-table ``QualityReport`` (column shapes, column pair
trends, cardinality, inter-table trends) and ``DiagnosticReport`` (data validity, data structure,
relationship validity) on the tables of one refresh, writes the scores to ``quality.json`` and
renders ``quality.html``: a self-contained page (inline CSS and SVG drawn here, no script, no
external resource) with real-vs-synthetic distributions per column and the children-per-parent
histogram of every foreign key.

What is evaluated
    Numbers, booleans, dates and timestamps, enums, and the text columns prodtwin treats as
    categories (``roles.not_category``: at most ``MAX_CATEGORIES`` distinct production values,
    at most one distinct value per two rows, short values). A unique text column, or one of
    mostly distinct values (names of things, titles, URLs), is a set of labels, not categories:
    the synthetic copy makes up new ones, so it is left out, like SDV's own metadata detection
    leaves out such columns (as ``id``/``unknown``). A column with one value in every production
    row is not scored either. Personal data (``pii.pii_kind``), free text,
    json, arrays, bytea, inet, uuid and other types are left out (bytea lengths are still plotted).
    Primary and foreign key columns are given sdtype ``id``. SDMetrics relationships are the
    single-column foreign keys that reference their parent's single-column primary key, other than
    self-references; the children-per-parent histograms cover every foreign key, composite and
    self-referencing ones included, computed on the full frames.

Sampling
    SDMetrics sees at most ``max_rows`` rows per table, drawn deterministically from ``seed``, for
    real and synthetic data independently. Tables are sampled parents first: a child drops the
    rows whose (SDMetrics) foreign key points at a parent row left out of the parent's sample,
    then, if still larger than ``max_rows``, keeps a uniform sample of the rest. Tables under the
    cap whose parents are not sampled are used whole. A sampled parent keeps all its children, so
    referential integrity holds in the sample and the children-per-parent distribution of a child
    under the cap with one sampled parent is unbiased; a child with several sampled parents, or
    one that is itself sampled, sees its children-per-parent counts thinned (on both sides alike,
    so cardinality scores stay comparable but are somewhat distorted). The charts and the
    children-per-parent summaries always use the full frames.

Scores that cannot be computed (a property with nothing to evaluate, such as Cardinality for a
schema without relationships) are ``null`` in the JSON and absent from ``QualityResult``'s
property dicts. When SDMetrics raises, the failing tables or relationships are left out, the
error is recorded in the JSON's ``errors`` list and shown on the page, and the rest is scored.
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
import math
import time
import warnings
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synth_assets.pii import pii_kind
from synth_assets.roles import MAX_CATEGORIES, not_category
from synth_assets.schema import Column, ForeignKey, Schema, Table

log = logging.getLogger("prodtwin")

QUALITY_PROPERTIES = ("Column Shapes", "Column Pair Trends", "Cardinality", "Intertable Trends")
DIAGNOSTIC_PROPERTIES = ("Data Validity", "Data Structure", "Relationship Validity")

NUMERIC_KINDS = {"integer", "float", "numeric"}
DATETIME_KINDS = {"date", "timestamp", "timestamptz"}
NOT_EVALUATED = {"json", "array", "bytea", "inet", "other", "uuid"}
SDTYPE_BY_KIND = {
    **dict.fromkeys(NUMERIC_KINDS, "numerical"),
    **dict.fromkeys(DATETIME_KINDS, "datetime"),
    "boolean": "boolean",
    "enum": "categorical",
    "text": "categorical",
}
HIST_BINS = 24
TOP_CATEGORIES = 8
WEAKEST_PAIRS = 10


@dataclass
class QualityResult:
    score: float  # SDMetrics multi-table QualityReport overall score (0..1)
    properties: dict[str, float]  # computed quality properties, in QUALITY_PROPERTIES order
    diagnostic: float  # DiagnosticReport overall score
    diagnostic_properties: dict[str, float]
    per_table: dict[str, float]  # column shapes, pair trends and cardinality (as child), averaged
    json_path: Path
    html_path: Path


# --------------------------------------------------------------------------------------------
# What to evaluate


@dataclass
class _TablePlan:
    table: Table
    sdtypes: dict[str, str] = field(default_factory=dict)  # evaluated columns, keys included
    kinds: dict[str, str] = field(default_factory=dict)
    excluded: dict[str, str] = field(default_factory=dict)  # column -> reason
    plotted: list[str] = field(default_factory=list)  # non-key columns with a chart
    primary_key: str | None = None  # for SDMetrics: single-column PKs only


def _plan_table(table: Table, real: pd.DataFrame, synthetic: pd.DataFrame) -> _TablePlan:
    plan = _TablePlan(table)
    keys = set(table.primary_key) | {c for fk in table.foreign_keys for c in fk.columns}
    for col in table.columns:
        name = col.name
        if name not in real.columns or name not in synthetic.columns:
            plan.excluded[name] = "generated column" if col.generated else "not in both copies"
            continue
        plan.kinds[name] = col.kind
        if name in keys:
            plan.sdtypes[name] = "id"
            continue
        pii = pii_kind(table, col)
        if pii is not None:
            plan.excluded[name] = f"personal data ({pii})"
        elif col.kind == "bytea":
            plan.excluded[name] = "bytea (only its length is plotted)"
            plan.plotted.append(name)
        elif col.kind in NOT_EVALUATED or col.kind not in SDTYPE_BY_KIND:
            plan.excluded[name] = f"{col.kind} column"
        elif not real[name].notna().any():
            plan.excluded[name] = "always NULL in production"
        elif real[name].nunique(dropna=False) == 1:
            # nothing to compare, and SDMetrics' pair metrics raise ConstantInputError on it
            # (which used to cost the whole intertable property)
            plan.excluded[name] = "one value in every production row"
        elif col.kind == "text" and (reason := _not_categorical(table, name, real[name])):
            plan.excluded[name] = reason
        else:
            plan.sdtypes[name] = SDTYPE_BY_KIND[col.kind]
            plan.plotted.append(name)
    if len(table.primary_key) == 1 and table.primary_key[0] in plan.sdtypes:
        plan.primary_key = table.primary_key[0]
    return plan


def _not_categorical(table: Table, name: str, production: pd.Series) -> str | None:
    """Why a text column is not a category column (None when it is one): prodtwin's own rule
    (roles.not_category), so the columns scored as categories are those it may reproduce."""
    if table.is_unique((name,)):
        return "unique text"
    return not_category(production)


@dataclass(frozen=True)
class _Relationship:
    parent: str
    parent_key: str
    child: str
    child_key: str

    def as_metadata(self) -> dict[str, str]:
        return {
            "parent_table_name": self.parent,
            "parent_primary_key": self.parent_key,
            "child_table_name": self.child,
            "child_foreign_key": self.child_key,
        }


def _sdmetrics_relationship(
    schema: Schema, plans: dict[str, _TablePlan], child: str, fk: ForeignKey
) -> tuple[_Relationship | None, str | None]:
    """The relationship SDMetrics can score for a foreign key, or why there is none."""
    if fk.ref_table not in plans:
        return None, "parent table not evaluated"
    if fk.ref_table == child:
        return None, "self-reference"
    if len(fk.columns) != 1:
        return None, "composite foreign key"
    parent_pk = schema.tables[fk.ref_table].primary_key
    if parent_pk != fk.ref_columns:
        return None, "references columns other than the parent's primary key"
    if plans[fk.ref_table].primary_key is None or fk.columns[0] not in plans[child].sdtypes:
        return None, "key column missing from the data"
    return _Relationship(fk.ref_table, fk.ref_columns[0], child, fk.columns[0]), None


# --------------------------------------------------------------------------------------------
# Frames in the form SDMetrics and the charts need


def _key_values(series: pd.Series, kind: str) -> pd.Series:
    """Keys comparable across tables and copies: nullable integers, or strings."""
    if kind == "integer":
        numbers = pd.to_numeric(series, errors="coerce")
        try:
            return numbers.astype("Int64")
        except (TypeError, ValueError):
            return numbers.astype("float64")
    return series.astype("string")


def _naive_utc(series: pd.Series, kind: str) -> pd.Series:
    if kind == "timestamptz" or isinstance(series.dtype, pd.DatetimeTZDtype):
        values = pd.to_datetime(series, utc=True, errors="coerce")
        return values.dt.tz_localize(None)
    values = pd.to_datetime(series, errors="coerce")
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    return values


def _byte_lengths(series: pd.Series) -> pd.Series:
    """bytea: production frames hold lengths, synthetic ones the bytes."""

    def length(v: Any) -> float:
        if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
            return math.nan
        if isinstance(v, bytes | bytearray | memoryview | str):
            return float(len(v))
        return float(v)

    return pd.Series([length(v) for v in series], index=series.index, dtype="float64")


def _normalized(series: pd.Series, kind: str, sdtype: str) -> pd.Series:
    if sdtype == "id":
        return _key_values(series, kind)
    if sdtype == "numerical":
        return pd.to_numeric(series, errors="coerce").astype("float64")
    if sdtype == "datetime":
        return _naive_utc(series, kind)
    if sdtype == "boolean":
        values = series.astype("boolean")
        return values.astype(object).where(values.notna(), None)
    return (
        series.astype(object).where(series.notna(), None).map(lambda v: v if v is None else str(v))
    )


def _prepare(plan: _TablePlan, frame: pd.DataFrame) -> pd.DataFrame:
    columns = {
        name: _normalized(frame[name], plan.kinds[name], sdtype)
        for name, sdtype in plan.sdtypes.items()
    }
    return pd.DataFrame(columns, index=frame.index).reset_index(drop=True)


def _stable_seed(seed: int, *parts: str) -> int:
    digest = hashlib.sha256("\x00".join([str(seed), *parts]).encode()).digest()
    return int.from_bytes(digest[:8], "little")


def _parents_first(names: list[str], relationships: list[_Relationship]) -> list[str]:
    """Parents before children; tables on a cycle follow in name order."""
    parents = {
        n: {r.parent for r in relationships if r.child == n and r.parent != n} for n in names
    }
    order: list[str] = []
    placed: set[str] = set()
    while len(order) < len(names):
        ready = [n for n in names if n not in placed and parents[n] <= placed]
        if not ready:  # a cycle: take the first remaining table
            ready = [next(n for n in names if n not in placed)]
        for n in ready:
            order.append(n)
            placed.add(n)
    return order


def _subsample(
    frames: dict[str, pd.DataFrame],
    relationships: list[_Relationship],
    order: list[str],
    max_rows: int,
    seed: int,
    side: str,
) -> tuple[dict[str, pd.DataFrame], dict[str, bool]]:
    """At most ``max_rows`` rows per table, parents first (see the module docstring)."""
    kept: dict[str, pd.DataFrame] = {}
    reduced: dict[str, bool] = {}
    for name in order:
        frame = frames[name]
        mask = np.ones(len(frame), dtype=bool)
        for rel in relationships:
            if rel.child != name or not reduced.get(rel.parent):
                continue
            fk = frame[rel.child_key]
            inside = fk.isin(kept[rel.parent][rel.parent_key].dropna()).fillna(False)
            mask &= fk.isna().to_numpy() | inside.to_numpy(dtype=bool)
        rows = np.flatnonzero(mask)
        if len(rows) > max_rows:
            rng = np.random.default_rng(_stable_seed(seed, side, name))
            rows = np.sort(rng.choice(rows, size=max_rows, replace=False))
        reduced[name] = len(rows) < len(frame)
        kept[name] = frame.iloc[rows].reset_index(drop=True) if reduced[name] else frame
    return kept, reduced


# --------------------------------------------------------------------------------------------
# SDMetrics


def _report_classes() -> tuple[type, type]:
    with warnings.catch_warnings():  # the multi-table module warns that it is deprecated
        warnings.simplefilter("ignore")
        from sdmetrics.reports.multi_table import DiagnosticReport, QualityReport
    return QualityReport, DiagnosticReport


def _message(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}"
    return text if len(text) <= 500 else text[:497] + "..."


def _generate(report_cls: type, real: dict, synthetic: dict, metadata: dict, seed: int) -> Any:
    report = report_cls()
    report.num_rows_subsample = None  # frames are already sampled, deterministically
    state = np.random.get_state()  # anything SDMetrics draws comes from the seed
    np.random.seed(_stable_seed(seed, "sdmetrics") % 2**32)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            report.generate(real, synthetic, metadata, verbose=False)
    finally:
        np.random.set_state(state)
    return report


def _run_report(
    label: str,
    report_cls: type,
    real: dict[str, pd.DataFrame],
    synthetic: dict[str, pd.DataFrame],
    metadata: dict,
    seed: int,
    errors: list[dict[str, str]],
) -> tuple[Any, set[str]]:
    """A generated report, and the tables it covers; failing parts are left out and recorded."""
    tables = metadata["tables"]
    if not tables:
        return None, set()
    try:
        return _generate(report_cls, real, synthetic, metadata, seed), set(tables)
    except Exception as error:
        errors.append({"report": label, "scope": "all tables", "message": _message(error)})
    good = []
    for name in tables:
        single = {"tables": {name: tables[name]}, "relationships": []}
        try:
            _generate(report_cls, {name: real[name]}, {name: synthetic[name]}, single, seed)
            good.append(name)
        except Exception as error:
            errors.append({"report": label, "scope": f"table {name}", "message": _message(error)})
    rels = [
        r
        for r in metadata.get("relationships", [])
        if r["parent_table_name"] in good and r["child_table_name"] in good
    ]
    attempts = [rels, []] if rels else [[]]
    for attempt in attempts:
        meta = {"tables": {n: tables[n] for n in good}, "relationships": attempt}
        try:
            report = _generate(
                report_cls,
                {n: real[n] for n in good},
                {n: synthetic[n] for n in good},
                meta,
                seed,
            )
            return report, set(good)
        except Exception as error:
            scope = "relationships" if attempt else "remaining tables"
            errors.append({"report": label, "scope": scope, "message": _message(error)})
    return None, set()


def _number(value: Any) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(x) or math.isinf(x) else round(x, 6)


def _mean(values: Any) -> float | None:
    arr = pd.to_numeric(pd.Series(values, dtype="float64"), errors="coerce").dropna()
    return _number(arr.mean()) if len(arr) else None


def _details(report: Any, prop: str, label: str, errors: list[dict[str, str]]) -> pd.DataFrame:
    if report is None:
        return pd.DataFrame()
    try:
        details = report.get_details(prop)
    except Exception as error:
        errors.append({"report": label, "scope": prop, "message": _message(error)})
        return pd.DataFrame()
    if "Error" in details.columns:
        for _, row in details[details["Error"].notna()].iterrows():
            where = [str(row[c]) for c in details.columns if c in _WHERE_COLUMNS]
            errors.append(
                {"report": label, "scope": f"{prop}: {' / '.join(where)}", "message": row["Error"]}
            )
    return details


_WHERE_COLUMNS = ("Table", "Column", "Column 1", "Column 2", "Child Table", "Foreign Key", "Metric")


def _properties(report: Any, names: tuple[str, ...]) -> dict[str, float | None]:
    out: dict[str, float | None] = dict.fromkeys(names)
    if report is None:
        return out
    frame = report.get_properties()
    for name, score in zip(frame["Property"], frame["Score"], strict=True):
        if name in out:
            out[name] = _number(score)
    return out


def _overall(report: Any) -> float | None:
    if report is None:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _number(report.get_score())


def _rows_of(details: pd.DataFrame, **match: str) -> pd.DataFrame:
    if details.empty:
        return details
    mask = np.ones(len(details), dtype=bool)
    for column, value in match.items():
        if column not in details.columns:
            return details.iloc[0:0]
        mask &= (details[column].astype(str) == value).to_numpy()
    return details[mask]


def _by_metric(rows: pd.DataFrame) -> dict[str, float | None]:
    if rows.empty or "Metric" not in rows.columns:
        return {}
    return {str(m): _number(s) for m, s in zip(rows["Metric"], rows["Score"], strict=True)}


def _pair_trends(pairs: pd.DataFrame, intertable: pd.DataFrame) -> list[dict[str, Any]]:
    """The column pairs SDMetrics counts (correlated or associated in production), worst first."""
    out = []
    for frame, inter in ((pairs, False), (intertable, True)):
        for _, row in _contributing(frame).iterrows():
            if inter:
                where = f"{row['Child Table']} → {row['Parent Table']} ({row['Foreign Key']})"
                first = f"{row['Parent Table']}.{row['Column 1']}"
                second = f"{row['Child Table']}.{row['Column 2']}"
            else:
                where, first, second = str(row["Table"]), str(row["Column 1"]), str(row["Column 2"])
            out.append(
                {
                    "where": where,
                    "column_1": first,
                    "column_2": second,
                    "metric": str(row.get("Metric")),
                    "score": _number(row.get("Score")),
                    "real_correlation": _number(row.get("Real Correlation")),
                    "synthetic_correlation": _number(row.get("Synthetic Correlation")),
                    "real_association": _number(row.get("Real Association")),
                }
            )
    out.sort(
        key=lambda p: (
            2.0 if p["score"] is None else p["score"],
            p["where"],
            p["column_1"],
            p["column_2"],
        )
    )
    return out


def _contributing(details: pd.DataFrame) -> pd.DataFrame:
    if "Meets Threshold?" in details.columns:
        return details[details["Meets Threshold?"].astype("boolean").fillna(False).to_numpy()]
    return details


# --------------------------------------------------------------------------------------------
# Children per parent, on the full frames


def _children_per_parent(
    child: pd.DataFrame, parent: pd.DataFrame, fk: ForeignKey, kinds: list[str]
) -> dict[str, Any]:
    keys = [f"k{i}" for i in range(len(fk.columns))]
    child_keys = pd.DataFrame(
        {k: _key_values(child[c], kind) for k, c, kind in zip(keys, fk.columns, kinds, strict=True)}
    )
    parent_keys = pd.DataFrame(
        {
            k: _key_values(parent[c], kind)
            for k, c, kind in zip(keys, fk.ref_columns, kinds, strict=True)
        }
    )
    parent_keys = parent_keys.dropna().drop_duplicates()
    null = child_keys.isna().any(axis=1).to_numpy()
    linked = child_keys[~null]
    if len(linked) and len(parent_keys):
        counts = linked.value_counts().rename("n").reset_index()
        merged = parent_keys.merge(counts, how="left", on=keys)
        per_parent = merged["n"].fillna(0).to_numpy(dtype=np.int64)
    else:
        per_parent = np.zeros(len(parent_keys), dtype=np.int64)
    matched = int(per_parent.sum())
    return {
        "per_parent": per_parent,
        "child_rows": len(child_keys),
        "null_share": float(null.mean()) if len(null) else 0.0,
        "orphans": int(len(linked) - matched),
    }


def _cpp_summary(stats: dict[str, Any]) -> dict[str, Any]:
    per_parent: np.ndarray = stats["per_parent"]
    values, parents = np.unique(per_parent, return_counts=True)
    has = len(per_parent) > 0
    return {
        "parents": len(per_parent),
        "child_rows": stats["child_rows"],
        "null_fk_share": _number(stats["null_share"]),
        "orphan_children": stats["orphans"],
        "mean": _number(per_parent.mean()) if has else None,
        "median": _number(np.median(per_parent)) if has else None,
        "p95": _number(np.quantile(per_parent, 0.95)) if has else None,
        "max": int(per_parent.max()) if has else None,
        "zero_share": _number((per_parent == 0).mean()) if has else None,
        "histogram": [[int(v), int(c)] for v, c in zip(values, parents, strict=True)],
    }


def _ks_similarity(a: np.ndarray, b: np.ndarray) -> float | None:
    if len(a) == 0 or len(b) == 0:
        return None
    from scipy.stats import ks_2samp

    with warnings.catch_warnings():  # large samples: scipy falls back to the asymptotic method
        warnings.simplefilter("ignore")
        return _number(1.0 - ks_2samp(a, b).statistic)


# --------------------------------------------------------------------------------------------
# SVG charts


def _esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _fmt_number(x: float) -> str:
    ax = abs(x)
    if ax >= 1e9:
        return f"{x / 1e9:.3g}G"
    if ax >= 1e6:
        return f"{x / 1e6:.3g}M"
    if ax >= 1e4:
        return f"{x / 1e3:.3g}k"
    if float(x).is_integer():
        return str(int(x))
    return f"{x:.3g}"


def _fmt_percent(x: float) -> str:
    return f"{100 * x:.0f}%" if x >= 0.1 or x == 0 else f"{100 * x:.1f}%"


def _histogram(
    real: np.ndarray, synthetic: np.ndarray, integer: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[bool, bool]] | None:
    """Shared bins for both copies.

    When a few outliers would squeeze everything else into a couple of bins (the full range is
    more than three times the 0.5-99.5% quantile range), values beyond those quantiles are
    counted in the end bins.
    """
    sides = [a for a in (real, synthetic) if len(a)]
    if not sides:
        return None
    lo = min(float(a.min()) for a in sides)
    hi = max(float(a.max()) for a in sides)
    q_lo = min(float(np.quantile(a, 0.005)) for a in sides)
    q_hi = max(float(np.quantile(a, 0.995)) for a in sides)
    if hi - lo > 3 * (q_hi - q_lo):
        lo, hi = q_lo, q_hi
    if integer:
        lo, hi = math.floor(lo), math.ceil(hi)
        width = max(1, math.ceil((hi - lo + 1) / HIST_BINS))
        n = math.ceil((hi - lo + 1) / width)
        edges = lo - 0.5 + width * np.arange(n + 1, dtype=float)
    elif hi > lo:
        edges = np.linspace(lo, hi, HIST_BINS + 1)
    else:
        edges = np.array([lo - 0.5, lo + 0.5])
    below = any(bool((a < edges[0]).any()) for a in sides)
    above = any(bool((a > edges[-1]).any()) for a in sides)

    def shares(a: np.ndarray) -> np.ndarray:
        if not len(a):
            return np.zeros(len(edges) - 1)
        return np.histogram(np.clip(a, edges[0], edges[-1]), edges)[0] / len(a)

    return edges, shares(real), shares(synthetic), (below, above)


CHART_W = 330
_LEGEND = (
    '<rect x="{x}" y="19" width="8" height="8" class="r"/>'
    '<text x="{x1}" y="27" class="l">real</text>'
    '<rect x="{x2}" y="19" width="8" height="8" class="s"/>'
    '<text x="{x3}" y="27" class="l">synthetic</text>'
)


def _svg_open(width: int, height: int, title: str, score: str, aria: str) -> list[str]:
    x = width - 118
    return [
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{_esc(aria)}">',
        f'<text x="4" y="13" class="t">{_esc(_short(title, 38))}</text>',
        f'<text x="{width - 4}" y="13" class="t" text-anchor="end">{_esc(score)}</text>',
        _LEGEND.format(x=x, x1=x + 11, x2=x + 42, x3=x + 53),
    ]


def _svg_histogram(
    title: str,
    score: str,
    edges: np.ndarray,
    real: np.ndarray,
    synthetic: np.ndarray,
    label: Any,
    note: str,
    integer: bool,
    folded: tuple[bool, bool],
) -> str:
    w, h = CHART_W, 200
    left, right, top, bottom = 36, 8, 34, 40
    pw, ph = w - left - right, h - top - bottom
    ymax = float(max(real.max(initial=0), synthetic.max(initial=0))) or 1.0
    n = len(real)
    bw = pw / n
    out = _svg_open(w, h, title, score, f"distribution of {title}")
    base = top + ph
    out.append(f'<line x1="{left}" y1="{base}" x2="{w - right}" y2="{base}" class="a"/>')
    out.append(f'<line x1="{left}" y1="{top}" x2="{w - right}" y2="{top}" class="g"/>')
    out.append(f'<text x="{left - 3}" y="{top + 4}" class="l" text-anchor="end">')
    out.append(f"{_fmt_percent(ymax)}</text>")
    out.append(f'<text x="{left - 3}" y="{base}" class="l" text-anchor="end">0</text>')
    for i in range(n):
        x0 = left + i * bw
        for share, cls, off in ((real[i], "r", 0.08), (synthetic[i], "s", 0.5)):
            bh = ph * float(share) / ymax
            if bh > 0:
                out.append(
                    f'<rect x="{x0 + off * bw:.1f}" y="{base - bh:.1f}" '
                    f'width="{0.42 * bw:.1f}" height="{bh:.1f}" class="{cls}"/>'
                )
    if integer:
        ticks = list(range(n)) if n <= 12 else sorted({0, n // 2, n - 1})
        for i in ticks:
            first, last = math.ceil(edges[i]), math.floor(edges[i + 1])
            text = label(first) if first >= last else f"{label(first)}-{label(last)}"
            if i == 0 and folded[0]:
                text = f"≤{label(last)}"
            if i == n - 1 and folded[1]:
                text = f"≥{label(first)}"
            x, anchor = left + (i + 0.5) * bw, "middle"
            if n > 12 and i in (0, n - 1):
                x, anchor = (left, "start") if i == 0 else (w - right, "end")
            out.append(f'<text x="{x:.1f}" y="{base + 12}" class="l" text-anchor="{anchor}">')
            out.append(f"{_esc(text)}</text>")
    else:
        for x, text, anchor in (
            (left, ("≤" if folded[0] else "") + label(edges[0]), "start"),
            (left + pw / 2, label((edges[0] + edges[-1]) / 2), "middle"),
            (w - right, ("≥" if folded[1] else "") + label(edges[-1]), "end"),
        ):
            out.append(f'<text x="{x:.1f}" y="{base + 12}" class="l" text-anchor="{anchor}">')
            out.append(f"{_esc(text)}</text>")
    if note:
        out.append(f'<text x="4" y="{h - 6}" class="n">{_esc(_short(note, 60))}</text>')
    out.append("</svg>")
    return "".join(out)


def _svg_categories(
    title: str, score: str, labels: list[str], real: list[float], synthetic: list[float]
) -> str:
    row = 18
    left, right, top, bottom = 112, 66, 36, 8
    w = CHART_W
    h = top + row * len(labels) + bottom
    pw = w - left - right
    smax = max([*real, *synthetic, 0.0]) or 1.0
    out = _svg_open(w, h, title, score, f"categories of {title}")
    out.append(f'<line x1="{left}" y1="{top - 2}" x2="{left}" y2="{h - bottom}" class="a"/>')
    for i, (text, r, s) in enumerate(zip(labels, real, synthetic, strict=True)):
        y = top + i * row
        out.append(f'<text x="{left - 4}" y="{y + 12}" class="l" text-anchor="end">')
        out.append(f"{_esc(_short(text, 18))}</text>")
        for share, cls, off in ((r, "r", 1), (s, "s", 8)):
            bw = pw * share / smax
            out.append(
                f'<rect x="{left}" y="{y + off}" width="{bw:.1f}" height="7" class="{cls}"/>'
            )
        out.append(f'<text x="{left + pw * max(r, s) / smax + 3:.1f}" y="{y + 12}" class="l">')
        out.append(f"{_fmt_percent(r)}/{_fmt_percent(s)}</text>")
    out.append("</svg>")
    return "".join(out)


def _null_note(real: pd.Series, synthetic: pd.Series) -> str:
    rn = float(real.isna().mean()) if len(real) else 0.0
    sn = float(synthetic.isna().mean()) if len(synthetic) else 0.0
    if rn == 0 and sn == 0:
        return ""
    return f"NULL: real {_fmt_percent(rn)}, synthetic {_fmt_percent(sn)}"


def _datetime_label(edges: np.ndarray) -> Any:
    span = float(edges[-1] - edges[0])
    fmt = "%Y-%m-%d" if span > 3 * 86400e9 else "%Y-%m-%d %H:%M"
    return lambda v: pd.Timestamp(int(v)).strftime(fmt)


def _column_chart(
    name: str, kind: str, sdtype: str, real: pd.Series, synthetic: pd.Series, score: str
) -> str:
    note = _null_note(real, synthetic)
    if sdtype in ("numerical", "datetime") or kind == "bytea":
        if sdtype == "datetime":
            r = real.dropna().to_numpy(dtype="datetime64[ns]").astype(np.int64).astype(float)
            s = synthetic.dropna().to_numpy(dtype="datetime64[ns]").astype(np.int64).astype(float)
        else:
            r = real.dropna().to_numpy(dtype=float)
            s = synthetic.dropna().to_numpy(dtype=float)
        integer = kind in ("integer", "bytea")
        hist = _histogram(r, s, integer)
        if hist is None:
            return ""
        edges, rs, ss, folded = hist
        label = _datetime_label(edges) if sdtype == "datetime" else _fmt_number
        if any(folded):
            note = (note + "; " if note else "") + "tails folded into end bins"
        title = f"{name} (length)" if kind == "bytea" else name
        return _svg_histogram(title, score, edges, rs, ss, label, note, integer, folded)
    rc = real.astype(object).where(real.notna(), None).map(_category_label)
    sc = synthetic.astype(object).where(synthetic.notna(), None).map(_category_label)
    rshare = rc.value_counts(normalize=True, dropna=True)
    sshare = sc.value_counts(normalize=True, dropna=True)
    combined = rshare.add(sshare, fill_value=0).sort_values(ascending=False, kind="stable")
    top = sorted(combined.index[:TOP_CATEGORIES], key=lambda k: (-rshare.get(k, 0.0), k))
    labels = list(top)
    rv = [float(rshare.get(k, 0.0)) for k in top]
    sv = [float(sshare.get(k, 0.0)) for k in top]
    r_other = float(rc.notna().mean()) - sum(rv) if len(rc) else 0.0
    s_other = float(sc.notna().mean()) - sum(sv) if len(sc) else 0.0
    if len(combined) > TOP_CATEGORIES:
        labels.append(f"(other {len(combined) - TOP_CATEGORIES})")
        rv.append(max(r_other, 0.0))
        sv.append(max(s_other, 0.0))
    rnull = float(rc.isna().mean()) if len(rc) else 0.0
    snull = float(sc.isna().mean()) if len(sc) else 0.0
    # value_counts(normalize=True, dropna=True) divides by non-null rows: rescale to all rows
    rv = [v * (1 - rnull) if i < len(top) else v for i, v in enumerate(rv)]
    sv = [v * (1 - snull) if i < len(top) else v for i, v in enumerate(sv)]
    if rnull or snull:
        labels.append("(NULL)")
        rv.append(rnull)
        sv.append(snull)
    return _svg_categories(name, score, labels, rv, sv)


def _category_label(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, bool | np.bool_):
        return "true" if v else "false"
    return str(v)


def _cpp_chart(title: str, score: str, real: np.ndarray, synthetic: np.ndarray) -> str:
    hist = _histogram(real.astype(float), synthetic.astype(float), integer=True)
    if hist is None:
        return '<p class="muted">no parent rows</p>'
    edges, rs, ss, folded = hist
    note = "share of parents" + ("; tails folded into end bins" if any(folded) else "")
    return _svg_histogram(title, score, edges, rs, ss, _fmt_number, note, True, folded)


# --------------------------------------------------------------------------------------------
# HTML


_CSS = """
body{font:14px/1.4 system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;
color:#1d2329;background:#fff;max-width:1400px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 6px;border-bottom:1px solid #ddd;
padding-bottom:4px}h3{font-size:15px;margin:18px 0 4px}
table{border-collapse:collapse;margin:8px 0}td,th{padding:3px 10px;border-bottom:1px solid #eee;
text-align:right}th:first-child,td:first-child{text-align:left}th{background:#f5f6f7}
.muted{color:#6b7680}.grid{display:flex;flex-wrap:wrap;gap:10px;align-items:flex-start}
.card{border:1px solid #e3e6e8;border-radius:4px;padding:2px}
.fk{width:334px}.fk h3{font-size:13px;margin:4px}.fk p{margin:4px;font-size:12px}
.good{color:#1a7f37}.fair{color:#9a6700}.poor{color:#cf222e}
.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px}
.pairs td:nth-child(-n+4),.pairs th:nth-child(-n+4){text-align:left}
.err{color:#cf222e;font-family:ui-monospace,monospace;font-size:12px}
svg text{font-family:system-ui,Helvetica,Arial,sans-serif}
.r{fill:#3b6fb6}.s{fill:#f28e2b}.t{font-size:12px;font-weight:600;fill:#1d2329}
.l{font-size:10px;fill:#4a545e}.n{font-size:10px;fill:#6b7680}
.a{stroke:#9aa3ab;stroke-width:1}.g{stroke:#e3e6e8;stroke-width:1;stroke-dasharray:3 3}
"""


def _fmt_optional(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}"


def _score_cell(x: float | None) -> str:
    if x is None:
        return '<td class="muted">n/a</td>'
    cls = "good" if x >= 0.8 else "fair" if x >= 0.6 else "poor"
    return f'<td class="{cls}">{100 * x:.1f}%</td>'


def _anchor(prefix: str, name: str) -> str:
    return prefix + "-" + hashlib.sha1(name.encode()).hexdigest()[:10]


def _score_label(metric: str | None, score: float | None) -> str:
    if score is None:
        return ""
    short = {"KSComplement": "KS", "TVComplement": "TV"}.get(metric or "", metric or "")
    return f"{short} {score:.2f}"


def _render_html(
    title: str, doc: dict[str, Any], charts: dict[str, list[str]], cpp_charts: list[str]
) -> str:
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_esc(title)}</h1>",
        '<p class="muted">SDMetrics ' + _esc(doc["sdmetrics_version"]) + " multi-table reports; "
        f"at most {doc['settings']['max_rows']:,} rows per table evaluated (seed "
        f"{doc['settings']['seed']}). Charts use all rows.</p>",
        '<p class="legend"><span style="background:#3b6fb6"></span>real (production)'
        '<span style="background:#f28e2b"></span>synthetic</p>',
        "<h2>Summary</h2><table><tr><th>score</th><th>value</th></tr>",
        "<tr><th>Quality (overall)</th>" + _score_cell(doc["score"]) + "</tr>",
    ]
    for name, value in doc["properties"].items():
        out.append(f"<tr><td>&nbsp;&nbsp;{_esc(name)}</td>{_score_cell(value)}</tr>")
    out.append("<tr><th>Diagnostic (overall)</th>" + _score_cell(doc["diagnostic"]) + "</tr>")
    for name, value in doc["diagnostic_properties"].items():
        out.append(f"<tr><td>&nbsp;&nbsp;{_esc(name)}</td>{_score_cell(value)}</tr>")
    out.append("</table>")

    out.append(
        "<h3>Tables</h3><table><tr><th>table</th><th>quality</th><th>column shapes</th>"
        "<th>pair trends</th><th>cardinality</th><th>rows real</th><th>rows synthetic</th>"
        "<th>columns evaluated</th></tr>"
    )
    for name, t in doc["tables"].items():
        evaluated = sum(1 for c in t["columns"].values() if c["sdtype"] != "id")
        score = t["score"] if t["evaluable"] else None
        out.append(
            f'<tr><td><a href="#{_anchor("t", name)}">{_esc(name)}</a></td>{_score_cell(score)}'
            f"{_score_cell(t['column_shapes'])}{_score_cell(t['column_pair_trends'])}"
            f"{_score_cell(t['cardinality'])}<td>{t['rows_real']:,}</td>"
            f"<td>{t['rows_synthetic']:,}</td><td>{evaluated}</td></tr>"
        )
    out.append("</table>")
    if doc.get("utility"):
        out.append(
            '<h3 id="utility">Utility: train on synthetic, test on real</h3><p class="muted">'
            "A random forest predicts the target from the table's other modelled columns; "
            "trained on the synthetic rows or on production's training rows, scored on "
            'production\'s holdout rows (never fit on).</p><table class="utility"><tr>'
            "<th>table</th><th>target</th><th>metric</th><th>trained on synthetic</th>"
            "<th>trained on real</th><th>test rows</th></tr>"
        )
        for u in doc["utility"]:
            cells = (
                f"<td>{_fmt_optional(u['synthetic'])}</td><td>{_fmt_optional(u['real'])}</td>"
                if u["skipped"] is None
                else f'<td colspan="2" class="muted">skipped: {_esc(u["skipped"])}</td>'
            )
            out.append(
                f"<tr><td>{_esc(u['table'])}</td><td>{_esc(u['target'])}</td>"
                f"<td>{_esc(u['metric'])}</td>{cells}<td>{u['rows_test']:,}</td></tr>"
            )
        out.append("</table>")
    if doc.get("notes"):
        out.append('<h3 id="notes">Notes</h3><ul class="notes">')
        out += [f"<li>{_esc(n)}</li>" for n in doc["notes"]]
        out.append("</ul>")
    weakest = doc["pair_trends"][:WEAKEST_PAIRS]
    if weakest:
        out.append(
            f'<h3>Weakest pair trends</h3><p class="muted">The {len(weakest)} lowest of the '
            f"{len(doc['pair_trends'])} column pairs SDMetrics scores (those correlated or "
            "associated in production). Real/synthetic: Pearson correlation, or Cramér's V "
            "association in production for category pairs.</p>"
            '<table class="pairs"><tr><th>where</th><th>column 1</th><th>column 2</th>'
            "<th>metric</th><th>real</th><th>synthetic</th><th>score</th></tr>"
        )
        for p in weakest:
            real = (
                p["real_correlation"]
                if p["real_correlation"] is not None
                else p["real_association"]
            )
            out.append(
                f"<tr><td>{_esc(p['where'])}</td><td>{_esc(p['column_1'])}</td>"
                f"<td>{_esc(p['column_2'])}</td><td>{_esc(p['metric'])}</td>"
                f"<td>{_fmt_optional(real)}</td><td>{_fmt_optional(p['synthetic_correlation'])}</td>"
                f"{_score_cell(p['score'])}</tr>"
            )
        out.append("</table>")
    if doc["errors"]:
        out.append("<h3>Errors</h3><ul>")
        for e in doc["errors"]:
            out.append(
                f'<li class="err">{_esc(e["report"])} — {_esc(e["scope"])}: '
                f"{_esc(e['message'])}</li>"
            )
        out.append("</ul>")

    for name, t in doc["tables"].items():
        score = f"{100 * t['score']:.1f}%" if t["evaluable"] else "n/a"
        sampled = ""
        if t["sampled_real"] or t["sampled_synthetic"]:
            sampled = (
                f" · SDMetrics saw {t['rows_evaluated_real']:,} real and "
                f"{t['rows_evaluated_synthetic']:,} synthetic rows"
            )
        out.append(
            f'<section class="table" data-table="{_esc(name)}">'
            f'<h2 id="{_anchor("t", name)}">{_esc(name)} <span class="muted">— quality '
            f"{score}</span></h2>"
            f'<p class="muted">{t["rows_real"]:,} real rows, {t["rows_synthetic"]:,} synthetic '
            f"rows{sampled}</p>"
        )
        if charts[name]:
            out.append('<div class="grid">')
            out.extend(f'<div class="card">{c}</div>' for c in charts[name])
            out.append("</div>")
        else:
            out.append('<p class="muted">no column with a distribution to compare</p>')
        if t["excluded"]:
            items = ", ".join(f"{_esc(c)} ({_esc(reason)})" for c, reason in t["excluded"].items())
            out.append(f'<p class="muted">not evaluated: {items}</p>')
        out.append("</section>")

    out.append('<section class="fks"><h2 id="children-per-parent">Children per parent</h2>')
    out.append(
        '<p class="muted">For each foreign key, how many child rows each parent row has (share '
        "of parents), on all rows. Similarity is 1 − the Kolmogorov–Smirnov statistic.</p>"
    )
    out.append('<div class="grid">')
    for rel, chart in zip(doc["foreign_keys"], cpp_charts, strict=True):
        real, syn = rel["real"], rel["synthetic"]
        mean_r = "n/a" if real["mean"] is None else f"{real['mean']:.2f}"
        mean_s = "n/a" if syn["mean"] is None else f"{syn['mean']:.2f}"
        sdm = (
            f"SDMetrics cardinality {_score_label(None, rel['cardinality'])}"
            if rel["cardinality"] is not None
            else f"not in SDMetrics: {_esc(rel['sdmetrics_skipped'] or 'not scored')}"
        )
        out.append(
            f'<div class="card fk" id="{_anchor("fk", rel["child"] + "." + rel["name"])}" '
            f'data-fk="{_esc(rel["name"])}" data-child="{_esc(rel["child"])}">'
            f"<h3>{_esc(rel['child'])}({_esc(', '.join(rel['columns']))}) → "
            f"{_esc(rel['parent'])}({_esc(', '.join(rel['ref_columns']))})</h3>"
            f'<p class="muted">{_esc(rel["name"])} · mean {mean_r} real, {mean_s} synthetic'
            f"<br>{sdm}</p>{chart}</div>"
        )
    out.append("</div></section></body></html>")
    return "\n".join(out)


# --------------------------------------------------------------------------------------------
# Entry point


def evaluate_quality(
    schema: Schema,
    real: dict[str, pd.DataFrame],
    synthetic: dict[str, pd.DataFrame],
    out_dir: Path,
    title: str = "prodtwin quality report",
    max_rows: int = 20_000,
    seed: int = 0,
    utility: list[dict[str, Any]] | None = None,
    notes: list[str] | None = None,
) -> QualityResult:
    """Score the synthetic copy against production; write quality.json and quality.html.

    ``real`` and ``synthetic`` map table names to frames with the same columns (as
    ``extract.read_table`` and ``generate`` produce them); tables missing from either are left
    out. ``score`` and ``diagnostic`` are NaN only when SDMetrics could score nothing at all.
    ``per_table`` is the mean of the table's column shapes, column pair trends and (as a child)
    cardinality scores; a table with none of these gets 1.0 (0.0 if its synthetic copy is empty
    while production is not), flagged ``"evaluable": false`` in the JSON. ``utility`` (TSTR
    scores) and ``notes`` (what generation left out or changed) are shown as given.
    """
    start = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = sorted(n for n in schema.tables if n in real and n in synthetic)
    plans = {n: _plan_table(schema.tables[n], real[n], synthetic[n]) for n in names}

    relationships: list[_Relationship] = []
    skipped: dict[tuple[str, str], str] = {}
    for name in names:
        for fk in schema.tables[name].foreign_keys:
            rel, reason = _sdmetrics_relationship(schema, plans, name, fk)
            if rel is not None:
                relationships.append(rel)
            else:
                skipped[(name, fk.name)] = reason or "not scored"

    prepared_real = {n: _prepare(plans[n], real[n]) for n in names}
    prepared_syn = {n: _prepare(plans[n], synthetic[n]) for n in names}
    evaluable = [n for n in names if plans[n].sdtypes]
    order = _parents_first(evaluable, relationships)
    sample_real, reduced_real = _subsample(
        {n: prepared_real[n] for n in evaluable}, relationships, order, max_rows, seed, "real"
    )
    sample_syn, reduced_syn = _subsample(
        {n: prepared_syn[n] for n in evaluable}, relationships, order, max_rows, seed, "synthetic"
    )
    metadata: dict[str, Any] = {"tables": {}, "relationships": []}
    for n in evaluable:
        meta: dict[str, Any] = {"columns": {c: {"sdtype": s} for c, s in plans[n].sdtypes.items()}}
        if plans[n].primary_key:
            meta["primary_key"] = plans[n].primary_key
        metadata["tables"][n] = meta
    metadata["relationships"] = [r.as_metadata() for r in relationships]

    errors: list[dict[str, str]] = []
    quality_cls, diagnostic_cls = _report_classes()
    quality, q_tables = _run_report(
        "quality", quality_cls, sample_real, sample_syn, metadata, seed, errors
    )
    diagnostic, _ = _run_report(
        "diagnostic", diagnostic_cls, sample_real, sample_syn, metadata, seed, errors
    )
    shapes = _details(quality, "Column Shapes", "quality", errors)
    pairs = _details(quality, "Column Pair Trends", "quality", errors)
    cardinality = _details(quality, "Cardinality", "quality", errors)
    intertable = _details(quality, "Intertable Trends", "quality", errors)
    validity = _details(diagnostic, "Data Validity", "diagnostic", errors)
    rel_validity = _details(diagnostic, "Relationship Validity", "diagnostic", errors)

    tables_doc: dict[str, Any] = {}
    per_table: dict[str, float] = {}
    charts: dict[str, list[str]] = {}
    for name in names:
        plan = plans[name]
        t_shapes = _rows_of(shapes, Table=name)
        t_pairs = _contributing(_rows_of(pairs, Table=name))
        t_card = _rows_of(cardinality, **{"Child Table": name})
        parts = {
            "column_shapes": _mean(t_shapes.get("Score", [])),
            "column_pair_trends": _mean(t_pairs.get("Score", [])),
            "cardinality": _mean(t_card.get("Score", [])),
        }
        present = [v for v in parts.values() if v is not None]
        scored = bool(present) and name in q_tables
        score = _number(sum(present) / len(present)) if scored else None
        if score is None:  # nothing to compare, unless production rows have no synthetic twin
            score = 0.0 if len(real[name]) and not len(synthetic[name]) else 1.0
        per_table[name] = float(score)
        columns_doc: dict[str, Any] = {}
        t_charts: list[str] = []
        for col, sdtype in plan.sdtypes.items():
            entry: dict[str, Any] = {"sdtype": sdtype, "kind": plan.kinds[col]}
            row = _rows_of(t_shapes, Column=col)
            metric = str(row["Metric"].iloc[0]) if len(row) else None
            entry["shape_metric"] = metric
            entry["shape_score"] = _number(row["Score"].iloc[0]) if len(row) else None
            vrows = _rows_of(validity, Table=name, Column=col)
            entry["validity"] = _by_metric(vrows)
            rn, sn = prepared_real[name][col], prepared_syn[name][col]
            entry["null_share_real"] = _number(rn.isna().mean()) if len(rn) else None
            entry["null_share_synthetic"] = _number(sn.isna().mean()) if len(sn) else None
            columns_doc[col] = entry
        for col in plan.plotted:
            sdtype = plan.sdtypes.get(col, "")
            if col in plan.sdtypes:
                rcol, scol = prepared_real[name][col], prepared_syn[name][col]
            else:  # bytea lengths
                rcol, scol = _byte_lengths(real[name][col]), _byte_lengths(synthetic[name][col])
            label = _score_label(
                columns_doc.get(col, {}).get("shape_metric"),
                columns_doc.get(col, {}).get("shape_score"),
            )
            chart = _column_chart(col, plan.kinds[col], sdtype, rcol, scol, label)
            if chart:
                t_charts.append(chart)
        charts[name] = t_charts
        tables_doc[name] = {
            "score": per_table[name],
            "evaluable": scored,
            **parts,
            "rows_real": len(real[name]),
            "rows_synthetic": len(synthetic[name]),
            "rows_evaluated_real": len(sample_real[name]) if name in sample_real else 0,
            "rows_evaluated_synthetic": len(sample_syn[name]) if name in sample_syn else 0,
            "sampled_real": bool(reduced_real.get(name, False)),
            "sampled_synthetic": bool(reduced_syn.get(name, False)),
            "column_pairs": len(_rows_of(pairs, Table=name)),
            "column_pairs_contributing": len(t_pairs),
            "primary_key": plan.primary_key,
            "columns": columns_doc,
            "excluded": dict(plan.excluded),
        }

    fk_docs, cpp_charts = _foreign_keys(
        schema, names, real, synthetic, skipped, cardinality, rel_validity, intertable
    )

    properties = _properties(quality, QUALITY_PROPERTIES)
    diag_properties = _properties(diagnostic, DIAGNOSTIC_PROPERTIES)
    pair_trends = _pair_trends(pairs, intertable)
    document: dict[str, Any] = {
        "title": title,
        "sdmetrics_version": version("sdmetrics"),
        "settings": {"max_rows": max_rows, "seed": seed, "max_categories": MAX_CATEGORIES},
        "score": _overall(quality),
        "properties": properties,
        "diagnostic": _overall(diagnostic),
        "diagnostic_properties": diag_properties,
        "tables": tables_doc,
        "tables_missing": sorted(set(schema.tables) - set(names)),
        "foreign_keys": fk_docs,
        "pair_trends": pair_trends,
        "utility": utility or [],  # synth_assets.utility scores, as dicts
        "notes": notes or [],  # e.g. rare categories suppressed, cycles cut
        "errors": errors,
    }
    json_path = out_dir / "quality.json"
    html_path = out_dir / "quality.html"
    json_path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    html_path.write_text(_render_html(title, document, charts, cpp_charts), encoding="utf-8")
    log.info("quality report in %.1fs: %s", time.perf_counter() - start, html_path)
    return QualityResult(
        score=math.nan if document["score"] is None else document["score"],
        properties={k: v for k, v in properties.items() if v is not None},
        diagnostic=math.nan if document["diagnostic"] is None else document["diagnostic"],
        diagnostic_properties={k: v for k, v in diag_properties.items() if v is not None},
        per_table=per_table,
        json_path=json_path,
        html_path=html_path,
    )


def _foreign_keys(
    schema: Schema,
    names: list[str],
    real: dict[str, pd.DataFrame],
    synthetic: dict[str, pd.DataFrame],
    skipped: dict[tuple[str, str], str],
    cardinality: pd.DataFrame,
    rel_validity: pd.DataFrame,
    intertable: pd.DataFrame,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Every foreign key: children per parent on the full frames, plus its SDMetrics scores."""
    docs: list[dict[str, Any]] = []
    charts: list[str] = []
    for name in names:
        for fk in sorted(schema.tables[name].foreign_keys, key=lambda f: f.name):
            doc = _fk_doc(schema, name, fk, real, synthetic, skipped)
            if doc is None:
                continue
            doc.update(cardinality=None, relationship_validity={}, intertable_trends=None)
            if doc["sdmetrics_skipped"] is None:
                where = {
                    "Child Table": name,
                    "Parent Table": fk.ref_table,
                    "Foreign Key": fk.columns[0],
                }
                doc["cardinality"] = _mean(_rows_of(cardinality, **where).get("Score", []))
                doc["relationship_validity"] = _by_metric(_rows_of(rel_validity, **where))
                irows = _contributing(_rows_of(intertable, **where))
                doc["intertable_trends"] = _mean(irows.get("Score", []))
            per_real, per_syn = doc.pop("_real"), doc.pop("_synthetic")
            similarity = doc["shape_similarity"]
            score = "" if similarity is None else f"sim {similarity:.2f}"
            charts.append(_cpp_chart(f"{name}.{', '.join(fk.columns)}", score, per_real, per_syn))
            docs.append(doc)
    return docs, charts


def _fk_doc(
    schema: Schema,
    child: str,
    fk: ForeignKey,
    real: dict[str, pd.DataFrame],
    synthetic: dict[str, pd.DataFrame],
    skipped: dict[tuple[str, str], str],
) -> dict[str, Any] | None:
    parent = fk.ref_table
    if parent not in schema.tables or parent not in real or parent not in synthetic:
        return None
    frames = (real[child], synthetic[child], real[parent], synthetic[parent])
    if any(c not in f.columns for f in frames[:2] for c in fk.columns) or any(
        c not in f.columns for f in frames[2:] for c in fk.ref_columns
    ):
        return None
    parent_table = schema.tables[parent]
    kinds = [_column_kind(parent_table, c) for c in fk.ref_columns]
    r = _children_per_parent(real[child], real[parent], fk, kinds)
    s = _children_per_parent(synthetic[child], synthetic[parent], fk, kinds)
    return {
        "name": fk.name,
        "child": child,
        "columns": list(fk.columns),
        "parent": parent,
        "ref_columns": list(fk.ref_columns),
        "sdmetrics_skipped": skipped.get((child, fk.name)),
        "shape_similarity": _ks_similarity(r["per_parent"], s["per_parent"]),
        "real": _cpp_summary(r),
        "synthetic": _cpp_summary(s),
        "_real": r["per_parent"],
        "_synthetic": s["per_parent"],
    }


def _column_kind(table: Table, name: str) -> str:
    try:
        col: Column = table.column(name)
    except KeyError:
        return "other"
    return col.kind
