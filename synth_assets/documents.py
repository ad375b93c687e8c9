"""JSON documents and arrays generated, never copied.

A json or jsonb column (a customer's ``profile``, an order's ``metadata``) often carries the
personal data that column names hide: ``{"contact": {"email": ...}, "notes": "..."}``, and an
array column (``contact_emails text[]``) the same. Drawn whole from production's rows, as
values of types prodtwin does not model are, every one of them reached the warehouse verbatim.

A column of few documents, each of many rows (a film's special features, a settings object),
is a category: documents are drawn whole among the ones more than
``privacy.rare_category_count`` rows have, at their shares. Otherwise a synthetic document
takes the structure of a production document (its keys, nesting and list lengths: structure is
the application's schema, not a person's data), and every leaf is generated from the values
production has at that path (``contact.email``, ``items[].price``):

- numbers between production's quantiles at the path (about ten values per knot), as
  integers where production's are, with production's decimals; a path of few values takes
  its common ones at their shares;
- strings that name a kind of personal data by their key (``email``, ``phone``, ``city``; a
  top-level array by its column's name) or look like emails are fakes of that kind; strings
  that repeat (a status, a currency) are drawn among the values more than
  ``rare_category_count`` documents have, at their shares; ISO dates and times are drawn
  between production's quantiles; anything else (free text, codes) is generated like a text
  column of its kind;
- booleans at production's share; nulls stay null.

A key that at most ``rare_category_count`` documents have (a map keyed by user names or
emails, not a record) is scrambled, character by character. Leaves are drawn independently of
each other and of the row's other columns: the path's distribution is kept, not the pairs.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from synth_assets.pii import pii_kind_of_name, scramble
from synth_assets.quantiles import TIME_STEPS, between_quantiles, step_of
from synth_assets.roles import CATEGORY_SHARE, MAX_CATEGORIES

# documents a model is learned from (a sample of production's): parsing is per document
MAX_DOCUMENTS = 5_000
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
ISO_TIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)?$"
)

Slot = tuple[str, str]  # (path, leaf type): items[].price, number
# a generated-text callback: (personal-data kind or None, production values, n) -> n strings
TextMaker = Callable[[str | None, pd.Series, int], np.ndarray]


def parse_json(texts: pd.Series) -> list[Any] | None:
    """A json column's values as Python values (None: not JSON after all)."""
    try:
        return [json.loads(t) if isinstance(t, str) else t for t in texts.dropna()]
    except ValueError:
        return None


def _leaf_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return "string"


@dataclass
class _Learned:
    values: dict[Slot, list[Any]] = field(default_factory=dict)
    keys: Counter[tuple[str, str]] = field(default_factory=Counter)  # (path, key): documents


