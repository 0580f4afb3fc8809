"""The prepared fast path gives the same objects as instructor's usual create()."""

from __future__ import annotations

from collections.abc import Iterator

import instructor
import openai
import pytest
from openai.types.chat import ChatCompletion
from pydantic import BaseModel

from core.client import MODES, choose_endpoint
from core.dataset import load_dataset
from core.engine import ClientOptions, Engine
from core.extract import RetryPolicy, read_completion
from core.localserver import LocalServer, ServerConfig
from core.models import Contact, Person, Review
from core.options import bundled_datasets_dir
from core.prepared import PreparedRequest
from core.results import Status
from tests.fakes import ARTICLE_PEOPLE

CASES: list[tuple[type[BaseModel], str, int]] = [
    (Person, "people_1000.csv", 40),
    (Contact, "contacts.csv", 30),
    (Review, "reviews.jsonl", 20),
]


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer(ServerConfig(latency=0.0, jitter=0.0)) as running:
        yield running


@pytest.mark.parametrize("mode", list(MODES))
async def test_same_objects_as_instructor_create(server: LocalServer, mode: str) -> None:
    raw = openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-local", max_retries=0)
    usual = instructor.from_openai(raw, mode=MODES[mode])
    try:
        for schema, name, count in CASES:
            records = load_dataset(bundled_datasets_dir() / name).records[:count]
            prepared = PreparedRequest(schema, MODES[mode], "fanout-sim")
            for record in records:
                completion = await raw.post(
                    "/chat/completions", body=prepared.body(record.text), cast_to=ChatCompletion
                )
                fast = prepared.parse(completion)
                expected = await usual.chat.completions.create(
                    model="fanout-sim",
                    messages=[{"role": "user", "content": record.text}],
                    response_model=schema,
                )
                assert isinstance(fast, schema)
                assert fast.model_dump() == expected.model_dump(), record.text
    finally:
        await raw.close()


def test_body_holds_the_text_and_the_mode_shape() -> None:
    tools = PreparedRequest(Person, instructor.Mode.TOOLS, "m").body("hello there")
    assert tools["messages"] == [{"role": "user", "content": "hello there"}]
    assert tools["tools"][0]["function"]["name"] == "Person"
    assert tools["model"] == "m"
    md = PreparedRequest(Person, instructor.Mode.MD_JSON, "m", "be brief").body("hi")
    assert md["messages"][0]["role"] == "system" and "be brief" in md["messages"][0]["content"]
    assert md["messages"][-1]["content"].startswith("hi")
    # each body is fresh: changing one does not change the next
    md["messages"].append({"role": "user", "content": "x"})
    assert len(PreparedRequest(Person, instructor.Mode.MD_JSON, "m").body("hi")["messages"]) == 2


async def test_invalid_answers_are_re_asked_until_valid() -> None:
    people = load_dataset(bundled_datasets_dir() / "people.csv").records
    config = ServerConfig(latency=0.0, jitter=0.0, invalid_rate=0.5, seed=7)
    options = ClientOptions(retry=RetryPolicy(validation_retries=8))
    engine = Engine(choose_endpoint(local=True), server=config, options=options)
    async with engine, engine.run(people, Person, strategy="sequential", concurrency=1) as run:
        stats = await run.execute()
    assert stats.ok == 7
    assert [r.data for r in run.rows] == [{"name": n, "age": a} for n, a in ARTICLE_PEOPLE]
    assert sum(r.attempts for r in run.rows) > 7  # some answers were re-asked
    assert all(r.prompt_tokens > 0 for r in run.rows)


async def test_a_row_that_never_validates_fails_with_a_reason() -> None:
    people = load_dataset(bundled_datasets_dir() / "people.csv").records[:2]
    config = ServerConfig(latency=0.0, jitter=0.0, invalid_rate=1.0)
    options = ClientOptions(retry=RetryPolicy(validation_retries=2))
    engine = Engine(choose_endpoint(local=True), server=config, options=options)
    async with engine, engine.run(people, Person, strategy="gather", concurrency=1) as run:
        stats = await run.execute()
    assert stats.failed == 2
    for row in run.rows:
        assert row.status is Status.FAILED and row.attempts == 3
        assert row.error is not None and row.error.startswith("invalid model output after 3")
        assert row.prompt_tokens > 0  # the failed attempts still cost tokens


def test_read_completion_is_fast_and_still_lenient() -> None:
    full = (
        b'{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,'
        b'"finish_reason":"stop","message":{"role":"assistant","content":"hi"}}],'
        b'"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}'
    )
    completion = read_completion(full)
    assert completion.choices[0].message.content == "hi" and completion.usage is not None
    # A server that leaves fields out (no id, created, object) still parses.
    sparse = b'{"choices":[{"message":{"role":"assistant","content":"hey"}}]}'
    assert read_completion(sparse).choices[0].message.content == "hey"
