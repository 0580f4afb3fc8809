"""The compatibility suite: answer shapes real providers send (``replay_server``), each
through the real engine (openai + instructor over HTTP on loopback): a row that says
why it failed, every billed answer's tokens counted, request ids kept, ``max_tokens``
sent, ``--lenient`` as a visible option."""

from __future__ import annotations

import asyncio

import pytest

from core.client import choose_endpoint
from core.dataset import records_from_texts
from core.engine import ClientOptions, Engine
from core.extract import RetryPolicy
from core.models import Person
from core.prepared import MIN_MAX_TOKENS
from core.results import ErrorKind, Row, Status
from tests.replay_server import Replay, replaying

KEY = "sk-replay-0123456789abcdef"
MODES = ("tools", "json", "json_schema", "md_json")


async def run_on(
    replay: Replay, mode: str = "tools", rows: int = 1, **options: object
) -> list[Row]:
    endpoint = choose_endpoint(base_url=replay.base_url, env={"OPENAI_API_KEY": KEY})
    client = ClientOptions(
        mode=mode,
        timeout=5.0,
        retry=RetryPolicy(max_retries=0, base_delay=0.01, max_delay=0.01),
        **options,  # type: ignore[arg-type]
    )
    async with (
        Engine(endpoint, options=client) as engine,
        engine.run(
            records_from_texts(["My name is Ann and I am 30"] * rows),
            Person,
            strategy="gather",
            concurrency=rows,
        ) as run,
    ):
        await asyncio.wait_for(run.execute(), 30)
    return run.rows


async def one(shape: str, mode: str = "tools", **options: object) -> tuple[Row, Replay]:
    with replaying(shape) as replay:
        (row,) = await run_on(replay, mode, **options)
    return row, replay


# -- reasons that name the cause ---------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_a_truncated_answer_says_at_how_many_tokens_and_what_to_raise(mode: str) -> None:
    row, replay = await one("length", mode, max_tokens=300)
    assert row.status is Status.FAILED and row.error_kind is ErrorKind.VALIDATION
    assert "truncated at 300 tokens (max_tokens)" in (row.error or ""), row.error
    assert "raise --max-tokens" in (row.error or "")
    assert len(replay.bodies) == 1  # a re-ask would be cut at the same place: not sent
    assert (row.attempts, row.prompt_tokens, row.completion_tokens) == (1, 50, 12)


@pytest.mark.parametrize("mode", MODES)
async def test_a_refusal_is_named_with_the_models_words(mode: str) -> None:
    row, replay = await one("refusal", mode)
    assert row.status is Status.FAILED
    assert row.error == "refused by the model after 1 attempt: I cannot help with that."
    assert len(replay.bodies) == 1
    assert (row.attempts, row.prompt_tokens, row.completion_tokens) == (1, 50, 12)


async def test_a_filtered_answer_names_the_content_filter() -> None:
    row, _ = await one("content_filter", "json")
    assert "filtered" in (row.error or "") and "content_filter" in (row.error or ""), row.error
    assert row.total_tokens == 62


async def test_text_instead_of_a_tool_call_says_so_and_is_reasked() -> None:
    row, replay = await one("text_not_tool", "tools")
    assert "no tool call" in (row.error or ""), row.error
    assert "Ann is 30 years old." in (row.error or "")
    assert len(replay.bodies) == 2  # instructor's re-ask (--validation-retries 1)
    assert (row.attempts, row.prompt_tokens, row.completion_tokens) == (2, 100, 24)


async def test_an_answer_that_is_not_json_says_what_it_was() -> None:
    row, _ = await one("not_json", "json")
    assert "not JSON" in (row.error or "") and "Ann is 30" in (row.error or ""), row.error


async def test_a_think_block_in_strict_mode_points_at_lenient() -> None:
    row, _ = await one("think", "json")
    assert row.status is Status.FAILED
    assert "not JSON" in (row.error or "") and "--lenient" in (row.error or ""), row.error


# -- every billed answer accounted, request ids kept -------------------------------


@pytest.mark.parametrize(
    ("shape", "says"),
    [
        ("empty_choices", "no choices"),
        ("error_body", "200 with an error after 1 attempt: model overloaded mid-answer"),
    ],
)
async def test_a_200_that_is_no_completion_still_counts_its_usage(shape: str, says: str) -> None:
    row, _ = await one(shape)
    assert row.status is Status.FAILED and row.error_kind is ErrorKind.BAD_RESPONSE
    assert says in (row.error or ""), row.error
    assert (row.attempts, row.prompt_tokens, row.completion_tokens) == (1, 50, 12)
    assert row.request_ids == ("req-1",)


async def test_every_attempts_request_id_is_kept_in_order() -> None:
    row, _ = await one("not_json", "json")
    assert row.request_ids == ("req-1", "req-2")
    ok, _ = await one("ok")
    assert ok.status is Status.OK and ok.request_ids == ("req-1",)


async def test_an_http_errors_request_id_is_kept() -> None:
    row, _ = await one("reject_tool_choice")
    assert row.error_kind is ErrorKind.BAD_REQUEST and row.request_ids == ("req-1",)


# -- shapes that must simply work ---------------------------------------------------


@pytest.mark.parametrize("shape", ["no_usage", "partial_usage", "extras", "parallel_tools"])
@pytest.mark.parametrize("mode", MODES)
async def test_provider_variations_still_extract(shape: str, mode: str) -> None:
    row, _ = await one(shape, mode)
    assert row.status is Status.OK, row.error
    assert row.data == {"name": "Ann", "age": 30}
    expected = {"no_usage": (0, 0), "partial_usage": (50, 0)}.get(shape, (50, 12))
    assert (row.prompt_tokens, row.completion_tokens) == expected
    assert row.request_ids == ("req-1",)


async def test_text_beside_a_tool_call_takes_the_tool_call() -> None:
    row, _ = await one("text_and_tool", "tools")
    assert row.status is Status.OK and row.data == {"name": "Ann", "age": 30}, row.error


# -- bounded generations ------------------------------------------------------------


async def test_max_tokens_is_sent_derived_from_the_schema_or_as_given() -> None:
    _, replay = await one("ok")
    derived = replay.bodies[0]["max_tokens"]
    assert isinstance(derived, int) and derived >= MIN_MAX_TOKENS
    _, replay = await one("ok", max_tokens=77)
    assert replay.bodies[0]["max_tokens"] == 77


# -- lenient parsing ----------------------------------------------------------------


@pytest.mark.parametrize("shape", ["think", "fence", "numeric_string"])
@pytest.mark.parametrize("mode", ("tools", "json", "json_schema"))
async def test_quirks_fail_strict_and_pass_lenient_marked(shape: str, mode: str) -> None:
    strict, _ = await one(shape, mode)
    assert strict.status is Status.FAILED and not strict.lenient
    lenient, _ = await one(shape, mode, lenient=True)
    assert lenient.status is Status.OK, lenient.error
    assert lenient.data == {"name": "Ann", "age": 30} and lenient.lenient
    assert lenient.attempts == 1  # no re-ask needed


async def test_lenient_leaves_a_strictly_valid_row_unmarked() -> None:
    row, _ = await one("ok", "tools", lenient=True)
    assert row.status is Status.OK and not row.lenient


async def test_numeric_strings_fail_strict_in_md_json_too() -> None:
    strict, _ = await one("numeric_string", "md_json")
    assert strict.status is Status.FAILED
    lenient, _ = await one("numeric_string", "md_json", lenient=True)
    assert lenient.status is Status.OK and lenient.lenient
