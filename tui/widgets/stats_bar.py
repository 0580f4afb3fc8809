"""Live figures for the current run: elapsed, in flight, progress, failures, speed, latency.

"In flight" is requests on the wire and latency is wire time; the waits (for
a semaphore slot, for the client-side rate limiter) have their own figure,
and the client-side limits stay shown for as long as they are set.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import ProgressBar, Static

from tui.live import LiveStats


def secs(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f} s"


class Stat(Static):
    """A label over a value."""

    def __init__(self, label: str, *, id: str) -> None:
        super().__init__(id=id, classes="stat")
        self.label = label
        self.value: str | None = None
        self.set_value("—")

    def set_label(self, label: str) -> None:
        if label != self.label:
            self.label = label
            self.value = None  # redraw with the new label

    def set_value(self, value: str) -> None:
        """Show ``value``; a no-op when it did not change, and never a re-layout
        (the stat's box has a fixed size), so a tick costs only what changed."""
        if value == self.value:
            return
        self.value = value
        self.update(f"[b]{self.label}[/b]\n{value}", layout=False)


class StatsBar(Horizontal):
    def compose(self) -> ComposeResult:
        yield Stat("elapsed", id="stat-elapsed")
        yield Stat("in flight/limit", id="stat-inflight")
        yield Stat("done", id="stat-done")
        yield Stat("failed", id="stat-failed")
        yield Stat("rows/s", id="stat-throughput")
        yield Stat("p50 / p95", id="stat-latency")
        yield Stat("first result", id="stat-first")
        yield Stat("tokens · cost", id="stat-tokens")
        yield Stat("wait sem / lim", id="stat-waits")
        yield Stat("client limits", id="stat-limits")
        yield ProgressBar(total=1, show_eta=False, id="progress")

    def show(self, stats: LiveStats) -> None:
        self.query_one("#stat-elapsed", Stat).set_value(
            secs(stats.elapsed) + (" · stopping" if stats.stopping else "")
        )
        limit = "∞" if stats.limit is None else str(stats.limit)
        self.query_one("#stat-inflight", Stat).set_value(f"{stats.in_flight} / {limit}")
        # Done is finished rows (ok + failed); cancelled ones are counted apart, never done.
        done = self.query_one("#stat-done", Stat)
        done.set_label("done · cancelled" if stats.cancelled else "done")
        done.set_value(
            f"{stats.done} / {stats.total}" + (f" · {stats.cancelled}" if stats.cancelled else "")
        )
        progress = self.query_one("#progress", ProgressBar)
        progress.update(total=max(1, stats.total), progress=stats.done)
        failed = str(stats.failed)
        if stats.errors_by_kind:
            failed += (
                " (" + ", ".join(f"{k} {n}" for k, n in sorted(stats.errors_by_kind.items())) + ")"
            )
        failed_stat = self.query_one("#stat-failed", Stat)
        failed_stat.set_value(failed)
        failed_stat.set_class(stats.failed > 0, "bad")
        self.query_one("#stat-throughput", Stat).set_value(f"{stats.throughput:.1f}")
        self.query_one("#stat-latency", Stat).set_value(f"{secs(stats.p50)} / {secs(stats.p95)}")
        self.query_one("#stat-first", Stat).set_value(secs(stats.first_result))
        tokens = f"{stats.tokens:,} · ${stats.cost_usd:.4f}"
        if stats.retries:
            tokens += f" · {stats.retries} retries"
        self.query_one("#stat-tokens", Stat).set_value(tokens)
        self.query_one("#stat-waits", Stat).set_value(
            f"{secs(stats.wait_sem_p50)} / {secs(stats.wait_limiter_p50)}"
        )

    def show_limits(self, limits: str) -> None:
        """The client-side limits (rpm, tpm, budget) the next runs go under, or "none"."""
        limit_stat = self.query_one("#stat-limits", Stat)
        limit_stat.set_value(limits)
        limit_stat.set_class(limits != "none", "limited")

    def clear(self, total: int) -> None:
        self.query_one("#stat-done", Stat).set_label("done")
        for stat in self.query(Stat):
            if stat.id == "stat-limits":
                continue  # set while set, not per run
            stat.set_value("—")
            stat.remove_class("bad")
        self.query_one("#stat-done", Stat).set_value(f"0 / {total}")
        self.query_one("#progress", ProgressBar).update(total=max(1, total), progress=0)
