"""The key space a listing walks: spans of keys, groups of small folders, and cuts of long ranges.

Nothing here sends a request: these are pure functions of keys, which the listing's walkers and
schedulers build on (and which are tested on their own).

A ``Span`` is the keys under a prefix, optionally only those in ``(after, upto]``. Every key under a
common prefix ``p/`` sorts after ``p.`` and before ``p0``, so a run of whole folders is itself a range
(``folder_bounds``), and small folders next to each other can be listed together (``grouped``).

ListObjectsV2 is sequential within a prefix, so a flat prefix of 100,000 keys costs 100 round trips in a
row. After one page we know the keys are in ``(last, upto]`` and which characters they use; boundaries
``stem + c`` (``stem`` a prefix of ``last``, ``c`` a character seen on the page) cut that range into pieces
that each start with ``StartAfter``. Boundaries only change how work is spread, never what is listed:
the pieces are contiguous, so every key falls in exactly one of them. Python compares strings by code
point, which is the order of their UTF-8 bytes, the order S3 lists in.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .._models import ObjectInfo

__all__ = [
    "DELIMITER",
    "GROUP_KEYS",
    "MAX_SPLITS",
    "Span",
    "entry_name",
    "folder_bounds",
    "group_size",
    "grouped",
    "is_under",
    "split_points",
    "whole_folders",
]

DELIMITER = "/"
# Keys a group of small folders aims at: 80% of the most S3 puts in one page.
GROUP_KEYS = 800
# Enough pieces to keep many requests in flight; an empty piece costs one request.
MAX_SPLITS = 64

# The characters just below and just above the delimiter: ``p.`` and ``p0`` bound every key under ``p/``.
_BELOW = chr(ord(DELIMITER) - 1)
_ABOVE = chr(ord(DELIMITER) + 1)


@dataclass(frozen=True, slots=True)
class Span:
    """Keys under ``prefix`` in ``(after, upto]``; ``token`` resumes an earlier page's listing.

    With ``children`` (common prefixes next to each other, with no object between them), the span is
    those children's keys, listed together without a delimiter: small folders share pages instead of
    taking a request each. ``group`` is how many of its common prefixes to list together like that.
    """

    prefix: str
    after: str | None = None
    upto: str | None = None
    token: str | None = None
    children: tuple[str, ...] = ()
    group: int = 1


def folder_bounds(folders: Sequence[str]) -> tuple[str, str]:
    """``(after, upto]`` holding every key under the sorted whole ``folders``; keys of the level next to
    them (``p.txt``) fall in it too, and are told apart with ``is_under``."""
    return folders[0][:-1] + _BELOW, folders[-1][:-1] + _ABOVE


def entry_name(entry: ObjectInfo | Span) -> str:
    """What an entry of a page sorts by: an object's key, a child span's prefix."""
    return entry.key if isinstance(entry, ObjectInfo) else entry.prefix


def grouped(entries: list[ObjectInfo | Span], parent: Span) -> list[ObjectInfo | Span]:
    """``entries`` with each run of fresh child spans cut into groups of ``parent.group``."""
    if parent.group == 1:
        return entries
    result: list[ObjectInfo | Span] = []
    run: list[str] = []

    def close_run() -> None:
        for start in range(0, len(run), parent.group):
            chunk = run[start : start + parent.group]
            if len(chunk) == 1:
                result.append(Span(chunk[0]))
            else:
                after, upto = folder_bounds(chunk)
                result.append(Span(parent.prefix, after=after, upto=upto, children=tuple(chunk), group=parent.group))
        run.clear()

    for entry in entries:
        if isinstance(entry, Span) and entry.after is None and not entry.children:
            run.append(entry.prefix)
        else:
            close_run()
            result.append(entry)
    close_run()
    return result


def whole_folders(span: Span) -> tuple[str, tuple[str, ...]] | None:
    """The parent and the whole folders a span lists (one fresh child, or a group), else None."""
    if span.children:
        if span.after == folder_bounds(span.children)[0]:
            return span.prefix, span.children
        return None
    if span.after is None and span.upto is None and span.token is None and span.prefix.endswith(DELIMITER):
        parent = span.prefix[: span.prefix[:-1].rfind(DELIMITER) + 1]
        return parent, (span.prefix,)
    return None


def is_under(folders: Sequence[str], key: str) -> bool:
    """Whether ``key`` is under one of ``folders`` (sorted)."""
    index = bisect.bisect_right(folders, key) - 1
    return index >= 0 and key.startswith(folders[index])


def group_size(prefix: str, keys: list[str]) -> int:
    """How many common prefixes below ``prefix`` fit in a page, judged by those the first pages covered.

    A group that fills its page takes a request more to learn that its last folder has ended, so
    groups aim at 80% of a page. The last folder of the pages may go on past them, so it is not
    counted; with none before it, 1.
    """
    sizes: dict[str, int] = {}
    for key in keys:
        child, found, _ = key[len(prefix) :].partition(DELIMITER)
        if found:
            sizes[child] = sizes.get(child, 0) + 1
    complete = list(sizes.values())[:-1]
    if not complete:
        return 1
    return max(1, GROUP_KEYS * len(complete) // sum(complete))


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
