"""What generating JSON documents and arrays costs, beside drawing production's values whole.

    python benchmarks/documents.py [--rows 100000]

Before documents.py, a json or array column's values were drawn from production's column (and
its personal data with them). Now every document is built from a production document's
structure with generated leaves: this prints the seconds to learn a model from production's
documents (at most documents.MAX_DOCUMENTS of them) and to generate ``--rows`` documents,
beside drawing as many of production's values, on planted profiles of eight leaves (an email,
a phone, a status, a score, a count, two tags, a date) and on integer arrays of four elements.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd

from synth_assets.arrays import format_array, parse_all
from synth_assets.documents import MAX_DOCUMENTS, DocumentModel, parse_json

PRODUCTION_ROWS = 20_000


def _words(kind: str | None, production: pd.Series, n: int) -> np.ndarray:
    return np.array(["generated"] * n, dtype=object)  # the text itself is pii.py's cost


def _profiles(rng: np.random.Generator) -> pd.Series:
    return pd.Series(
        [
            json.dumps(
                {
                    "contact": {"email": f"p{i}@example.org", "phone": f"555-{i:04d}"},
                    "status": ["active", "trial", "suspended"][i % 3],
                    "score": float(rng.random() * 100),
                    "logins": int(rng.integers(0, 40)),
                    "tags": [f"t{i % 5}", f"t{i % 7}"],
                    "joined": f"2020-01-{1 + i % 28:02d}",
                }
            )
            for i in range(PRODUCTION_ROWS)
        ]
    )


def _arrays(rng: np.random.Generator) -> pd.Series:
    values = rng.integers(0, 9, (PRODUCTION_ROWS, 4))
    return pd.Series(["{" + ",".join(map(str, row)) + "}" for row in values])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    n = parser.parse_args().rows
    rng = np.random.default_rng(0)
    for name, texts, parse, write in (
        ("documents", _profiles(rng), parse_json, lambda d: json.dumps(d, ensure_ascii=False)),
        ("int arrays", _arrays(rng), lambda t: parse_all(t, "integer"), format_array),
    ):
        start = time.perf_counter()
        learned = texts.sample(min(len(texts), MAX_DOCUMENTS), random_state=0)  # as generate does
        model = DocumentModel.fit(parse(learned) or [], name, 2)
        fit = time.perf_counter() - start
        start = time.perf_counter()
        generated = [write(d) for d in model.sample(n, rng, _words)]
        made = time.perf_counter() - start
        start = time.perf_counter()
        production = texts.to_numpy(dtype=object)
        drawn = production[rng.integers(0, len(production), n)]
        copied = time.perf_counter() - start
        assert len(generated) == len(drawn) == n
        print(
            f"{name}: model {fit:.2f} s; {n:,} generated in {made:.2f} s "
            f"({made / n * 1e6:.1f} us each, {n / made:,.0f} rows/s); drawn from production "
            f"in {copied:.3f} s"
        )


if __name__ == "__main__":
    main()
