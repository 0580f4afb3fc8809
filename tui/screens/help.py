"""Keys and what each strategy does."""

from __future__ import annotations

from collections.abc import Iterable

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

HELP = """\
# fanout

Run structured extraction over a dataset and watch what each asyncio
strategy does to **time**, **order** and **load**.

{keys}

## The strategies (from instructor's asyncio article)

1. **for loop**: `await` each request before the next. One in flight; time ≈ N × latency.
2. **asyncio.gather**: send all at once; results arrive all together at the end, in input order.
3. **asyncio.as_completed**: send all at once; take each result as it arrives (completion order).
4. **gather + Semaphore**: at most *k* in flight; results at the end, in order.
   Time ≈ ⌈N/k⌉ × latency.
5. **as_completed + Semaphore**: at most *k* in flight, results as they arrive. Kind to rate limits.

The **waterfall** column draws each request from start to finish across the
run (dots: waiting for a semaphore slot); **◆** marks when the strategy
handed the result to your code. With gather every ◆ sits at the end.
While a run goes its time axis grows in steps (1, 1.2, 1.5, 2 … s), so the
bars shrink now and then; when the run ends the axis fits it exactly.

**Where the requests are made**: by the dashboard's own process, unless the
palette (ctrl+p) says otherwise for the next runs: "Workers: N" (N worker
processes on this machine, up to one more than its cores) or "Ray actors: N
on a local instance" (with Ray installed; a cluster's address is given on the
command line, `--ray ADDRESS`). The header then says `workers N` or
`ray N @ where`; a run in flight keeps its own.

The built-in local endpoint is a **simulator**: it fills the schema from the
text with simple rules and sleeps a configurable latency. It is not a
language model.
"""


EXTRA_KEYS = (
    ("enter", "details of the selected row"),
    ("up down pgup pgdn home end", "move in the results table"),
    ("ctrl+p", "command palette: every action by name"),
)


def key_table(bindings: Iterable[BindingType]) -> str:
    """A Markdown table of the keys, made from the app's own ``BINDINGS`` (never stale)."""
    lines = ["| key | action |", "|---|---|"]
    for binding in bindings:
        if not isinstance(binding, Binding):
            continue
        key = binding.key_display or binding.key.split(",")[0]
        what = binding.description
        if binding.tooltip:
            what = f"{what}: {binding.tooltip}" if what else binding.tooltip
        lines.append(f"| `{key}` | {what} |")
    lines += [f"| `{key}` | {what} |" for key, what in EXTRA_KEYS]
    return "\n".join(lines)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "close")]

    def __init__(self, keys: str) -> None:
        super().__init__()
        self.keys = keys

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help", classes="dialog") as box:
            box.border_title = "help · escape closes · arrows scroll"
            yield Markdown(HELP.format(keys=self.keys))

    def on_mount(self) -> None:
        self.query_one("#help", VerticalScroll).focus()
