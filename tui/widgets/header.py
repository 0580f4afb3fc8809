"""The line at the top: which data, which schema and mode, which endpoint (and that
the local one is simulated), and where the requests are made when it is not this
process ("workers 2", "ray 4 @ host:6379").

It always names the dataset, the schema, the mode and the workers. When the line
is too narrow it drops the least important pieces first (the simulator's long
note, the model, the endpoint, the row count, the words "dataset" and "schema"),
and only then shortens a Ray address and the dataset name in their middle; never
the schema, and the worker count only by its unit (``tui.units.count``).
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.cells import cell_len
from rich.text import Text
from textual.widget import Widget

from tui.units import count


@dataclass(frozen=True)
class HeaderInfo:
    dataset: str
    rows: int
    endpoint: str
    simulated: bool
    model: str
    schema: str
    mode: str
    workers: int = 1
    """Worker processes (or Ray actors) making the requests; 1 without Ray: this process."""
    ray: str | None = None
    """The Ray cluster's address ("local": a local instance), or None."""


OPTIONAL = ("long-note", "badge", "model", "endpoint", "rows", "labels")
"""Pieces dropped in this order when the line is too narrow."""
ADDRESS_CELLS = 20
"""A Ray address longer than this is shortened in its middle, before the dataset name, once
every optional piece is gone (``ray://hea…org:10001`` still says which cluster)."""


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
    address = middle_ellipsis(info.ray, ADDRESS_CELLS) if info.ray is not None else None
    text = _compose(info, dropped, info.dataset, address)
    if text.cell_len <= width:
        return text
    room = width - (text.cell_len - cell_len(info.dataset))
    return _compose(info, dropped, middle_ellipsis(info.dataset, max(1, room)), address)


def scale_out_piece(workers: int, ray: str | None, address: str | None = None) -> Text:
    """ "workers 2", "ray 4 @ local": where the requests are made; empty for this process."""
    text = Text(no_wrap=True, overflow="crop")
    if ray is None and workers == 1:
        return text
    text.append("ray " if ray is not None else "workers ", style="dim")
    text.append(count(workers), style="bold")
    if ray is not None:
        text.append(" @ ", style="dim")
        text.append(address if address is not None else ray, style="bold")
    return text


def _compose(info: HeaderInfo, dropped: set[str], dataset: str, address: str | None = None) -> Text:
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
    scale = scale_out_piece(info.workers, info.ray, address)
    if scale:
        text.append("  " if labels else " · ")
        text.append_text(scale)
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
        workers: int = 1,
        ray: str | None = None,
    ) -> None:
        self.info = HeaderInfo(
            dataset, rows, endpoint, simulated, model, schema, mode, workers, ray
        )
        self.refresh()

    def render(self) -> Text:
        if self.info is None:
            return Text()
        return header_text(self.info, self.size.width)
