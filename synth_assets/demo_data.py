"""A seeded demo e-commerce back office, to try prodtwin against something that looks real.

prodtwin has to cope with what production databases contain: skewed child counts, a
self-referencing tree, two foreign keys to one parent, a table without a primary key, enums,
jsonb, inet and uuid columns, and rules that span tables (an order's total is the sum of its
lines, a shipment leaves after the order was paid). Real data cannot ship with the project, so
this module fabricates such a database. Everything derives from one seed, so a failure found on
the demo can be replayed row for row.

Faker only fills small pools of locale-flavoured words; numpy picks from the pools, because one
Faker call per cell would dominate the run time. Money is generated in integer cents and kept
as ``Decimal`` in the frames, so sums are exact on both sides of the database.
"""

from __future__ import annotations

import ipaddress
import json
import unicodedata
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

import numpy as np
import pandas as pd
import psycopg
from faker import Faker
from numpy.typing import NDArray
from psycopg import sql

__all__ = ["DEMO_SEED", "DEMO_TABLES", "build_demo_frames", "load_demo_database"]

DEMO_SEED = 7

IntArray = NDArray[np.int64]

_DAY = 86_400
_HOUR = 3_600
# Every timestamp lies in this window (epoch seconds, UTC); _END is "now" for the snapshot.
_START = int(pd.Timestamp("2023-01-01 00:00:00", tz="UTC").timestamp())
_END = int(pd.Timestamp("2025-06-30 23:59:59", tz="UTC").timestamp())

_N_CUSTOMERS = 2_000
_N_PRODUCTS = 500
_N_ORDERS = 6_000
_N_REFERRALS = 400
_N_EVENTS = 3_000
_FIRST_ORDER_ID = 100_001
_ENUM = "order_status"
_STATUSES = ("pending", "paid", "shipped", "delivered", "cancelled", "refunded")
_STATUS_WEIGHTS = (0.03, 0.03, 0.03, 0.68, 0.12, 0.11)
# Latest an order of each status may be placed so its payment, shipment and delivery still
# happen before _END; pending/paid/shipped orders are also recent (see _order_headers).
_STATUS_MARGIN = {
    "pending": _HOUR,
    "paid": 3 * _DAY + _HOUR,
    "shipped": 6 * _DAY + _HOUR,
    "delivered": 15 * _DAY,
    "cancelled": _HOUR,
    "refunded": 3 * _DAY + _HOUR,
}
_IN_FLIGHT = ("pending", "paid", "shipped")
_PAID = ("paid", "shipped", "delivered", "refunded")


@dataclass(frozen=True)
class _Country:
    code: str
    locale: str
    weight: float
    dial: str
    currency: str


_COUNTRIES = (
    _Country("US", "en_US", 0.30, "1", "USD"),
    _Country("DE", "de_DE", 0.18, "49", "EUR"),
    _Country("GB", "en_GB", 0.12, "44", "GBP"),
    _Country("FR", "fr_FR", 0.09, "33", "EUR"),
    _Country("NL", "nl_NL", 0.06, "31", "EUR"),
    _Country("ES", "es_ES", 0.06, "34", "EUR"),
    _Country("IT", "it_IT", 0.06, "39", "EUR"),
    _Country("CA", "en_CA", 0.06, "1", "USD"),
    _Country("AU", "en_AU", 0.04, "61", "USD"),
    _Country("IE", "en_IE", 0.03, "353", "EUR"),
)

# Top-level category -> (log of its median price, material choices, [(leaf, product noun)]).
_CATALOG: dict[str, tuple[float, tuple[str, ...], tuple[tuple[str, str], ...]]] = {
    "Electronics": (
        5.3,
        ("aluminium", "plastic", "glass"),
        (
            ("Laptops", "Laptop"),
            ("Smartphones", "Smartphone"),
            ("Headphones", "Headphones"),
            ("Cameras", "Camera"),
            ("Smart Home", "Hub"),
        ),
    ),
    "Home & Kitchen": (
        3.9,
        ("steel", "wood", "ceramic", "cotton"),
        (("Cookware", "Pan"), ("Furniture", "Chair"), ("Bedding", "Duvet"), ("Lighting", "Lamp")),
    ),
    "Fashion": (
        3.7,
        ("cotton", "leather", "wool", "polyester"),
        (("Shoes", "Sneaker"), ("Jackets", "Jacket"), ("Dresses", "Dress"), ("Bags", "Backpack")),
    ),
    "Sports & Outdoors": (
        4.2,
        ("nylon", "aluminium", "polyester", "carbon"),
        (
            ("Cycling", "Helmet"),
            ("Camping", "Tent"),
            ("Fitness", "Kettlebell"),
            ("Running", "Vest"),
        ),
    ),
    "Books": (
        2.8,
        ("paper",),
        (
            ("Fiction", "Novel"),
            ("Non-Fiction", "Biography"),
            ("Children's Books", "Picture Book"),
            ("Cookbooks", "Cookbook"),
        ),
    ),
    "Toys & Games": (
        3.3,
        ("plastic", "wood", "cardboard"),
        (
            ("Board Games", "Board Game"),
            ("Puzzles", "Puzzle"),
            ("Building Sets", "Building Set"),
            ("Plush", "Plush Toy"),
        ),
    ),
}
_ADJECTIVES = (
    "Classic", "Pro", "Ultra", "Compact", "Deluxe", "Essential", "Eco", "Smart", "Premium",
    "Lite", "Max", "Urban", "Vintage", "Sport", "Travel", "Nordic", "Everyday", "Studio",
)  # fmt: skip
_COLORS = ("black", "white", "grey", "red", "blue", "green", "navy", "beige", "yellow", "pink")
_TAGS = (
    "bestseller", "new-arrival", "eco-friendly", "limited-edition", "gift-idea", "sale",
    "premium", "handmade", "vegan", "recycled", "waterproof", "wireless", "kids", "outdoor",
    "travel", "bundle", "staff-pick", "organic", "fair-trade", "exclusive", "clearance",
    "back-in-stock", "award-winning", "made-in-eu", "smart-home",
)  # fmt: skip
# (department, managers, staff, salary of a staff member); the CEO and one VP per department
# sit above them.
_DEPARTMENTS = (
    ("Customer Support", 3, 16, 42_000.0),
    ("Sales", 2, 9, 52_000.0),
    ("Operations", 2, 8, 48_000.0),
    ("Engineering", 2, 8, 78_000.0),
    ("Finance", 1, 3, 60_000.0),
)
# Hiring window (fractional years) per level, so bosses were mostly there before their teams.
_HIRED_YEARS = {
    "ceo": (2014.0, 2014.3),
    "vp": (2014.5, 2018.0),
    "manager": (2015.0, 2022.0),
    "staff": (2016.0, 2025.3),
}
_HANDLERS = ("Customer Support", "Sales")
_METHODS = ("card", "paypal", "bank_transfer", "gift_card")
_METHOD_WEIGHTS = (0.6, 0.25, 0.1, 0.05)
_CARRIERS = ("DHL", "UPS", "FedEx", "DPD")
_CARRIER_WEIGHTS = {
    "EUR": (0.40, 0.15, 0.10, 0.35),
    "GBP": (0.25, 0.20, 0.15, 0.40),
    "USD": (0.15, 0.45, 0.40, 0.00),
}
_EVENT_TYPES = ("login", "view_product", "add_to_cart", "checkout", "logout")


