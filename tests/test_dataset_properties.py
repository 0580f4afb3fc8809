"""Whatever a file holds, ``load_dataset`` returns usable records or raises one DatasetError.

Random bytes, random text, CSV-ish and JSONL-ish content is written to a file
with each extension fanout knows (and one it does not): the loader must
either return records (each with non-empty text, ids unique, indexes in order)
or raise ``DatasetError`` with a one-line message naming the file. Any other
exception would reach the user as a traceback.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from core.dataset import Dataset, load_dataset
from core.errors import DatasetError

EXTENSIONS = (".csv", ".tsv", ".jsonl", ".ndjson", ".json", ".txt", ".dat")
PROPERTY = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def load_bytes(content: bytes, extension: str) -> Dataset | DatasetError:
    """Write ``content`` to a fresh file and load it; a DatasetError is returned, not raised."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"data{extension}"
        path.write_bytes(content)
        try:
            return load_dataset(path)
        except DatasetError as exc:
            message = str(exc)
            assert message.strip(), "a DatasetError must say what is wrong"
            assert "\n" not in message, f"one line, got {message!r}"
            assert path.name in message, f"the message names the file: {message!r}"
            return exc


def check(result: Dataset | DatasetError) -> None:
    if isinstance(result, DatasetError):
        return
    records = result.records
    assert records, "a dataset without records must be a DatasetError"
    assert all(record.text.strip() for record in records)
    assert all(record.text == record.text.strip() for record in records)
    ids = [record.id for record in records]
    assert len(set(ids)) == len(ids), f"duplicate ids {ids}"
    assert [record.index for record in records] == list(range(len(records)))
    for record in records:
        record.text.encode("utf-8")  # every text can be sent and stored as UTF-8
        record.id.encode("utf-8")


# -- content generators -------------------------------------------------------------------

_CSV_PIECES = st.sampled_from(
    ["text", "id", "name", ",", "\t", '"', '""', "\n", "\r\n", "\r", " ", "a", "é", "1", "="]
)
csv_ish = st.lists(_CSV_PIECES, max_size=60).map("".join)

_JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
_JSON_VALUES = st.recursive(
    _JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(["text", "id", "x", "name"]), children, max_size=3)
    ),
    max_leaves=8,
)
_JSON_LINES = st.one_of(
    _JSON_VALUES.map(json.dumps),
    st.fixed_dictionaries({"text": _JSON_SCALARS}, optional={"id": _JSON_SCALARS}).map(json.dumps),
    st.text(max_size=20),  # not JSON at all
    st.just(""),
    st.sampled_from(['{"text": "\\ud800"}', '{"text": "a", "id": "\\udfff"}', "[" * 3000]),
)
jsonl_ish = st.lists(_JSON_LINES, max_size=8).map("\n".join)


# -- properties -----------------------------------------------------------------------------


@PROPERTY
@given(content=st.binary(max_size=400), extension=st.sampled_from(EXTENSIONS))
@example(content=b"\xff\xfe\x00t\x00e", extension=".csv")
@example(content=b"text\n" + b"a" * 9000 + b"\x00", extension=".csv")
def test_random_bytes(content: bytes, extension: str) -> None:
    check(load_bytes(content, extension))


@PROPERTY
@given(content=st.text(max_size=300), extension=st.sampled_from(EXTENSIONS))
@example(content="\ufefftext\nhello", extension=".csv")
@example(content="   \n\t\n", extension=".txt")
def test_random_text(content: str, extension: str) -> None:
    check(load_bytes(content.encode("utf-8", "surrogatepass"), extension))


@PROPERTY
@given(content=csv_ish, extension=st.sampled_from(EXTENSIONS))
@example(content='text\n"unclosed', extension=".csv")
@example(content="id,text\n1,a\n1,b", extension=".csv")
@example(content="text,text\na,b", extension=".csv")
def test_csv_ish(content: str, extension: str) -> None:
    check(load_bytes(content.encode("utf-8"), extension))


@PROPERTY
@given(content=jsonl_ish, extension=st.sampled_from(EXTENSIONS))
@example(content='{"text": "a", "n": ' + "1" * 5000 + "}", extension=".jsonl")
@example(content="[" * 100_000, extension=".json")
@example(content='[{"text": "a", "id": 1}, {"text": "b", "id": "1"}]', extension=".json")
def test_jsonl_ish(content: str, extension: str) -> None:
    check(load_bytes(content.encode("utf-8"), extension))


def test_json_limits_are_dataset_errors(tmp_path: Path) -> None:
    """Valid JSON that Python cannot read (deep nesting, huge numbers) is bad input, not a crash."""
    cases = {
        "deep.json": "[" * 100_000 + "]" * 100_000,
        "deep.jsonl": '{"text": ' + "[" * 100_000 + "]" * 100_000 + "}",
        "digits.jsonl": '{"text": "My name is Bob", "id": ' + "7" * 5000 + "}",
        "surrogate.jsonl": '{"text": "My name is \\ud800 Bob"}',
        "surrogate_id.json": '[{"text": "My name is Bob", "id": "\\udfff"}]',
    }
    for name, content in cases.items():
        path = tmp_path / name
        path.write_text(content, encoding="utf-8")
        with pytest.raises(DatasetError, match=name):
            load_dataset(path)
