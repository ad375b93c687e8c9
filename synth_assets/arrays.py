"""PostgreSQL arrays as Python lists and back, so that documents.py generates their elements.

Arrays are read as PostgreSQL's text (``{Trailers,"Deleted Scenes"}``, ``{{1,2},{3,4}}``,
``{NULL,x}``). Arrays of numbers, booleans, texts, dates and times are generated; other element
types (enums, composites, extension types) keep production's values, which documents.py's
generated words would not fit.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

INTEGERS = {"integer", "smallint", "bigint"}
FLOATS = {"numeric", "real", "double precision"}
TEXTS = {"text", "character varying", "character", "citext"}
TIMES = {"date", "timestamp without time zone", "timestamp with time zone"}
_QUOTE = re.compile(r'[{},"\\\s]')


def element_kind(sql_type: str) -> str | None:
    """integer, float, boolean or text for an array type prodtwin generates, else None."""
    if not sql_type.endswith("[]"):
        return None
    base = re.sub(r"\(.*?\)", "", sql_type.replace("[]", "")).strip()
    if base in INTEGERS:
        return "integer"
    if base in FLOATS:
        return "float"
    if base == "boolean":
        return "boolean"
    if base in TEXTS | TIMES:
        return "text"
    return None


def parse(text: str, kind: str) -> list[Any]:
    """One array's text as a (nested) list of elements of ``kind``."""
    if text.startswith("["):  # dimensions given: [0:2]={1,2,3}
        text = text[text.index("=") + 1 :]
    stack: list[list[Any]] = []
    out: list[Any] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "{":
            stack.append([])
            i += 1
        elif ch == "}":
            done = stack.pop()
            if stack:
                stack[-1].append(done)
            else:
                out = done
            i += 1
        elif ch == ",":
            i += 1
        elif ch == '"':
            j, chars = i + 1, []
            while text[j] != '"':
                if text[j] == "\\":
                    j += 1
                chars.append(text[j])
                j += 1
            stack[-1].append(_element("".join(chars), kind))
            i = j + 1
        else:
            j = i
            while text[j] not in ",}":
                j += 1
            word = text[i:j].strip()
            stack[-1].append(None if word.upper() == "NULL" else _element(word, kind))
            i = j
    return out


def _element(word: str, kind: str) -> Any:
    if kind == "integer":
        return int(word)
    if kind == "float":
        return float(word)
    if kind == "boolean":
        return word in ("t", "true")
    return word


def parse_all(texts: pd.Series, kind: str) -> list[Any] | None:
    """A column's arrays as lists (None: a value prodtwin cannot read, so none is generated)."""
    try:
        return [parse(str(t), kind) for t in texts.dropna()]
    except (ValueError, IndexError):
        return None


def format_array(value: Any) -> str:
    """A (nested) list as PostgreSQL's array text."""
    if value is None:
        return "NULL"
    if isinstance(value, list):
        return "{" + ",".join(format_array(v) for v in value) + "}"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value)
    if text == "" or text.upper() == "NULL" or _QUOTE.search(text):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text
