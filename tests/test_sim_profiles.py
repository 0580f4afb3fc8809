"""The simulator's named models: errors by rule on a seed, valid answers, the default
model unchanged, the profiles listed at /v1/models."""

from __future__ import annotations

import datetime as dt
import enum
import json
import random
from collections import Counter

from pydantic import BaseModel, Field

from core.localserver import ServerConfig, create_app
from core.localserver.filler import fill
from core.localserver.profiles import (
    DROPPED_FIELD,
    PROFILES,
    SWAPPED_NAME,
    SWAPPED_VALUE,
    WRONG_DIGIT,
    adjust,
    inject,
    latency_factor,
)
from core.models import Contact, Person, Review
from tests.test_localserver import call


class Kind(enum.Enum):
    A = "alpha"
    B = "beta"


class Ticket(BaseModel):
    """Not one of fanout's: odd names, bounds, an enum, a date, optional fields."""

    id: str
    status: Kind
    priority: int = Field(ge=1, le=3)
    opened: dt.date | None = None
    owner_name: str | None = None
    code: str = "X-0"


def texts(n: int) -> list[str]:
    r = random.Random(5)
    names = ["Ada Lovelace", "Grace Hopper", "Alan", "Tomasz Johansson", "Mei"]
    return [
        f"{r.choice(names)}, {r.randint(18, 90)}, mail ada{i}@example.com, call +1 555 {i:04d}"
        f" at Globex in Lisbon, Portugal. Rated {r.randint(1, 5)}/5, ticket T-{i} status beta"
        for i in range(n)
    ]


def test_the_default_model_is_untouched() -> None:
    schema = Person.model_json_schema()
    for text in texts(50):
        value = fill(schema, text)
        assert adjust("fanout-sim", value, schema, text, None) is value
        assert adjust("sim-careful", value, schema, text, 3) is value
    assert latency_factor("fanout-sim") == 1.0 and latency_factor("gpt-4o") == 1.0


def test_errors_are_by_rule_deterministic_and_valid() -> None:
    kinds: Counter[str] = Counter()
    changed = 0
    for model in (Person, Contact, Review, Ticket):
        schema = model.model_json_schema()
        for text in texts(200):
            value = fill(schema, text)
            out = adjust("sim-fast", value, schema, text, 7)
            assert out == adjust("sim-fast", value, schema, text, 7)  # same inputs, same answer
            model.model_validate(out)  # a wrong answer, never an invalid one
            if out != value:
                changed += 1
                _, kind = inject(value, schema, text, _rng_for("sim-fast", text, 7), 0.3)
                assert kind is not None
                kinds[kind] += 1
    assert set(kinds) == {WRONG_DIGIT, DROPPED_FIELD, SWAPPED_NAME, SWAPPED_VALUE}
    assert 0.2 < changed / 800 < 0.4  # the profile's 30 %


def test_the_seed_changes_which_answers_are_wrong() -> None:
    schema = Person.model_json_schema()
    values = {t: fill(schema, t) for t in texts(100)}
    wrong = {
        seed: {t for t, v in values.items() if adjust("sim-fast", v, schema, t, seed) != v}
        for seed in (1, 2)
    }
    assert wrong[1] and wrong[2] and wrong[1] != wrong[2]


def _rng_for(model: str, text: str, seed: int):
    from core.localserver.profiles import _rng

    return _rng(model, text, seed)


async def test_models_are_listed_and_answer_as_their_profile() -> None:
    app = create_app(ServerConfig(latency=0))
    status, _, body = await call(app, "GET", "/v1/models")
    listed = [m["id"] for m in json.loads(body)["data"]]
    assert status == 200 and listed[0] == "fanout-sim" and set(PROFILES) <= set(listed)
    schema = Review.model_json_schema()
    seen = set()
    for text in texts(40):
        request = {
            "model": "sim-fast",
            "messages": [{"role": "user", "content": text}],
            "response_format": {"type": "json_object"},
            "tools": [{"type": "function", "function": {"name": "Review", "parameters": schema}}],
            "tool_choice": {"type": "function", "function": {"name": "Review"}},
        }
        status, _, answer = await call(
            app, "POST", "/v1/chat/completions", json.dumps(request).encode()
        )
        assert status == 200
        arguments = json.loads(answer)["choices"][0]["message"]["tool_calls"][0]["function"]
        got = json.loads(arguments["arguments"])
        seen.add(json.dumps(got) != json.dumps(fill(schema, text)))
    assert seen == {True, False}  # some answers wrong, some right
