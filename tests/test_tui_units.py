"""Short figures and the header line: shortened by unit or by dropping minor pieces, never cut."""

from __future__ import annotations

import pytest

from tui.units import count, money, rate, secs
from tui.widgets.header import HeaderInfo, header_text
from tui.widgets.stats_bar import pack


@pytest.mark.parametrize(
    ("value", "shown"),
    [(None, "—"), (0.812, "0.81 s"), (16.17, "16.2 s"), (123.4, "2m 03s"), (4000, "1h 06m")],
)
def test_seconds_keep_three_figures_then_switch_unit(value: float | None, shown: str) -> None:
    assert secs(value) == shown


@pytest.mark.parametrize(
    ("value", "shown"),
    [(7, "7"), (9_999, "9,999"), (76_862, "76.9k"), (123_456, "123k"), (1_234_567, "1.23M")],
)
def test_counts_shorten_by_unit(value: int, shown: str) -> None:
    assert count(value) == shown


def test_money_and_rates() -> None:
    assert [money(v) for v in (0, 0.0123, 0.00012, 3.456, 12_345.6)] == [
        "$0",
        "$0.012",
        "$0.00012",
        "$3.46",
        "$12,346",
    ]
    assert [rate(v) for v in (61.93, 1234.5)] == ["61.9", "1,234"]


def test_pack_fills_rows_in_order_and_never_overfills() -> None:
    widths = [10, 12, 30, 5, 90, 4]
    rows = pack(widths, 40, gap=2)
    assert [i for row in rows for i in row] == list(range(len(widths)))
    for row in rows:
        used = sum(widths[i] for i in row) + 2 * (len(row) - 1)
        assert used <= 40 or len(row) == 1  # only a lone item wider than the room


INFO = HeaderInfo(
    dataset="people.csv",
    rows=7,
    endpoint="local simulator 127.0.0.1:8765",
    simulated=True,
    model="fanout-sim",
    schema="Person",
    mode="tools",
)


@pytest.mark.parametrize("width", range(40, 200, 7))
def test_header_always_names_dataset_schema_and_mode_and_fits(width: int) -> None:
    text = header_text(INFO, width).plain
    assert len(text) <= width
    assert "Person" in text and "mode tools" in text
    assert "people.csv" in text or (width < 45 and "…" in text)
    assert "simulator" in text  # a simulator never passes for a model


def test_a_long_dataset_name_is_shortened_in_its_middle_never_the_schema() -> None:
    info = HeaderInfo(**{**INFO.__dict__, "dataset": "customer_support_tickets_2026_q3_full.jsonl"})
    text = header_text(info, 60).plain
    assert len(text) <= 60
    assert "Person" in text and "mode tools" in text
    assert "…" in text and text.count(".jsonl") == 1 and "cust" in text
    wide = header_text(info, 200).plain
    assert "customer_support_tickets_2026_q3_full.jsonl (7 rows)" in wide
    assert "model fanout-sim" in wide