# --------------------------------------------------------------------------------------------
# Table definitions. The frames and the DDL are checked against these, so a column cannot be
# added on one side only.

Kind = Literal["int", "text", "num", "ts", "date", "bool", "json"]


@dataclass(frozen=True)
class _Col:
    name: str
    sql_type: str  # trusted constant; _ENUM is resolved to the schema's enum type
    kind: Kind
    nullable: bool = False


@dataclass(frozen=True)
class _FK:
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...] = ("id",)


@dataclass(frozen=True)
class _Table:
    name: str
    columns: tuple[_Col, ...]
    primary_key: tuple[str, ...] = ()
    unique: tuple[tuple[str, ...], ...] = ()
    checks: tuple[tuple[str, str], ...] = ()  # (name part, expression with {column} slots)
    foreign_keys: tuple[_FK, ...] = ()
    indexes: tuple[tuple[str, ...], ...] = ()
    sequence: str | None = None  # column fed by a sequence, advanced past the loaded ids


_ID = _Col("id", "serial", "int")
_TABLES: tuple[_Table, ...] = (
    _Table(
        "customers",
        (
            _Col("id", "integer GENERATED BY DEFAULT AS IDENTITY", "int"),
            _Col("first_name", "text", "text"),
            _Col("last_name", "text", "text"),
            _Col("email", "text", "text"),
            _Col("phone", "text", "text", nullable=True),
            _Col("birth_date", "date", "date", nullable=True),
            _Col("country", "char(2)", "text"),
            _Col("segment", "text", "text"),
            _Col("signed_up_at", "timestamptz", "ts"),
        ),
        primary_key=("id",),
        unique=(("email",),),
        checks=(("segment", "{segment} IN ('consumer', 'business', 'vip')"),),
        sequence="id",
    ),
    _Table(
        "addresses",
        (
            _ID,
            _Col("customer_id", "integer", "int"),
            _Col("street", "text", "text"),
            _Col("city", "text", "text"),
            _Col("postal_code", "text", "text"),
            _Col("country", "char(2)", "text"),
            _Col("is_default", "boolean", "bool"),
        ),
        primary_key=("id",),
        foreign_keys=(_FK(("customer_id",), "customers"),),
        indexes=(("customer_id",),),
        sequence="id",
    ),
    _Table(
        "categories",
        (
            _Col("id", "integer", "int"),
            _Col("name", "text", "text"),
            _Col("parent_id", "integer", "int", nullable=True),
        ),
        primary_key=("id",),
        unique=(("name",),),
        foreign_keys=(_FK(("parent_id",), "categories"),),
    ),
    _Table(
        "products",
        (
            _ID,
            _Col("sku", "text", "text"),
            _Col("category_id", "integer", "int"),
            _Col("name", "text", "text"),
            _Col("price", "numeric(12,2)", "num"),
            _Col("attributes", "jsonb", "json", nullable=True),
            _Col("created_at", "timestamptz", "ts"),
        ),
        primary_key=("id",),
        unique=(("sku",),),
        checks=(("price", "{price} > 0"),),
        foreign_keys=(_FK(("category_id",), "categories"),),
        sequence="id",
    ),
    _Table(
        "tags",
        (_ID, _Col("name", "text", "text")),
        primary_key=("id",),
        unique=(("name",),),
        sequence="id",
    ),
    _Table(
        "product_tags",
        (_Col("product_id", "integer", "int"), _Col("tag_id", "integer", "int")),
        primary_key=("product_id", "tag_id"),
        foreign_keys=(_FK(("product_id",), "products"), _FK(("tag_id",), "tags")),
    ),
    _Table(
        "employees",
        (
            _ID,
            _Col("full_name", "text", "text"),
            _Col("email", "text", "text"),
            _Col("manager_id", "integer", "int", nullable=True),
            _Col("department", "text", "text"),
            _Col("hired_at", "date", "date"),
            _Col("salary", "numeric(10,2)", "num"),
        ),
        primary_key=("id",),
        unique=(("email",),),
        checks=(("salary", "{salary} > 0"),),
        foreign_keys=(_FK(("manager_id",), "employees"),),
        sequence="id",
    ),
    _Table(
        "orders",
        (
            _Col("id", "bigint", "int"),
            _Col("customer_id", "integer", "int"),
            _Col("shipping_address_id", "integer", "int", nullable=True),
            _Col("handled_by", "integer", "int", nullable=True),
            _Col("status", _ENUM, "text"),
            _Col("currency", "char(3)", "text"),
            _Col("ordered_at", "timestamptz", "ts"),
            _Col("total", "numeric(12,2)", "num"),
        ),
        primary_key=("id",),
        foreign_keys=(
            _FK(("customer_id",), "customers"),
            _FK(("shipping_address_id",), "addresses"),
            _FK(("handled_by",), "employees"),
        ),
        indexes=(("customer_id",), ("ordered_at",)),
    ),
    _Table(
        "order_items",
        (
            _Col("order_id", "bigint", "int"),
            _Col("line_no", "integer", "int"),
            _Col("product_id", "integer", "int"),
            _Col("qty", "integer", "int"),
            _Col("unit_price", "numeric(12,2)", "num"),
        ),
        primary_key=("order_id", "line_no"),
        checks=(("qty", "{qty} > 0"), ("unit_price", "{unit_price} > 0")),
        foreign_keys=(_FK(("order_id",), "orders"), _FK(("product_id",), "products")),
        indexes=(("product_id",),),
    ),
    _Table(
        "payments",
        (
            _Col("id", "uuid", "text"),
            _Col("order_id", "bigint", "int"),
            _Col("amount", "numeric(12,2)", "num"),
            _Col("method", "text", "text"),
            _Col("paid_at", "timestamptz", "ts"),
        ),
        primary_key=("id",),
        checks=(("method", "{method} IN ('card', 'paypal', 'bank_transfer', 'gift_card')"),),
        foreign_keys=(_FK(("order_id",), "orders"),),
        indexes=(("order_id",),),
    ),
    _Table(
        "shipments",
        (
            _ID,
            _Col("order_id", "bigint", "int"),
            _Col("carrier", "text", "text"),
            _Col("tracking_code", "text", "text"),
            _Col("shipped_at", "timestamptz", "ts"),
            _Col("delivered_at", "timestamptz", "ts", nullable=True),
        ),
        primary_key=("id",),
        unique=(("order_id",), ("tracking_code",)),
        checks=(
            ("carrier", "{carrier} IN ('DHL', 'UPS', 'FedEx', 'DPD')"),
            ("delivery", "{delivered_at} IS NULL OR {delivered_at} > {shipped_at}"),
        ),
        foreign_keys=(_FK(("order_id",), "orders"),),
        sequence="id",
    ),
    _Table(
        "referrals",
        (
            _ID,
            _Col("referrer_id", "integer", "int"),
            _Col("referred_id", "integer", "int"),
            _Col("created_at", "timestamptz", "ts"),
            _Col("reward", "numeric(8,2)", "num", nullable=True),
        ),
        primary_key=("id",),
        checks=(("self", "{referrer_id} <> {referred_id}"),),
        foreign_keys=(_FK(("referrer_id",), "customers"), _FK(("referred_id",), "customers")),
        sequence="id",
    ),
    _Table(
        "event_log",
        (
            _Col("occurred_at", "timestamptz", "ts"),
            _Col("event_type", "text", "text"),
            _Col("customer_id", "integer", "int", nullable=True),
            _Col("ip_address", "inet", "text", nullable=True),
            _Col("payload", "jsonb", "json", nullable=True),
        ),
        checks=(
            (
                "event_type",
                "{event_type} IN ('login', 'view_product', 'add_to_cart', 'checkout', 'logout')",
            ),
        ),
        foreign_keys=(_FK(("customer_id",), "customers"),),
        indexes=(("occurred_at",), ("customer_id",)),
    ),
)
DEMO_TABLES: tuple[str, ...] = tuple(table.name for table in _TABLES)


