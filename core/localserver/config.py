"""Settings of the local endpoint, validated once when built."""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass, field, fields

from core.errors import ConfigError

DEFAULT_MODEL = "fanout-sim"
FAULT_FIELDS = ("error_rate", "timeout_rate", "malformed_rate", "invalid_rate")


API_KEY_ENV = "FANOUT_SIM_API_KEY"
"""The environment variable a started simulator reads its API key from."""


@dataclass(frozen=True)
class ServerConfig:
    """How the simulator listens, how slow it is, what it limits and what it breaks.

    Latency is drawn uniformly from ``[latency * (1 - jitter), latency * (1 + jitter)]``
    seconds per request (``jitter=0``: always ``latency``; ``latency=0``: no
    sleep at all). ``rpm`` / ``tpm`` are enforced over a sliding window of
    ``rate_window`` seconds that allows ``rpm * rate_window / 60`` requests
    (and as many tokens, from ``tpm``), so tests can use a 1-2 s window. The
    four fault rates are probabilities of one fault drawn per request; their
    sum is at most 1. With ``api_key`` set, every route but ``/health`` answers
    401 unless the request carries ``Authorization: Bearer <api_key>``; the key
    is kept out of ``repr``.
    """

    host: str = "127.0.0.1"
    port: int = 0
    latency: float = 0.8
    jitter: float = 0.25
    rpm: int | None = None
    tpm: int | None = None
    rate_window: float = 60.0
    max_concurrency: int | None = None
    error_rate: float = 0.0
    malformed_rate: float = 0.0
    timeout_rate: float = 0.0
    invalid_rate: float = 0.0
    timeout_seconds: float = 120.0
    batch_time_scale: float = 3600.0
    """Batch API: simulated seconds per real second (3600: the 24 h window is 24 s)."""
    batch_duration: float = 3600.0
    """Batch API: simulated seconds a batch takes to answer its lines."""
    batch_expire_rate: float = 0.0
    batch_reject_rate: float = 0.0
    batch_line_error_rate: float = 0.0
    seed: int | None = None
    model: str = DEFAULT_MODEL
    api_key: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        _check_host(self.host)
        if not _is_int(self.port) or not 0 <= self.port <= 65535:
            raise ConfigError(
                f"port must be a whole number in 0-65535 (0 = any free port), got {self.port!r}"
            )
        _check_seconds("latency", self.latency)
        if not _is_number(self.jitter) or not 0 <= self.jitter <= 1:
            raise ConfigError(f"jitter must be a fraction between 0 and 1, got {self.jitter!r}")
        _check_seconds("timeout seconds", self.timeout_seconds)
        if not _is_number(self.rate_window) or not 0 < self.rate_window <= 86_400:
            raise ConfigError(
                "rate window must be a number of seconds above 0 (at most a day), "
                f"got {self.rate_window!r}"
            )
        for name, unit in (("rpm", "requests"), ("tpm", "tokens")):
            value = getattr(self, name)
            if value is None:
                continue
            if not _is_int(value) or value < 1:
                raise ConfigError(
                    f"{name} must be a whole number of {unit} per minute >= 1, got {value!r}"
                )
            allowance = value * self.rate_window / 60.0
            if allowance < 1:
                raise ConfigError(
                    f"{name} {value} over a {self.rate_window:g} s window allows {allowance:.2g} "
                    f"{unit}; raise {name} or use a longer rate window"
                )
        if self.max_concurrency is not None and (
            not _is_int(self.max_concurrency) or self.max_concurrency < 1
        ):
            raise ConfigError(
                f"max concurrency must be a whole number >= 1, got {self.max_concurrency!r}"
            )
        total = 0.0
        for name in FAULT_FIELDS:
            value = getattr(self, name)
            label = name.replace("_", " ")
            if not _is_number(value) or not 0 <= value <= 1:
                raise ConfigError(f"{label} must be a fraction between 0 and 1, got {value!r}")
            total += value
        if total > 1 + 1e-9:
            raise ConfigError(
                "the fault rates (error, timeout, malformed, invalid) add up to "
                f"{total:g}; one fault is drawn per request, so their sum must be at most 1"
            )
        _check_batch(self)
        if self.seed is not None and not _is_int(self.seed):
            raise ConfigError(f"seed must be a whole number, got {self.seed!r}")
        if not isinstance(self.model, str) or not self.model.strip():
            raise ConfigError("model name must be a non-empty string")
        if self.api_key is not None and (
            not isinstance(self.api_key, str)
            or not self.api_key
            or any(c.isspace() or not c.isprintable() for c in self.api_key)
        ):
            raise ConfigError("api key must be a non-empty string without spaces")

    @property
    def request_allowance(self) -> float | None:
        """Requests allowed in one rate window, or None without an rpm limit."""
        return None if self.rpm is None else self.rpm * self.rate_window / 60.0

    @property
    def token_allowance(self) -> float | None:
        """Tokens allowed in one rate window, or None without a tpm limit."""
        return None if self.tpm is None else self.tpm * self.rate_window / 60.0

    def to_argv(self) -> list[str]:
        """Command-line options for ``python -m core.localserver`` giving this config.

        The API key is left out (a command line is visible to every user in
        ``ps``); pass it in the environment as ``FANOUT_SIM_API_KEY``.
        """
        argv: list[str] = []
        for f in fields(self):
            value = getattr(self, f.name)
            if value == f.default or value is None or f.name == "api_key":
                continue
            argv += [
                f"--{f.name.replace('_', '-')}",
                repr(value) if isinstance(value, float) else str(value),
            ]
        return argv


def _check_batch(config: ServerConfig) -> None:
    if not _is_number(config.batch_time_scale) or config.batch_time_scale <= 0:
        raise ConfigError(
            f"batch time scale must be a number above 0, got {config.batch_time_scale!r}"
        )
    _check_seconds("batch duration", config.batch_duration)
    for name in ("batch_expire_rate", "batch_reject_rate", "batch_line_error_rate"):
        value = getattr(config, name)
        if not _is_number(value) or not 0 <= value <= 1:
            label = name.replace("_", " ")
            raise ConfigError(f"{label} must be a fraction between 0 and 1, got {value!r}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_seconds(label: str, value: object) -> None:
    if not _is_number(value) or value < 0:  # type: ignore[operator]
        raise ConfigError(f"{label} must be a number of seconds >= 0, got {value!r}")


def _check_host(host: object) -> None:
    if not isinstance(host, str) or not host.strip():
        raise ConfigError("host must be an address or a host name, e.g. 127.0.0.1")
    if any(c.isspace() for c in host) or "/" in host:
        raise ConfigError(f"host {host!r} is not an address or a host name")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not all(part and (part.replace("-", "").isalnum()) for part in host.split(".")):
            raise ConfigError(f"host {host!r} is not an address or a host name") from None


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
