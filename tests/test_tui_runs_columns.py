"""The runs table shows what compares models without scrolling sideways: model, accuracy,
correct rows/s, cost per correct row, elapsed and cost, at 80x24 (its own view), 120x36
and 160x48, after sim-fast and sim-careful ran on the bundled data."""

from __future__ import annotations

import pytest

from tests.test_tui_quality import make_app, pick, run_once
from tui.widgets.runs_table import COLUMNS, RunsTable

LEADING = ("model", "accuracy", "correct/s", "$/correct", "elapsed", "cost")


@pytest.mark.parametrize("size", [(80, 24), (120, 36), (160, 48)])
async def test_the_comparing_columns_fit_without_scrolling(size: tuple[int, int]) -> None:
    app = make_app("people.csv")
    async with app.run_test(size=size) as pilot:
        for runs, model in enumerate(("sim-fast", "sim-careful")):
            await pick(pilot, app, "model", model)
            await run_once(pilot, app, runs)
        app.view = "runs"
        await pilot.pause()
        table = app.query_one(RunsTable)
        assert table.display and table.size.width > 0
        widths = {str(key.value): c.get_render_width(table) for key, c in table.columns.items()}
        labels = [label for label, _ in COLUMNS]
        last = max(labels.index(name) for name in LEADING)
        used = sum(widths[name] for name in labels[: last + 1])
        gap = 1 if table.compact else table.cell_padding  # after the last: may be cut
        assert used - gap <= table.scrollable_content_region.width, (size, widths)
        assert table.scroll_x == 0
        # every cell of the two runs is whole in its column (nothing cut)
        for line in table.cells:
            for name, cell in zip(labels, line, strict=True):
                assert len(cell) + 2 * table.cell_padding <= widths[name] or name == "note"
        models = [table.get_row_at(i)[labels.index("model")] for i in range(2)]
        assert models == ["sim-fast", "sim-careful"]
