"""The simulator's schema filler: rules, robustness, and accuracy on the bundled datasets."""

from __future__ import annotations

import csv
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from core.localserver.filler import compiled, fill, request_text, schema_in_text
from core.models import Contact, Person, Review
from tests.fakes import ARTICLE_PEOPLE

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT / "datasets"


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "fanout_datasets_generate", DATASETS / "generate.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


generate = _load_generator()

PERSON = Person.model_json_schema()
CONTACT = Contact.model_json_schema()
REVIEW = Review.model_json_schema()


def _csv_texts(name: str) -> list[str]:
    with (DATASETS / name).open(encoding="utf-8", newline="") as f:
        return [row["text"] for row in csv.DictReader(f)]


def _accuracy(model: type[BaseModel], examples: list[tuple[str, dict[str, Any]]]) -> float:
    schema = model.model_json_schema()
    wrong = []
    for text, expected in examples:
        got = model.model_validate(fill(schema, text)).model_dump()
        if got != expected:
            wrong.append((text, got, expected))
    for text, got, expected in wrong[:5]:
        print(f"MISS {text!r}\n  got      {got}\n  expected {expected}")
    return 1 - len(wrong) / len(examples)


# ---------------------------------------------------------------------------
# Rules
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "name", "age"),
    [
        ("My name is John and I am 20 years old", "John", 20),
        ("I'm Priya, 34.", "Priya", 34),
        ("Meet Carlos Mendes (age 41), our new coordinator.", "Carlos Mendes", 41),
        ("Ana turned 29 last week", "Ana", 29),
        ("In Lisbon, Ana turned 29 last week", "Ana", 29),
        ("I am 52 years old and my name is Tomás de la Cruz.", "Tomás de la Cruz", 52),
        ("Dear Oluwaseun, happy 33rd birthday!", "Oluwaseun", 33),
        ("Ana, 29, has lived in Porto for 5 years.", "Ana", 29),
        ("Name: Wei Chen | Age: 61", "Wei Chen", 61),
        ("Patient: Pedro, 30.", "Pedro", 30),
        ("71-year-old Ingrid won the chess tournament.", "Ingrid", 71),
    ],
)
def test_person_rules(text: str, name: str, age: int) -> None:
    assert fill(PERSON, text) == {"name": name, "age": age}


def test_contact_rules() -> None:
    text = (
        "Best regards,\nMaria García\nHead of Sales at Globex\n"
        "maria.garcia@globex.com\n+1 (415) 555-0134\nSan Francisco, USA"
    )
    assert fill(CONTACT, text) == {
        "name": "Maria García",
        "email": "maria.garcia@globex.com",
        "phone": "+1 (415) 555-0134",
        "company": "Globex",
        "address": {"city": "San Francisco", "country": "USA"},
    }
    # optional fields are null when absent; the nested address is null as a whole
    assert fill(CONTACT, "Please call Bob Smith at 020 7946 0958.") == {
        "name": "Bob Smith",
        "email": None,
        "phone": "020 7946 0958",
        "company": None,
        "address": None,
    }
    got = fill(CONTACT, "Hi, I'm Ana from Fabrikam Inc, based in Lisbon.")
    assert got["company"] == "Fabrikam Inc"
    assert got["address"] == {"city": "Lisbon", "country": None}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "I bought the Pebble Buds 2 earbuds. Sound is great. 4/5",
            ("Pebble Buds 2", 4, "positive"),
        ),
        ("Returned the Nimbus 3000. Total junk. One star.", ("Nimbus 3000", 1, "negative")),
        ("8/10 for the Zephyr X2 headphones.", ("Zephyr X2", 4, "positive")),
        ("★★★☆☆ Lumina S7: does the job.", ("Lumina S7", 3, "neutral")),
        ("Rating: 12. Product: Orca Blender 900.", ("Orca Blender 900", 5, "positive")),
    ],
)
def test_review_rules(text: str, expected: tuple[str, int, str]) -> None:
    product, rating, sentiment = expected
    assert fill(REVIEW, text) == {"product": product, "rating": rating, "sentiment": sentiment}


def test_sentiment_from_words_when_no_rating() -> None:
    assert fill(REVIEW, "The Atlas Chair is terrible and flimsy.")["sentiment"] == "negative"
    assert fill(REVIEW, "The Atlas Chair is not bad at all, I love it.")["sentiment"] == "positive"
    assert fill(REVIEW, "The Atlas Chair arrived on Tuesday.")["sentiment"] == "neutral"


def test_enum_value_mentioned_wins() -> None:
    class Ticket(BaseModel):
        priority: Literal["low", "medium", "high"]
        channel: Literal["email", "phone", "chat"] = "chat"

    schema = Ticket.model_json_schema()
    assert fill(schema, "Customer called by phone, priority is high.") == {
        "priority": "high",
        "channel": "phone",
    }
    assert fill(schema, "nothing here") == {"priority": "low", "channel": "chat"}


def test_generic_labels_numbers_booleans_and_bounds() -> None:
    class Order(BaseModel):
        order_id: str
        quantity: int = Field(ge=1, le=10)
        price: float
        gift_wrap: bool
        express: bool = False
        notes: str | None = None

    schema = Order.model_json_schema()
    text = "Order ID: A-1234. Quantity: 25, price = 9.5, no gift wrap please, express shipping."
    got = fill(schema, text)
    assert got == {
        "order_id": "A-1234",
        "quantity": 10,  # clamped to the maximum
        "price": 9.5,
        "gift_wrap": False,
        "express": True,
        "notes": None,
    }
    Order.model_validate(got)