# --------------------------------------------------------------------------------------------
# Small helpers.


def _rng(seed: int, stream: int) -> np.random.Generator:
    """One generator per table family, so changing one family leaves the others' rows alone."""
    return np.random.Generator(np.random.PCG64([seed, stream]))


def _timestamps(seconds: IntArray, missing: NDArray[np.bool_] | None = None) -> pd.Series:
    """Epoch seconds as tz-aware UTC values (NaT where missing), as PG hands them back."""
    values = seconds.astype("datetime64[s]").astype("datetime64[ns]")
    if missing is not None:
        values[missing] = np.datetime64("NaT")
    return pd.Series(values).dt.tz_localize("UTC")


def _dates(days: IntArray, missing: NDArray[np.bool_] | None = None) -> pd.Series:
    """Days since the epoch as naive midnight datetimes (NaT where missing)."""
    values = days.astype("datetime64[D]").astype("datetime64[ns]")
    if missing is not None:
        values[missing] = np.datetime64("NaT")
    return pd.Series(values)


def _money(cents: NDArray[Any]) -> list[Decimal | None]:
    """Integer cents as exact two-place decimals; NaN means NULL."""
    return [None if c != c else Decimal(int(c)).scaleb(-2) for c in cents.tolist()]


def _slug(text: str) -> str:
    """Lower-case ASCII letters only, so an e-mail local part stays valid and unambiguous."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in ascii_text.lower() if "a" <= ch <= "z") or "user"


def _between(rng: np.random.Generator, low: NDArray[Any], high: NDArray[Any]) -> IntArray:
    """Uniform epoch seconds in [low, high)."""
    return (low + (high - low) * rng.random(np.shape(low))).astype(np.int64)


def _starts(counts: IntArray) -> IntArray:
    return np.cumsum(counts) - counts


def _line_numbers(counts: IntArray) -> IntArray:
    """1..k within each group of a flattened repeat(counts)."""
    return np.arange(int(counts.sum())) - np.repeat(_starts(counts), counts) + 1


@dataclass(frozen=True)
class _LocalePool:
    """A few hundred Faker values of one locale; cells are then drawn from these by numpy."""

    first: NDArray[np.object_]
    last: NDArray[np.object_]
    first_slug: NDArray[np.object_]
    last_slug: NDArray[np.object_]
    street: NDArray[np.object_]
    city: NDArray[np.object_]
    postcode: NDArray[np.object_]
    free_domain: NDArray[np.object_]
    company_domain: NDArray[np.object_]


def _pools(seed: int) -> list[_LocalePool]:
    pools = []
    for country in _COUNTRIES:
        fake = Faker(country.locale)
        fake.seed_instance(seed)
        first = [fake.first_name() for _ in range(150)]
        last = [fake.last_name() for _ in range(150)]
        places = [_place(fake, country.locale) for _ in range(80)]
        pools.append(
            _LocalePool(
                first=np.array(first, dtype=object),
                last=np.array(last, dtype=object),
                first_slug=np.array([_slug(name) for name in first], dtype=object),
                last_slug=np.array([_slug(name) for name in last], dtype=object),
                street=np.array(
                    [" ".join(fake.street_address().split()) for _ in range(120)], dtype=object
                ),
                city=np.array([city for city, _ in places], dtype=object),
                postcode=np.array([code for _, code in places], dtype=object),
                free_domain=np.array([fake.free_email_domain() for _ in range(12)], dtype=object),
                company_domain=np.array([fake.domain_name() for _ in range(40)], dtype=object),
            )
        )
    return pools


def _place(fake: Faker, locale: str) -> tuple[str, str]:
    """(city, postcode). it_IT's city() draws from a set, whose order follows PYTHONHASHSEED
    and so breaks determinism across processes; its postcode_city_province() walks a dict,
    which is stable, and the postcode then really belongs to the city."""
    if locale == "it_IT":
        code, rest = fake.postcode_city_province().split(", ", 1)
        return rest.rsplit(" (", 1)[0], code
    return fake.city(), fake.postcode()


def _pick(rng: np.random.Generator, pool: NDArray[np.object_], size: int) -> IntArray:
    return rng.integers(len(pool), size=size)


# --------------------------------------------------------------------------------------------
# Customers and their addresses.


def _customers(rng: np.random.Generator, pools: list[_LocalePool]) -> pd.DataFrame:
    """Ids follow sign-up time, as an identity column does; sign-ups grow over the years."""
    n = _N_CUSTOMERS
    weights = np.array([c.weight for c in _COUNTRIES])
    country = rng.choice(len(_COUNTRIES), size=n, p=weights / weights.sum())
    segment = rng.choice(["consumer", "business", "vip"], size=n, p=[0.8, 0.15, 0.05])
    low, high = _START + _DAY, _END - 30 * _DAY
    signed_up = np.sort(low + ((high - low) * rng.random(n) ** 0.8).astype(np.int64))

    first = np.empty(n, dtype=object)
    last = np.empty(n, dtype=object)
    first_slug = np.empty(n, dtype=object)
    last_slug = np.empty(n, dtype=object)
    domain = np.empty(n, dtype=object)
    for k, pool in enumerate(pools):
        rows = np.flatnonzero(country == k)
        fi, li = _pick(rng, pool.first, rows.size), _pick(rng, pool.last, rows.size)
        first[rows], first_slug[rows] = pool.first[fi], pool.first_slug[fi]
        last[rows], last_slug[rows] = pool.last[li], pool.last_slug[li]
        free = pool.free_domain[_pick(rng, pool.free_domain, rows.size)]
        work = pool.company_domain[_pick(rng, pool.company_domain, rows.size)]
        domain[rows] = np.where(segment[rows] == "business", work, free)

    ids = np.arange(1, n + 1)
    # The id is the only digit run, so every address is unique whatever the names are.
    pattern = rng.integers(3, size=n)
    email = [
        (f"{f}.{la}{i}", f"{f[0]}{la}{i}", f"{la}.{f}{i}")[p] + f"@{d}"
        for f, la, i, p, d in zip(first_slug, last_slug, ids, pattern, domain, strict=True)
    ]
    dial = np.array([c.dial for c in _COUNTRIES], dtype=object)[country]
    area = rng.integers(20, 990, size=n)
    local = rng.integers(1_000_000, 10_000_000, size=n)
    phone = np.array(
        [f"+{d} {a} {loc}" for d, a, loc in zip(dial, area, local, strict=True)], dtype=object
    )
    phone[rng.random(n) < 0.08] = None
    age_days = np.clip(rng.normal(41, 13, n), 18, 85) * 365.25
    birth_days = (_END // _DAY - age_days).astype(np.int64)
    return pd.DataFrame(
        {
            "id": ids,
            "first_name": first,
            "last_name": last,
            "email": email,
            "phone": phone,
            "birth_date": _dates(birth_days, missing=rng.random(n) < 0.04),
            "country": np.array([c.code for c in _COUNTRIES], dtype=object)[country],
            "segment": segment.astype(object),
            "signed_up_at": _timestamps(signed_up),
        }
    )


def _addresses(
    rng: np.random.Generator, pools: list[_LocalePool], customers: pd.DataFrame
) -> pd.DataFrame:
    """Grouped by customer, first one default, so an order can pick its customer's address."""
    counts = rng.choice(4, size=len(customers), p=[0.05, 0.75, 0.15, 0.05])
    customer_id = np.repeat(customers["id"].to_numpy(), counts)
    country = np.repeat(customers["country"].to_numpy(), counts)
    n = customer_id.size
    street = np.empty(n, dtype=object)
    city = np.empty(n, dtype=object)
    postcode = np.empty(n, dtype=object)
    for pool, spec in zip(pools, _COUNTRIES, strict=True):
        rows = np.flatnonzero(country == spec.code)
        street[rows] = pool.street[_pick(rng, pool.street, rows.size)]
        place = _pick(rng, pool.city, rows.size)
        city[rows], postcode[rows] = pool.city[place], pool.postcode[place]
    return pd.DataFrame(
        {
            "id": np.arange(1, n + 1),
            "customer_id": customer_id,
            "street": street,
            "city": city,
            "postal_code": postcode,
            "country": country,
            "is_default": _line_numbers(counts) == 1,
        }
    )


