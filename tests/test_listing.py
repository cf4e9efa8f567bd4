from __future__ import annotations

import asyncio
import functools
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from aiostorage import AsyncS3Store, BucketNotFound, InvalidArgument, ObjectInfo, StoreSettings
from aiostorage._settings import MAX_LIST_KEYS
from aiostorage._transport.pages import KeysNeedEncoding, ListPage, _read_tree, _scan, parse_list_page
from aiostorage.transfer.pace import Pace, collector_pauses
from benchmarks.simulator import Simulator, simulator_in_thread
from tests.conftest import ODD_KEYS, WireCounter, free_port, seed, unique_name


def tree_keys() -> list[str]:
    """3,000 keys: 30 prefixes two levels deep (with some keys one level deep) plus root keys."""
    keys = [f"root-{n:03d}.txt" for n in range(50)]
    for top in range(5):
        keys += [f"top{top}/file-{n:02d}" for n in range(20)]
        for sub in range(6):
            keys += [f"top{top}/sub{sub}/obj-{n:03d}.bin" for n in range(95)]
    assert len(keys) == 3000
    return keys


def oracle(s3: Any, bucket: str, prefix: str = "") -> list[dict[str, Any]]:
    """Every object under ``prefix`` by boto3's paginator, in key order."""
    return [
        obj
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for obj in page.get("Contents", [])
    ]


@pytest.fixture(scope="module")
def tree_bucket(s3: Any) -> str:
    """A bucket holding ``tree_keys()``, built once for the module.

    Seeded fast (``seed``): what is under test here is listing, which goes through the server.
    """
    name = unique_name("tree")
    s3.create_bucket(Bucket=name)
    seed(s3, name, ((key, f"{index}".encode()) for index, key in enumerate(tree_keys())))
    return name


# Listing pages go out on the direct path, which botocore's event hooks never see: requests are counted on
# the wire, by a relay in front of moto.
Wired = tuple[AsyncS3Store, WireCounter]


@pytest.fixture
async def wired_tree_store(tree_bucket: str, wire: tuple[WireCounter, StoreSettings]) -> AsyncIterator[Wired]:
    counter, settings = wire
    async with AsyncS3Store(tree_bucket, settings=settings, concurrency=16) as opened:
        yield opened, counter


@pytest.fixture
async def wired_store(bucket: str, wire: tuple[WireCounter, StoreSettings]) -> AsyncIterator[Wired]:
    counter, settings = wire
    async with AsyncS3Store(bucket, settings=settings) as opened:
        yield opened, counter


@pytest.fixture
async def tree_store(tree_bucket: str, settings: StoreSettings) -> Any:
    async with AsyncS3Store(tree_bucket, settings=settings, concurrency=16) as opened:
        yield opened


def as_tuple(info: ObjectInfo) -> tuple[str, int, str]:
    return (info.key, info.size, info.etag)


async def test_list_matches_boto3_each_key_once(wired_tree_store: Wired, s3: Any) -> None:
    tree_store, counter = wired_tree_store
    listed = [info async for info in tree_store.list()]
    expected = oracle(s3, tree_store.bucket)
    assert len(expected) == 3000
    assert len(listed) == len({info.key for info in listed}) == 3000
    assert sorted(as_tuple(info) for info in listed) == [
        (obj["Key"], obj["Size"], obj["ETag"].strip('"')) for obj in expected
    ]
    by_key = {obj["Key"]: obj for obj in expected}
    assert all(info.last_modified == by_key[info.key]["LastModified"] for info in listed)
    # Two undelimited pages first (their 2,000 keys cover the root keys and the first prefixes), then
    # the fan-out over the prefixes the rest lies in, in parallel.
    assert not any("delimiter" in request for request in counter.sent[:2])
    assert sum("delimiter=%2F" in request for request in counter.sent[2:]) >= 5
    assert counter.max_in_flight > 1


async def test_list_ordered_is_sorted(tree_store: AsyncS3Store, s3: Any) -> None:
    listed = [info.key async for info in tree_store.list(ordered=True)]
    assert listed == [obj["Key"] for obj in oracle(s3, tree_store.bucket)]


@pytest.mark.parametrize("ordered", [False, True])
async def test_list_prefix_filter(tree_store: AsyncS3Store, s3: Any, ordered: bool) -> None:
    for prefix in ("top3/", "top3/sub4/", "top3/sub", "root-04", "nothing-here/"):
        listed = [info.key async for info in tree_store.list(prefix, ordered=ordered)]
        expected = [obj["Key"] for obj in oracle(s3, tree_store.bucket, prefix)]
        assert sorted(listed) == expected, prefix
        if ordered:
            assert listed == expected


