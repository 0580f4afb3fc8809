"""The result layout: one naming scheme for every place a row is shown or written.

A result row holds three kinds of values, and their names can never collide:

- **fanout's own**: ``id``, ``text``, ``status``, ``error``, timings, tokens …
  (bare names, no dot; the fixed list ``OWN_COLUMNS``);
- **the input's other columns**: ``input.<column>`` (``input.invoice_no``);
- **the schema's fields**: ``data.<field path>`` (``data.status``,
  ``data.customer.name``).

The CSV header is the JSONL object flattened with dots: a JSONL line is
``{"id", "text", "input": {...}, "data": {...}, "status", ...}``, and the
CSV has one column per leaf. Nested models flatten to dotted columns; a value
that cannot flatten to a fixed set of columns (a list, a dict, a union with a
model in it, a recursive model, ``Any``) is one JSON cell. Because every
input column starts with ``input.`` and every field with ``data.``, a header
cell never starts with a character a spreadsheet would execute.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import types
import typing
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

INPUT_PREFIX = "input."
DATA_PREFIX = "data."

_SCALARS: tuple[type, ...] = (
    str,
    int,
    float,
    bool,
    bytes,
    dt.date,
    dt.datetime,
    dt.time,
    dt.timedelta,
    decimal.Decimal,
    uuid.UUID,
    enum.Enum,
)


@dataclass(frozen=True, slots=True)
class FieldColumn:
    """One column of the schema's fields."""

    path: tuple[str, ...]
    """Keys from ``model_dump()``'s top level down to the value."""
    json_cell: bool
    """The value is written as one JSON text (it may be a list, dict or model)."""

    @property
    def label(self) -> str:
        """The field path, as the dashboard's column header shows it."""
        return ".".join(self.path)

    @property
    def name(self) -> str:
        """The export column: ``data.<field path>``."""
        return DATA_PREFIX + self.label

    def value(self, data: Mapping[str, Any] | None) -> Any:
        """This column's value in a row's data (None when absent)."""
        current: Any = data
        for key in self.path:
            if not isinstance(current, Mapping):
                return None
            current = current.get(key)
        return current


def field_columns(model: type[BaseModel]) -> list[FieldColumn]:
    """The columns for a model's fields: nested models flattened, the rest in JSON cells.

    A model that appears inside itself (directly or through others) is one
    JSON cell from its second appearance on; so is a nested model whose field
    names hold a dot (its columns could not be told apart).
    """
    return list(_columns(model, (), (model,)))


def _columns(
    model: type[BaseModel], prefix: tuple[str, ...], seen: tuple[type[BaseModel], ...]
) -> Iterable[FieldColumn]:
    for name, info in model.model_fields.items():
        path = (*prefix, name)
        nested = _single_model(info.annotation)
        if nested is not None and nested not in seen and _flattenable(nested):
            yield from _columns(nested, path, (*seen, nested))
        else:
            yield FieldColumn(path, json_cell=not _is_scalar(info.annotation))


def _flattenable(model: type[BaseModel]) -> bool:
    fields = model.model_fields
    return bool(fields) and not any("." in name for name in fields)


def _args(annotation: Any) -> tuple[Any, ...]:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _args(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return (annotation,)


def _unwrap(annotation: Any) -> Any:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _single_model(annotation: Any) -> type[BaseModel] | None:
    """``Model`` or ``Model | None``: a model that flattens; anything else: None."""
    options = [_unwrap(a) for a in _args(annotation) if a is not type(None)]
    if len(options) == 1 and isinstance(options[0], type) and issubclass(options[0], BaseModel):
        return options[0]
    return None


def _is_scalar(annotation: Any) -> bool:
    """Whether every value the annotation allows is one plain value (no list, dict, model)."""
    for option in _args(annotation):
        option = _unwrap(option)
        if option is type(None):
            continue
        if typing.get_origin(option) is typing.Literal:
            continue
        if isinstance(option, type) and issubclass(option, _SCALARS):
            continue
        return False
    return True


def input_columns(rows: Iterable[Mapping[str, Any]], known: Sequence[str] = ()) -> list[str]:
    """The input columns of a set of rows' ``extra``: ``known`` first, then any others
    in the order they first appear (JSONL records may differ in their keys)."""
    names: dict[str, None] = dict.fromkeys(known)
    for extra in rows:
        for name in extra:
            if name not in names:
                names[name] = None
    return list(names)