# --------------------------------------------------------------------------------------------
# Catalogue: categories, products, tags.


def _categories() -> pd.DataFrame:
    """Top levels first, so every parent id is smaller than its children's."""
    tops = list(_CATALOG)
    names: list[str] = list(tops)
    parents: list[float] = [np.nan] * len(tops)
    for top_id, top in enumerate(tops, start=1):
        for leaf, _noun in _CATALOG[top][2]:
            names.append(leaf)
            parents.append(top_id)
    return pd.DataFrame(
        {
            "id": np.arange(1, len(names) + 1),
            "name": np.array(names, dtype=object),
            "parent_id": pd.array(parents, dtype="Int64"),
        }
    )


def _products(rng: np.random.Generator, seed: int, categories: pd.DataFrame) -> pd.DataFrame:
    """Prices are log-normal around a level per top category; most of the range exists from
    launch day so early orders have something to buy."""
    n = _N_PRODUCTS
    tops = list(_CATALOG)
    leaves = [(i, leaf, noun) for i, top in enumerate(tops) for leaf, noun in _CATALOG[top][2]]
    leaf_ids = categories.set_index("name").loc[[leaf for _, leaf, _ in leaves], "id"].to_numpy()
    leaf_offset = rng.normal(0, 0.35, len(leaves))
    leaf = rng.integers(len(leaves), size=n)
    top = np.array([leaves[i][0] for i in leaf])
    mu = np.array([_CATALOG[t][0] for t in tops])[top] + leaf_offset[leaf]
    units = np.maximum(np.rint(np.exp(rng.normal(mu, 0.45))), 2).astype(np.int64)
    ending = rng.choice([1, 0, 50], size=n, p=[0.7, 0.15, 0.15])
    price_cents = units * 100 - ending

    launch = rng.random(n) < 0.6
    created = np.where(
        launch,
        _START + rng.integers(0, _HOUR, size=n),
        _between(rng, np.full(n, _START + 2 * _DAY), np.full(n, _END - 20 * _DAY)),
    )
    order = np.argsort(created, kind="stable")
    fake = Faker("en_US")
    fake.seed_instance(seed)
    brands = np.array([fake.last_name() for _ in range(60)], dtype=object)
    brand = brands[_pick(rng, brands, n)]
    adjective = np.array(_ADJECTIVES, dtype=object)[rng.integers(len(_ADJECTIVES), size=n)]
    names = [f"{b} {a} {leaves[i][2]}" for b, a, i in zip(brand, adjective, leaf, strict=True)]
    attributes = [_product_attributes(rng, tops[t]) for t in top]
    frame = pd.DataFrame(
        {
            "sku": [f"SKU-{s:06d}" for s in rng.choice(999_999, size=n, replace=False) + 1],
            "category_id": leaf_ids[leaf],
            "name": names,
            "price": _money(price_cents),
            "attributes": attributes,
            "created_at": _timestamps(created),
        }
    ).iloc[order]
    frame.insert(0, "id", np.arange(1, n + 1))
    return frame.reset_index(drop=True)


def _product_attributes(rng: np.random.Generator, top: str) -> dict[str, Any] | None:
    """Keys differ by category, as jsonb columns in the wild do; some products have none."""
    if rng.random() < 0.08:
        return None
    if top == "Books":
        return {
            "format": str(rng.choice(["hardcover", "paperback", "ebook"])),
            "pages": int(rng.integers(80, 900)),
            "language": str(rng.choice(["en", "de", "fr", "es"], p=[0.6, 0.2, 0.1, 0.1])),
        }
    attributes: dict[str, Any] = {
        "color": str(rng.choice(_COLORS)),
        "weight_kg": round(float(rng.lognormal(0.0, 0.8)), 2),
        "material": str(rng.choice(_CATALOG[top][1])),
    }
    if top == "Fashion":
        attributes["size"] = str(rng.choice(["XS", "S", "M", "L", "XL"]))
    if top == "Electronics":
        attributes["warranty_years"] = int(rng.choice([1, 2, 3]))
    return attributes


