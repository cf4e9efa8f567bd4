"""AWS Signature Version 4 for one S3 request with a signed payload: headers in, headers out.

botocore's signer works on ``AWSRequest`` objects whose headers are ``email.message`` based, costly for
a small request; this is the same algorithm on plain strings. Like botocore, it signs every header it
is given except the few a proxy or the HTTP layer may change (``User-Agent``, ``Expect``,
``Transfer-Encoding``, ``X-Amzn-Trace-Id``), so a ``Range`` or ``If-Match`` cannot be altered in transit
either; ``tests/test_signer.py`` checks generated requests against botocore's ``S3SigV4Auth``.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from urllib.parse import quote

__all__ = ["canonical_query", "sign"]

_ALGORITHM = "AWS4-HMAC-SHA256"
# botocore's SIGNED_HEADERS_BLACKLIST.
_UNSIGNED = frozenset({"expect", "transfer-encoding", "user-agent", "x-amzn-trace-id"})


# The newest signing key and what it was derived from. One entry only: credentials rotated away (an
# expired session's secret) are dropped at the next signature instead of staying alive in a cache.
_newest: tuple[tuple[str, str, str, str], bytes] | None = None


def _signing_key(secret: str, day: str, region: str, service: str) -> bytes:
    global _newest
    scope = (secret, day, region, service)
    newest = _newest
    if newest is not None and newest[0] == scope:
        return newest[1]
    key = ("AWS4" + secret).encode()
    for part in (day, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    _newest = (scope, key)
    return key


def canonical_query(params: dict[str, str]) -> str:
    """``params`` as SigV4's canonical query string: names and values URI-encoded, sorted by name.

    The request is sent with exactly this string, so the server reads back what was signed.
    """
    encoded = sorted((quote(name, safe="-_.~"), quote(value, safe="-_.~")) for name, value in params.items())
    return "&".join(f"{name}={value}" for name, value in encoded)


def sign(
    *,
    method: str,
    host: str,
    path: str,
    headers: dict[str, str],
    payload_sha256: str,
    access_key: str,
    secret_key: str,
    token: str | None,
    region: str,
    now: datetime,
    query: str = "",
    service: str = "s3",
) -> dict[str, str]:
    """``headers`` plus Host, X-Amz-Date, X-Amz-Content-SHA256, the token and Authorization.

    ``path`` is the URI-encoded path exactly as sent (S3 does not encode it a second time); ``query``
    is the query string as sent, which must be canonical already (``canonical_query``).
    """
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    signed = {name.lower(): value for name, value in headers.items()}
    signed.update({"host": host, "x-amz-date": stamp, "x-amz-content-sha256": payload_sha256})
    if token:
        signed["x-amz-security-token"] = token
    names = sorted(name for name in signed if name not in _UNSIGNED)
    canonical_headers = "".join(f"{name}:{' '.join(signed[name].split())}\n" for name in names)
    signed_names = ";".join(names)
    canonical = "\n".join((method, path, query, canonical_headers, signed_names, payload_sha256))
    scope = f"{stamp[:8]}/{region}/{service}/aws4_request"
    to_sign = "\n".join((_ALGORITHM, stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()))
    key = _signing_key(secret_key, stamp[:8], region, service)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    signed["authorization"] = (
        f"{_ALGORITHM} Credential={access_key}/{scope}, SignedHeaders={signed_names}, Signature={signature}"
    )
    return signed
