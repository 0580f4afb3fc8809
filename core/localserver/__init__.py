"""The built-in local endpoint: an OpenAI-compatible simulator on loopback.

It is not a language model: it fills the requested JSON schema from the text
with simple rules (``filler``), with configurable latency, rate limits, a
concurrency cap and fault injection (``config``, ``app``). It runs in its own
process (``process.LocalServer``), or alone with ``fanout serve``
(``cli``) / ``python -m core.localserver``.
"""

from __future__ import annotations

from core.localserver.app import create_app
from core.localserver.config import ServerConfig
from core.localserver.process import LocalServer

__all__ = ["LocalServer", "ServerConfig", "create_app"]
