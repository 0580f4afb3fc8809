"""What kind of value each field holds, from the schema: how it is compared.

A ``Kind`` is read once from a pydantic model's annotations (``kind_of``) and
tells the scorer which normalised match applies to a value in
``model_dump(mode="json")`` form:

- ``text``: strings, compared after case folding and collapsing whitespace;
- ``number``: int / float / Decimal, equal within a tolerance;
- ``date`` / ``datetime`` / ``time``: parsed from ISO text, then compared;
- ``enum``: an ``Enum`` or ``Literal``, compared by value (text values case-folded);
- ``bool``: exact;
- ``model``: a nested model, compared field by field;
- ``list``: a list / set / tuple of items, scored as an item set;
- ``other``: anything else (dicts, unions of several types, ``Any``), compared
  structurally with the text and number rules applied inside.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import types
import typing
import uuid
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

TEXT, NUMBER, DATE, DATETIME, TIME, ENUM, BOOL, MODEL, LIST, OTHER = (
    "text",
    "number",
    "date",
    "datetime",
    "time",
    "enum",
    "bool",
    "model",
    "list",
    "other",
)
_MAX_DEPTH = 8
"""Recursive models are compared structurally (``other``) below this depth."""


@dataclass(frozen=True, slots=True)
class Kind:
    tag: str
    fields: dict[str, Kind] = field(default_factory=dict)
    """A model's fields (``model`` only)."""
    item: Kind | None = None
    """The items' kind (``list`` only)."""


OTHER_KIND = Kind(OTHER)


def kind_of(annotation: Any, depth: int = 0) -> Kind:
    """The kind of a field's annotation (``Optional`` is looked through)."""
    options = [a for a in _options(annotation) if a is not type(None)]
    if len(options) != 1:
        return OTHER_KIND
    option = options[0]
    origin = typing.get_origin(option)
    if origin is typing.Literal:
        return Kind(ENUM)
    if origin in (list, set, frozenset, tuple, typing.Sequence) or option in (list, set, tuple):
        args = [a for a in typing.get_args(option) if a is not Ellipsis]
        item = kind_of(args[0], depth + 1) if len(set(map(repr, args))) == 1 else OTHER_KIND
        return Kind(LIST, item=item)
    if not isinstance(option, type):
        return OTHER_KIND
    if issubclass(option, bool):
        return Kind(BOOL)
    if issubclass(option, enum.Enum):
        return Kind(ENUM)
    if issubclass(option, (int, float, decimal.Decimal)):
        return Kind(NUMBER)
    if issubclass(option, dt.datetime):
        return Kind(DATETIME)
    if issubclass(option, dt.date):
        return Kind(DATE)
    if issubclass(option, dt.time):
        return Kind(TIME)
    if issubclass(option, (str, uuid.UUID)):
        return Kind(TEXT)
    if issubclass(option, BaseModel):
        return model_kind(option, depth + 1)
    return OTHER_KIND


def model_kind(model: type[BaseModel], depth: int = 0) -> Kind:
    if depth > _MAX_DEPTH:
        return OTHER_KIND
    return Kind(
        MODEL,
        fields={name: kind_of(info.annotation, depth) for name, info in model.model_fields.items()},
    )


def kind_at(model: type[BaseModel], path: tuple[str, ...]) -> Kind:
    """The kind of the value at ``path`` (a result layout field path) in ``model``."""
    kind = model_kind(model)
    for key in path:
        kind = kind.fields.get(key, OTHER_KIND) if kind.tag == MODEL else OTHER_KIND
    return kind


def _options(annotation: Any) -> tuple[Any, ...]:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        out: list[Any] = []
        for arg in typing.get_args(annotation):
            out.extend(_options(arg))
        return tuple(out)
    return (annotation,)
