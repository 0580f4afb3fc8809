"""Text from data, answers and servers, made safe to draw: control characters shown.

A dataset, a model's answer or a server's error text can hold terminal escape
sequences (``ESC [2J`` clears the screen, an OSC sequence retitles the
terminal) and bidirectional overrides that make text read differently from
what it is. Everything the dashboard draws from outside passes through
``visible``, which writes such characters as escapes (``\\x1b``, ``\\u202e``).
Exports keep the data as it is.
"""

from __future__ import annotations

import re

_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
"""C0 controls but tab and newline, DEL, C1 controls, and bidirectional marks/overrides."""


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def visible(text: str) -> str:
    """``text`` with every control character (but tab and newline) written as an escape."""
    return _UNSAFE.sub(_escape, text) if _UNSAFE.search(text) else text
