"""Part sizing within S3's multipart limits, for known sizes and for streams of unknown length."""

from __future__ import annotations

from .._exceptions import InvalidArgument
from .._settings import MAX_OBJECT_SIZE, MAX_PART_SIZE, MAX_PARTS, MiB

__all__ = [
    "GROWTH_INTERVAL",
    "PART_SIZE_STEP",
    "PartSizer",
    "part_ranges",
    "part_size_for",
    "streaming_part_size",
]

# Auto-sized parts grow in steps of 8 MiB, so part boundaries stay round numbers.
PART_SIZE_STEP = 8 * MiB
# An unknown-length stream doubles its part size every this many parts. Every 1,000 parts would cap a
# stream of 5 MiB parts at 4.9 TiB; every 900 reaches S3's 5 TiB object limit from any part size.
GROWTH_INTERVAL = 900


def part_size_for(size: int, preferred: int) -> int:
    """``preferred``, or the smallest multiple of 8 MiB that keeps ``size`` within 10,000 parts."""
    if size > MAX_OBJECT_SIZE:
        raise InvalidArgument(f"{size} bytes is more than S3's 5 TiB object limit")
    if -(-size // preferred) <= MAX_PARTS:
        return preferred
    needed = -(-size // MAX_PARTS)
    return min(MAX_PART_SIZE, -(-needed // PART_SIZE_STEP) * PART_SIZE_STEP)


def streaming_part_size(number: int, initial: int) -> int:
    """The size of part ``number`` (1-based) of a stream of unknown length that starts at ``initial``."""
    return min(MAX_PART_SIZE, initial << ((number - 1) // GROWTH_INTERVAL))


def part_ranges(size: int, part_size: int) -> list[tuple[int, int]]:
    """Inclusive ``(first, last)`` byte ranges covering ``size`` bytes in parts of ``part_size``."""
    return [(start, min(start + part_size, size) - 1) for start in range(0, size, part_size)]


class PartSizer:
    """The size of each next part: fixed for a known size, growing for a stream of unknown length."""

    def __init__(self, size: int | None, part_size: int, *, explicit: bool) -> None:
        if size is not None:
            if explicit and -(-size // part_size) > MAX_PARTS:
                raise InvalidArgument(
                    f"part_size {part_size} splits {size} bytes into more than {MAX_PARTS} parts; "
                    "pass a larger part_size or leave it unset to size parts automatically"
                )
            part_size = part_size_for(size, part_size)
        self.size = size
        self.part_size = part_size

    def __call__(self, number: int) -> int:
        if self.size is not None:
            return self.part_size
        return streaming_part_size(number, self.part_size)
