"""Response models: the built-ins and a user's own pydantic model.

A schema is named on the command line as one of

- a built-in name: ``Person`` (the article's), ``Contact``, ``Review``;
- ``path/to/file.py:ClassName``;
- ``package.module:ClassName`` (importable from the current environment).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
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
        except Exception as exc:  # a user's file can raise anything while importing
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
