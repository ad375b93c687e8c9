"""Personal data: found by column name and type, never modelled, replaced by fakes.

Fakes are built from small Faker pools combined with numpy, so a million emails cost a few
vectorised string operations rather than a million Faker calls. Values that look like codes
(phones, postal codes, IDs) keep their production format by replacing every digit and letter at
random. Whatever the method, a fake that happens to equal a production value is drawn again.
"""

from __future__ import annotations

import functools
import itertools
import re

import numpy as np
import pandas as pd
from faker import Faker

from synth_assets.schema import Column, Table

PERSON_TABLES = re.compile(
    r"(customer|client|user|person|people|employee|staff|member|contact|patient|author|actor|"
    r"account|owner|student|teacher|driver|passenger|guest|subscriber)",
    re.IGNORECASE,
)

# (kind, pattern on the column name); the first match wins.
PII_NAMES: list[tuple[str, re.Pattern[str]]] = [
    (k, re.compile(p, re.IGNORECASE))
    for k, p in [
        ("email", r"e_?mail"),
        ("phone", r"phone|mobile|(^|_)fax($|_)|(^|_)tel($|_)|telephone"),
        ("first_name", r"first_?name|given_?name|fore_?name"),
        ("last_name", r"last_?name|surname|family_?name"),
        (
            "full_name",
            r"(^|_)(ship|bill(ing)?)_?name$|full_?name|display_?name|contact_?name|"
            r"customer_?name|person_?name",
        ),
        ("username", r"user_?name|(^|_)login$|nick_?name"),
        ("street", r"street|address_?line|(^|_)address\d?$|(^|_)addr\d?$"),
        ("city", r"(^|_)city$|(^|_)town$"),
        ("postal_code", r"postal|^zip|post_?code"),
        ("ip", r"(^|_)ip($|_addr|_address)|^ip_?address$"),
        ("secret", r"passw(or)?d|(^|_)pwd$|secret|(^|_)token$|api_?key|(^|_)salt$"),
        (
            "national_id",
            r"ssn|social_sec|passport|national_id|tax_id|iban|credit_card|card_number|"
            r"account_number|licen[cs]e_number",
        ),
    ]
]

TEXTUAL_KINDS = {"text", "inet", "other"}


def pii_kind(table: Table, column: Column) -> str | None:
    """The kind of personal data a column holds, or None."""
    if column.kind not in TEXTUAL_KINDS:
        return None
    if column.kind == "inet":
        return "ip"
    kind = pii_kind_of_name(column.name)
    if kind is not None:
        return kind
    if column.name.lower() == "name" and PERSON_TABLES.search(table.name):
        return "full_name"
    return None


def pii_kind_of_name(name: str) -> str | None:
    """The kind of personal data a name says (a column's, or a key's in a JSON document)."""
    for kind, pattern in PII_NAMES:
        if pattern.search(name):
            return kind
    return None


def scramble(values: np.ndarray, rng: np.random.Generator, keep_prefix: int = 0) -> np.ndarray:
    """Same shape, new content: each digit becomes a random digit, each letter a random letter."""
    strings = [str(v) for v in values]
    if not strings:
        return np.array([], dtype=object)
    lengths = np.fromiter((len(s) for s in strings), dtype=np.int64, count=len(strings))
    codes = np.frombuffer("".join(strings).encode("utf-32-le"), dtype=np.uint32).copy()
    protected = np.zeros(len(codes), dtype=bool)
    if keep_prefix:
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        offsets = np.arange(len(codes)) - np.repeat(starts, lengths)
        protected = offsets < keep_prefix
    for low, high in ((48, 57), (65, 90), (97, 122)):
        mask = (codes >= low) & (codes <= high) & ~protected
        codes[mask] = low + rng.integers(0, high - low + 1, int(mask.sum()))
    text = codes.astype("<u4").tobytes().decode("utf-32-le")
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    return np.array([text[a:b] for a, b in itertools.pairwise(bounds)], dtype=object)


def common_prefix(values: list[str]) -> int:
    if not values:
        return 0
    first, last = min(values), max(values)
    n = 0
    while n < min(len(first), len(last)) and first[n] == last[n]:
        n += 1
    return n


