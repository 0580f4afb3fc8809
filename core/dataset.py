"""Load a dataset file into records.

Formats, by extension (or ``fmt=``):

- ``.csv`` / ``.tsv``: a header row; the text is in column ``text`` (or the
  one named by ``text_column``); other columns are kept as ``extra``.
- ``.jsonl`` / ``.ndjson``: one JSON object per line, text under key ``text``
  (or ``text_column``); a line may also be a bare JSON string.
- ``.json``: a list of such objects or strings.
- ``.txt`` (and anything else that is text): one record per non-blank line.

A column or key named ``id`` (or the one named by ``id_column``) gives each
record its id (ids must be unique); otherwise the id is the record's line
number in the file (CSV: the line its row starts on, the header being line
1; JSONL and text: the line; JSON: the position in the list, from 1), so it
stays the same when the file is loaded again. Every other column is kept in
``Record.extra`` and carried to the results. Every problem a user can have with a file
raises one ``DatasetError`` naming the file, the line and the fix.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import DatasetError
from core.quality.gold import take_gold
from core.results import NO_EXTRA

MAX_TEXT_CHARS = 200_000
"""A record longer than this is almost surely a mistake (a whole file in one cell)."""
_SURROGATE = re.compile("[\ud800-\udfff]")
"""A lone UTF-16 surrogate (only a JSON escape like \\ud800 makes one): no UTF-8 for it."""


FORMATS = ("csv", "tsv", "jsonl", "json", "txt")
_EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".txt": "txt",
    ".text": "txt",
}


@dataclass(frozen=True, slots=True)
class Record:
    """One input to extract from. ``index`` is its position in the dataset."""

    index: int
    id: str
    text: str
    extra: Mapping[str, Any] = field(default_factory=lambda: NO_EXTRA)


@dataclass(frozen=True, slots=True)
class Dataset:
    path: Path
    format: str
    text_column: str | None
    records: tuple[Record, ...]
    columns: tuple[str, ...] = ()
    """The extra columns (everything but id and text), in file order."""
    warnings: tuple[str, ...] = ()
    id_column: str | None = None
    """The column the ids came from; None when they are line numbers."""
    gold: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Raw gold labels by row id, from ``expected`` / ``expected.<path>`` columns
    (``core.quality.gold``); not in ``columns`` nor in the records' ``extra``."""

    @property
    def name(self) -> str:
        return self.path.stem

    def __len__(self) -> int:
        return len(self.records)


def detect_format(path: Path) -> str:
    return _EXTENSIONS.get(path.suffix.lower(), "txt")


