"""The listing's key space on its own: spans, groups of small folders, whole folders, cuts of ranges."""

from __future__ import annotations

import pytest

from aiostorage import ObjectInfo
from aiostorage.transfer.keyspace import (
    Span,
    entry_name,
    folder_bounds,
    group_size,
    grouped,
    is_under,
    split_points,
    whole_folders,
)


def info(key: str) -> ObjectInfo:
    return ObjectInfo(key=key, size=0, etag="e")


def test_group_size_follows_the_folders_the_first_pages_covered() -> None:
    keys = [f"logs/d{p:02d}/k{n:03d}" for p in range(10) for n in range(200)]
    assert group_size("logs/", keys) == 4  # 9 whole folders of 200 (the 10th may go on): 800 keys
    assert group_size("logs/", [f"logs/d00/k{n:04d}" for n in range(2000)]) == 1  # one folder, maybe more
    assert group_size("", [f"k{n:04d}" for n in range(2000)]) == 1  # no folders at all
    assert group_size("", ["a/x", "b/x", "c/x"] * 1) == 800  # tiny folders: as many as a page holds


def test_whole_folders_are_told_from_parts_ofwhole_folders() -> None:
    assert whole_folders(Span("logs/2024/")) == ("logs/", ("logs/2024/",))
    assert whole_folders(Span("top/")) == ("", ("top/",))
    group = Span("", after="a.", upto="c0", children=("a/", "b/", "c/"))
    assert whole_folders(group) == ("", ("a/", "b/", "c/"))
    assert whole_folders(Span("", after="b/k7", upto="c0", children=("b/", "c/"))) is None  # resumed inside b/
    assert whole_folders(Span("logs/", after="logs/k1")) is None  # the rest of a folder
    assert whole_folders(Span("logs/", token="t")) is None
    assert whole_folders(Span("flat/", after="flat/1", upto="flat/2")) is None  # a range of a split


def test_split_points_cover_the_rest_in_order() -> None:
    names = [f"p/{n:05d}" for n in range(1000)]
    points = split_points("p/", names[-1], None, names, delimiter="/")
    assert points == sorted(points) and all(point > names[-1] for point in points)
    assert "p/1" in points and "p/01" in points
    # Bounded above: nothing at or past ``upto``, nothing holding the delimiter past the prefix.
    bounded = split_points("p/", "p/10999", "p/2", [f"p/10{n:03d}" for n in range(1000)], delimiter="/")
    assert bounded == [f"p/1{n}" for n in range(1, 10)]
    assert all("/" not in point[2:] for point in split_points("p/", "p/a/", None, ["p/a/", "p/b/"], delimiter="/"))
    assert len(split_points("", "zz", None, [chr(c) for c in range(0x100, 0x400)], delimiter=None)) == 64


def test_split_points_find_keys_that_share_a_long_stem() -> None:
    """A counter under a long stem: cuts go where the keys vary, not right after the prefix."""
    names = [f"flat/object-{n:07d}.bin" for n in range(1000)]
    points = split_points("flat/", names[-1], None, names, delimiter=None)
    assert {"flat/object-0001", "flat/object-001", "flat/object-01", "flat/object-1"} <= set(points)
    assert not [point for point in points if point.startswith("flat/object-0000")]  # nothing inside the page
    later = [f"flat/object-{n:07d}.bin" for n in range(1000, 100_000, 997)]
    pieces = [names[-1], *points, None]
    # Every later key falls in exactly one piece, and the 100 thousands are spread over many pieces.
    owners = [
        next(i for i in range(len(pieces) - 1) if pieces[i] < key and (pieces[i + 1] is None or key <= pieces[i + 1]))
        for key in later
    ]
    assert len(set(owners)) >= 10


@pytest.mark.parametrize("folders", [("a/",), ("a/", "b/", "c/"), ("a/", "a0/", "a-b/")])
def test_folder_bounds_hold_every_key_of_the_folders(folders: tuple[str, ...]) -> None:
    ordered = sorted(folders)
    after, upto = folder_bounds(ordered)
    inside = [folder + tail for folder in ordered for tail in ("", "k", "deep/k", "\U0010ffff")]
    assert all(after < key <= upto for key in inside)
    first, last = ordered[0][:-1], ordered[-1][:-1]
    outside = [first, first + "-", first + "-z", last + "0x", last + "1"]
    assert not [key for key in outside if after < key <= upto]
    # The range is not only the folders': an object of the level next to them (``a.txt``) falls in it
    # too, which is why a page over the range is filtered with ``is_under``.
    assert after < first + ".txt" <= upto


def test_small_folders_are_grouped_between_the_level_s_objects() -> None:
    parent = Span("", group=2)
    entries: list[ObjectInfo | Span] = [Span("a/"), Span("b/"), Span("c/"), info("d"), Span("e/"), info("f")]
    result = grouped(entries, parent)
    assert result == [
        Span("", after="a.", upto="b0", children=("a/", "b/"), group=2),
        Span("c/"),  # the last of a run, alone: a span of its own, not a group of one
        info("d"),
        Span("e/"),
        info("f"),
    ]
    assert grouped(entries, Span("")) is entries  # group 1: nothing to group
    resumed: list[ObjectInfo | Span] = [Span("a/", after="a/k9"), Span("b/"), Span("c/")]
    assert grouped(resumed, parent)[0] == Span("a/", after="a/k9")  # a resumed child is not grouped
    assert all(whole_folders(span) is not None for span in result if isinstance(span, Span))


def test_keys_are_told_under_sorted_folders_or_not() -> None:
    folders = ["a/", "b/", "d/"]
    assert is_under(folders, "a/k") and is_under(folders, "b/x/y") and is_under(folders, "d/")
    assert not is_under(folders, "a") and not is_under(folders, "c/k") and not is_under(folders, "0")
    assert not is_under(folders, "b0") and not is_under([], "a/k")


def test_entries_sort_by_key_or_prefix() -> None:
    entries: list[ObjectInfo | Span] = [info("b"), Span("a/"), info("a.txt"), Span("c/")]
    assert [entry_name(entry) for entry in sorted(entries, key=entry_name)] == ["a.txt", "a/", "b", "c/"]
