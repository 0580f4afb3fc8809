"""Quit while a run goes? Say what happens to it, and how to pick it up again."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static


def quit_message(run_id: str | None) -> str:
    if run_id is None:
        return (
            "A run is in progress and is not recorded (--no-store): "
            "quitting loses the rows still to come."
        )
    return (
        f"A run is in progress. Quitting stops it; the finished rows are kept, and "
        f"the rest can be sent later: [b]fanout resume {run_id}[/b], or here with "
        f"[b]h[/b] (past runs) then [b]r[/b]."
    )


class QuitScreen(ModalScreen[bool]):
    BINDINGS = [
        Binding("y,q", "answer(True)", "Quit"),
        Binding("n,escape", "answer(False)", "Stay"),
    ]

    def __init__(self, run_id: str | None) -> None:
        super().__init__()
        self.run_id = run_id

    def compose(self) -> ComposeResult:
        with Vertical(id="quit", classes="dialog") as box:
            box.border_title = "quit?"
            yield Static(quit_message(self.run_id), id="quit-message")
            with Horizontal(classes="buttons"):
                yield Button("Quit (y)", variant="error", id="quit-yes")
                yield Button("Stay (n)", variant="primary", id="quit-no")

    def on_mount(self) -> None:
        self.query_one("#quit-no", Button).focus()

    def action_answer(self, quit_now: bool) -> None:
        self.dismiss(quit_now)

    @on(Button.Pressed, "#quit-yes")
    def _yes(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#quit-no")
    def _no(self) -> None:
        self.dismiss(False)