def load_dataset(
    path: str | Path,
    text_column: str | None = None,
    fmt: str | None = None,
    id_column: str | None = None,
) -> Dataset:
    """Read ``path`` into a Dataset, or raise DatasetError with a fix.

    ``id_column``: where the ids are; by default ``id`` when the file has it.
    Named explicitly, it must exist (and not be the text column).
    """
    path = Path(path).expanduser()
    fmt = (fmt or detect_format(path)).lower()
    if fmt not in FORMATS:
        raise DatasetError(f"{path}: unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    key = text_column or "text"
    if id_column is not None and id_column == key:
        raise DatasetError(
            f"{path}: --id-column and --text-column are both {key!r}; ids and texts need "
            "their own columns"
        )
    ids = _IdColumn(id_column or "id", explicit=id_column is not None)
    text = _read_text(path)
    if fmt in ("csv", "tsv"):
        loaded = _load_csv(path, text, key, "\t" if fmt == "tsv" else ",", ids)
    elif fmt == "jsonl":
        loaded = _load_jsonl(path, text, key, ids)
    elif fmt == "json":
        loaded = _load_json(path, text, key, ids)
    else:
        if id_column is not None:
            raise DatasetError(f"{path}: a plain text file has no columns; drop --id-column")
        loaded = _load_lines(text)
    rows, columns, skipped = loaded
    if not rows:
        hint = f" ({skipped} had empty text)" if skipped else ""
        raise DatasetError(f"{path}: no records found{hint}; add at least one line of text")
    records = _number(path, rows)
    records, input_names, gold = take_gold(records, columns)
    warnings: tuple[str, ...] = ()
    if skipped:
        warnings = (f"{path.name}: skipped {skipped} record(s) with empty text",)
    return Dataset(
        path=path,
        format=fmt,
        text_column=None if fmt == "txt" else (text_column or "text"),
        records=records,
        columns=input_names,
        warnings=warnings,
        id_column=ids.name if ids.found else None,
        gold=gold,
    )


@dataclass(slots=True)
class _IdColumn:
    name: str
    explicit: bool
    found: bool = False


_Row = tuple[int, str | None, str, dict[str, Any]]
"""(line number, explicit id or None, text, extra)"""


def _read_text(path: Path) -> str:
    if not path.exists():
        raise DatasetError(f"{path}: no such file; check the path")
    if path.is_dir():
        raise DatasetError(f"{path}: is a directory; give a .csv, .jsonl, .json or .txt file")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    if not raw.strip():
        raise DatasetError(f"{path}: the file is empty; add at least one record")
    if b"\x00" in raw[:8192]:
        raise DatasetError(
            f"{path}: looks like a binary file, not text; give a CSV/JSONL/text file"
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DatasetError(
            f"{path}, line {line}: not valid UTF-8 (byte 0x{raw[exc.start]:02x}); "
            "re-save the file as UTF-8"
        ) from exc


def _check_text(path: Path, line: int, text: str, what: str = "text") -> None:
    if len(text) > MAX_TEXT_CHARS:
        raise DatasetError(
            f"{path}, line {line}: {what} is {len(text):,} characters, over the limit of "
            f"{MAX_TEXT_CHARS:,}; split it or check the column"
        )
    if _SURROGATE.search(text):
        raise DatasetError(
            f"{path}, line {line}: {what} holds a lone surrogate escape (like \\ud800), "
            "which is not a character; fix or remove it"
        )


def _load_csv(
    path: Path, text: str, column: str, delimiter: str, ids: _IdColumn
) -> tuple[list[_Row], list[str], int]:
    csv.field_size_limit(max(csv.field_size_limit(), MAX_TEXT_CHARS * 4))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except (StopIteration, csv.Error) as exc:
        raise DatasetError(f"{path}, line 1: cannot read the CSV header ({exc})") from exc
    header = [name.strip() for name in header]
    if column not in header:
        if len(header) == 1 and column == "text":
            hint = f"; is line 1 ({header[0][:40]!r}) a header? add a header row `text`"
        else:
            hint = "; pass --text-column NAME"
        raise DatasetError(
            f"{path}: no column {column!r}; columns are {', '.join(map(repr, header))}{hint}"
        )
    _no_duplicate_names(path, header)
    text_at = header.index(column)
    if ids.explicit and ids.name not in header:
        raise DatasetError(
            f"{path}: no id column {ids.name!r}; columns are {', '.join(map(repr, header))}"
        )
    id_at = header.index(ids.name) if ids.name in header and column != ids.name else None
    ids.found = id_at is not None
    extra_names = [(i, name) for i, name in enumerate(header) if i not in (text_at, id_at)]
    rows: list[_Row] = []
    skipped = 0
    try:
        for fields in reader:
            line = reader.line_num
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue
            if len(fields) != len(header):
                raise DatasetError(
                    f"{path}, line {line}: {len(fields)} fields where the header has "
                    f"{len(header)}; quote values that contain {delimiter!r}"
                )
            value = fields[text_at].strip()
            if not value:
                skipped += 1
                continue
            _check_text(path, line, value)
            record_id = fields[id_at].strip() if id_at is not None else None
            extra = {name: fields[i] for i, name in extra_names}
            rows.append((line, record_id or None, value, extra))
    except csv.Error as exc:
        raise DatasetError(f"{path}, line {reader.line_num}: malformed CSV ({exc})") from exc
    return rows, [name for _, name in extra_names], skipped


def _no_duplicate_names(path: Path, header: list[str]) -> None:
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise DatasetError(f"{path}, line 1: column {name!r} appears twice; rename one")
        seen.add(name)


def _record_from_json(
    path: Path, line: int, item: Any, key: str, columns: dict[str, None], ids: _IdColumn
) -> _Row | None:
    if isinstance(item, str):
        value, record_id, extra = item, None, {}
    elif isinstance(item, dict):
        if key not in item:
            keys = ", ".join(map(repr, list(item)[:8])) or "none"
            raise DatasetError(
                f"{path}, line {line}: no key {key!r} (keys: {keys}); pass --text-column NAME"
            )
        raw = item[key]
        if raw is None:
            return None
        if isinstance(raw, (dict, list)):
            raise DatasetError(
                f"{path}, line {line}: {key!r} holds a {type(raw).__name__}, not text"
            )
        value = str(raw)
        id_key = ids.name if key != ids.name else None
        if ids.explicit and id_key not in item:
            raise DatasetError(f"{path}, line {line}: no id key {ids.name!r}")
        raw_id = item.get(id_key) if id_key is not None else None
        record_id = None if raw_id is None else _id_text(raw_id)
        if record_id is not None:
            ids.found = True
            _check_text(path, line, record_id, "id")
        extra = {k: v for k, v in item.items() if k != key and k != id_key}
        for name in extra:
            columns.setdefault(name, None)
    else:
        raise DatasetError(
            f"{path}, line {line}: expected an object with key {key!r} or a string, "
            f"got {type(item).__name__}"
        )
    value = value.strip()
    if not value:
        return None
    _check_text(path, line, value)
    return (line, record_id, value, extra)


def _id_text(value: Any) -> str:
    """An id as text: JSON numbers and strings as written; anything else as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _load_jsonl(
    path: Path, text: str, key: str, ids: _IdColumn
) -> tuple[list[_Row], list[str], int]:
    rows: list[_Row] = []
    columns: dict[str, None] = {}
    skipped = 0
    # JSON Lines are split on "\n" only: str.splitlines() would also split inside a
    # string holding a raw U+2028 or U+0085, which JSON allows unescaped.
    for line, raw in enumerate(text.split("\n"), start=1):
        if not raw.strip():
            continue
        try:
            item = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise DatasetError(
                f"{path}, line {line}: not valid JSON ({exc.msg} at column {exc.colno}); "
                "each line must be one JSON object"
            ) from exc
        except (ValueError, RecursionError) as exc:
            raise DatasetError(f"{path}, line {line}: {_json_limit(exc)}") from exc
        row = _record_from_json(path, line, item, key, columns, ids)
        if row is None:
            skipped += 1
        else:
            rows.append(row)
    return rows, list(columns), skipped


def _json_limit(exc: ValueError | RecursionError) -> str:
    """Valid JSON that Python will not read: too deeply nested, or a number too long."""
    if isinstance(exc, RecursionError):
        return "JSON nested too deeply to read; flatten the records"
    return "JSON holds a number with too many digits to read; quote it as a string"


def _load_json(
    path: Path, text: str, key: str, ids: _IdColumn
) -> tuple[list[_Row], list[str], int]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetError(
            f"{path}, line {exc.lineno}: not valid JSON ({exc.msg} at column {exc.colno})"
        ) from exc
    except (ValueError, RecursionError) as exc:
        raise DatasetError(f"{path}: {_json_limit(exc)}") from exc
    if isinstance(data, dict):
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(lists) != 1:
            raise DatasetError(
                f"{path}: expected a JSON list of records (or an object holding one list)"
            )
        data = lists[0]
    if not isinstance(data, list):
        raise DatasetError(f"{path}: expected a JSON list of records, got {type(data).__name__}")
    rows: list[_Row] = []
    columns: dict[str, None] = {}
    skipped = 0
    for position, item in enumerate(data, start=1):
        row = _record_from_json(path, position, item, key, columns, ids)
        if row is None:
            skipped += 1
        else:
            rows.append(row)
    return rows, list(columns), skipped


def _load_lines(text: str) -> tuple[list[_Row], list[str], int]:
    rows: list[_Row] = [
        (line, None, raw.strip(), {})
        for line, raw in enumerate(text.splitlines(), start=1)
        if raw.strip()
    ]
    return rows, [], 0


def _number(path: Path, rows: list[_Row]) -> tuple[Record, ...]:
    explicit = any(record_id is not None for _, record_id, _, _ in rows)
    seen: dict[str, int] = {}
    records: list[Record] = []
    for index, (line, record_id, text, extra) in enumerate(rows):
        rid = record_id if explicit and record_id is not None else str(line)
        if rid in seen:
            raise DatasetError(
                f"{path}, line {line}: id {rid!r} already used on line {seen[rid]}; "
                "ids must be unique"
            )
        seen[rid] = line
        records.append(Record(index=index, id=rid, text=text, extra=extra or NO_EXTRA))
    return tuple(records)


def records_from_texts(texts: list[str]) -> tuple[Record, ...]:
    """Records for an in-memory list of strings (ids "1", "2", ...)."""
    return tuple(Record(index=i, id=str(i + 1), text=t) for i, t in enumerate(texts))


def iter_texts(dataset: Dataset) -> Iterator[str]:
    return (record.text for record in dataset.records)
