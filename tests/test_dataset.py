"""Loading datasets: every format, and one clear DatasetError for each user mistake."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.dataset import MAX_TEXT_CHARS, load_dataset
from core.errors import DatasetError


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def test_csv_keeps_ids_and_other_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", 'id,text,lang\n7,"Hi, there",en\n9,Yo,fr\n')
    data = load_dataset(path)
    assert [(r.index, r.id, r.text) for r in data.records] == [
        (0, "7", "Hi, there"),
        (1, "9", "Yo"),
    ]
    assert data.records[0].extra == {"lang": "en"}
    assert data.columns == ("lang",)


def test_csv_without_id_numbers_rows_by_line_stably(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "text\none\n\ntwo\n")
    assert [r.id for r in load_dataset(path).records] == ["2", "4"]


def test_csv_chosen_text_column_and_bom(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "\ufeffbody,n\nhello,1\n")
    assert load_dataset(path, text_column="body").records[0].text == "hello"


def test_tsv(tmp_path: Path) -> None:
    path = write(tmp_path, "a.tsv", "text\tx\nhello, world\t1\n")
    assert load_dataset(path).records[0].text == "hello, world"


def test_jsonl_objects_and_strings(tmp_path: Path) -> None:
    path = write(tmp_path, "a.jsonl", '{"id": "a", "text": "one", "k": 1}\n\n"two"\n')
    data = load_dataset(path)
    assert [r.text for r in data.records] == ["one", "two"]
    assert data.records[0].extra == {"k": 1}


def test_json_list(tmp_path: Path) -> None:
    path = write(tmp_path, "a.json", json.dumps([{"body": "x"}, {"body": "y"}]))
    assert [r.text for r in load_dataset(path, text_column="body").records] == ["x", "y"]


def test_json_object_holding_one_list(tmp_path: Path) -> None:
    path = write(tmp_path, "a.json", json.dumps({"records": ["x", "y"]}))
    assert len(load_dataset(path)) == 2


def test_plain_text_one_record_per_line(tmp_path: Path) -> None:
    path = write(tmp_path, "a.txt", "alpha\n\n  beta  \n")
    data = load_dataset(path)
    assert [(r.id, r.text) for r in data.records] == [("1", "alpha"), ("3", "beta")]


def test_empty_text_cells_are_skipped_with_a_warning(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "text,x\nhi,1\n,2\n")
    data = load_dataset(path)
    assert len(data) == 1
    assert data.warnings and "skipped 1" in data.warnings[0]


BAD_INPUTS = [
    ("missing.csv", None, "no such file"),
    ("empty.csv", "", "file is empty"),
    ("blank.txt", "\n\n  \n", "file is empty"),
    ("binary.csv", b"text\n\x00\x01\x02", "binary"),
    ("latin1.csv", "text\ncaf\xe9\n".encode("latin-1"), "line 2: not valid UTF-8"),
    ("nocol.csv", "name,body\na,b\n", "no column 'text'; columns are 'name', 'body'"),
    ("ragged.csv", "text,x\na,1\nb,2,3\n", "line 3: 3 fields where the header has 2"),
    ("dupid.csv", "id,text\n1,a\n1,b\n", "id '1' already used on line 2"),
    ("dupcol.csv", "text,text\na,b\n", "appears twice"),
    ("onlyheader.csv", "text\n", "no records found"),
    ("badline.jsonl", '{"text": "a"}\n{"text": \n', "line 2: not valid JSON"),
    ("nokey.jsonl", '{"body": "a"}\n', "line 1: no key 'text'"),
    ("number.jsonl", "42\n", "expected an object"),
    ("nested.jsonl", '{"text": {"a": 1}}\n', "holds a dict"),
    ("notlist.json", '"just a string"', "expected a JSON list"),
    ("badjson.json", "[1, 2", "not valid JSON"),
]


@pytest.mark.parametrize(("name", "content", "message"), BAD_INPUTS)
def test_bad_inputs_raise_one_clear_error(
    tmp_path: Path, name: str, content: str | bytes | None, message: str
) -> None:
    path = tmp_path / name if content is None else write(tmp_path, name, content)
    with pytest.raises(DatasetError) as caught:
        load_dataset(path)
    assert message in str(caught.value)
    assert name in str(caught.value)  # the message names the file


def test_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="is a directory"):
        load_dataset(tmp_path)


def test_huge_line_is_refused_with_its_line_number(tmp_path: Path) -> None:
    path = write(tmp_path, "huge.csv", "text\nok\n" + "x" * (MAX_TEXT_CHARS + 1) + "\n")
    with pytest.raises(DatasetError, match="line 3: text is"):
        load_dataset(path)


def test_unknown_format_option(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "text\na\n")
    with pytest.raises(DatasetError, match="unknown format 'xml'"):
        load_dataset(path, fmt="xml")


def test_id_column_chosen_by_name(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "ref,text,id\nA-1,one,x\nA-2,two,y\n")
    data = load_dataset(path, id_column="ref")
    assert [r.id for r in data.records] == ["A-1", "A-2"] and data.id_column == "ref"
    assert data.records[0].extra == {"id": "x"}  # a column called id is then just a column
    jsonl = write(tmp_path, "a.jsonl", '{"ref": 5, "text": "one", "id": "x"}\n')
    assert load_dataset(jsonl, id_column="ref").records[0].id == "5"
    assert load_dataset(jsonl).records[0].extra == {"ref": 5}
    for bad in ("nope",):
        with pytest.raises(DatasetError, match="no id"):
            load_dataset(path, id_column=bad)
    with pytest.raises(DatasetError, match="both 'text'"):
        load_dataset(path, id_column="text")


def test_jsonl_keeps_a_raw_line_separator_inside_a_string(tmp_path: Path) -> None:
    # JSON allows U+2028 / U+0085 unescaped in strings; str.splitlines() would split there
    path = write(tmp_path, "a.jsonl", '{"text": "one\u2028two\u0085three"}\n{"text": "b"}\n')
    assert [r.text for r in load_dataset(path).records] == ["one\u2028two\u0085three", "b"]
