"""Gold labels: the expected values of a dataset's rows, checked against the schema.

Where they come from (README "Quality"):

- **in the dataset**, by one of two conventions:
  - columns (CSV) or keys (JSONL / JSON) named ``expected.<field path>``, one per
    field: ``expected.name``, ``expected.address.city``; an empty CSV cell is null;
    list, dict and other non-flat fields hold JSON text (as in the export);
  - one column or key ``expected`` holding the whole expected object (JSON text in a
    CSV cell, an object in JSONL / JSON). A CSV ``expected`` column whose cells are
    not JSON objects is an ordinary input column.
- **in a separate file** (``--gold FILE``): JSONL, JSON or CSV, one label per row,
  keyed by row id (``id``, or the ``--id-column``), with the same two conventions,
  or in JSONL/JSON the fields at the top level beside the id.

Gold columns are taken out of the row's input columns when the dataset is loaded:
they are never sent to the model (only the text is) and are exported once, as
``expected.<field path>``, not also as ``input.expected.…``.

A label may give some fields only: the fields it gives are scored, the others are
not. A value that does not fit the schema (``age: "twenty"`` for an ``int``, a
field the schema does not have) is one ``GoldError`` naming the row and field.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from core.errors import FanoutError
from core.layout import FieldColumn, _single_model, field_columns
from core.quality.kinds import Kind, kind_at
from core.quality.score import (
    DEFAULT_TOLERANCE,
    FieldScore,
    RowScore,
    Tolerance,
    failed_field,
    score_field,
)

if TYPE_CHECKING:
    from core.dataset import Record

GOLD_KEY = "expected"
GOLD_PREFIX = GOLD_KEY + "."


class GoldError(FanoutError):
    """Gold labels that cannot be used: unreadable, or not fitting the schema."""


_MISSING = object()


def split_gold(extra: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """A row's input columns without its gold ones, and its raw gold label (or None).

    ``expected.a.b`` columns become ``{"a": {"b": ...}}``; an ``expected`` column or
    key holding an object (or JSON text of one) is the label itself."""
    if not any(name == GOLD_KEY or name.startswith(GOLD_PREFIX) for name in extra):
        return dict(extra), None
    rest: dict[str, Any] = {}
    label: dict[str, Any] = {}
    found = False
    for name, value in extra.items():
        if name == GOLD_KEY:
            whole = _object(value)
            if whole is _MISSING:
                rest[name] = value  # an ordinary column that happens to be called so
                continue
            found = True
            if isinstance(whole, dict):
                label.update(whole)
        elif name.startswith(GOLD_PREFIX):
            found = True
            _put(label, name[len(GOLD_PREFIX) :].split("."), _cell(value))
        else:
            rest[name] = value
    return rest, (label if found else None)


def _object(value: Any) -> Any:
    """An ``expected`` value as an object (None for an empty cell), or _MISSING."""
    if isinstance(value, dict) or value is None:
        return value
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            parsed = json.loads(value)
        except ValueError:
            return _MISSING
        return parsed if isinstance(parsed, dict) else _MISSING
    return _MISSING


def _cell(value: Any) -> Any:
    """An ``expected.<path>`` cell: CSV text is read back the way the export writes it
    (empty is null; JSON text for lists and objects); JSON values are kept."""
    if not isinstance(value, str):
        return value
    if value == "":
        return None
    if value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _put(target: dict[str, Any], path: list[str], value: Any) -> None:
    for key in path[:-1]:
        child = target.get(key)
        if not isinstance(child, dict):
            child = target[key] = {}
        target = child
    target[path[-1]] = value


@dataclass(frozen=True, slots=True)
class Scored:
    """One scored field path: its layout column and its kind."""

    column: FieldColumn
    kind: Kind


class Gold:
    """The checked gold labels of a run: by row id, in ``model_dump(mode="json")`` form."""

    def __init__(
        self,
        schema: type[BaseModel],
        labels: Mapping[str, Mapping[str, Any]],
        tolerance: Tolerance = DEFAULT_TOLERANCE,
        source: str = "dataset",
    ) -> None:
        self.schema = schema
        self.tolerance = tolerance
        self.source = source
        self.labels: dict[str, dict[str, Any]] = {}
        for row_id, raw in labels.items():
            self.labels[row_id] = check_label(schema, raw, f"{source}, row {row_id}")
        columns = field_columns(schema)
        used = [c for c in columns if any(_present(lab, c.path) for lab in self.labels.values())]
        self.fields: list[Scored] = [Scored(c, kind_at(schema, c.path)) for c in used]

    def __len__(self) -> int:
        return len(self.labels)

    def __contains__(self, row_id: object) -> bool:
        return row_id in self.labels

    @property
    def labels_of_fields(self) -> list[str]:
        return [scored.column.label for scored in self.fields]

    def expected(self, row_id: str) -> dict[str, Any] | None:
        return self.labels.get(row_id)

    def score(self, row_id: str, data: Mapping[str, Any] | None, *, ok: bool) -> RowScore | None:
        """The row's score; None when it has no gold label. ``ok`` False: the row
        has no result, every field it has gold for is ``failed``."""
        label = self.labels.get(row_id)
        if label is None:
            return None
        fields: dict[str, FieldScore] = {}
        for scored in self.fields:
            column = scored.column
            if not _present(label, column.path):
                continue
            if not ok:
                fields[column.label] = failed_field()
                continue
            fields[column.label] = score_field(
                column.value(label), column.value(data), scored.kind, self.tolerance
            )
        return RowScore(fields)


def _present(label: Mapping[str, Any], path: tuple[str, ...]) -> bool:
    """Whether a label gives the value at ``path`` (a null parent gives null)."""
    current: Any = label
    for key in path:
        if current is None:
            return True
        if not isinstance(current, Mapping) or key not in current:
            return False
        current = current[key]
    return True


def check_label(schema: type[BaseModel], raw: Any, where: str) -> dict[str, Any]:
    """A raw label coerced to the schema's JSON form, field by field; GoldError if a
    value does not fit. Fields it does not give stay absent (not scored)."""
    if not isinstance(raw, Mapping):
        raise GoldError(f"{where}: the expected value is a {type(raw).__name__}, not an object")
    return _check_model(schema, raw, where, ())


def _check_model(
    model: type[BaseModel], raw: Mapping[str, Any], where: str, prefix: tuple[str, ...]
) -> dict[str, Any]:
    fields = model.model_fields
    out: dict[str, Any] = {}
    for name, value in raw.items():
        path = (*prefix, name)
        info = fields.get(name)
        if info is None:
            known = ", ".join(fields) or "none"
            raise GoldError(
                f"{where}: expected.{'.'.join(path)}: {model.__name__} has no field {name!r} "
                f"(fields: {known})"
            )
        nested = _single_model(info.annotation)
        if nested is not None and isinstance(value, Mapping):
            out[name] = _check_model(nested, value, where, path)
            continue
        adapter = _adapter(model, name)
        try:
            checked = adapter.validate_python(value)
        except ValidationError as exc:
            first = exc.errors()[0]
            inner = ".".join(str(p) for p in first.get("loc", ()))
            at = ".".join(path) + (f".{inner}" if inner else "")
            raise GoldError(
                f"{where}: expected.{at} = {_short(value)} does not fit the schema: "
                f"{first.get('msg', 'invalid')}"
            ) from None
        out[name] = adapter.dump_python(checked, mode="json")
    return out


@functools.lru_cache(maxsize=512)
def _adapter(model: type[BaseModel], name: str) -> TypeAdapter[Any]:
    """One adapter per field (building one costs far more than using it)."""
    annotation: Any = model.model_fields[name].annotation
    return TypeAdapter(annotation)


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


# -- a separate gold file ------------------------------------------------------------


def read_gold_file(path: str | Path, id_column: str | None = None) -> dict[str, dict[str, Any]]:
    """Raw labels by row id from a ``--gold`` file (.jsonl, .json or .csv)."""
    target = Path(path).expanduser()
    key = id_column or "id"
    try:
        text = target.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise GoldError(f"{target}: cannot read the gold file ({exc})") from None
    suffix = target.suffix.lower()
    items: list[tuple[int, Any]]
    if suffix in (".jsonl", ".ndjson"):
        items = []
        for line, raw in enumerate(text.split("\n"), start=1):
            if raw.strip():
                items.append((line, _json(target, raw, line)))
    elif suffix == ".json":
        data = _json(target, text, 1)
        if not isinstance(data, list):
            raise GoldError(f"{target}: expected a JSON list of labels, one per row")
        items = list(enumerate(data, start=1))
    elif suffix in (".csv", ".tsv"):
        reader = csv.DictReader(io.StringIO(text), delimiter="\t" if suffix == ".tsv" else ",")
        items = [(reader.line_num, dict(row)) for row in reader]
    else:
        raise GoldError(f"{target}: name the gold file .jsonl, .json or .csv")
    labels: dict[str, dict[str, Any]] = {}
    for line, item in items:
        if not isinstance(item, dict) or key not in item:
            raise GoldError(f"{target}, line {line}: each label needs the row id under {key!r}")
        row_id = item[key] if isinstance(item[key], str) else json.dumps(item[key])
        rest = {k: v for k, v in item.items() if k != key}
        _, label = split_gold(rest)
        if label is None:  # JSONL / JSON: the fields at the top level
            label = {k: _cell(v) for k, v in rest.items()}
        if row_id in labels:
            raise GoldError(f"{target}, line {line}: row id {row_id!r} has two labels")
        labels[row_id] = label
    return labels


def _json(path: Path, text: str, line: int) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise GoldError(f"{path}, line {line}: not valid JSON ({exc})") from None


def gold_for(
    schema: type[BaseModel],
    dataset_labels: Mapping[str, Mapping[str, Any]],
    row_ids: Iterable[str],
    gold_file: str | Path | None = None,
    id_column: str | None = None,
    tolerance: Tolerance = DEFAULT_TOLERANCE,
) -> Gold | None:
    """The run's gold: ``gold_file``'s labels (over the dataset's own) or the dataset's;
    None when there are none. A label for an id the dataset lacks is an error."""
    labels: dict[str, Mapping[str, Any]] = dict(dataset_labels)
    source = "dataset"
    if gold_file is not None:
        from_file = read_gold_file(gold_file, id_column)
        ids = set(row_ids)
        unknown = [row_id for row_id in from_file if row_id not in ids]
        if unknown:
            shown = ", ".join(map(repr, unknown[:3]))
            raise GoldError(
                f"{gold_file}: {len(unknown)} label(s) for ids the dataset does not have "
                f"({shown}); the labels are keyed by row id"
            )
        labels.update(from_file)
        source = str(gold_file)
    if not labels:
        return None
    return Gold(schema, labels, tolerance, source)


def take_gold(
    records: tuple[Record, ...], columns: Iterable[str]
) -> tuple[tuple[Record, ...], tuple[str, ...], dict[str, dict[str, Any]]]:
    """Records without their gold columns, the input columns left, and the raw labels by
    row id (``load_dataset`` calls this, so gold never reaches the input columns)."""
    names = tuple(columns)
    if not any(name == GOLD_KEY or name.startswith(GOLD_PREFIX) for name in names):
        return records, names, {}
    labels: dict[str, dict[str, Any]] = {}
    out: list[Record] = []
    for record in records:
        rest, label = split_gold(record.extra)
        if label is not None:
            labels[record.id] = label
        out.append(dataclasses.replace(record, extra=rest))
    kept = tuple(
        name
        for name in names
        if not name.startswith(GOLD_PREFIX) and not (name == GOLD_KEY and labels)
    )
    return tuple(out), kept, labels
