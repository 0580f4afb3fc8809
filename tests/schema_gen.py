"""Hypothesis strategies for pydantic models fanout was never written for.

Models get nested models, lists of models, dicts, enums, ``Literal``,
``Optional``, dates, datetimes, decimals, UUIDs, unions (with and without a
model in them) and recursive models, under field names that collide with
every fanout column name and with input column names.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import itertools
import uuid
from typing import Any, ForwardRef, Literal

from hypothesis import strategies as st
from pydantic import BaseModel, create_model

from core.export import OWN_COLUMNS

INPUT_COLUMNS = ("source", "invoice_no", "status", "text", "error", "data", "latency_s")
"""The input's own columns in generated datasets (besides ``id`` and the text ``body``):
named like fanout's columns, like schema fields and like the layout's prefixes."""

COLLIDING_NAMES = (*OWN_COLUMNS, *INPUT_COLUMNS, "input", "data", "value", "index", "body")
_RESERVED = set(dir(BaseModel)) | {"model_config", "schema", "json", "dict", "copy", "fields"}
_counter = itertools.count()


def _unique(prefix: str) -> str:
    return f"{prefix}{next(_counter)}"


field_names = st.one_of(
    st.sampled_from(COLLIDING_NAMES),
    st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True),
).filter(lambda name: name not in _RESERVED and not name.startswith("model_"))


def _enum_type(values: list[str]) -> type[enum.Enum]:
    return enum.Enum(_unique("Choice"), {f"V{i}": v for i, v in enumerate(values)})  # type: ignore[return-value]


leaf_types: st.SearchStrategy[Any] = st.one_of(
    st.sampled_from([str, int, float, bool, dt.date, dt.datetime, decimal.Decimal, uuid.UUID]),
    st.lists(
        st.sampled_from(["paid", "unpaid", "overdue", "low", "high"]),
        min_size=1,
        max_size=3,
        unique=True,
    ).map(_enum_type),
    st.lists(st.sampled_from(["a", "b", "yes", "no"]), min_size=1, max_size=3, unique=True).map(
        lambda values: Literal[tuple(values)]  # type: ignore[misc]
    ),
)


def _model(fields: dict[str, Any], recursive: bool) -> type[BaseModel]:
    name = _unique("Gen")
    spec: dict[str, Any] = {}
    for field_name, annotation in fields.items():
        default = None if _optional(annotation) else ...
        spec[field_name] = (annotation, default)
    if recursive:
        spec["children"] = (list[ForwardRef(name)], [])  # type: ignore[misc]
        spec["parent"] = (ForwardRef(name) | None, None)  # type: ignore[operator]
    model = create_model(name, **spec)
    if recursive:
        model.model_rebuild(_types_namespace={name: model})
    return model


def _optional(annotation: Any) -> bool:
    return annotation is None or (
        getattr(annotation, "__args__", None) is not None and type(None) in annotation.__args__
    )


def _types(depth: int) -> st.SearchStrategy[Any]:
    if depth <= 0:
        return leaf_types
    inner = _types(depth - 1)
    return st.one_of(
        leaf_types,
        inner.map(lambda t: t | None),
        inner.map(lambda t: list[t]),  # type: ignore[valid-type]
        inner.map(lambda t: dict[str, t]),  # type: ignore[valid-type]
        st.tuples(leaf_types, leaf_types).map(lambda ts: ts[0] | ts[1]),
        models(depth - 1),
        models(depth - 1).map(lambda m: m | None),
        models(depth - 1).map(lambda m: list[m]),  # type: ignore[valid-type]
        models(depth - 1).map(lambda m: m | str),
    )


def models(depth: int = 2) -> st.SearchStrategy[type[BaseModel]]:
    """A pydantic model with 1-6 fields, nesting up to ``depth`` levels."""
    return st.builds(
        _model,
        st.dictionaries(
            field_names.filter(lambda n: n not in ("children", "parent")),
            st.deferred(lambda: _types(depth)),
            min_size=1,
            max_size=6,
        ),
        st.booleans() if depth > 0 else st.just(False),
    )
