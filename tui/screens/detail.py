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

from core.results import Row


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


class RowDetailScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,enter", "dismiss", "close")]

    def __init__(self, row: Row) -> None:
        super().__init__()
        self.row = row

    def compose(self) -> ComposeResult:
        row = self.row
        with VerticalScroll(id="detail", classes="dialog") as box:
            box.border_title = f"row {row.id} · {row.status.value}"
            yield Static("[b]input[/b]", classes="section")
            yield Static(Text(row.text), id="detail-input")
            yield Static("[b]extracted[/b]", classes="section")
            if row.data is not None:
                pretty = json.dumps(row.data, indent=2, ensure_ascii=False)
                yield Static(
                    Syntax(pretty, "json", theme="ansi_dark", word_wrap=True), id="detail-json"
                )
            else:
                yield Static(Text("nothing (the request did not succeed)", style="dim"))
            if row.error:
                yield Static("[b]error[/b]", classes="section")
                yield Static(
                    Text(f"{row.error_kind or ''} {row.error}".strip(), style="red"),
                    id="detail-error",
                )
            yield Static("[b]timings[/b]", classes="section")
            yield Static(Text(timing_lines(row)), id="detail-timings")
        yield Footer()
