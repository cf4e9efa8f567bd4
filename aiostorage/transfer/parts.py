"""Part sizing within S3's multipart limits."""

from __future__ import annotations

from .._exceptions import InvalidArgument
from .._settings import MAX_PART_SIZE, MAX_PARTS, MiB

__all__ = ["PART_SIZE_STEP", "part_ranges", "part_size_for"]

# Auto-sized parts grow in steps of 8 MiB, so part boundaries stay round numbers.
PART_SIZE_STEP = 8 * MiB
MAX_OBJECT_SIZE = 5 * 1024**4


def part_size_for(size: int, preferred: int) -> int:
    """``preferred``, or the smallest multiple of 8 MiB that keeps ``size`` within 10,000 parts."""
    if size > MAX_OBJECT_SIZE:
        raise InvalidArgument(f"{size} bytes is more than S3's 5 TiB object limit")
    if -(-size // preferred) <= MAX_PARTS:
        return preferred
    needed = -(-size // MAX_PARTS)
    return min(MAX_PART_SIZE, -(-needed // PART_SIZE_STEP) * PART_SIZE_STEP)


def part_ranges(size: int, part_size: int) -> list[tuple[int, int]]:
    """Inclusive ``(first, last)`` byte ranges covering ``size`` bytes in parts of ``part_size``."""
    return [(start, min(start + part_size, size) - 1) for start in range(0, size, part_size)]
