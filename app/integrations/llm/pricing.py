"""Estimated cost of a model's tokens. List prices change: pass your own table to the editor."""

from __future__ import annotations

from collections.abc import Mapping

# USD per million tokens: (prompt, completion). Dated snapshots ("gpt-4o-mini-2024-07-18") match
# their family by the longest prefix.
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1": (2.00, 8.00),
}


def price_of(model: str, prices: Mapping[str, tuple[float, float]]) -> tuple[float, float] | None:
    if model in prices:
        return prices[model]
    family = max((name for name in prices if model.startswith(name + "-")), key=len, default=None)
    return prices[family] if family else None


def estimate_cost(
    model: str,
    prompt_tokens: int,
    completion_tokens: int,
    prices: Mapping[str, tuple[float, float]] = DEFAULT_PRICES,
) -> tuple[float, str]:
    """(cost in USD, a note when it could not be priced)."""
    price = price_of(model, prices)
    if price is None:
        return 0.0, f"no price known for model {model!r}: cost recorded as 0"
    return (prompt_tokens * price[0] + completion_tokens * price[1]) / 1_000_000, ""
