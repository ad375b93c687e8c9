"""The refresh summary a person reads at the end of a run."""

from __future__ import annotations

from synth_assets.refresh import RefreshReport


def render_table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]
    right = [i > 0 for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right, strict=True)
        )

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def _ratio(value: float | None) -> str:
    if value is None:
        return "-"
    return "inf" if value == float("inf") else f"{value:.2f}"


def summary(report: RefreshReport) -> str:
    envs = list(report.published)
    first = envs[0] if envs else None
    gate = report.gates.get(first) if first else None
    quality = report.quality
    headers = [
        "table",
        "prod rows",
        *[f"rows {e}" for e in envs],
        "fit s",
        "sample s",
        "FKs checked",
        "quality",
        "DCR ratio",
        "expectations",
    ]
    rows = []
    for name in report.plan.order:
        stats = report.synthetic.stats[name]
        published = [str(report.published[e].rows.get(name, 0)) for e in envs]
        fks = report.published[first].foreign_keys_checked.get(name, 0) if first else 0
        score = quality.per_table.get(name) if quality is not None else None
        privacy = gate.privacy.get(name) if gate else None
        validation = gate.validations.get(name) if gate else None
        rows.append(
            [
                name,
                str(stats.rows_production),
                *published,
                f"{stats.fit_seconds:.2f}",
                f"{stats.sample_seconds:.2f}",
                str(fks),
                f"{score:.2f}" if score is not None else "-",
                _ratio(privacy.dcr_ratio) if privacy else "-",
                f"{validation.passed}/{validation.total}" if validation else "-",
            ]
        )
    total_prod = sum(s.rows_production for s in report.synthetic.stats.values())
    totals = [str(sum(report.published[e].rows.values())) for e in envs]
    fit = sum(s.fit_seconds for s in report.synthetic.stats.values())
    sample = sum(s.sample_seconds for s in report.synthetic.stats.values())
    fk_total = sum(report.published[first].foreign_keys_checked.values()) if first else 0
    passed = sum(v.passed for v in gate.validations.values()) if gate else 0
    total = sum(v.total for v in gate.validations.values()) if gate else 0
    rows.append(
        [
            "TOTAL",
            str(total_prod),
            *totals,
            f"{fit:.2f}",
            f"{sample:.2f}",
            str(fk_total),
            f"{quality.score:.2f}" if quality is not None else "-",
            "",
            f"{passed}/{total}" if gate else "-",
        ]
    )
    lines = [render_table(headers, rows)]
    if quality is not None:
        props = ", ".join(f"{k} {v:.2f}" for k, v in quality.properties.items())
        lines.append(f"quality {quality.score:.2f} ({props}); diagnostic {quality.diagnostic:.2f}")
    for note in report.synthetic.notes:
        lines.append(f"note: {note}")
    for env, result in report.published.items():
        lines.append(
            f"published {env}: schema {result.schema} in {result.seconds:.1f}s "
            f"(previous kept as {result.schema}__previous)"
        )
    if quality is not None:
        lines.append(f"quality report: {quality.html_path.resolve()}")
    if gate is not None and gate.docs_path is not None:
        lines.append(f"data docs ({first}): {gate.docs_path.resolve()}")
    lines.append(f"refresh took {report.seconds:.1f}s")
    return "\n".join(lines)
