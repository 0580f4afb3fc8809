"""Response models: the built-ins and a user's own pydantic model.

A schema is named on the command line as one of

- a built-in name: ``Person`` (the article's), ``Contact``, ``Review``;
- ``path/to/file.py:ClassName``;
- ``package.module:ClassName`` (importable from the current environment).
"""

from __future__ import annotations

import importlib
import importlib.util
import itertools
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from core.errors import SchemaError


class Person(BaseModel):
    """The article's model."""

    name: str
    age: int


class Address(BaseModel):
    city: str | None = None
    country: str | None = None


class Contact(BaseModel):
    """A business contact, with a nested address."""

    name: str
    email: str | None = None
    phone: str | None = None
    company: str | None = None
    address: Address | None = None


class Review(BaseModel):
    """A product review: a number with bounds and an enum."""

    product: str
    rating: int = Field(ge=1, le=5)
    sentiment: Literal["positive", "neutral", "negative"]


BUILTIN_MODELS: dict[str, type[BaseModel]] = {
    "Person": Person,
    "Contact": Contact,
    "Review": Review,
}


def load_schema(spec: str) -> type[BaseModel]:
    """Resolve a schema spec to a pydantic model class, or raise SchemaError."""
    spec = spec.strip()
    if not spec:
        raise SchemaError("empty --schema; give a built-in name or module:Class")
    for name, model in BUILTIN_MODELS.items():
        if spec.lower() == name.lower():
            return model
    if ":" not in spec:
        known = ", ".join(BUILTIN_MODELS)
        raise SchemaError(
            f"unknown schema {spec!r}: use a built-in ({known}), "
            "path/to/file.py:ClassName or package.module:ClassName"
        )
    where, _, class_name = spec.rpartition(":")
    if not class_name.isidentifier():
        raise SchemaError(f"{spec!r}: {class_name!r} is not a class name")
    module = _import_module(where, spec)
    obj = getattr(module, class_name, None)
    if obj is None:
        raise SchemaError(f"{spec!r}: {where} has no attribute {class_name!r}")
    if not (isinstance(obj, type) and issubclass(obj, BaseModel)):
        raise SchemaError(f"{spec!r}: {class_name} is not a pydantic BaseModel subclass")
    return obj


def _import_module(where: str, spec: str) -> Any:
    looks_like_path = where.endswith(".py") or "/" in where or "\\" in where
    if looks_like_path:
        path = Path(where).expanduser()
        if not path.is_file():
            raise SchemaError(f"{spec!r}: no such file {path}")
        module_name = f"fanout_user_schema_{abs(hash(path.resolve()))}"
        loader_spec = importlib.util.spec_from_file_location(module_name, path)
        if loader_spec is None or loader_spec.loader is None:
            raise SchemaError(f"{spec!r}: {path} cannot be imported as Python")
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[module_name] = module
        try:
            loader_spec.loader.exec_module(module)
        except (Exception, SystemExit) as exc:  # a user's file can do anything on import
            sys.modules.pop(module_name, None)
            raise SchemaError(f"{spec!r}: importing {path} failed: {_one_line(exc)}") from exc
        return module
    try:
        return importlib.import_module(where)
    except Exception as exc:
        raise SchemaError(f"{spec!r}: cannot import {where}: {_one_line(exc)}") from exc


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def schema_name(model: type[BaseModel]) -> str:
    return model.__name__


BUNDLED_SCHEMAS: dict[str, str] = {
    "people.csv": "Person",
    "people_1000.csv": "Person",
    "contacts.csv": "Contact",
    "reviews.jsonl": "Review",
}
"""The schema each bundled dataset was written for."""

_CUES: dict[str, tuple[re.Pattern[str], ...]] = {
    "Person": (re.compile(r"(?i)\b\d{1,3}[ -]years?[ -]old\b|\baged? \d"),),
    "Contact": (
        re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+"),
        re.compile(r"\+?\d[\d ().-]{6,}\d"),
    ),
    "Review": (re.compile(r"(?i)\b[1-5] ?(/ ?5|out of 5|stars?)\b|\brated\b|★"),),
}


def suggest_schema(file_name: str, texts: Iterable[str]) -> tuple[str, str] | None:
    """A built-in schema that fits a dataset, and why: a bundled dataset's own schema, or
    the one whose sample data the texts look like (ages, emails and phones, ratings)."""
    if file_name in BUNDLED_SCHEMAS:
        return BUNDLED_SCHEMAS[file_name], f"{file_name} is its bundled dataset"
    sample = list(itertools.islice(texts, 50))
    if not sample:
        return None
    scores = {
        name: sum(any(cue.search(text) for cue in cues) for text in sample)
        for name, cues in _CUES.items()
    }
    best = max(scores, key=lambda name: scores[name])
    if scores[best] * 2 < len(sample):
        return None
    what = {"Person": "ages", "Contact": "emails or phone numbers", "Review": "ratings"}[best]
    return best, f"{scores[best]} of the first {len(sample)} texts mention {what}"
