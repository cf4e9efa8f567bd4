"""Walking a span page by page: the requests of one span, handed on as entries in key order.

``walk_span`` lists a span with ``Delimiter="/"``: its objects and one child span per common prefix
(grouped, when the first pages showed folders much smaller than a page), and, when a page comes back
truncated, the rest of the span cut into ranges, the first of which continues with the page's
continuation token. ``walk_group`` lists a group of small folders without a delimiter, ``walk_chain``
a run of whole folders page after page, for a server that serves one request at a time. Every key
belongs to exactly one span, so every object is handed on exactly once.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Sequence
from functools import partial

from .._context import S3Context
from .._models import ObjectInfo
from .._transport import ListPage
from .keyspace import DELIMITER, Span, entry_name, folder_bounds, grouped, is_under, split_points
from .readahead import Reader

__all__ = ["Emit", "fetch_page", "folders_page", "walk_chain", "walk_group", "walk_span"]

Emit = Callable[[list[ObjectInfo | Span]], Awaitable[None]]


async def fetch_page(
    ctx: S3Context, prefix: str, *, delimiter: str | None, start_after: str | None = None, token: str | None = None
) -> ListPage:
    """One page of keys under ``prefix`` (after ``start_after``, or from a continuation ``token``)."""
    attempt = partial(ctx.transport.list_page, prefix, delimiter=delimiter, start_after=start_after, token=token)
    return await ctx.call("ListObjectsV2", attempt)


async def folders_page(
    ctx: S3Context, parent: str, folders: Sequence[str], reader: Reader, token: str | None
) -> tuple[ListPage, list[ObjectInfo], bool]:
    """One page without a delimiter over whole ``folders`` (sorted, under ``parent``), from their start or
    from ``token``: the page, its keys under the folders, and whether the folders are done.

    Keys between the folders that are not under one of them (objects of the level, folders listed
    elsewhere) are left out.
    """
    after, upto = folder_bounds(folders)
    page = await reader.run(
        partial(fetch_page, ctx, parent, delimiter=None, start_after=None if token else after, token=token)
    )
    inside = [info for info in page.objects if info.key <= upto]
    objects = [info for info in inside if is_under(folders, info.key)]
    return page, objects, page.next_token is None or len(inside) < len(page.objects)


async def walk_chain(ctx: S3Context, parent: str, folders: list[str], reader: Reader, *, emit: Emit) -> None:
    """List whole ``folders`` (sorted, all under ``parent``) page after page without a delimiter.

    For a server that serves one request at a time: full pages, the fewest requests.
    """
    token: str | None = None
    while True:
        page, objects, done = await folders_page(ctx, parent, folders, reader, token)
        await emit([*objects])
        if done:
            return
        token = page.next_token


async def walk_group(ctx: S3Context, span: Span, reader: Reader, *, emit: Emit) -> None:
    """List a group of common prefixes without a delimiter, handing their objects to ``emit``.

    The objects directly at the parent's level that fall between the group's bounds are the parent's
    (its delimited page listed them) and are left out. A truncated page ends the group: the child it
    stopped in resumes as a span of its own, the children after it are grouped again.
    """
    page, objects, done = await folders_page(ctx, span.prefix, span.children, reader, None)
    if done:
        await emit([*objects])
        return
    last = page.objects[-1].key
    rest: list[ObjectInfo | Span] = [Span(child) for child in span.children if child > last]
    current = [Span(child, after=last) for child in span.children if last.startswith(child)]
    await emit([*objects, *current, *grouped(rest, span)])


async def walk_span(ctx: S3Context, span: Span, reader: Reader, *, emit: Emit) -> None:
    """List ``span`` page by page, handing each page's entries in key order to ``emit``.

    A truncated page whose rest can be cut (``split_points``) ends this span: the rest is handed out as
    ranges, the first resuming from the page's continuation token.
    """
    if span.children:
        await walk_group(ctx, span, reader, emit=emit)
        return
    token = span.token
    after = span.after
    # An ``after`` below this level (the first page's last key, ``a/b/c``) is not given as StartAfter:
    # whether the common prefix holding it (``a/``) is still reported is not something to rely on. The
    # level is listed from its start instead, dropping what ``after`` already covered.
    deep = after if after is not None and DELIMITER in after[len(span.prefix) :] else None
    while True:
        page = await reader.run(
            partial(
                fetch_page,
                ctx,
                span.prefix,
                delimiter=DELIMITER,
                start_after=None if token or deep else after,
                token=token,
            )
        )
        objects, prefixes = page.objects, page.prefixes
        if deep is not None:
            objects = [info for info in objects if info.key > deep]
            prefixes = [prefix for prefix in prefixes if prefix > deep or deep.startswith(prefix)]
        finished = page.next_token is None
        if span.upto is not None:
            upto = span.upto
            objects = [info for info in objects if info.key <= upto]
            prefixes = [prefix for prefix in prefixes if prefix <= upto]
            finished = finished or len(objects) < len(page.objects) or len(prefixes) < len(page.prefixes)
        # The common prefix holding a deep ``after`` is listed after it too: its earlier keys are done.
        children = [Span(prefix, after=deep if deep and deep.startswith(prefix) else None) for prefix in prefixes]
        entries: list[ObjectInfo | Span] = (
            grouped(sorted([*objects, *children], key=entry_name), span) if children else [*objects]
        )
        if finished:
            await emit(entries)
            return
        last = max(objects[-1].key if objects else "", prefixes[-1] if prefixes else "")
        names = [info.key for info in objects] + prefixes
        points = split_points(span.prefix, last, span.upto, names, delimiter=DELIMITER)
        if points:
            bounds = [last, *points, span.upto]
            ranges = [
                Span(span.prefix, after=low, upto=high, token=page.next_token if index == 0 else None)
                for index, (low, high) in enumerate(itertools.pairwise(bounds))
            ]
            await emit([*entries, *ranges])
            return
        await emit(entries)
        token = page.next_token
