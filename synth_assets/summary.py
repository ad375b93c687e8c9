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


def summary(report: RefreshReport) -> str:
    envs = list(report.published)
    headers = [
        "table",
        "prod rows",
        *[f"rows {e}" for e in envs],
        "fit s",
        "sample s",
        "FKs checked",
    ]
    rows = []
    for name in report.plan.order:
        stats = report.synthetic.stats[name]
        published = [str(report.published[e].rows.get(name, 0)) for e in envs]
        fks = report.published[envs[0]].foreign_keys_checked.get(name, 0) if envs else 0
        rows.append(
            [
                name,
                str(stats.rows_production),
                *published,
                f"{stats.fit_seconds:.2f}",
                f"{stats.sample_seconds:.2f}",
                str(fks),
            ]
        )
    total_prod = sum(s.rows_production for s in report.synthetic.stats.values())
    totals = [str(sum(report.published[e].rows.values())) for e in envs]
    fit = sum(s.fit_seconds for s in report.synthetic.stats.values())
    sample = sum(s.sample_seconds for s in report.synthetic.stats.values())
    fk_total = sum(report.published[envs[0]].foreign_keys_checked.values()) if envs else 0
    rows.append(["TOTAL", str(total_prod), *totals, f"{fit:.2f}", f"{sample:.2f}", str(fk_total)])
    lines = [render_table(headers, rows)]
    for note in report.synthetic.notes:
        lines.append(f"note: {note}")
    for env, result in report.published.items():
        lines.append(
            f"published {env}: schema {result.schema} in {result.seconds:.1f}s "
            f"(previous kept as {result.schema}__previous)"
        )
    lines.append(f"refresh took {report.seconds:.1f}s")
    return "\n".join(lines)
