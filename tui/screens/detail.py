"""One row in full: input, extracted JSON, error, attempts, timings, tokens."""

from __future__ import annotations

import json

from rich.syntax import Syntax
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from core.quality.gold import Gold
from core.results import Row
from tui.field_diff import field_diff
from tui.visible import visible


def _secs(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f} s"


def timing_lines(row: Row) -> str:
    waited = None
    if row.queued_s is not None and row.started_s is not None:
        waited = row.started_s - row.queued_s
    lines = (
        f"queued {_secs(row.queued_s)} · started {_secs(row.started_s)} "
        f"(waited {_secs(waited)} for a slot) · finished {_secs(row.finished_s)} · "
        f"delivered {_secs(row.delivered_s)}\n"
        f"latency (on the wire) {_secs(row.latency_s)} · attempts {row.attempts} · tokens "
        f"{row.prompt_tokens} prompt + {row.completion_tokens} completion"
    )
    phases = row.phases
    if phases is None:
        return lines
    retries = ", ".join(
        f"{kind} {n}"
        for kind, n in (
            ("network", phases.retries_network),
            ("429", phases.retries_429),
            ("5xx", phases.retries_5xx),
            ("invalid answer", phases.retries_invalid),
        )
        if n
    )
    return (
        f"{lines}\n\nwhere the time went\n"
        f"  · waiting its turn   {_secs(phases.wait_sem_s)}  (semaphore slot)\n"
        f"  ░ rate limiter wait  {_secs(phases.wait_limiter_s)}\n"
        f"  · connection wait    {_secs(phases.connect_s)}  (pool queue, new connection)\n"
        f"  █ on the wire        {_secs(phases.wire_s)}  (request sent → answer headers)\n"
        f"    client work        {_secs(phases.client_s)}  (building, reading, validating)\n"
        f"  ▒ backoff            {_secs(phases.backoff_s)}\n"
        f"  retries              {retries or 'none'}"
    )


def input_columns_text(row: Row) -> Text:
    """The input's own columns, one ``name: value`` a line (values as JSON when not text)."""
    text = Text()
    for name, value in row.extra.items():
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        text.append(f"{visible(name)}: ", style="bold")
        text.append(f"{visible(shown)}\n")
    text.rstrip()
    return text


class RowDetailScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,enter", "dismiss", "close")]

    def __init__(self, row: Row, gold: Gold | None = None) -> None:
        super().__init__()
        self.row = row
        self.gold = gold

    def compose(self) -> ComposeResult:
        row = self.row
        with VerticalScroll(id="detail", classes="dialog") as box:
            box.border_title = visible(f"row {row.id} · {row.status.value}")
            yield Static("[b]input[/b]", classes="section")
            yield Static(Text(visible(row.text)), id="detail-input")
            if row.extra:
                yield Static("[b]input columns[/b] (exported as input.<name>)", classes="section")
                yield Static(input_columns_text(row), id="detail-columns")
            yield Static("[b]extracted[/b] (exported as data.<field>)", classes="section")
            if row.data is not None:
                pretty = visible(json.dumps(row.data, indent=2, ensure_ascii=False))
                yield Static(
                    Syntax(pretty, "json", theme="ansi_dark", word_wrap=True), id="detail-json"
                )
            else:
                yield Static(Text("nothing (the request did not succeed)", style="dim"))
            diff = field_diff(self.gold, row) if self.gold is not None else None
            if diff is not None:
                yield Static("[b]expected vs extracted[/b] (gold labels)", classes="section")
                yield Static(diff, id="detail-diff")
            if row.guessed:
                yield Static(
                    Text(
                        "placeholders: the simulator has no rule for "
                        + visible(", ".join(row.guessed))
                        + "; these values are made up, not read from the text",
                        style="yellow",
                    ),
                    id="detail-guessed",
                )
            if row.lenient:
                yield Static(
                    Text("parsed with --lenient (instructor alone rejects it)", style="yellow"),
                    id="detail-lenient",
                )
            if row.request_ids:
                shown = visible(", ".join(row.request_ids))
                yield Static(Text(f"request ids: {shown}", style="dim"), id="detail-request-ids")
            if row.error:
                yield Static("[b]error[/b]", classes="section")
                yield Static(
                    Text(visible(f"{row.error_kind or ''} {row.error}".strip()), style="red"),
                    id="detail-error",
                )
            yield Static("[b]timings[/b]", classes="section")
            yield Static(Text(timing_lines(row)), id="detail-timings")
        yield Footer()
