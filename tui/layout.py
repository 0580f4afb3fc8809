"""The dashboard's responsive layout: which classes the main screen gets at which size.

Textual sets one class from each list on the screen whenever it is resized
(``App.HORIZONTAL_BREAKPOINTS``); ``fanout.tcss`` styles the combinations:

- ``-narrow`` (under 120 columns) or ``-short`` (under 30 rows): *compact*.
  The side column folds into a line of controls and a flowing stats bar above
  the views, which show one at a time (``t`` cycles results, chart, runs).
- ``-low`` (30-35 rows): the side column stays, the views show one at a time.
- ``-roomy`` and ``-tall``: everything at once; under 150 columns the chart (33 %) gives
  the runs table more of the lower row (``-wide``: 45 % chart), so its leading
  columns (model, accuracy, correct/s, $/correct, elapsed, cost) fit at 120 columns.
"""

from __future__ import annotations

from textual.dom import DOMNode

HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-roomy"), (150, "-wide")]
VERTICAL_BREAKPOINTS = [(0, "-short"), (30, "-low"), (36, "-tall")]
COMPACT = ("-narrow", "-short")
"""Any of these on the screen: the compact layout."""
VIEWS = ("results", "chart", "runs", "quality")
"""What the lower area shows when it shows one thing at a time, in ``t`` order
(quality: accuracy per field against the gold labels; in the roomy layouts it also
sits in the side column, under the stats)."""


def is_compact(screen: DOMNode) -> bool:
    return any(screen.has_class(name) for name in COMPACT)


def shows_one_view(screen: DOMNode) -> bool:
    return is_compact(screen) or screen.has_class("-low")


def next_view(view: str) -> str:
    return VIEWS[(VIEWS.index(view) + 1) % len(VIEWS)]
