"""Named simulator models with documented profiles, for an honest offline demo.

The simulator serves every model name it is asked for. The names below behave
differently, by rule; any other name (the default ``fanout-sim`` included)
answers exactly as before: the filler's value, after the configured latency.

| model | latency | errors | price (USD / 1M tokens, ``core/prices.toml``) |
|---|---|---|---|
| ``sim-fast`` | 0.4 x ``--latency`` | one error in 30 % of answers | 0.10 in / 0.40 out |
| ``sim-careful`` | 2.5 x ``--latency`` | none | 5.00 in / 15.00 out |

An error is injected by rule, on a seed: whether an answer gets one, and which,
is drawn from ``(model, the request's text, the simulator's --seed)`` only, so
the same request to the same model gives the same answer every time, and the
simulator never sees gold labels (they are not sent). The error is one of

- **wrong digit**: a number (kept within the schema's bounds) or one digit of a
  text holding digits (a phone number, an e-mail) changed;
- **dropped field**: an optional field left out (null, or absent when it has a
  default);
- **swapped name**: a name-like text's words in reverse order ("Ada Lovelace" ->
  "Lovelace Ada"), or a one-word name replaced by another capitalised word of the text;
- **swapped value**: an enum / ``Literal`` field given another of its values.

Answers stay valid for the schema, so these are wrong answers, not failed rows.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass
from typing import Any

WRONG_DIGIT, DROPPED_FIELD, SWAPPED_NAME, SWAPPED_VALUE = (
    "wrong digit",
    "dropped field",
    "swapped name",
    "swapped value",
)


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    summary: str
    latency_factor: float
    """The answer's latency is the simulator's drawn latency times this."""
    error_rate: float
    """The share of answers that get one injected error."""


PROFILES: dict[str, Profile] = {
    "sim-fast": Profile("sim-fast", "fast and cheap, sometimes wrong", 0.4, 0.3),
    "sim-careful": Profile("sim-careful", "slow and expensive, right", 2.5, 0.0),
}


def latency_factor(model: str) -> float:
    profile = PROFILES.get(model)
    return profile.latency_factor if profile is not None else 1.0


def adjust(model: str, value: Any, schema: dict[str, Any], text: str, seed: int | None) -> Any:
    """The answer ``model`` gives: ``value`` itself, or with one injected error."""
    profile = PROFILES.get(model)
    if profile is None or profile.error_rate <= 0 or not isinstance(value, dict):
        return value
    return inject(value, schema, text, _rng(model, text, seed), profile.error_rate)[0]


def _rng(model: str, text: str, seed: int | None) -> random.Random:
    digest = hashlib.sha256(f"{model}\x00{seed or 0}\x00{text}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


@dataclass(slots=True)
class _Site:
    kind: str
    parent: Any
    key: Any
    schema: dict[str, Any]
    nullable: bool
    required: bool


def inject(
    value: dict[str, Any], schema: dict[str, Any], text: str, rng: random.Random, rate: float
) -> tuple[dict[str, Any], str | None]:
    """``value`` with one error (a copy), and the error's kind; or unchanged and None."""
    if rng.random() >= rate:
        return value, None
    copy = _copy(value)
    sites: list[_Site] = []
    _walk(copy, schema, schema, sites, 0)
    kinds = sorted({site.kind for site in sites})
    if not kinds:
        return value, None
    kind = rng.choice(kinds)
    site = rng.choice([s for s in sites if s.kind == kind])
    _apply(site, text, rng)
    return copy, kind


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _resolve(node: Any, root: dict[str, Any]) -> dict[str, Any]:
    for _ in range(16):
        if not isinstance(node, dict):
            return {}
        ref = node.get("$ref")
        if not isinstance(ref, str) or not ref.startswith("#/"):
            return node
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part) if isinstance(target, dict) else None
        node = target
    return {}


def _branch(node: dict[str, Any], root: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """A property's schema without its null branch, and whether it allows null."""
    node = _resolve(node, root)
    options = node.get("anyOf") or node.get("oneOf")
    if isinstance(options, list):
        resolved = [_resolve(o, root) for o in options]
        others = [o for o in resolved if o.get("type") != "null"]
        nullable = len(others) < len(resolved)
        return (others[0] if len(others) == 1 else {}), nullable
    types = node.get("type")
    if isinstance(types, list):
        return node, "null" in types
    return node, False


def _walk(
    value: dict[str, Any], node: dict[str, Any], root: dict[str, Any], out: list[_Site], depth: int
) -> None:
    if depth > 4:
        return
    node = _resolve(node, root)
    properties = node.get("properties")
    if not isinstance(properties, dict):
        return
    required = set(node.get("required") or ())
    for key, item in list(value.items()):
        if key not in properties:
            continue
        sub, nullable = _branch(properties[key], root)
        is_required = key in required
        if item is not None and (nullable or not is_required):
            out.append(_Site(DROPPED_FIELD, value, key, sub, nullable, is_required))
        if isinstance(item, dict):
            _walk(item, sub, root, out, depth + 1)
        elif isinstance(item, bool):
            continue
        elif isinstance(item, int) and _other_number(item, sub) is not None:
            out.append(_Site(WRONG_DIGIT, value, key, sub, nullable, is_required))
        elif isinstance(item, str):
            choices = sub.get("enum")
            if isinstance(choices, list) and len(choices) > 1:
                out.append(_Site(SWAPPED_VALUE, value, key, sub, nullable, is_required))
            elif "name" in key.lower() and item.strip():
                out.append(_Site(SWAPPED_NAME, value, key, sub, nullable, is_required))
            elif re.search(r"\d", item) and not sub.get("format"):
                out.append(_Site(WRONG_DIGIT, value, key, sub, nullable, is_required))


def _other_number(number: int, schema: dict[str, Any]) -> int | None:
    """A different whole number the schema allows, one digit off; None if there is none."""
    options = _number_options(number, schema)
    return options[0] if options else None


def _number_options(number: int, schema: dict[str, Any]) -> list[int]:
    near = [n for n in (number + 1, number - 1) if _fits(n, schema)]
    return near or [n for n in (number + 10, number - 10) if _fits(n, schema)]


def _apply(site: _Site, text: str, rng: random.Random) -> None:
    parent, key = site.parent, site.key
    item = parent[key]
    if site.kind == DROPPED_FIELD:
        if site.nullable:
            parent[key] = None
        else:
            del parent[key]
    elif site.kind == WRONG_DIGIT:
        if isinstance(item, int):
            parent[key] = rng.choice(_number_options(item, site.schema))
        else:
            positions = [i for i, c in enumerate(item) if c.isdigit()]
            at = rng.choice(positions)
            digit = str((int(item[at]) + rng.randint(1, 9)) % 10)
            parent[key] = item[:at] + digit + item[at + 1 :]
    elif site.kind == SWAPPED_VALUE:
        choices = [c for c in site.schema["enum"] if c != item]
        parent[key] = rng.choice(choices)
    elif site.kind == SWAPPED_NAME:
        words = item.split()
        if len(words) > 1:
            parent[key] = " ".join(reversed(words))
        else:
            others = [w for w in re.findall(r"\b[A-Z][a-z]+\b", text) if w != item]
            parent[key] = rng.choice(others) if others else item + "a"


def _fits(number: int, schema: dict[str, Any]) -> bool:
    low = schema.get("minimum")
    high = schema.get("maximum")
    if "exclusiveMinimum" in schema and number <= schema["exclusiveMinimum"]:
        return False
    if "exclusiveMaximum" in schema and number >= schema["exclusiveMaximum"]:
        return False
    return (low is None or number >= low) and (high is None or number <= high)