FLAT_KEYS = [f"flat/{n:05d}" for n in range(4500)]


@pytest.fixture(scope="module")
def flat_bucket(s3: Any) -> str:
    """``FLAT_KEYS``, built once for the module."""
    name = unique_name("flat")
    s3.create_bucket(Bucket=name)
    seed(s3, name, ((key, b"x") for key in FLAT_KEYS))
    return name


@pytest.mark.parametrize("ordered", [False, True])
async def test_list_flat_key_space_is_split(
    flat_bucket: str, wire: tuple[WireCounter, StoreSettings], s3: Any, ordered: bool
) -> None:
    """4,500 keys with no delimiter below the prefix: past the first pages, listed in parallel ranges, each once."""
    counter, settings = wire
    keys = FLAT_KEYS
    async with AsyncS3Store(flat_bucket, settings=settings) as store:
        listed = [info.key async for info in store.list(ordered=ordered)]
    assert sorted(listed) == keys == [obj["Key"] for obj in oracle(s3, flat_bucket)]
    if ordered:
        assert listed == keys
    # A sequential listing would be 5 requests in a row; ranges ran side by side.
    assert counter.max_in_flight > 1
    assert any("start-after" in request for request in counter.sent)


@pytest.mark.parametrize("ordered", [False, True])
async def test_concurrency_one_lists_full_pages_in_order(wired_tree_store: Wired, s3: Any, ordered: bool) -> None:
    """With nothing to overlap, 3,000 keys in 30 prefixes take 3 full pages without a delimiter."""
    tree_store, counter = wired_tree_store
    listed = [info.key async for info in tree_store.list(concurrency=1, ordered=ordered)]
    assert listed == [obj["Key"] for obj in oracle(s3, tree_store.bucket)]
    assert len(counter.sent) == 3
    assert not any("delimiter" in request for request in counter.sent)
    assert counter.max_in_flight == 1


async def test_a_listing_that_fits_one_page_takes_one_request(wired_store: Wired, s3: Any) -> None:
    store, counter = wired_store
    keys = [f"d{n % 7}/sub{n % 3}/k{n:03d}" for n in range(120)] + ["top.txt"]
    await asyncio.gather(*(store.put_bytes(key, b"x") for key in keys))
    counter.reset()
    for ordered in (False, True):
        listed = [info.key async for info in store.list(ordered=ordered)]
        assert sorted(listed) == sorted(keys) and (not ordered or listed == sorted(keys))
    assert len(counter.sent) == 2  # one per listing, where fanning out would take 1 + 7 + 21


async def test_list_continues_inside_the_prefix_the_first_page_ended_in(store: AsyncS3Store, s3: Any) -> None:
    """The first page ends deep inside a/b/: the rest of a/b/, a/ and the root each come exactly once."""
    keys = [f"a/b/k{n:04d}" for n in range(1200)] + ["a/a.txt", "a/c/x", "a/z", "b/y", "root.txt", "a/b/"]
    seed(s3, store.bucket, ((key, b"x") for key in keys))
    for ordered in (False, True):
        listed = [info.key async for info in store.list(ordered=ordered)]
        assert len(listed) == len(set(listed)) and sorted(listed) == sorted(keys)
        if ordered:
            assert listed == sorted(keys)


async def test_small_folders_share_pages(wired_store: Wired, s3: Any) -> None:
    """Folders far smaller than a page are listed a few at a time without a delimiter, each key once.

    The first two pages show folders of 150 keys, so the rest goes out in groups of 5 folders; the
    last folders hold 300 keys, so one group overflows its page and is cut again where it stopped.
    Objects between the folders (``d14``, ``d14.txt``, ``d20.txt``) belong to the level, not to a group,
    and end a run of folders to group; ``d16/sub/`` is listed with its group.
    """
    store, counter = wired_store
    sizes = [150] * 25 + [300] * 9
    keys = [
        f"d{p:02d}/{'sub/' if p == 16 and n % 7 == 0 else ''}k{n:03d}"
        for p, size in enumerate(sizes)
        for n in range(size)
    ]
    keys += ["d14", "d14.txt", "d19/", "d20.txt", "zz"]
    seed(s3, store.bucket, ((key, b"x") for key in keys))
    expected = [obj["Key"] for obj in oracle(s3, store.bucket)]
    for ordered in (False, True):
        counter.reset()
        listed = [info.key async for info in store.list(ordered=ordered)]
        assert len(listed) == len(set(listed)) == len(keys)
        assert (listed if ordered else sorted(listed)) == expected
        grouped = [r for r in counter.sent if "delimiter" not in r and "start-after=d" in r and r.endswith(".")]
        assert len(grouped) >= 4, counter.sent
        # A group that overflowed: the folder it stopped in resumes after its last key.
        assert any("prefix=d2" in r and "start-after=d2" in r for r in counter.sent), counter.sent
        # A request per folder would be 2 + 1 + 21 at the least.
        assert len(counter.sent) <= 14


