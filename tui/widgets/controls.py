"""Strategy picker, semaphore size, and the run buttons."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Button, Label, RadioButton, RadioSet, Static

from core.strategies import LABELS, STRATEGIES, USES_CONCURRENCY

MAX_SEMAPHORE = 10_000


class StrategyPicker(RadioSet):
    """The article's five strategies; keys 1-5 pick them too."""

    def __init__(self, selected: str, **kwargs: object) -> None:
        super().__init__(
            *(
                RadioButton(f"{number} {LABELS[name]}", value=name == selected, name=name)
                for number, name in enumerate(STRATEGIES, start=1)
            ),
            **kwargs,  # type: ignore[arg-type]
        )

    @property
    def strategy(self) -> str:
        button = self.pressed_button
        return button.name if button is not None and button.name else next(iter(STRATEGIES))

    def select(self, strategy: str) -> None:
        for index, button in enumerate(self.query(RadioButton)):
            if button.name == strategy:
                if not button.value:
                    button.value = True
                self._selected = index  # the keyboard highlight follows the choice


class SemaphoreControl(Horizontal):
    """``-`` n ``+``: the semaphore size, greyed out for strategies that ignore it."""

    value: reactive[int] = reactive(2)

    class Changed(Message):
        def __init__(self, control: SemaphoreControl, value: int) -> None:
            super().__init__()
            self.value = value
            self._control = control

        @property
        def control(self) -> SemaphoreControl:
            return self._control

    def __init__(self, value: int, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.set_reactive(SemaphoreControl.value, value)

    def compose(self) -> ComposeResult:
        yield Label("semaphore", classes="caption")
        yield Button("-", id="sem-down", classes="tiny")
        yield Label(str(self.value), id="sem-value")
        yield Button("+", id="sem-up", classes="tiny")

    def validate_value(self, value: int) -> int:
        return max(1, min(MAX_SEMAPHORE, value))

    def watch_value(self, value: int) -> None:
        if self.is_mounted:
            # The label's box is 5 cells wide, enough for MAX_SEMAPHORE: no re-layout of
            # the whole screen (~15 ms) for every key press while a run goes.
            self.query_one("#sem-value", Label).update(str(value), layout=False)
        self.post_message(self.Changed(self, value))

    def step(self, direction: int) -> None:
        """+/-: 1, 2, 3 ... 10, then 20, 50, 100, 200, 500, 1000 ... (powers of ten x 1/2/5)."""
        self.value = next_step(self.value, direction)

    @on(Button.Pressed, "#sem-down")
    def _down(self, event: Button.Pressed) -> None:
        event.stop()
        self.step(-1)

    @on(Button.Pressed, "#sem-up")
    def _up(self, event: Button.Pressed) -> None:
        event.stop()
        self.step(1)

    def set_active(self, strategy: str) -> None:
        self.set_class(strategy not in USES_CONCURRENCY, "unused")


def next_step(value: int, direction: int) -> int:
    if direction > 0:
        if value < 10:
            return value + 1
        for step in ladder():
            if step > value:
                return min(MAX_SEMAPHORE, step)
        return MAX_SEMAPHORE
    if value <= 10:
        return max(1, value - 1)
    below = [step for step in ladder() if step < value]
    return max(10, below[-1]) if below else 10


def ladder() -> list[int]:
    return [m * 10**p for p in range(1, 5) for m in (1, 2, 5)]


class ControlsLine(Static):
    """The compact layout's stand-in for the picker and the semaphore buttons."""

    def show(self, strategy: str, semaphore: int, via: str = "online") -> None:
        number = list(STRATEGIES).index(strategy) + 1 if strategy in STRATEGIES else 0
        text = Text(no_wrap=True, overflow="ellipsis")
        if via == "batch":  # the strategy and the semaphore do not apply to a batch
            text.append("via ", style="dim")
            text.append("Batch API", style="bold")
            text.append(" (b: back to online strategies)", style="dim")
            self.update(text)
            return
        text.append("strategy ", style="dim")
        text.append(f"{number} {LABELS.get(strategy, strategy)}", style="bold")
        text.append(" (1-6)   semaphore ", style="dim")
        used = strategy in USES_CONCURRENCY
        text.append(f"{semaphore:,}", style="bold" if used else "dim strike")
        text.append(" (+/-)" if used else " (unused)", style="dim")
        self.update(text)
