"""Name a schema class so that another process can load the same class.

A worker process gets the class by its module and qualified name; a class from
a user's file (``path/to/file.py:Class``, imported under a generated module
name) is loaded from that file again.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from dataclasses import dataclass

from pydantic import BaseModel

from core.errors import ConfigError, SchemaError


@dataclass(frozen=True)
class SchemaRef:
    module: str
    qualname: str
    file: str | None


def schema_ref(schema: type[BaseModel]) -> SchemaRef:
    if "<locals>" in schema.__qualname__:
        raise ConfigError(
            f"--workers needs a schema defined at a module's top level; {schema.__qualname__} "
            "is defined inside a function"
        )
    module = sys.modules.get(schema.__module__)
    file = getattr(module, "__file__", None)
    return SchemaRef(schema.__module__, schema.__qualname__, file)


def load_ref(ref: SchemaRef) -> type[BaseModel]:
    module = sys.modules.get(ref.module)
    if module is None:
        try:
            module = importlib.import_module(ref.module)
        except ImportError:
            if ref.file is None:
                raise
            spec = importlib.util.spec_from_file_location(ref.module, ref.file)
            if spec is None or spec.loader is None:
                raise SchemaError(f"cannot import {ref.file}") from None
            module = importlib.util.module_from_spec(spec)
            sys.modules[ref.module] = module
            spec.loader.exec_module(module)
    obj: object = module
    for part in ref.qualname.split("."):
        obj = getattr(obj, part)
    if not (isinstance(obj, type) and issubclass(obj, BaseModel)):
        raise SchemaError(f"{ref.module}:{ref.qualname} is not a pydantic model")
    return obj
