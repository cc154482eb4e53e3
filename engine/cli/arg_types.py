"""argparse `type=` checks for numeric options: a bad value fails at parse time with one line
(`argument --fps: expected a finite number > 0, got 'nan'`), before anything is loaded."""
from __future__ import annotations

import argparse
import math


def int_at_least(low: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}")
        return value
    parse.__name__ = f"integer >= {low}"
    return parse


def int_in(low: int, high: int):
    def parse(text: str) -> int:
        value = int_at_least(low)(text)
        if value > high:
            raise argparse.ArgumentTypeError(f"expected an integer in {low}..{high}, got {text!r}")
        return value
    parse.__name__ = f"integer in {low}..{high}"
    return parse


def _float_above(low: float, inclusive: bool):
    """A finite float > low (>= low if inclusive)."""
    relation = ">=" if inclusive else ">"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < low or (value == low and not inclusive):
            raise argparse.ArgumentTypeError(f"expected a finite number {relation} {low:g}, got {text!r}")
        return value
    parse.__name__ = f"number {relation} {low:g}"
    return parse


def finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def image_size(text: str) -> int:
    """Square output size: a positive multiple of 8 (the VAE's downscale factor)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 8 or value % 8:
        raise argparse.ArgumentTypeError(f"expected a positive multiple of 8 (pixels), got {text!r}")
    return value


positive_int = int_at_least(1)
nonnegative_int = int_at_least(0)
positive_float = _float_above(0.0, inclusive=False)
nonnegative_float = _float_above(0.0, inclusive=True)
