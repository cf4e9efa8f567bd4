"""Our SigV4 signer against botocore's, on generated requests: keys, queries, headers, tokens, dates.

botocore is the reference: for every request it could build, our path, canonical query string and
signature must be the ones it computes, or S3 answers ``SignatureDoesNotMatch`` (moto and LocalStack do
not check header signatures, so no server test would catch a difference).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import botocore.session
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.serialize import create_serializer
from hypothesis import given, settings
from hypothesis import strategies as st

from aiostorage._transport import signer
from aiostorage._transport.signer import canonical_query, sign

_S3_MODEL = botocore.session.get_session().get_service_model("s3")
_SERIALIZER = create_serializer("rest-xml", include_validation=False)

# Any character S3 accepts in a key (every Unicode scalar value), and the ones that need care weighted in.
_KEY_CHARS = st.one_of(
    st.sampled_from(list(" %+~/=&?#*!'()[]{}:;,@$\"<>\\^`|\t")),
    st.characters(exclude_categories=("Cs",)),
)
keys = st.text(_KEY_CHARS, min_size=1, max_size=300)
# Header values go out as ASCII; runs of spaces are trimmed by SigV4's canonical form.
header_values = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)
meta_names = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789-"), min_size=1, max_size=20)
secrets = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=60)
tokens = st.none() | st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=200)
regions = st.sampled_from(["us-east-1", "eu-west-1", "ap-southeast-2", "local"])
moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC))
hosts = st.sampled_from(["127.0.0.1:9000", "localhost", "b.s3.eu-west-1.amazonaws.com", "[::1]:4566"])


def _botocore_url_path(operation: str, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    serialized = _SERIALIZER.serialize_to_request(params, _S3_MODEL.operation_model(operation))
    return serialized["url_path"], serialized["query_string"]


def _botocore_signature(
    request: AWSRequest, access_key: str, secret: str, token: str | None, region: str, when: datetime
) -> str:
    # botocore stamps the request with the current time: pin it by signing through a subclass's clock.
    class PinnedAuth(S3SigV4Auth):
        def _modify_request_before_signing(self, request: AWSRequest) -> None:
            super()._modify_request_before_signing(request)
            request.context["timestamp"] = when.strftime("%Y%m%dT%H%M%SZ")
            del request.headers["X-Amz-Date"]
            request.headers["X-Amz-Date"] = request.context["timestamp"]

    PinnedAuth(Credentials(access_key, secret, token), "s3", region).add_auth(request)
    authorization: str = request.headers["Authorization"]
    return authorization


def _our_signature(
    method: str,
    host: str,
    path: str,
    headers: dict[str, str],
    body: bytes,
    secret: str,
    token: str | None,
    region: str,
    when: datetime,
    query: str = "",
) -> str:
    signed = sign(
        method=method,
        host=host,
        path=path,
        headers={**headers, "User-Agent": "never signed"},
        payload_sha256=hashlib.sha256(body).hexdigest(),
        access_key="AKID",
        secret_key=secret,
        token=token,
        region=region,
        now=when,
        query=query,
    )
    return signed["authorization"]


@settings(max_examples=300, deadline=None)
@given(
    key=keys,
    metadata=st.dictionaries(meta_names, header_values, max_size=4),
    content_type=header_values,
    secret=secrets,
    token=tokens,
    region=regions,
    when=moments,
    host=hosts,
    body=st.binary(max_size=64),
)
def test_put_path_and_signature_match_botocore(
    key: str,
    metadata: dict[str, str],
    content_type: str,
    secret: str,
    token: str | None,
    region: str,
    when: datetime,
    host: str,
    body: bytes,
) -> None:
    url_path, _ = _botocore_url_path("PutObject", {"Bucket": "bucket", "Key": key, "Body": body})
    ours_path = "/bucket/" + quote(key, safe="/~")  # how the direct client writes an object's path
    assert ours_path == url_path
    headers = {"Content-Type": content_type, **{f"x-amz-meta-{name}": value for name, value in metadata.items()}}
    request = AWSRequest(method="PUT", url=f"http://{host}{url_path}", data=body, headers=dict(headers))
    expected = _botocore_signature(request, "AKID", secret, token, region, when)
    assert _our_signature("PUT", host, ours_path, headers, body, secret, token, region, when) == expected


list_params = st.fixed_dictionaries(
    {"list-type": st.just("2")},
    optional={
        "prefix": keys,
        "delimiter": st.sampled_from(["/", "|", " ", "%"]),
        "start-after": keys,
        "continuation-token": st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1),
        "max-keys": st.integers(1, 1000).map(str),
        "encoding-type": st.just("url"),
    },
)


@settings(max_examples=300, deadline=None)
@given(params=list_params, secret=secrets, token=tokens, region=regions, when=moments, host=hosts)
def test_list_query_and_signature_match_botocore(
    params: dict[str, str], secret: str, token: str | None, region: str, when: datetime, host: str
) -> None:
    request = AWSRequest(method="GET", url=f"http://{host}/bucket", params=dict(params))
    expected = _botocore_signature(request, "AKID", secret, token, region, when)
    query = canonical_query(params)
    assert _our_signature("GET", host, "/bucket", {}, b"", secret, token, region, when, query) == expected


@settings(max_examples=200, deadline=None)
@given(key=keys, first=st.integers(0, 10**12), length=st.integers(1, 10**9), token=tokens, when=moments)
def test_ranged_get_signature_matches_botocore(
    key: str, first: int, length: int, token: str | None, when: datetime
) -> None:
    url_path, _ = _botocore_url_path("GetObject", {"Bucket": "bucket", "Key": key})
    headers = {"Range": f"bytes={first}-{first + length - 1}", "If-Match": '"0123abcd"'}
    request = AWSRequest(method="GET", url=f"http://127.0.0.1:9000{url_path}", headers=dict(headers))
    expected = _botocore_signature(request, "AKID", "secret/key", token, "us-east-1", when)
    path = "/bucket/" + quote(key, safe="/~")
    ours = _our_signature("GET", "127.0.0.1:9000", path, headers, b"", "secret/key", token, "us-east-1", when)
    assert ours == expected


def test_signing_keys_of_rotated_credentials_are_not_kept() -> None:
    """Only the newest secret's signing key is cached: a rotated-away secret is not held in memory."""
    when = datetime(2026, 12, 4, tzinfo=UTC)
    old, new = "".join(["old", "-secret-", "A1"]), "".join(["new", "-secret-", "B2"])
    for secret in (old, new):
        _our_signature("GET", "localhost", "/bucket", {}, b"", secret, None, "us-east-1", when)
    assert signer._newest is not None and signer._newest[0][0] == new
    assert all(old not in scope for scope in [signer._newest[0]])
