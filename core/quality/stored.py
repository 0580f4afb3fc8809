"""A stored run's gold labels: read back from the run store, so ``fanout export``, ``fanout
resume`` and the dashboard's past runs score a run without its labels' file.

``fanout run`` (and the dashboard) store each row's checked label with the row
(``rows.gold_json``) and where the labels came from (the run's options, ``gold``). A store
from before labels were stored, or a run without any, has none: the run is then
unscored, as it was, unless a ``--gold FILE`` is given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from core.errors import FanoutError
from core.quality.gold import Gold, GoldError, gold_for
from core.recorder import GOLD_OPTION
from core.store import QUALITY_KEY, RunInfo, Store


def stored_gold(
    store: Store,
    info: RunInfo,
    schema: type[BaseModel],
    *,
    row_ids: Iterable[str] = (),
    gold_file: str | Path | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> Gold | None:
    """The run's gold: its stored labels, with ``gold_file``'s over them; None when there
    are none. Stored labels that no longer fit ``schema`` (the schema file changed) are a
    warning and the run is unscored; a bad ``gold_file`` is a ``GoldError``."""
    labels = store.load_gold(info.id)
    source = str(info.options.get(GOLD_OPTION) or "dataset")
    if gold_file is not None:
        ids = list(row_ids) or list(labels)
        return gold_for(schema, labels, ids, gold_file=gold_file)
    if not labels:
        return None
    try:
        return Gold(schema, labels, source=source)
    except (GoldError, FanoutError) as exc:
        if on_warning is not None:
            on_warning(
                f"run {info.id}: its stored gold labels do not fit {schema.__name__} ({exc})"
            )
        return None


def stored_quality(info: RunInfo) -> dict[str, Any] | None:
    """The run's quality figures as stored at its end (``QualitySummary.to_dict``); None
    for a run without gold labels, or one stored before they were kept."""
    quality = (info.stats or {}).get(QUALITY_KEY)
    return quality if isinstance(quality, dict) and quality else None