def test_arrays_recursion_and_refs() -> None:
    class Node(BaseModel):
        name: str
        children: list[Node] = []

    class Team(BaseModel):
        emails: list[str]
        members: list[Person] = Field(min_length=1)
        tags: list[str] = Field(default_factory=list, max_length=2)

    got = fill(
        Team.model_json_schema(), "Write to a@x.io or b@y.org. Tags: red, green, blue. Ana is 30."
    )
    assert got["emails"] == ["a@x.io", "b@y.org"]
    assert got["members"] == [{"name": "Ana", "age": 30}]
    assert got["tags"] == ["red", "green"]
    Team.model_validate(got)
    Node.model_validate(fill(Node.model_json_schema(), "Root has a child called Leaf."))


def test_formats_and_odd_schemas_do_not_crash() -> None:
    schema = {
        "type": "object",
        "properties": {
            "when": {"type": "string", "format": "date"},
            "url": {"type": "string", "format": "uri"},
            "kind": {"const": "fixed"},
            "both": {"type": ["integer", "null"]},
            "bad_ref": {"$ref": "#/$defs/Missing"},
            "anything": {},
        },
        "required": ["when", "url", "kind", "both", "bad_ref", "anything"],
    }
    got = fill(schema, "See https://example.org/x on 2024-05-01, about 7 items.")
    assert got["when"] == "2024-05-01"
    assert got["url"] == "https://example.org/x"
    assert got["kind"] == "fixed"
    assert got["both"] == 2024
    for odd in ({}, {"type": "string"}, {"type": "array"}, {"anyOf": []}, {"$ref": "#/x"}):
        fill(odd, "some text 3")


def test_compiled_fillers_are_cached_by_schema_text() -> None:
    assert compiled(PERSON) is compiled(json.loads(json.dumps(PERSON)))


def test_request_text_takes_the_first_user_message_without_instructions() -> None:
    messages = [
        {"role": "system", "content": "You extract things."},
        {
            "role": "user",
            "content": "My name is Ana and I am 30 years old\n\nReturn the correct JSON response "
            "within a ```json codeblock. not the JSON_SCHEMA",
        },
        {"role": "assistant", "content": "{}"},
        {"role": "user", "content": "Recall the function correctly, fix the errors"},
    ]
    assert request_text(messages) == "My name is Ana and I am 30 years old"
    parts = [{"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "image_url"}]}]
    assert request_text(parts) == "Hi"
    assert request_text([{"role": "system", "content": "x"}]) == ""


def test_schema_in_text_finds_the_schema_in_a_system_prompt() -> None:
    prompt = f"Use this json_schema:\n\n{json.dumps(PERSON, indent=2)}\n\nNot the schema itself {{"
    assert schema_in_text(prompt) == PERSON
    assert schema_in_text("no braces here") is None
    assert schema_in_text("broken { json") is None


# ---------------------------------------------------------------------------
# Robustness: any text gives a value the model accepts
# ---------------------------------------------------------------------------

_texts = st.one_of(
    st.text(max_size=300),
    st.lists(
        st.sampled_from(
            [
                "My name is",
                "I'm",
                "Ana",
                "García",
                "de la",
                "34",
                "years old",
                ",",
                ".",
                "\n",
                "from",
                "at",
                "Globex Inc",
                "in",
                "Berlin",
                "Germany",
                "4/5",
                "stars",
                "★",
                "the",
                "Nimbus 3000",
                "email:",
                "a@b.co",
                "+1 (415) 555-0134",
                "Name:",
                "(",
                ")",
                "-",
                "aged",
                "99999999999999999999",
                "positive",
                "not",
                "bad",
                "USA",
            ]
        ),
        max_size=40,
    ).map(" ".join),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_texts)
def test_fill_always_validates(text: str) -> None:
    for model, schema in ((Person, PERSON), (Contact, CONTACT), (Review, REVIEW)):
        model.model_validate(fill(schema, text))
        model.model_validate_json(json.dumps(fill(schema, text)))


# ---------------------------------------------------------------------------
# Accuracy on the bundled datasets (the filler never sees the answers)
# ---------------------------------------------------------------------------


def test_people_csv_is_the_article_and_fully_right() -> None:
    texts = _csv_texts("people.csv")
    assert texts == generate.ARTICLE_TEXTS
    assert [tuple(fill(PERSON, t).values()) for t in texts] == ARTICLE_PEOPLE


def test_people_1000_accuracy() -> None:
    examples = generate.people()
    assert [t for t, _ in examples] == _csv_texts("people_1000.csv")
    assert len(examples) == 1000
    assert _accuracy(Person, examples) == 1.0


def test_contacts_accuracy() -> None:
    examples = generate.contacts()
    assert [t for t, _ in examples] == _csv_texts("contacts.csv")
    assert _accuracy(Contact, examples) == 1.0


def test_reviews_accuracy() -> None:
    examples = generate.reviews()
    lines = (DATASETS / "reviews.jsonl").read_text(encoding="utf-8").splitlines()
    assert [t for t, _ in examples] == [json.loads(line)["text"] for line in lines]
    assert _accuracy(Review, examples) == 1.0


def test_generator_is_deterministic() -> None:
    assert generate.people(20, 7) == generate.people(20, 7)
    assert generate.people(20, 7) != generate.people(20, 8)
    assert generate.contacts(5, 1) == generate.contacts(5, 1)
    assert generate.reviews(5, 1) == generate.reviews(5, 1)