def _tags() -> pd.DataFrame:
    return pd.DataFrame({"id": np.arange(1, len(_TAGS) + 1), "name": list(_TAGS)})


def _product_tags(rng: np.random.Generator, n_products: int, n_tags: int) -> pd.DataFrame:
    """0-6 distinct tags per product, popular tags more often (Gumbel top-k, no loop)."""
    per_product = rng.choice(7, size=n_products, p=[0.12, 0.19, 0.22, 0.19, 0.14, 0.09, 0.05])
    popularity = np.log(1.0 / np.arange(1, n_tags + 1) ** 0.7)[rng.permutation(n_tags)]
    ranked = np.argsort(-(popularity + rng.gumbel(size=(n_products, n_tags))), axis=1)
    keep = np.arange(n_tags)[None, :] < per_product[:, None]
    frame = pd.DataFrame(
        {
            "product_id": np.repeat(np.arange(1, n_products + 1), per_product),
            "tag_id": ranked[keep] + 1,
        }
    )
    return frame.sort_values(["product_id", "tag_id"], ignore_index=True)


# --------------------------------------------------------------------------------------------
# Employees: a tree CEO -> VPs -> managers -> staff.


def _employees(rng: np.random.Generator, pools: list[_LocalePool]) -> pd.DataFrame:
    """Rows in rank order (CEO, VPs, managers, staff), so a manager's id is always smaller
    than their reports': the self-reference also loads row by row, not only in one COPY."""
    departments = ["Executive"]
    managers: list[float] = [np.nan]
    level = ["ceo"]
    base_salary = [240_000.0]
    for dept, _m, _s, staff_pay in _DEPARTMENTS:
        departments.append(dept)
        managers.append(1)
        level.append("vp")
        base_salary.append(staff_pay * 2.8)
    for dept_idx, (dept, n_managers, _s, staff_pay) in enumerate(_DEPARTMENTS):
        departments += [dept] * n_managers
        managers += [dept_idx + 2] * n_managers
        level += ["manager"] * n_managers
        base_salary += [staff_pay * 1.6] * n_managers
    manager_ids: dict[str, list[int]] = {dept: [] for dept, *_ in _DEPARTMENTS}
    for i, (dept, rank) in enumerate(zip(departments, level, strict=True)):
        if rank == "manager":
            manager_ids[dept].append(i + 1)
    for dept, _m, n_staff, staff_pay in _DEPARTMENTS:
        departments += [dept] * n_staff
        managers += rng.choice(manager_ids[dept], size=n_staff).astype(float).tolist()
        level += ["staff"] * n_staff
        base_salary += [staff_pay] * n_staff

    n = len(departments)
    year = np.array([rng.uniform(*_HIRED_YEARS[rank]) for rank in level])
    hired = _dates(((year - 1970) * 365.25).astype(np.int64))
    salary = np.rint(np.array(base_salary) * rng.lognormal(0, 0.12, n) / 100) * 100
    pool_idx = rng.integers(len(pools), size=n)
    first = [pools[p].first[rng.integers(len(pools[p].first))] for p in pool_idx]
    last = [pools[p].last[rng.integers(len(pools[p].last))] for p in pool_idx]
    email = [f"{_slug(f)}.{_slug(la)}" for f, la in zip(first, last, strict=True)]
    seen: set[str] = set()
    for i, local in enumerate(email):  # namesakes get their id; slugs hold no digits
        email[i] = f"{local}{i + 1}" if local in seen else local
        seen.add(local)
    return pd.DataFrame(
        {
            "id": np.arange(1, n + 1),
            "full_name": [f"{f} {la}" for f, la in zip(first, last, strict=True)],
            "email": [f"{local}@shopco.example" for local in email],
            "manager_id": pd.array(managers, dtype="Int64"),
            "department": departments,
            "hired_at": hired,
            "salary": _money(salary * 100),
        }
    )


# --------------------------------------------------------------------------------------------
# Orders and everything hanging off them.


def _orders_per_customer(rng: np.random.Generator, customers: pd.DataFrame) -> IntArray:
    """Gamma-mixed multinomial (negative-binomial-like): many customers never order, a few
    order a lot; longer tenure and better segments order more."""
    signed_up = _epoch(customers["signed_up_at"])
    tenure = (_END - signed_up) / (_END - _START)
    segment_boost = customers["segment"].map({"consumer": 1.0, "business": 1.8, "vip": 4.0})
    appetite = rng.gamma(0.5, 1.0, len(customers)) * tenure * segment_boost.to_numpy()
    whales = rng.choice(len(customers), size=6, replace=False)
    appetite[whales] *= 15
    return rng.multinomial(_N_ORDERS, appetite / appetite.sum())


def _epoch(values: pd.Series) -> IntArray:
    return (
        values.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy("datetime64[s]").astype(np.int64)
    )


def _order_headers(
    rng: np.random.Generator,
    customers: pd.DataFrame,
    addresses: pd.DataFrame,
    employees: pd.DataFrame,
) -> pd.DataFrame:
    """Orders without their total. Ids follow time. Unfinished orders (pending, paid,
    shipped) are recent, and each status leaves room for its payment and shipment before now."""
    per_customer = _orders_per_customer(rng, customers)
    customer_idx = np.repeat(np.arange(len(customers)), per_customer)
    n = customer_idx.size
    status = rng.choice(np.array(_STATUSES, dtype=object), size=n, p=_STATUS_WEIGHTS)
    low = _epoch(customers["signed_up_at"])[customer_idx] + _HOUR
    low = np.where(np.isin(status, _IN_FLIGHT), np.maximum(low, _END - 21 * _DAY), low)
    high = _END - pd.Series(status).map(_STATUS_MARGIN).to_numpy(np.int64)
    ordered = _between(rng, low, high)
    order = np.argsort(ordered, kind="stable")
    customer_idx, status, ordered = customer_idx[order], status[order], ordered[order]

    address_count = np.bincount(addresses["customer_id"].to_numpy() - 1, minlength=len(customers))[
        customer_idx
    ]
    first_address = np.searchsorted(addresses["customer_id"].to_numpy(), customer_idx + 1)
    other = (rng.random(n) * np.maximum(address_count, 1)).astype(np.int64)
    pick = np.where(rng.random(n) < 0.8, 0, other)
    shipping = pd.array(first_address + pick + 1, dtype="Int64")
    shipping[(address_count == 0) | (rng.random(n) < 0.12)] = pd.NA

    country = customers["country"].to_numpy()[customer_idx]
    currency = pd.Series(country).map({c.code: c.currency for c in _COUNTRIES}).to_numpy()
    return pd.DataFrame(
        {
            "id": np.arange(_FIRST_ORDER_ID, _FIRST_ORDER_ID + n, dtype=np.int64),
            "customer_id": customers["id"].to_numpy()[customer_idx],
            "shipping_address_id": shipping,
            "handled_by": _handlers(rng, employees, ordered),
            "status": status,
            "currency": currency.astype(object),
            "ordered_at": _timestamps(ordered),
        }
    )