class FakePools:
    """Small pools of Faker values, drawn once per refresh from the seed.

    Drawn on first use, all together and in one order (the same pools whichever is asked for
    first): building them costs about a quarter of a second, which a schema without personal
    data or free text (a small subset, most link tables) need not pay.
    """

    domain = np.array(
        ["example.com", "example.org", "example.net", "mail.example", "test.example"],
        dtype=object,
    )

    def __init__(self, seed: int, size: int = 400) -> None:
        self.seed = seed
        self.size = size

    @functools.cached_property
    def _pools(self) -> dict[str, np.ndarray]:
        fake = Faker(["en_US", "en_GB", "de_DE", "fr_FR"])
        fake.seed_instance(self.seed)
        size = self.size
        out = {
            "first": np.array([fake.first_name() for _ in range(size)], dtype=object),
            "last": np.array([fake.last_name() for _ in range(size)], dtype=object),
            "city": np.array([fake.city() for _ in range(size)], dtype=object),
            "street": np.array([fake.street_name() for _ in range(size)], dtype=object),
        }
        out["words"] = np.array(sorted(set(fake.words(nb=600, unique=False))), dtype=object)
        return out

    @property
    def first(self) -> np.ndarray:
        return self._pools["first"]

    @property
    def last(self) -> np.ndarray:
        return self._pools["last"]

    @property
    def city(self) -> np.ndarray:
        return self._pools["city"]

    @property
    def street(self) -> np.ndarray:
        return self._pools["street"]

    @property
    def words(self) -> np.ndarray:
        return self._pools["words"]


def _ascii_lower(values: np.ndarray) -> pd.Series:
    s = pd.Series(values, dtype=object).str.lower()
    return (
        s.str.normalize("NFKD")
        .str.encode("ascii", "ignore")
        .str.decode("ascii")
        .str.replace(r"[^a-z0-9]", "", regex=True)
    )


def fake_values(
    kind: str,
    n: int,
    rng: np.random.Generator,
    pools: FakePools,
    production: pd.Series,
    forbidden: set[str] | None = None,
) -> np.ndarray:
    """n fake values of one kind, shaped like the production values where that matters."""

    def pick(pool: np.ndarray) -> np.ndarray:
        if forbidden:  # a fake first name may not be a production first name
            allowed = pool[~pd.Series(pool).isin(forbidden).to_numpy()]
            pool = allowed if len(allowed) else pool
        return pool[rng.integers(0, len(pool), n)]

    serial = rng.permutation(n) + int(rng.integers(1000, 9000))
    if kind == "first_name":
        return pick(pools.first)
    if kind == "last_name":
        return pick(pools.last)
    if kind == "full_name":
        return (pd.Series(pick(pools.first)) + " " + pd.Series(pick(pools.last))).to_numpy()
    if kind == "email":
        local = _ascii_lower(pick(pools.first)) + "." + _ascii_lower(pick(pools.last))
        return (
            local + pd.Series(serial).astype(str) + "@" + pd.Series(pick(pools.domain))
        ).to_numpy()
    if kind == "username":
        return (_ascii_lower(pick(pools.first)) + pd.Series(serial).astype(str)).to_numpy()
    if kind == "street":
        numbers = pd.Series(rng.integers(1, 400, n)).astype(str)
        return (numbers + " " + pd.Series(pick(pools.street))).to_numpy()
    if kind == "city":
        return pick(pools.city)
    if kind == "ip":
        octets = rng.integers(1, 255, (n, 2))
        return (
            "10.23."
            + pd.Series(octets[:, 0]).astype(str)
            + "."
            + pd.Series(octets[:, 1]).astype(str)
        ).to_numpy()
    # phones, postal codes, IDs and anything else: production's format, new characters
    base = production.dropna().astype(str).to_numpy()
    if len(base) == 0:
        return scramble(np.array(["0000000000"] * n, dtype=object), rng)
    return scramble(base[rng.integers(0, len(base), n)], rng)


def replace_pii(
    kind: str,
    n: int,
    rng: np.random.Generator,
    pools: FakePools,
    production: pd.Series,
    unique: bool,
    max_length: int | None,
) -> np.ndarray:
    """Fakes that never equal a production value, unique when the column is."""
    forbidden = set(production.dropna().astype(str))
    values = fake_values(kind, n, rng, pools, production, forbidden)
    for _ in range(20):
        if max_length:
            values = np.array([v[:max_length] for v in values], dtype=object)
        bad = pd.Series(values).isin(forbidden).to_numpy()
        if unique:
            bad |= pd.Series(values).duplicated().to_numpy()
        if not bad.any():
            break
        values[bad] = fake_values(kind, int(bad.sum()), rng, pools, production, forbidden)
    return values
