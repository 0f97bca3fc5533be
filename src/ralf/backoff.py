"""Exponential backoff: the one formula for every pause between retries in ralf."""

from __future__ import annotations


def delay(attempt: int, first: float, cap: float | None = None) -> float:
    """The pause before retry ``attempt`` (1-based): ``first``, 2×``first``, 4×``first`` …, at most ``cap``."""
    if attempt < 1:
        raise ValueError(f"attempt counts from 1, got {attempt}")
    pause = first * 2 ** (attempt - 1)
    return pause if cap is None else min(cap, pause)
