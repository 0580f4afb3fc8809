"""The compatibility suite: answer shapes real providers send (``replay_server``), each
through the real engine (openai + instructor over HTTP on loopback): a row that says
why it failed, every billed answer's tokens counted, request ids kept, ``max_tokens``
sent, ``--lenient`` as a visible option."""

from __future__ import annotations

import pytest

from core.client import choose_endpoint
from core.engine import ClientOptions, Engine
from core.extract import RetryPolicy
from core.models import Person
from core.prepared import MIN_MAX_TOKENS
from core.results import ErrorKind, Row, Status
from tests.loopback import run_rows
from tests.replay_server import Replay, replaying

KEY = "sk-replay-0123456789abcdef"
MODES = ("tools", "json", "json_schema", "md_json")


async def run_on(
    replay: Replay, mode: str = "tools", rows: int = 1, **options: object
) -> list[Row]:
    client = ClientOptions(
        mode=mode,
        timeout=5.0,
        retry=RetryPolicy(max_retries=0, base_delay=0.01, max_delay=0.01),
        **options,  # type: ignore[arg-type]
    )
    return await run_rows(replay.base_url, KEY, client, rows)


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


@pytest.mark.parametrize(
    "shape", ["no_usage", "partial_usage", "extras", "parallel_tools", "text_and_tool"]
)
@pytest.mark.parametrize("mode", MODES)
async def test_provider_variations_still_extract(shape: str, mode: str) -> None:
    row, _ = await one(shape, mode)
    assert row.status is Status.OK, row.error
    assert row.data == {"name": "Ann", "age": 30}
    expected = {"no_usage": (0, 0), "partial_usage": (50, 0)}.get(shape, (50, 12))
    assert (row.prompt_tokens, row.completion_tokens) == expected
    assert row.request_ids == ("req-1",)


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


# -- the mode probe and the preflight -----------------------------------------------


def probe_cli(replay: Replay, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    import os

    from core.cli import main

    os.environ["OPENAI_API_KEY"] = KEY
    try:
        code = main(["probe", "--base-url", replay.base_url, "--timeout", "5", *extra])
    finally:
        del os.environ["OPENAI_API_KEY"]
    out = capsys.readouterr().out
    assert code == 0, out
    return out


@pytest.mark.parametrize(
    ("shape", "rejected"),
    [
        ("reject_json_schema", "json_schema"),
        ("llamacpp", "json_schema"),
        ("reject_tool_choice", "tools"),
    ],
)
def test_fanout_probe_names_exactly_the_modes_accepted(
    shape: str, rejected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with replaying(shape) as replay:
        out = probe_cli(replay, capsys)
    lines = {line.split()[0]: line.split()[1:3] for line in out.splitlines()[2:6]}
    assert set(lines) == set(MODES), out
    for mode, (accepted, valid) in lines.items():
        assert (accepted, valid) == (("no", "-") if mode == rejected else ("yes", "yes")), out
    works = ", ".join(m for m in MODES if m != rejected)
    assert out.splitlines()[-1] == f"modes that work: {works}"


def test_fanout_probe_says_accepted_but_not_valid(capsys: pytest.CaptureFixture[str]) -> None:
    with replaying("numeric_string") as replay:
        out = probe_cli(replay, capsys)
    for line in out.splitlines()[2:6]:
        assert line.split()[1:3] == ["yes", "no"], out
    assert out.splitlines()[-1] == "modes that work: none"


async def preflight(replay: Replay, mode: str, timeout: float = 5.0) -> list[str]:
    endpoint = choose_endpoint(base_url=replay.base_url, env={"OPENAI_API_KEY": KEY})
    async with Engine(endpoint, options=ClientOptions(mode=mode, timeout=timeout)) as engine:
        return await engine.preflight(Person)


async def test_a_run_in_a_rejected_mode_stops_at_preflight_naming_the_modes_that_work() -> None:
    from core.errors import EndpointError

    with replaying("llamacpp") as replay, pytest.raises(EndpointError) as raised:
        await preflight(replay, "json_schema")
    message = str(raised.value)
    assert "rejects --mode json_schema" in message and "unsupported json_schema" in message
    assert "modes that work: tools, json, md_json" in message and "\n" not in message
    with replaying("llamacpp") as replay:
        warnings = await preflight(replay, "tools")
        assert not any("--mode" in w or "busy" in w for w in warnings), warnings
        assert len(replay.bodies) == 1  # the run's mode only, once


@pytest.mark.parametrize(("shape", "delay"), [("busy", 0.0), ("slow_models", 1.5)])
async def test_preflight_tells_busy_from_unreachable(shape: str, delay: float) -> None:
    with replaying(shape, delay=delay) as replay:
        warnings = await preflight(replay, "tools", timeout=0.5)
    assert any("is busy" in w for w in warnings), warnings


async def test_an_unreachable_endpoint_is_not_busy() -> None:
    import socket

    from core.errors import EndpointError

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    endpoint = choose_endpoint(base_url=f"http://127.0.0.1:{port}/v1", env={"OPENAI_API_KEY": KEY})
    async with Engine(endpoint, options=ClientOptions(timeout=2.0)) as engine:
        with pytest.raises(EndpointError, match="cannot reach"):
            await engine.preflight(Person)


async def test_a_think_block_in_tool_arguments_is_named_not_json() -> None:
    row, _ = await one("think", "tools")
    assert "not JSON" in (row.error or "") and "tool call's arguments" in (row.error or "")
    assert "<think>" in (row.error or "") and "--lenient" in (row.error or ""), row.error


async def test_a_server_failing_every_mode_is_not_stopped_as_a_mode_question() -> None:
    with replaying("reject_all") as replay:
        warnings = await preflight(replay, "tools")
    assert any("probe request in --mode tools failed" in w for w in warnings), warnings
    assert len(replay.bodies) == 4  # the run's mode, then each other once
