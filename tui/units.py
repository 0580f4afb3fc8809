"""Short figures for narrow cells: a value shortens by its unit, never by cutting.

``secs(16.17) == "16.2 s"``, ``count(76_862) == "76.9k"``, ``money(0.0123) == "$0.012"``.
"""

from __future__ import annotations


def secs(value: float | None) -> str:
    """Seconds with three significant figures; minutes and hours past 100 s."""
    if value is None:
        return "—"
    if value < 10:
        return f"{value:.2f} s"
    if value < 100:
        return f"{value:.1f} s"
    if value < 3600:
        minutes, seconds = divmod(round(value), 60)
        return f"{minutes}m {seconds:02d}s"
    hours, rest = divmod(round(value), 3600)
    return f"{hours}h {rest // 60:02d}m"


def count(value: int) -> str:
    """Up to 9,999 in full; then 12.3k, 123k, 1.23M, 1.23G."""
    if abs(value) < 10_000:
        return f"{value:,}"
    for limit, unit in ((1e6, "k"), (1e9, "M"), (float("inf"), "G")):
        scaled = value / (limit / 1000)
        if abs(scaled) < 999.5:
            return f"{scaled:.3g}{unit}" if abs(scaled) < 100 else f"{scaled:.0f}{unit}"
    raise AssertionError("unreachable")


def money(usd: float) -> str:
    """Dollars: two significant figures below a dollar ($0.012), cents above."""
    if usd == 0:
        return "$0"
    if usd < 1:
        return f"${usd:.2g}"
    if usd < 1000:
        return f"${usd:,.2f}"
    return f"${usd:,.0f}"


def rate(value: float) -> str:
    """Rows per second: one decimal below 100, then whole (with k past 9,999)."""
    return f"{value:.1f}" if value < 100 else count(round(value))
