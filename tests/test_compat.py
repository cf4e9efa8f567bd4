"""A library's private internals in an unknown shape: the transport falls back to botocore's path, warns once.

Each test hands ``aiostorage/_transport/compat.py`` (or what uses it) an object lacking what it expects,
as a new aiobotocore, botocore or aiohttp could, and checks that the request still has a way (botocore's)
and that one warning, not one per request, says what was not found.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.hooks import HierarchicalEmitter

from aiostorage._transport import compat
from aiostorage._transport.direct import DirectClient
from aiostorage._transport.payload import install_payload_hooks
from aiostorage._transport.session import HTTPSession

ATTRIBUTES: dict[str, Any] = {"ContentType": "text/plain", "Metadata": {}}


@pytest.fixture
def caught(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[warnings.WarningMessage]]:
    """The warnings raised in the test, with no shape reported yet in this process."""
    monkeypatch.setattr(compat, "_reported", set())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught


def _messages(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(warning.message) for warning in caught if warning.category is RuntimeWarning]


def _client(**internals: Any) -> Any:
    """An S3 client as far as the direct path looks, with only the given private attributes."""

    async def generate_presigned_url(operation: str, Params: dict[str, str], ExpiresIn: int) -> str:
        return f"http://127.0.0.1:9/{Params['Bucket']}/{Params['Key']}?X-Amz-Signature=x"

    config = SimpleNamespace(signature_version="s3v4", user_agent="test")
    meta = SimpleNamespace(config=config, region_name="us-east-1", events=HierarchicalEmitter())
    return SimpleNamespace(meta=meta, generate_presigned_url=generate_presigned_url, **internals)


async def test_a_client_without_its_credentials_leaves_small_requests_to_botocore(
    caught: list[warnings.WarningMessage],
) -> None:
    direct = DirectClient(_client(_endpoint=SimpleNamespace(http_session=None)), "bucket")
    assert direct.usable and direct.takes(10, ATTRIBUTES)
    assert await direct.put("key", b"body", ATTRIBUTES) is None  # botocore makes it
    assert await direct.get("key", {}) is None
    assert await direct.list_page({"prefix": ""}) is None
    assert not direct.usable and not direct.takes(10, ATTRIBUTES)
    [message] = _messages(caught)
    assert "client._request_signer._credentials" in message and "botocore" in message


async def test_a_client_without_its_http_session_leaves_small_requests_to_botocore(
    caught: list[warnings.WarningMessage],
) -> None:
    """Credentials found, no HTTP session where expected: off as well, and a second client says nothing more."""
    signer = SimpleNamespace(_credentials=None)
    for _ in range(2):
        direct = DirectClient(_client(_request_signer=signer), "bucket")
        assert await direct.put("key", b"body", ATTRIBUTES) is None
        assert not direct.usable
    [message] = _messages(caught)
    assert "client._endpoint.http_session" in message


def test_each_unknown_shape_is_reported_once(caught: list[warnings.WarningMessage]) -> None:
    for _ in range(3):
        with pytest.raises(compat.UnknownShape):
            compat.request_credentials(object())
    assert len(_messages(caught)) == 1


def test_credentials_of_an_unknown_kind_are_an_unknown_shape(caught: list[warnings.WarningMessage]) -> None:
    assert compat.request_credentials(SimpleNamespace(_request_signer=SimpleNamespace(_credentials=None))) is None
    with pytest.raises(compat.UnknownShape):
        compat.request_credentials(SimpleNamespace(_request_signer=SimpleNamespace(_credentials="a string")))
    assert len(_messages(caught)) == 1


async def test_a_session_of_an_unknown_shape_keeps_aiobotocore_connector_and_checks_names(
    caught: list[warnings.WarningMessage], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(compat, "_SESSION_HOOKS", False)
    session = HTTPSession()
    try:
        assert session.settings is None and not session.sends_direct
        assert session._get_ssl_context().check_hostname  # the name check still holds where the hook is called
        connector = session._create_connector(None)  # aiobotocore's own
        await connector.close()
    finally:
        await session.close()
    [message] = _messages(caught)
    assert "certificate host names" in message


async def test_a_streaming_body_without_its_aiohttp_response_is_read_through_botocore(
    caught: list[warnings.WarningMessage],
) -> None:
    class Body:
        def __init__(self) -> None:
            self.chunks = [b"one", b"two", b""]

        async def read(self, amount: int) -> bytes:
            assert amount > 0
            return self.chunks.pop(0)

    read = compat.body_reader(Body())
    assert [await read(), await read(), await read()] == [b"one", b"two", b""]
    [message] = _messages(caught)
    assert "StreamingBody.content" in message


def _chosen_signer(events: HierarchicalEmitter) -> Any:
    _, chosen = events.emit_until_response(
        "choose-signer.s3.PutObject",
        signing_name="s3",
        signature_version="s3v4",
        context={compat.DIGEST_CONTEXT_KEY: "0" * 64},
    )
    return chosen


def test_an_unknown_signer_shape_leaves_hashing_to_botocore(
    caught: list[warnings.WarningMessage], monkeypatch: pytest.MonkeyPatch
) -> None:
    known = _client()
    install_payload_hooks(known)
    assert _chosen_signer(known.meta.events) == "aiostorage-s3v4"
    monkeypatch.setattr(compat, "_SIGNER_KNOWN", False)
    for _ in range(2):
        unknown = _client()
        install_payload_hooks(unknown)
        assert _chosen_signer(unknown.meta.events) is None  # botocore's own signer, which hashes the body
    [message] = _messages(caught)
    assert "S3SigV4Auth" in message


def test_an_unknown_200_error_check_is_left_where_botocore_put_it(
    caught: list[warnings.WarningMessage], monkeypatch: pytest.MonkeyPatch
) -> None:
    class Events:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"events.{name} touched")

    monkeypatch.setattr(compat, "_CHECK_200_KNOWN", False)
    compat.check_200_errors_after(Events())
    [message] = _messages(caught)
    assert "_handle_200_error" in message


def test_a_request_writer_of_an_unknown_shape_sends_the_body_through_it(
    caught: list[warnings.WarningMessage],
) -> None:
    plain = SimpleNamespace(get_extra_info=lambda name: None)
    tls = SimpleNamespace(get_extra_info=lambda name: object() if name == "sslcontext" else None)
    sent: list[bool] = []
    assert (
        compat.plain_socket_for_body(SimpleNamespace(transport=plain, send_headers=lambda: sent.append(True))) is plain
    )
    assert sent == [True]
    assert compat.plain_socket_for_body(SimpleNamespace(transport=tls, send_headers=lambda: sent.append(True))) is None
    assert compat.plain_socket_for_body(SimpleNamespace(transport=None)) is None
    assert _messages(caught) == []  # TLS or no transport: known shapes, the body simply goes through aiohttp
    assert compat.plain_socket_for_body(SimpleNamespace(transport=plain)) is None
    assert sent == [True]
    [message] = _messages(caught)
    assert "send_headers" in message