def _walk(
    doc: Any, path: str, learned: _Learned, seen: set[tuple[str, str]], slots: Counter[Slot]
) -> None:
    """Collects a document's leaves by slot and the documents each key is in; ``slots``: the
    document's own leaves, counted."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            if (path, key) not in seen:
                seen.add((path, key))
                learned.keys[(path, key)] += 1
            _walk(value, f"{path}.{key}" if path else key, learned, seen, slots)
    elif isinstance(doc, list):
        for value in doc:
            _walk(value, path + "[]", learned, seen, slots)
    else:
        slot = (path, _leaf_type(doc))
        learned.values.setdefault(slot, []).append(doc)
        slots[slot] += 1


@dataclass
class DocumentModel:
    """What a column's synthetic documents are made of (see the module's docstring)."""

    templates: list[Any]  # production documents: their structure is kept, their leaves are not
    values: dict[Slot, pd.Series]
    rare_keys: set[tuple[str, str]]
    rare_count: int
    name: str  # the column's: what a top-level list's strings are (an emails array)
    whole: list[Any] = field(default_factory=list)  # a category of documents: its common ones
    shares: np.ndarray = field(default_factory=lambda: np.zeros(0))
    slots: list[Counter[Slot]] = field(default_factory=list)  # each template's leaves, counted

    @classmethod
    def fit(cls, docs: list[Any], name: str, rare_count: int) -> DocumentModel:
        """``docs``: production's documents as Python values (NULLs left out), at most
        MAX_DOCUMENTS of them (the caller samples before parsing)."""
        learned = _Learned()
        slots: list[Counter[Slot]] = [Counter() for _ in docs]
        for doc, found in zip(docs, slots, strict=True):
            _walk(doc, "", learned, set(), found)
        rare = {k for k, n in learned.keys.items() if n <= rare_count} if rare_count else set()
        values = {slot: pd.Series(v, dtype=object) for slot, v in learned.values.items()}
        model = cls(docs, values, rare, rare_count, name, slots=slots)
        # few documents, repeated (a film's special features, a settings object): a category,
        # drawn whole among the ones more than rare_count rows have, so the values inside one
        # keep each other's company ({"theme": "dark", "beta": true})
        texts = pd.Series([json.dumps(d, sort_keys=True) for d in docs], dtype=object)
        counts = texts.value_counts()
        common = counts[counts > rare_count]
        if (
            len(counts) <= MAX_CATEGORIES
            and len(counts) <= CATEGORY_SHARE * len(texts)
            and common.sum() * 2 >= len(texts)
        ):
            model.whole = [json.loads(t) for t in common.index]
            model.shares = (common / common.sum()).to_numpy()
        return model

    def sample(self, n: int, rng: np.random.Generator, text: TextMaker) -> list[Any]:
        """n documents as Python values."""
        if self.whole:
            return [self.whole[i] for i in rng.choice(len(self.whole), n, p=self.shares)]
        if not self.templates or n == 0:
            return [None] * n
        picked = rng.integers(0, len(self.templates), n)
        chosen = [self.templates[i] for i in picked]
        wanted: Counter[Slot] = Counter()
        times = np.bincount(picked, minlength=len(self.templates))
        for t in np.flatnonzero(times):  # per template, not per document
            for slot, k in self.slots[t].items():
                wanted[slot] += int(k * times[t])
        drawn = {slot: iter(self._leaves(slot, k, rng, text)) for slot, k in wanted.items()}
        renamed: dict[tuple[str, str], str] = {}
        for path, key in self.rare_keys:
            renamed[(path, key)] = str(scramble(np.array([key], dtype=object), rng)[0])
        return [_fill(doc, "", drawn, renamed) for doc in chosen]

    def _leaves(self, slot: Slot, k: int, rng: np.random.Generator, text: TextMaker) -> list:
        path, kind = slot
        production = self.values[slot]
        if kind == "null":
            return [None] * k
        if kind == "bool":
            share = float(production.astype(bool).mean())
            return (rng.random(k) < share).tolist()
        if kind == "number":
            return _numbers(production, k, rng, self.rare_count)
        key = path.rsplit(".", 1)[-1].replace("[]", "") or self.name
        return _strings(key, production, k, rng, self.rare_count, text)


def _fill(doc: Any, path: str, drawn: dict[Slot, Any], renamed: dict[tuple[str, str], str]) -> Any:
    if isinstance(doc, dict):
        return {
            renamed.get((path, key), key): _fill(
                value, f"{path}.{key}" if path else key, drawn, renamed
            )
            for key, value in doc.items()
        }
    if isinstance(doc, list):
        return [_fill(value, path + "[]", drawn, renamed) for value in doc]
    return next(drawn[(path, _leaf_type(doc))])


def _numbers(production: pd.Series, k: int, rng: np.random.Generator, rare_count: int) -> list:
    x = production.to_numpy(dtype="float64")
    whole = all(isinstance(v, int) for v in production)
    x = x[np.isfinite(x)]
    if not len(x):  # NaN and infinities only
        return list(production.to_numpy()[rng.integers(0, len(production), k)])
    support, counts = np.unique(x, return_counts=True)
    common = counts > rare_count
    if len(support) <= 20 and common.any():
        # few values (a quantity of 1 to 4, a flag of 0 or 1): the common ones at their shares
        out = support[common][
            rng.choice(int(common.sum()), k, p=counts[common] / counts[common].sum())
        ]
    elif len(support) >= 2:
        out = between_quantiles(x, k, rng)
    else:  # one value, of few documents (a salary): a value of its size, not it
        out = x[0] * rng.uniform(0.5, 1.5, k) if x[0] else rng.uniform(-1.0, 1.0, k)
    if whole:
        return [int(v) for v in np.round(out)]
    decimals = max((len(repr(v).split(".")[1]) for v in production if "." in repr(v)), default=2)
    return [float(v) for v in np.round(out, min(decimals, 12))]


def _strings(
    key: str,
    production: pd.Series,
    k: int,
    rng: np.random.Generator,
    rare_count: int,
    text: TextMaker,
) -> list:
    texts = production.astype(str)
    kind = pii_kind_of_name(key)
    if kind is None and texts.str.match(EMAIL).mean() > 0.5:
        kind = "email"
    if kind is not None:
        return list(text(kind, texts, k))
    for pattern, formatted in ((ISO_DATE, _dates), (ISO_TIME, _times)):
        if len(texts) >= 2 and texts.str.match(pattern).all():
            return formatted(texts, k, rng)
    counts = texts.value_counts()
    common = counts[counts > rare_count]
    if len(common) and len(counts) <= max(50, len(texts) // 2) and common.sum() >= len(texts) / 2:
        # a category: its common values at their shares, never a value of a few documents
        return list(common.index.to_numpy()[rng.choice(len(common), k, p=common / common.sum())])
    return list(text(None, texts, k))


def _dates(texts: pd.Series, k: int, rng: np.random.Generator) -> list:
    days = pd.to_datetime(texts).to_numpy(dtype="datetime64[D]").astype(np.int64)
    drawn = np.round(between_quantiles(days.astype("float64"), k, rng)).astype(np.int64)
    return list(np.datetime_as_string(drawn.astype("datetime64[D]")))


def _times(texts: pd.Series, k: int, rng: np.random.Generator) -> list:
    zoned = texts.str.contains(r"(?:Z|[+-]\d{2}(?::?\d{2})?)$")
    stamps = pd.to_datetime(texts, utc=True, format="ISO8601")
    seconds = stamps.astype("int64").to_numpy() / 1e9
    step = step_of(seconds, TIME_STEPS) or 1.0  # whole hours stay whole hours
    drawn = np.round(between_quantiles(seconds, k, rng) / step) * step
    drawn = pd.to_datetime(drawn, unit="s", utc=True)
    separator = "T" if texts.str.contains("T").mean() >= 0.5 else " "
    out = drawn.strftime(f"%Y-%m-%d{separator}%H:%M:%S")
    suffix = "Z" if zoned.mean() >= 0.5 else ""
    return list(out + suffix)
