"""Run parameters: the model (from the endpoint's list and the price table) and the mode."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from tui.visible import visible


@dataclass(frozen=True)
class RunParam:
    kind: str
    """"model" or "mode"."""
    name: str
    note: str = ""
    current: bool = False


class RunParamsScreen(ModalScreen[RunParam | None]):
    BINDINGS = [Binding("escape", "dismiss_none", "cancel")]

    def __init__(self, params: list[RunParam]) -> None:
        super().__init__()
        self.params = params

    def compose(self) -> ComposeResult:
        with Vertical(id="run-params", classes="dialog") as box:
            box.border_title = "model and mode for the next runs"
            yield Label("enter picks one; the runs table compares them (palette: compare models)")
            options = []
            for index, param in enumerate(self.params):
                text = Text(no_wrap=True, overflow="ellipsis")
                text.append("● " if param.current else "  ", style="green")
                text.append(f"{param.kind:<6}", style="dim")
                text.append(visible(param.name), style="bold")
                if param.note:
                    text.append(f"  {visible(param.note)}", style="dim")
                options.append(Option(text, id=str(index)))
            yield OptionList(*options, id="run-params-list")

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.params[int(event.option.id or 0)])

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