def _handlers(
    rng: np.random.Generator, employees: pd.DataFrame, ordered: IntArray
) -> pd.arrays.IntegerArray:
    """A support or sales employee already hired when the order came in; a quarter of orders
    go through untouched (NULL)."""
    staff = employees[employees["department"].isin(_HANDLERS)].sort_values("hired_at")
    hired = staff["hired_at"].to_numpy("datetime64[s]").astype(np.int64)
    eligible = np.searchsorted(hired, ordered, side="right")
    choice = (rng.random(ordered.size) * np.maximum(eligible, 1)).astype(np.int64)
    handler = pd.array(staff["id"].to_numpy()[choice], dtype="Int64")
    handler[(eligible == 0) | (rng.random(ordered.size) < 0.25)] = pd.NA
    return handler


def _order_items(
    rng: np.random.Generator, orders: pd.DataFrame, products: pd.DataFrame
) -> tuple[pd.DataFrame, IntArray]:
    """Lines of distinct products that already existed when ordered; returns the items and
    each order's total in cents (the exact sum of qty * unit_price)."""
    n_orders = len(orders)
    lines = rng.choice(np.arange(1, 7), size=n_orders, p=[0.42, 0.25, 0.14, 0.09, 0.06, 0.04])
    order_idx = np.repeat(np.arange(n_orders), lines)
    m = order_idx.size
    ordered = _epoch(orders["ordered_at"])[order_idx]
    created = _epoch(products["created_at"])
    popularity = 1.0 / (np.arange(1, len(products) + 1) + 5.0) ** 0.9
    popularity = (popularity / popularity.sum())[rng.permutation(len(products))]
    product = rng.choice(len(products), size=m, p=popularity)
    for _attempt in range(200):
        key = pd.DataFrame({"order": order_idx, "product": product})
        bad = (created[product] > ordered) | key.duplicated().to_numpy()
        if not bad.any():
            break
        product[bad] = rng.choice(len(products), size=int(bad.sum()), p=popularity)
    else:  # pragma: no cover - launch-day products make this unreachable
        raise RuntimeError("could not pick distinct, already-listed products for every order")

    price = np.array([int(p * 100) for p in products["price"]], dtype=np.int64)[product]
    discount = rng.uniform(0.05, 0.30, m)
    discounted = rng.random(m) < 0.12
    unit = np.where(discounted, np.maximum(np.rint(price * (1 - discount)), 1), price).astype(
        np.int64
    )
    qty = np.minimum(rng.geometric(0.72, m), 8).astype(np.int64)
    totals = np.zeros(n_orders, dtype=np.int64)
    np.add.at(totals, order_idx, qty * unit)
    items = pd.DataFrame(
        {
            "order_id": orders["id"].to_numpy()[order_idx],
            "line_no": _line_numbers(lines),
            "product_id": products["id"].to_numpy()[product],
            "qty": qty,
            "unit_price": _money(unit),
        }
    )
    return items, totals


def _payments(rng: np.random.Generator, orders: pd.DataFrame, totals: IntArray) -> pd.DataFrame:
    """One payment per paid order, some split in two (gift card first); amounts add up to the
    order total. Bank transfers arrive days later."""
    paid = np.flatnonzero(orders["status"].isin(_PAID).to_numpy())
    split = (rng.random(paid.size) < 0.06) & (totals[paid] >= 2)
    order_idx = np.repeat(paid, 1 + split)
    second = np.zeros(order_idx.size, dtype=bool)
    second[1:] = order_idx[1:] == order_idx[:-1]
    first_of_split = np.zeros(order_idx.size, dtype=bool)
    first_of_split[:-1] = second[1:]
    n = order_idx.size

    total = totals[order_idx]
    share = np.clip(np.rint(total * rng.uniform(0.2, 0.8, n)), 1, total - 1).astype(np.int64)
    amount = np.where(first_of_split, share, total)
    amount[second] = total[second] - share[np.flatnonzero(second) - 1]

    method = rng.choice(np.array(_METHODS, dtype=object), size=n, p=_METHOD_WEIGHTS)
    gift = rng.random(n) < 0.7
    method[first_of_split & gift] = "gift_card"
    method[second] = np.where(rng.random(int(second.sum())) < 0.7, "card", "paypal")

    ordered = _epoch(orders["ordered_at"])[order_idx]
    delay = np.where(
        method == "bank_transfer",
        rng.integers(6 * _HOUR, 3 * _DAY, size=n),
        rng.integers(10, 15 * 60, size=n),
    )
    paid_at = ordered + delay
    paid_at[second] = paid_at[np.flatnonzero(second) - 1] + rng.integers(
        30, 600, size=int(second.sum())
    )
    ids = np.frombuffer(rng.bytes(16 * n), dtype=np.uint8).reshape(n, 16)
    return pd.DataFrame(
        {
            "id": [uuid.UUID(bytes=row.tobytes(), version=4) for row in ids],
            "order_id": orders["id"].to_numpy()[order_idx],
            "amount": _money(amount),
            "method": method,
            "paid_at": _timestamps(paid_at),
        }
    )


def _shipments(
    rng: np.random.Generator, orders: pd.DataFrame, payments: pd.DataFrame
) -> pd.DataFrame:
    """Shipped and delivered orders leave after their last payment; only delivered ones have
    arrived. Ids follow the shipping time."""
    shipped_orders = orders[orders["status"].isin(["shipped", "delivered"])]
    last_paid = (
        payments.assign(paid=_epoch(payments["paid_at"]))
        .groupby("order_id")["paid"]
        .max()
        .loc[shipped_orders["id"]]
        .to_numpy()
    )
    n = len(shipped_orders)
    shipped = last_paid + rng.integers(3 * _HOUR, 3 * _DAY, size=n)
    delivered = shipped + rng.integers(20 * _HOUR, 8 * _DAY, size=n)
    in_transit = (shipped_orders["status"] == "shipped").to_numpy()
    carrier = np.empty(n, dtype=object)
    currency = shipped_orders["currency"].to_numpy()
    for code, weights in _CARRIER_WEIGHTS.items():
        rows = np.flatnonzero(currency == code)
        carrier[rows] = rng.choice(np.array(_CARRIERS, dtype=object), size=rows.size, p=weights)
    frame = pd.DataFrame(
        {
            "order_id": shipped_orders["id"].to_numpy(),
            "carrier": carrier,
            "tracking_code": _tracking_codes(rng, n),
            "shipped_at": _timestamps(shipped),
            "delivered_at": _timestamps(delivered, missing=in_transit),
        }
    ).iloc[np.argsort(shipped, kind="stable")]
    frame.insert(0, "id", np.arange(1, n + 1))
    return frame.reset_index(drop=True)


