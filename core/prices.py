"""Prices per model, from a small TOML file users can edit.

The bundled ``prices.toml`` lists USD per million input and output tokens
for common models, and optionally the Batch API's (``batch_input``,
``batch_output``; half the online price when not given); a user file
(``--prices PATH``, or ``prices.toml`` in fanout's config folder) adds or
overrides entries. Unknown models cost 0
and say so; the local simulator always costs 0.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from core.errors import ConfigError

BUNDLED = Path(__file__).with_name("prices.toml")


BATCH_DISCOUNT = 0.5
"""The Batch API's price as a share of the online one, where a model gives none."""


@dataclass(frozen=True)
class Price:
    input_per_million: float
    output_per_million: float
    batch_input_per_million: float | None = None
    batch_output_per_million: float | None = None

    def for_batch(self) -> Price:
        """The price of a request sent through the Batch API (``--via batch``)."""
        batch_in = self.batch_input_per_million
        batch_out = self.batch_output_per_million
        return Price(
            self.input_per_million * BATCH_DISCOUNT if batch_in is None else batch_in,
            self.output_per_million * BATCH_DISCOUNT if batch_out is None else batch_out,
        )

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (
            prompt_tokens * self.input_per_million + completion_tokens * self.output_per_million
        ) / 1_000_000


FREE = Price(0.0, 0.0)


def user_prices_path() -> Path:
    return platformdirs.user_config_path("fanout") / "prices.toml"


def load_prices(extra: Path | None = None) -> dict[str, Price]:
    prices = _read(BUNDLED)
    user = extra if extra is not None else user_prices_path()
    if extra is not None and not extra.is_file():
        raise ConfigError(f"--prices {extra}: no such file")
    if user.is_file():
        prices.update(_read(user))
    return prices


def _read(path: Path) -> dict[str, Price]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read prices ({exc})") from exc
    models = data.get("models", {})
    if not isinstance(models, dict):
        raise ConfigError(f"{path}: expected a [models.NAME] table per model")
    prices: dict[str, Price] = {}
    for name, entry in models.items():
        try:
            prices[name] = Price(
                float(entry["input"]),
                float(entry["output"]),
                _optional(entry.get("batch_input")),
                _optional(entry.get("batch_output")),
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            raise ConfigError(
                f"{path}: model {name!r} needs numeric `input` and `output` "
                "(USD per million tokens)"
            ) from None
    return prices


def _optional(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"not a number: {value!r}")
    return float(value)


def price_for(model: str, prices: dict[str, Price]) -> Price | None:
    """The price of ``model``; dated variants (gpt-4o-2024-08-06) fall back to their base."""
    if model in prices:
        return prices[model]
    candidates = [name for name in prices if model.startswith(name + "-")]
    return prices[max(candidates, key=len)] if candidates else None
