"""Part sizing: pure units, no server."""

from __future__ import annotations

import pytest

from aiostorage import InvalidArgument
from aiostorage._settings import MAX_OBJECT_SIZE, MAX_PART_SIZE, MAX_PARTS, MIN_PART_SIZE, GiB, MiB
from aiostorage.transfer.parts import (
    GROWTH_INTERVAL,
    PartSizer,
    part_ranges,
    part_size_for,
    streaming_part_size,
)

TiB = 1024 * GiB


def test_known_size_keeps_preferred_when_it_fits() -> None:
    assert part_size_for(256 * MiB, 8 * MiB) == 8 * MiB
    assert part_size_for(MAX_PARTS * 8 * MiB, 8 * MiB) == 8 * MiB


def test_five_tib_known_size_scales_to_the_smallest_8_mib_step() -> None:
    size = part_size_for(MAX_OBJECT_SIZE, 8 * MiB)
    assert size % (8 * MiB) == 0
    assert -(-MAX_OBJECT_SIZE // size) <= MAX_PARTS
    assert -(-MAX_OBJECT_SIZE // (size - 8 * MiB)) > MAX_PARTS
    assert size == 528 * MiB
    assert len(part_ranges(MAX_OBJECT_SIZE, size)) <= MAX_PARTS


def test_known_size_over_five_tib_is_invalid() -> None:
    with pytest.raises(InvalidArgument, match="5 TiB"):
        part_size_for(MAX_OBJECT_SIZE + 1, 8 * MiB)


def test_explicit_part_size_with_too_many_parts_is_invalid() -> None:
    with pytest.raises(InvalidArgument, match="10000 parts"):
        PartSizer(TiB, 8 * MiB, explicit=True)
    assert PartSizer(TiB, 8 * MiB, explicit=False)(1) == part_size_for(TiB, 8 * MiB)


@pytest.mark.parametrize("initial", [MIN_PART_SIZE, 8 * MiB, 100 * MiB, MAX_PART_SIZE])
def test_unknown_size_reaches_five_tib_within_10000_parts(initial: int) -> None:
    sizes = [streaming_part_size(number, initial) for number in range(1, MAX_PARTS + 1)]
    assert sum(sizes) >= MAX_OBJECT_SIZE
    assert all(MIN_PART_SIZE <= size <= MAX_PART_SIZE for size in sizes)
    assert sizes == sorted(sizes)


def test_unknown_size_doubles_every_interval() -> None:
    sizer = PartSizer(None, 8 * MiB, explicit=True)
    assert sizer(1) == sizer(GROWTH_INTERVAL) == 8 * MiB
    assert sizer(GROWTH_INTERVAL + 1) == 16 * MiB
    assert sizer(2 * GROWTH_INTERVAL + 1) == 32 * MiB
    assert sizer(MAX_PARTS) == MAX_PART_SIZE


def test_part_ranges_cover_exactly() -> None:
    assert part_ranges(10, 4) == [(0, 3), (4, 7), (8, 9)]
    assert part_ranges(8, 4) == [(0, 3), (4, 7)]
    assert part_ranges(0, 4) == []
