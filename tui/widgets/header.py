"""The line at the top: which data, which schema and mode, which endpoint (and that
the local one is simulated).

It always names the dataset, the schema and the mode. When the line is too
narrow it drops the least important pieces first (the simulator's long note,
the model, the endpoint, the row count, the words "dataset" and "schema"), and
only then shortens the dataset name in its middle; never the schema.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.cells import cell_len
from rich.text import Text
from textual.widget import Widget


@dataclass(frozen=True)
class HeaderInfo:
    dataset: str
    rows: int
    endpoint: str
    simulated: bool
    model: str
    schema: str
    mode: str


OPTIONAL = ("long-note", "badge", "model", "endpoint", "rows", "labels")
"""Pieces dropped in this order when the line is too narrow."""


def middle_ellipsis(name: str, width: int) -> str:
    if cell_len(name) <= width:
        return name
    if width <= 1:
        return "…"[:width]
    head = (width - 1) // 2
    return name[:head] + "…" + name[len(name) - (width - 1 - head) :]


def header_text(info: HeaderInfo, width: int) -> Text:
    dropped: set[str] = set()
    for piece in (None, *OPTIONAL):
        if piece is not None:
            dropped.add(piece)
        text = _compose(info, dropped, info.dataset)
        if text.cell_len <= width:
            return text
    room = width - (text.cell_len - cell_len(info.dataset))
    return _compose(info, dropped, middle_ellipsis(info.dataset, max(1, room)))


def _compose(info: HeaderInfo, dropped: set[str], dataset: str) -> Text:
    text = Text(no_wrap=True, overflow="crop")
    if "badge" not in dropped:
        text.append(" fanout ", style="bold reverse")
        text.append(" ")
    labels = "labels" not in dropped
    text.append(" dataset " if labels else " ", style="dim")
    text.append(dataset, style="bold")
    if "rows" not in dropped:
        text.append(f" ({info.rows:,} rows)", style="bold")
    text.append("  schema " if labels else " · ", style="dim")
    text.append(info.schema, style="bold")
    text.append("  mode " if labels else " · mode ", style="dim")
    text.append(info.mode, style="bold")
    if "endpoint" not in dropped:
        text.append("  endpoint ", style="dim")
        text.append(info.endpoint, style="bold")
    if info.simulated:
        note = " (simulator: rule-based answers, not an LLM)"
        if "long-note" in dropped:
            # The label may say so already ("local simulator ..."), unless it was dropped.
            shown = "endpoint" not in dropped and "simulator" in info.endpoint
            note = "" if shown else " (simulator)"
        text.append(note, style="yellow")
    if "model" not in dropped:
        text.append("  model ", style="dim")
        text.append(info.model, style="bold")
    return text


class DatasetBar(Widget):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.info: HeaderInfo | None = None

    def show(
        self,
        *,
        dataset: str,
        rows: int,
        endpoint: str,
        simulated: bool,
        model: str,
        schema: str,
        mode: str,
    ) -> None:
        self.info = HeaderInfo(dataset, rows, endpoint, simulated, model, schema, mode)
        self.refresh()

    def render(self) -> Text:
        if self.info is None:
            return Text()
        return header_text(self.info, self.size.width)
