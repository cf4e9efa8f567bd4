"""Splitting the rest of a key range into sub-ranges that can be listed in parallel.

ListObjectsV2 is sequential within a prefix, so a flat prefix of 100,000 keys costs 100 round trips in a
row. After one page we know the keys are in ``(last, upto]`` and which characters they use; boundaries
``stem + c`` (``stem`` a prefix of ``last``, ``c`` a character seen on the page) cut that range into pieces
that each start with ``StartAfter``. Boundaries only change how work is spread, never what is listed:
the pieces are contiguous, so every key falls in exactly one of them. Python compares strings by code
point, which is the order of their UTF-8 bytes, the order S3 lists in.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["MAX_SPLITS", "split_points"]

# Enough pieces to keep many requests in flight; an empty piece costs one request.
MAX_SPLITS = 64


def _shared_length(first: str, second: str) -> int:
    """How many leading characters the two strings share."""
    for index, (a, b) in enumerate(zip(first, second, strict=False)):
        if a != b:
            return index
    return min(len(first), len(second))


def split_points(
    prefix: str,
    last: str,
    upto: str | None,
    names: Iterable[str],
    *,
    delimiter: str | None,
    limit: int = MAX_SPLITS,
) -> list[str]:
    """Sorted boundaries strictly inside ``(last, upto)`` (``upto=None``: no upper end), at most ``limit``.

    ``names`` are the keys and common prefixes of the page just read, the source of the alphabet. With a
    ``delimiter`` no boundary holds it past ``prefix``, so no boundary falls inside a common prefix (which
    would then be reported by two pieces).
    """
    names = list(names)
    alphabet = sorted(set("".join(name[len(prefix) :] for name in names)) - {delimiter or ""})
    start = len(prefix)
    if upto is not None:
        start = max(start, _shared_length(last, upto))
    # The page's own keys vary from ``deepest`` on, so the keys after it differ from ``last`` there or
    # above. The cuts at ``start`` (coarse: they reach the far end of the range) come first, then cuts
    # from ``deepest`` up, one character shallower at a time, while they fit. For keys with a long shared
    # stem (``flat/object-0000999.bin``) these find ``...0001``, ``...001``, where cuts at ``start`` miss.
    deepest = max(start, min(_shared_length(min(names, default=last), last), len(last)))
    # Deep cuts use the characters seen where the page's keys vary (digits, for a counter), not those
    # of the shared stem or a suffix like ``.bin``, which would only make empty pieces.
    varying = sorted({name[deepest] for name in names if len(name) > deepest} - {delimiter or ""}) or alphabet
    points: set[str] = set()
    for depth in (start, *range(deepest, start, -1)):
        if depth > len(last):
            continue
        stem = last[:depth]
        if delimiter and delimiter in stem[len(prefix) :]:
            continue
        floor = last[depth] if depth < len(last) else ""
        chars = alphabet if depth == start else varying
        cuts = {stem + char for char in chars if char > floor and (upto is None or stem + char < upto)}
        if points and len(points | cuts) > limit:
            break
        points |= cuts
    ordered = sorted(point for point in points if upto is None or point < upto)
    if len(ordered) <= limit:
        return ordered
    step = len(ordered) / limit
    return [ordered[int(index * step)] for index in range(limit)]