@pytest.mark.parametrize("serial", [False, True])
async def test_requests_in_flight_follow_what_the_server_rewards(serial: bool) -> None:
    """Against latency (S3), the fan-out raises its requests in flight; against a server serving one
    request at a time, it stays at two, as more would only queue there."""
    # Answers slow enough that this process's own work (the simulator runs in a thread of it) hardly
    # adds to them; served one at a time, 50 ms each is enough.
    simulator = Simulator(delay=0.05 if serial else 0.2, serial=serial)
    simulator.seed("paced", [f"dir-{p:02d}/k{n:04d}" for p in range(24) for n in range(1000)])
    with simulator_in_thread(simulator, free_port()) as url:
        settings = StoreSettings(endpoint_url=url, region="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
        async with AsyncS3Store("paced", settings=settings, concurrency=32) as store:
            assert len([info async for info in store.list()]) == 24_000
    if serial:
        assert simulator.max_in_flight == 2
    else:
        assert simulator.max_in_flight >= 8


@pytest.mark.parametrize("ordered", [False, True])
async def test_a_busy_server_gets_the_waiting_folders_as_full_pages(ordered: bool) -> None:
    """Once a server is found to serve one request at a time, the folders still waiting go out as one
    run of full pages: 24 folders of 500 keys take not much more than a sequential listing's 12
    requests, where a request per folder would take 2 + 1 + 24. Ordered, each folder's keys still come
    in their place."""
    simulator = Simulator(delay=0.05, serial=True)
    keys = [f"f{p:02d}/{'deep/' if p == 20 and n % 9 == 0 else ''}k{n:03d}" for p in range(24) for n in range(500)]
    keys += ["f10.txt", "f17", "zz"]
    simulator.seed("busy", keys)
    with simulator_in_thread(simulator, free_port()) as url:
        settings = StoreSettings(endpoint_url=url, region="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
        async with AsyncS3Store("busy", settings=settings, concurrency=32) as store:
            listed = [info.key async for info in store.list(ordered=ordered)]
    assert len(listed) == len(set(listed)) and (listed if ordered else sorted(listed)) == sorted(keys)
    assert simulator.max_in_flight == 2
    assert simulator.requests <= 20, simulator.requests


async def _until(condition: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("ordered", [False, True])
async def test_a_stalled_consumer_holds_the_listing_to_its_read_ahead(ordered: bool) -> None:
    """A consumer that takes one object and stops: the listing reads on until the read-ahead is full (a
    page or two per request the pace lets run, a few more), then waits, however many folders are left.
    On a busy server the waiting folders go out as one run of pages; ordered, that run once read every
    folder ahead, half a page each, since each folder's stream took its keys without waiting. Once the
    consumer goes on, every key still comes once, in order when asked for."""
    simulator = Simulator(delay=0.05, serial=True)
    keys = [f"f{p:02d}/k{n:03d}" for p in range(48) for n in range(500)]
    simulator.seed("stall", keys)
    with simulator_in_thread(simulator, free_port()) as url:
        settings = StoreSettings(endpoint_url=url, region="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
        async with (
            AsyncS3Store("stall", settings=settings, concurrency=32) as store,
            store.list(ordered=ordered) as listing,
        ):
            listed = [(await anext(listing)).key]
            budget = listing._budget

            def bound() -> int:
                # The limit, and the rest of the consumer's page, taken already. The consumer has not waited
                # since that page, so no page has gone out past the limit for the span it waits for.
                return budget.limit + MAX_LIST_KEYS

            # Settled: no page on its way, none fits, a request is held back: nothing more is read until
            # the consumer takes something.
            await _until(
                lambda: listing.read_ahead > bound() or (budget.asked == 0 and budget.waiting > 0 and not budget.room())
            )
            assert listing.read_ahead <= bound()
            assert budget.limit <= 8 * MAX_LIST_KEYS  # two requests in flight on this server, whatever the folders
            listed += [info.key async for info in listing]
    assert len(listed) == len(set(listed)) and (listed if ordered else sorted(listed)) == keys
    assert simulator.max_in_flight == 2


async def test_pace_rises_while_answers_keep_their_speed() -> None:
    pace = Pace(32, alone=[(1000, 0.10)])
    assert pace.level == 2
    for slowdown in (1.0, 2.0, 1.1, 1.2):  # one had to open a connection: the mean, 1.3, decides
        pace.observe(2, slowdown)
    assert (pace.level, pace.limiter.total_tokens) == (8, 8)
    pace.observe(2, 5.0)  # sent before the level rose: not a vote
    for _ in range(8):
        pace.observe(8, 3.0)  # more than 4/3 of 1.3: the server is busy, the level stays
    assert pace.level == 8
    for _ in range(8):
        pace.observe(8, 1.0)
    assert (pace.level, pace.limiter.total_tokens) == (8, 8)  # judged once, for good

    climbing = Pace(20, alone=[(1000, 0.10)])
    for level in (2, 8):
        for _ in range(max(4, level)):
            climbing.observe(level, 1.2)
    assert (climbing.level, climbing.limiter.total_tokens) == (20, 20)  # up to the ceiling, no further
    serial = Pace(16, alone=[(1000, 0.05)])
    for slowdown in (1.0, 2.0, 2.0, 2.0):  # a server serving one at a time: each waits for another
        serial.observe(2, slowdown)
    assert serial.level == 2


async def test_a_collector_pause_is_not_taken_for_a_busy_server() -> None:
    """A garbage collector's pause stops every request in flight; it is the client's, not the server's."""
    pace = Pace(8, alone=[(1000, 0.05)])

    async def page(stall: bool) -> ListPage:
        await asyncio.sleep(0.05)  # the server's latency
        if stall:  # a full collection, as the collector reports it: the event loop stops meanwhile
            collector_pauses("start", {"generation": 2})
            time.sleep(0.1)  # noqa: ASYNC251 - the stall is the point: nothing else runs meanwhile
            collector_pauses("stop", {"generation": 2})
        return ListPage(objects=[], prefixes=[], next_token=None)

    # Eight requests, two at a time: the first learns the time alone, the rest vote at level 2.
    await asyncio.gather(*(pace.run(functools.partial(page, n == 3)) for n in range(8)))
    assert (pace.level, pace.busy) == (8, False)


async def test_pace_judges_a_page_by_its_size() -> None:
    """A server bound by its CPU takes half as long for half a page: that is not S3's latency."""
    busy = Pace(32, alone=[(1000, 0.26), (1000, 0.25), (20, 0.02)])
    assert busy.alone(500) == pytest.approx(0.02 + 0.23 * 480 / 980)
    assert busy.alone(1000) == pytest.approx(0.25)
    assert busy.alone(0) >= 0.01
    latency = Pace(32, alone=[(1000, 0.05), (20, 0.05)])
    assert latency.alone(500) == pytest.approx(0.05)
    same_size = Pace(32, alone=[(1000, 0.07), (1000, 0.05)])
    assert same_size.alone(10) == pytest.approx(0.05)
    same_size.learn(20, 0.01)  # a delimited page, alone: the line now has a slope
    assert same_size.alone(510) == pytest.approx(0.01 + 0.04 * 490 / 980)


async def test_list_empty_bucket(store: AsyncS3Store) -> None:
    assert [info async for info in store.list()] == []
    assert [info async for info in store.list(ordered=True)] == []
    assert await store.list_prefixes() == []


async def test_list_odd_keys(store: AsyncS3Store, s3: Any) -> None:
    await asyncio.gather(*(store.put_bytes(key, key.encode()) for key in ODD_KEYS))
    expected = [(obj["Key"], obj["Size"]) for obj in oracle(s3, store.bucket)]
    assert sorted(expected) == sorted((key, len(key.encode())) for key in ODD_KEYS)
    for ordered in (False, True):
        listed = [(info.key, info.size) async for info in store.list(ordered=ordered)]
        assert sorted(listed) == expected
        if ordered:
            assert listed == expected
    assert [info.key async for info in store.list("unicodé/")] == ["unicodé/日本語/ключ.txt"]
    assert await store.list_prefixes() == sorted({key[: key.index("/") + 1] for key in ODD_KEYS if "/" in key})


async def test_keys_are_url_encoded_only_when_a_page_needs_it(wired_store: Wired) -> None:
    """Plain keys come as they are; a page holding a control character is asked for again, URL-encoded."""
    store, counter = wired_store
    assert any("\x01" in key for key in ODD_KEYS)
    await asyncio.gather(*(store.put_bytes(key, b"x") for key in ODD_KEYS))
    counter.reset()
    assert [info.key async for info in store.list("unicodé/")] == ["unicodé/日本語/ключ.txt"]
    assert len(counter.sent) == 1 and "encoding-type" not in counter.sent[0]
    counter.sent.clear()
    assert sorted([info.key async for info in store.list()]) == sorted(ODD_KEYS)
    assert len(counter.sent) == 2 and "encoding-type" not in counter.sent[0] and "encoding-type=url" in counter.sent[1]
    # Under a prefix that itself needs encoding, every page would: it is asked for at once.
    counter.sent.clear()
    control = next(key for key in ODD_KEYS if "\x01" in key)
    assert [info.key async for info in store.list(control[: control.index("\x01") + 1])] == [control]
    assert len(counter.sent) == 1 and "encoding-type=url" in counter.sent[0]


async def _no_other_tasks(before: set[asyncio.Task[Any]], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while True:
        extra = asyncio.all_tasks() - before - {asyncio.current_task()}
        if not extra:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"tasks still running: {extra}")
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("ordered", [False, True])
async def test_break_cancels_listing(tree_store: AsyncS3Store, ordered: bool) -> None:
    before = asyncio.all_tasks()
    async with tree_store.list(ordered=ordered) as listing:
        async for info in listing:
            assert info.key
            break
    # Left the block: nothing of the listing is running any more, at once.
    assert asyncio.all_tasks() - before - {asyncio.current_task()} == set()

    seen = 0
    async for _ in tree_store.list(ordered=ordered):
        seen += 1
        if seen == 5:
            break
    await _no_other_tasks(before)
    # The store still works, and a new listing is complete.
    assert len([info async for info in tree_store.list(ordered=ordered)]) == 3000


async def test_aclose_stops_listing(tree_store: AsyncS3Store) -> None:
    before = asyncio.all_tasks()
    listing = tree_store.list()
    assert (await anext(listing)).key
    await listing.aclose()
    await _no_other_tasks(before, within=1.0)
    with pytest.raises(StopAsyncIteration):
        await anext(listing)


async def test_missing_bucket(settings: StoreSettings) -> None:
    async with AsyncS3Store(unique_name("missing"), settings=settings) as store:
        with pytest.raises(BucketNotFound):
            [info async for info in store.list()]
        with pytest.raises(BucketNotFound):
            async with store.list(ordered=True) as listing:
                [info async for info in listing]
        with pytest.raises(BucketNotFound):
            await store.list_prefixes()


async def test_list_prefixes_sorted(tree_store: AsyncS3Store, s3: Any) -> None:
    assert await tree_store.list_prefixes() == [f"top{n}/" for n in range(5)]
    assert await tree_store.list_prefixes("top2/") == [f"top2/sub{n}/" for n in range(6)]
    assert await tree_store.list_prefixes("top2/sub1/") == []
    dashed = s3.list_objects_v2(Bucket=tree_store.bucket, Delimiter="-")["CommonPrefixes"]
    assert await tree_store.list_prefixes("", delimiter="-") == sorted(p["Prefix"] for p in dashed)
    response = s3.list_objects_v2(Bucket=tree_store.bucket, Prefix="top2/", Delimiter="/")
    assert [p["Prefix"] for p in response["CommonPrefixes"]] == await tree_store.list_prefixes("top2/")


async def test_bad_arguments_raise_before_requests(store: AsyncS3Store) -> None:
    with pytest.raises(InvalidArgument):
        store.list(123)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        store.list("k" * 1025)
    with pytest.raises(InvalidArgument):
        store.list(concurrency=0)
    with pytest.raises(InvalidArgument):
        await store.list_prefixes(delimiter="")


def test_parse_list_page_decodes_and_checks() -> None:
    body = (
        b'<?xml version="1.0" encoding="UTF-8"?>'
        b'<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix></Prefix>'
        b"<KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys><Delimiter>%2F</Delimiter><EncodingType>url</EncodingType>"
        b"<IsTruncated>true</IsTruncated><Contents><Key>a+b%2Bc%01</Key>"
        b"<LastModified>2026-01-02T03:04:05.000Z</LastModified><ETag>&quot;abc&quot;</ETag><Size>7</Size>"
        b"<StorageClass>STANDARD</StorageClass></Contents><CommonPrefixes><Prefix>d%20e%2F</Prefix></CommonPrefixes>"
        b"<NextContinuationToken>tok</NextContinuationToken></ListBucketResult>"
    )
    page = parse_list_page(body)
    assert [(o.key, o.size, o.etag) for o in page.objects] == [("a b+c\x01", 7, "abc")]
    assert page.objects[0].last_modified is not None and page.objects[0].last_modified.year == 2026
    assert page.prefixes == ["d e/"]
    assert page.next_token == "tok"
    with pytest.raises(ValueError, match="KeyCount"):
        parse_list_page(body.replace(b"<KeyCount>2", b"<KeyCount>3"))


@pytest.mark.parametrize(
    "key", [b"a&#x1;b", b"a&#1;b", b"a\x01b", b"a\rb", b"a&#x80;b", b"a&#xFFFE;b", b"a&#x110000;b"]
)
def test_a_key_xml_cannot_carry_asks_for_url_encoding(key: bytes) -> None:
    body = b"<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>%s</Key></Contents></ListBucketResult>"
    with pytest.raises(KeysNeedEncoding):
        parse_list_page(body % key)
    assert [info.key for info in parse_list_page(body % b"a&#13;&#x9;&#233;&#x20AC;&amp;b").objects] == ["a\r\té€&b"]


@pytest.mark.parametrize("url", [False, True])
def test_scan_agrees_with_element_tree(url: bool) -> None:
    """The regular-expression reader and ElementTree read S3's plain documents identically."""
    simulator = Simulator(delay=0)
    # Without URL encoding a control character cannot travel in XML 1.0 at all.
    keys = [key for key in ODD_KEYS if url or key.isprintable()]
    simulator.seed("b", [*keys, "x&y;z", 'quote"s', "a/<b>/c"], size=3)
    bucket = simulator.buckets["b"]
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
    ]
    parts.append(f"<KeyCount>{len(bucket.keys)}</KeyCount>")
    parts.append("<EncodingType>url</EncodingType>" if url else "")
    parts.append("<IsTruncated>true</IsTruncated><NextContinuationToken>t&amp;k</NextContinuationToken>")
    parts.extend(bucket.contents(key, url) for key in bucket.keys)
    parts.append("</ListBucketResult>")
    body = "".join(parts).encode()
    scanned = _scan(body)
    assert scanned is not None and scanned == _read_tree(body)
    page = parse_list_page(body)
    assert [info.key for info in page.objects] == bucket.keys and page.next_token == "t&k"
    assert all(info.size == 3 and info.etag and '"' not in info.etag for info in page.objects)


def test_unusual_documents_are_read_by_element_tree() -> None:
    body = (
        b'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult>'
        b"<IsTruncated>false</IsTruncated><Contents><Key><![CDATA[a <b>]]></Key><Size>1</Size></Contents>"
        b"<!-- a comment --><CommonPrefixes><Prefix>p/</Prefix></CommonPrefixes></ListBucketResult>"
    )
    assert _scan(body) is None
    page = parse_list_page(body)
    assert [info.key for info in page.objects] == ["a <b>"] and page.prefixes == ["p/"]
    with pytest.raises(ET.ParseError):
        parse_list_page(body[:-10])  # cut short: not plain, and not well-formed either
    with pytest.raises(ValueError, match="error document"):
        parse_list_page(b"<Error><Code>InternalError</Code></Error>")


def test_other_element_orders_are_read_field_by_field() -> None:
    body = (
        b"<ListBucketResult><KeyCount>2</KeyCount><IsTruncated>false</IsTruncated>"
        b"<Contents><Size>5</Size><Key>b</Key><ETag>&quot;e1&quot;</ETag></Contents>\n"
        b"<Contents>\n  <Key>c&amp;d</Key>\n  <LastModified>2026-01-02T03:04:05Z</LastModified>\n"
        b"  <ETag>&#34;e2&#34;</ETag>\n  <Size>6</Size>\n</Contents></ListBucketResult>"
    )
    assert _scan(body) == _read_tree(body)
    page = parse_list_page(body)
    assert [(o.key, o.size, o.etag) for o in page.objects] == [("b", 5, "e1"), ("c&d", 6, "e2")]
    assert page.objects[0].last_modified is None and page.objects[1].last_modified is not None
