"""The refresh summary a person reads at the end of a run."""

from __future__ import annotations


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


def summary_headers(envs: list[str]) -> list[str]:
    """The columns of the refresh summary the command line prints."""
    return [
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
