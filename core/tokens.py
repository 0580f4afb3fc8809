"""A token estimate that needs no download.

tiktoken fetches its encodings on first use, so fanout cannot rely on it
offline. For English prose, GPT tokenizers average close to four characters
per token; we round up and count at least one token per non-empty text. The
local endpoint reports ``usage`` with the same rule, and client-side rate
limiting uses it to estimate a request before sending, then corrects the
estimate from the ``usage`` the server returns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD_TOKENS = 4
"""Each chat message costs a few tokens of framing (role, separators)."""


def estimate_tokens(text: str) -> int:
    """Tokens in ``text``: ceil(len / 4), at least 1 for a non-empty string."""
    if not text:
        return 0
    return -(-len(text) // CHARS_PER_TOKEN)


def estimate_messages_tokens(messages: Sequence[Mapping[str, object]]) -> int:
    """Prompt tokens of a chat message list (content parts joined)."""
    total = 0
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            content = " ".join(
                str(part.get("text", "")) for part in content if isinstance(part, dict)
            )
        total += MESSAGE_OVERHEAD_TOKENS + estimate_tokens(str(content or ""))
    return total
