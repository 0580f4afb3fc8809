"""Run limits: client-side requests/tokens per minute and a spending budget."""

from __future__ import annotations

from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label


@dataclass(frozen=True)
class Limits:
    rpm: int | None = None
    tpm: int | None = None
    budget_usd: float | None = None


def _parse(text: str, kind: type[int] | type[float], name: str) -> int | float | None:
    text = text.strip().replace(",", "").replace("_", "")
    if not text:
        return None
    try:
        value = kind(text)
    except ValueError:
        raise ValueError(f"{name}: {text!r} is not a number") from None
    if value <= 0:
        raise ValueError(f"{name} must be more than 0 (leave empty for no limit)")
    return value


class LimitsScreen(ModalScreen[Limits | None]):
    BINDINGS = [Binding("escape", "cancel", "cancel")]

    def __init__(self, current: Limits) -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        def shown(value: float | None) -> str:
            return "" if value is None else f"{value:g}"

        with Vertical(id="limits", classes="dialog") as box:
            box.border_title = "limits (empty = none)"
            yield Label("requests per minute (client-side leaky bucket)")
            yield Input(shown(self.current.rpm), placeholder="e.g. 500", id="limit-rpm")
            yield Label("tokens per minute (estimated before sending, corrected after)")
            yield Input(shown(self.current.tpm), placeholder="e.g. 200000", id="limit-tpm")
            yield Label("budget in USD: stop before the run would spend more")
            yield Input(shown(self.current.budget_usd), placeholder="e.g. 0.50", id="limit-budget")
            yield Label("", id="limits-error", classes="error")
            with Horizontal(classes="buttons"):
                yield Button("Apply", variant="primary", id="limits-ok")
                yield Button("Cancel", id="limits-cancel")

    def on_mount(self) -> None:
        self.query_one("#limit-rpm", Input).focus()

    @on(Input.Submitted)
    @on(Button.Pressed, "#limits-ok")
    def _apply(self) -> None:
        try:
            rpm = _parse(self.query_one("#limit-rpm", Input).value, int, "requests per minute")
            tpm = _parse(self.query_one("#limit-tpm", Input).value, int, "tokens per minute")
            budget = _parse(self.query_one("#limit-budget", Input).value, float, "budget")
        except ValueError as exc:
            self.query_one("#limits-error", Label).update(str(exc))
            return
        self.dismiss(
            Limits(
                int(rpm) if rpm is not None else None,
                int(tpm) if tpm is not None else None,
                float(budget) if budget is not None else None,
            )
        )

    @on(Button.Pressed, "#limits-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