def _tracking_codes(rng: np.random.Generator, n: int) -> list[str]:
    """'1Z' + 14 base-36 characters, redrawn until unique (collisions are astronomically rare,
    but the UNIQUE constraint must never fail)."""
    alphabet = np.array(list("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    codes = ["1Z" + "".join(row) for row in alphabet[rng.integers(36, size=(n, 14))]]
    while len(set(codes)) < n:
        seen: set[str] = set()
        for i, code in enumerate(codes):
            if code in seen:
                codes[i] = "1Z" + "".join(alphabet[rng.integers(36, size=14)])
            seen.add(codes[i])
    return codes


# --------------------------------------------------------------------------------------------
# Referrals and the event log.


def _referrals(
    rng: np.random.Generator, customers: pd.DataFrame, per_customer: IntArray
) -> pd.DataFrame:
    """Each referred customer joined through one earlier customer; a few ambassadors bring in
    most of them. The reward is only paid once the referred customer has ordered."""
    n = len(customers)
    referred = np.sort(rng.choice(np.arange(50, n), size=_N_REFERRALS, replace=False))
    pull = rng.gamma(0.3, 1.0, n) + 1e-9
    referrer = np.empty(referred.size, dtype=np.int64)
    for i, target in enumerate(referred):
        weights = pull[:target]
        referrer[i] = rng.choice(target, p=weights / weights.sum())
    reward = rng.choice([1_000, 1_500, 2_500], size=referred.size, p=[0.5, 0.3, 0.2])
    reward = np.where(per_customer[referred] > 0, reward, np.nan)
    ids = customers["id"].to_numpy()
    return pd.DataFrame(
        {
            "id": np.arange(1, referred.size + 1),
            "referrer_id": ids[referrer],
            "referred_id": ids[referred],
            "created_at": customers["signed_up_at"].to_numpy()[referred],
            "reward": _money(reward),
        }
    )


def _event_log(
    rng: np.random.Generator,
    customers: pd.DataFrame,
    per_customer: IntArray,
    products: pd.DataFrame,
) -> pd.DataFrame:
    """Browsing sessions: signed-in ones (login, views, maybe cart and checkout, maybe logout)
    and anonymous ones (views only). Active buyers browse more."""
    signed_up = _epoch(customers["signed_up_at"])
    activity = (per_customer + 1.0) / (per_customer + 1.0).sum()
    product_ids = products["id"].to_numpy()
    rows: list[tuple[int, str, int | None, str | None, dict[str, Any] | None]] = []
    while len(rows) < _N_EVENTS:
        anonymous = rng.random() < 0.2
        customer = None if anonymous else int(rng.choice(len(customers), p=activity))
        earliest = _START if customer is None else int(signed_up[customer])
        start = int(rng.integers(earliest, _END - 2 * _HOUR))
        ip = _ip_address(rng)
        viewed = rng.choice(product_ids, size=int(rng.geometric(0.35)))
        session: list[tuple[str, dict[str, Any] | None]] = []
        if customer is not None:
            session.append(("login", {"method": str(rng.choice(["password", "google", "apple"]))}))
        source = ["search", "home", "recommendation", "category"]
        session += [
            ("view_product", {"product_id": int(p), "source": str(rng.choice(source))})
            for p in viewed
        ]
        if rng.random() < 0.35:
            qty = int(rng.integers(1, 4))
            session.append(("add_to_cart", {"product_id": int(viewed[-1]), "qty": qty}))
            if customer is not None and rng.random() < 0.5:
                value = round(float(rng.lognormal(4.0, 0.8)), 2)
                session.append(("checkout", {"items": qty, "cart_value": value}))
        if customer is not None and rng.random() < 0.6:
            session.append(("logout", None))
        times = start + np.cumsum(rng.integers(5, 300, size=len(session)))
        customer_id = None if customer is None else int(customer + 1)
        rows += [
            (int(t), kind, customer_id, ip, payload)
            for t, (kind, payload) in zip(times, session, strict=True)
        ]
    rows = sorted(rows[:_N_EVENTS], key=lambda row: row[0])
    occurred, kinds, customer_ids, ips, payloads = zip(*rows, strict=True)
    return pd.DataFrame(
        {
            "occurred_at": _timestamps(np.array(occurred, dtype=np.int64)),
            "event_type": list(kinds),
            "customer_id": pd.array(customer_ids, dtype="Int64"),
            "ip_address": list(ips),
            "payload": list(payloads),
        }
    )


def _ip_address(rng: np.random.Generator) -> str | None:
    """Mostly public-looking IPv4, some IPv6 from the documentation prefix, a few unknown."""
    draw = rng.random()
    if draw < 0.04:
        return None
    if draw < 0.14:
        host = ":".join(f"{group:x}" for group in rng.integers(0, 0x10000, size=6))
        return str(ipaddress.IPv6Address(f"2001:db8:{host}"))  # canonical, as PG prints it
    first = int(rng.choice([23, 31, 45, 62, 77, 81, 89, 91, 104, 151, 176, 185, 213, 217]))
    rest = rng.integers(0, 256, size=2)
    return f"{first}.{rest[0]}.{rest[1]}.{int(rng.integers(1, 255))}"


# --------------------------------------------------------------------------------------------
# Public API.


def build_demo_frames(seed: int = DEMO_SEED) -> dict[str, pd.DataFrame]:
    """Pure, no DB: the rows of every table, keyed by table name, deterministic for a seed.

    Columns are in table order. Timestamps are tz-aware UTC, dates are naive midnight
    datetimes, numerics are ``Decimal``, jsonb is ``dict`` or ``None``, nullable integers use
    pandas ``Int64``.
    """
    pools = _pools(seed)
    customers = _customers(_rng(seed, 1), pools)
    addresses = _addresses(_rng(seed, 2), pools, customers)
    categories = _categories()
    products = _products(_rng(seed, 3), seed, categories)
    tags = _tags()
    product_tags = _product_tags(_rng(seed, 4), len(products), len(tags))
    employees = _employees(_rng(seed, 5), pools)
    order_rng = _rng(seed, 6)
    orders = _order_headers(order_rng, customers, addresses, employees)
    order_items, totals = _order_items(order_rng, orders, products)
    orders["total"] = _money(totals)
    payments = _payments(order_rng, orders, totals)
    shipments = _shipments(order_rng, orders, payments)
    per_customer = np.bincount(
        orders["customer_id"].to_numpy() - 1, minlength=len(customers)
    ).astype(np.int64)
    referrals = _referrals(_rng(seed, 7), customers, per_customer)
    event_log = _event_log(_rng(seed, 8), customers, per_customer, products)
    frames = {
        "customers": customers,
        "addresses": addresses,
        "categories": categories,
        "products": products,
        "tags": tags,
        "product_tags": product_tags,
        "employees": employees,
        "orders": orders,
        "order_items": order_items,
        "payments": payments,
        "shipments": shipments,
        "referrals": referrals,
        "event_log": event_log,
    }
    for table in _TABLES:
        expected = [column.name for column in table.columns]
        if list(frames[table.name].columns) != expected:  # pragma: no cover - programming error
            raise AssertionError(f"{table.name}: frame columns {list(frames[table.name])}")
    return {name: frames[name] for name in DEMO_TABLES}


def load_demo_database(
    conn: psycopg.Connection[Any], schema: str = "public", seed: int = DEMO_SEED
) -> dict[str, int]:
    """Drops and recreates every demo table (and the enum type) in `schema` (creating the
    schema if missing), loads rows with COPY, creates FK constraints, ANALYZEs, commits and
    returns {table: rows}.

    Constraints and indexes that are not needed during the load come after COPY, which is
    faster and lets tables load in any order; all of it is one transaction, so a failure
    leaves the previous demo data in place.
    """
    frames = build_demo_frames(seed)
    counts: dict[str, int] = {}
    try:
        with conn.cursor() as cur:
            _recreate(cur, schema)
            for table in _TABLES:
                counts[table.name] = _copy(cur, schema, table, frames[table.name])
            for table in _TABLES:
                _finish(cur, schema, table, frames[table.name])
        conn.commit()
    except Exception:
        conn.rollback()
        raise
    return counts


# --------------------------------------------------------------------------------------------
# Loading.


def _qualified(schema: str, name: str) -> sql.Identifier:
    return sql.Identifier(schema, name)


def _names(columns: Sequence[str]) -> sql.Composed:
    return sql.SQL(", ").join(sql.Identifier(column) for column in columns)


def _recreate(cur: psycopg.Cursor[Any], schema: str) -> None:
    cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    for table in reversed(_TABLES):
        cur.execute(
            sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(_qualified(schema, table.name))
        )
    enum = _qualified(schema, _ENUM)
    cur.execute(sql.SQL("DROP TYPE IF EXISTS {} CASCADE").format(enum))
    cur.execute(
        sql.SQL("CREATE TYPE {} AS ENUM ({})").format(
            enum, sql.SQL(", ").join(sql.Literal(status) for status in _STATUSES)
        )
    )
    for table in _TABLES:
        cur.execute(_create_table(schema, table))


def _create_table(schema: str, table: _Table) -> sql.Composed:
    """CREATE TABLE with primary key, unique and check constraints; FKs come after the load."""
    parts: list[sql.Composable] = []
    for column in table.columns:
        sql_type = (
            _qualified(schema, _ENUM) if column.sql_type == _ENUM else sql.SQL(column.sql_type)
        )
        null = sql.SQL("" if column.nullable else " NOT NULL")
        parts.append(sql.SQL("{} {}{}").format(sql.Identifier(column.name), sql_type, null))
    if table.primary_key:
        parts.append(
            sql.SQL("CONSTRAINT {} PRIMARY KEY ({})").format(
                sql.Identifier(f"{table.name}_pkey"), _names(table.primary_key)
            )
        )
    for columns in table.unique:
        parts.append(
            sql.SQL("CONSTRAINT {} UNIQUE ({})").format(
                sql.Identifier(f"{table.name}_{'_'.join(columns)}_key"), _names(columns)
            )
        )
    slots = {column.name: sql.Identifier(column.name) for column in table.columns}
    for label, expression in table.checks:
        parts.append(
            sql.SQL("CONSTRAINT {} CHECK ({})").format(
                sql.Identifier(f"{table.name}_{label}_check"),
                sql.SQL(expression).format(**slots),
            )
        )
    return sql.SQL("CREATE TABLE {} ({})").format(
        _qualified(schema, table.name), sql.SQL(", ").join(parts)
    )


def _copy(cur: psycopg.Cursor[Any], schema: str, table: _Table, frame: pd.DataFrame) -> int:
    """COPY in text format, the whole table rendered column-wise in one write."""
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        _qualified(schema, table.name), _names([column.name for column in table.columns])
    )
    cells = [_render(frame[column.name], column.kind) for column in table.columns]
    with cur.copy(statement) as copy:
        if len(frame):
            copy.write("\n".join("\t".join(row) for row in zip(*cells, strict=True)) + "\n")
    return cur.rowcount


def _finish(cur: psycopg.Cursor[Any], schema: str, table: _Table, frame: pd.DataFrame) -> None:
    """Sequences past the loaded ids (so plain INSERTs keep working), FKs, indexes, stats."""
    target = _qualified(schema, table.name)
    if table.sequence is not None:
        top = int(frame[table.sequence].max()) if len(frame) else 0
        cur.execute(
            sql.SQL("SELECT setval(pg_get_serial_sequence({}, {}), {}, {})").format(
                sql.Literal(target.as_string(cur)),
                sql.Literal(table.sequence),
                sql.Literal(max(top, 1)),
                sql.Literal(top > 0),
            )
        )
    for fk in table.foreign_keys:
        cur.execute(
            sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {} ({})").format(
                target,
                sql.Identifier(f"{table.name}_{'_'.join(fk.columns)}_fkey"),
                _names(fk.columns),
                _qualified(schema, fk.ref_table),
                _names(fk.ref_columns),
            )
        )
    for columns in table.indexes:
        cur.execute(
            sql.SQL("CREATE INDEX {} ON {} ({})").format(
                sql.Identifier(f"{table.name}_{'_'.join(columns)}_idx"), target, _names(columns)
            )
        )
    cur.execute(sql.SQL("ANALYZE {}").format(target))


# COPY text format: backslash, tab, newline and carriage return must be escaped.
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _render(values: pd.Series, kind: Kind) -> list[str]:
    """One column as COPY text cells, vectorised where numpy can; NULL is \\N."""
    missing = values.isna().to_numpy()
    text: Any
    if kind == "ts":
        raw = values.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy("datetime64[s]")
        text = np.char.add(np.datetime_as_string(raw, unit="s"), "+00")
    elif kind == "date":
        text = np.datetime_as_string(values.to_numpy("datetime64[D]"), unit="D")
    elif kind == "bool":
        text = np.where(values.to_numpy(dtype=bool), "t", "f")
    elif kind == "int":
        text = values.astype("Int64").astype(str).to_numpy()
    elif kind == "json":
        text = [
            None if m else json.dumps(v, sort_keys=True, ensure_ascii=False).translate(_ESCAPES)
            for v, m in zip(values, missing, strict=True)
        ]
    else:
        text = [str(v).translate(_ESCAPES) for v in values]
    cells = np.asarray(text, dtype=object)
    cells[missing] = "\\N"
    return cells.tolist()
