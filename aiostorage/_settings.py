"""StoreSettings: where aiostorage finds its region, bucket, queue, endpoint, credentials and defaults."""

from __future__ import annotations

import difflib
from functools import cache
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ._exceptions import ConfigError

__all__ = [
    "MAX_DELETE_KEYS",
    "MAX_KEY_BYTES",
    "MAX_LIST_KEYS",
    "MAX_OBJECT_SIZE",
    "MAX_PARTS",
    "MAX_PART_SIZE",
    "MAX_PRESIGN_EXPIRY",
    "MAX_SINGLE_COPY",
    "MIN_PART_SIZE",
    "GiB",
    "KiB",
    "MiB",
    "StoreSettings",
    "TiB",
]

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
TiB = 1024 * GiB

# S3's own limits, named here once; every check and every sizing imports them from here.
# Every part of a multipart upload but the last, and every single PUT, is within these bounds.
MIN_PART_SIZE = 5 * MiB
MAX_PART_SIZE = 5 * GiB
MAX_PARTS = 10_000
MAX_OBJECT_SIZE = 5 * TiB
# A single CopyObject copies at most this much; a larger object is copied in parts.
MAX_SINGLE_COPY = 5 * GiB
# DeleteObjects takes at most this many keys a call.
MAX_DELETE_KEYS = 1000
# ListObjectsV2 returns at most this many keys a page.
MAX_LIST_KEYS = 1000
# SigV4 presigned URLs and forms are valid for at most seven days.
MAX_PRESIGN_EXPIRY = 7 * 24 * 3600
# A key is at most this many bytes in UTF-8.
MAX_KEY_BYTES = 1024


def _env(name: str, *env: str) -> AliasChoices:
    """Accept the field's own name (``StoreSettings(bucket=...)``) and its environment variables."""
    return AliasChoices(name, *env)


class StoreSettings(BaseSettings):
    """Connection, location and transfer defaults, read from arguments, the environment and ``.env``.

    Arguments given by name win over the environment; the environment wins over ``.env``.
    """

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        frozen=True,
    )

    region: str = Field("us-east-1", validation_alias=_env("region", "AWS_REGION", "AWS_DEFAULT_REGION"))
    """The AWS region (``AWS_REGION``, else ``AWS_DEFAULT_REGION``); default ``"us-east-1"``."""
    bucket: str | None = Field(None, validation_alias=_env("bucket", "AWS_S3_BUCKET_NAME"))
    """The store's bucket when ``AsyncS3Store`` is given none (``AWS_S3_BUCKET_NAME``); default ``None``."""
    queue_url: str | None = Field(None, validation_alias=_env("queue_url", "AWS_SQS_QUEUE_URL"))
    """The SQS queue ``S3EventPoller`` reads when given none (``AWS_SQS_QUEUE_URL``); default ``None``."""
    profile: str | None = Field(None, validation_alias=_env("profile", "AWS_PROFILE"))
    """A profile of the AWS config files (``AWS_PROFILE``); default ``None``: the default credential chain."""
    endpoint_url: str | None = Field(None, validation_alias=_env("endpoint_url", "AWS_ENDPOINT_URL"))
    """An S3-compatible endpoint instead of AWS, e.g. a local server (``AWS_ENDPOINT_URL``); default ``None``."""
    aws_access_key_id: str | None = Field(
        None, repr=False, validation_alias=_env("aws_access_key_id", "AWS_ACCESS_KEY_ID")
    )
    """The access key id (``AWS_ACCESS_KEY_ID``), given with the secret; default ``None``: the default chain."""
    aws_secret_access_key: SecretStr | None = Field(
        None, validation_alias=_env("aws_secret_access_key", "AWS_SECRET_ACCESS_KEY")
    )
    """The secret access key (``AWS_SECRET_ACCESS_KEY``); default ``None``."""
    aws_session_token: SecretStr | None = Field(None, validation_alias=_env("aws_session_token", "AWS_SESSION_TOKEN"))
    """A session token of temporary credentials (``AWS_SESSION_TOKEN``); default ``None``."""

    part_size: int = Field(8 * MiB, validation_alias=_env("part_size", "AIOSTORAGE_PART_SIZE"))
    """Bytes per part of uploads and ranged downloads, 5 MiB to 5 GiB (``AIOSTORAGE_PART_SIZE``); default 8 MiB."""
    multipart_threshold: int = Field(
        8 * MiB, validation_alias=_env("multipart_threshold", "AIOSTORAGE_MULTIPART_THRESHOLD")
    )
    """Uploads larger than this go multipart (``AIOSTORAGE_MULTIPART_THRESHOLD``); 5 MiB to 5 GiB, default 8 MiB."""
    concurrency: int = Field(10, ge=1, le=1024, validation_alias=_env("concurrency", "AIOSTORAGE_CONCURRENCY"))
    """Requests in flight at most, and the pool's size (``AIOSTORAGE_CONCURRENCY``); 1 to 1024, default 10."""
    max_attempts: int = Field(
        5, ge=1, le=50, validation_alias=_env("max_attempts", "AIOSTORAGE_MAX_ATTEMPTS", "AWS_MAX_ATTEMPTS")
    )
    """Tries per request, the first counted (``AIOSTORAGE_MAX_ATTEMPTS``, ``AWS_MAX_ATTEMPTS``); 1 to 50, default 5."""
    connect_timeout: float = Field(10.0, gt=0, validation_alias=_env("connect_timeout", "AIOSTORAGE_CONNECT_TIMEOUT"))
    """Seconds to connect (``AIOSTORAGE_CONNECT_TIMEOUT``); default 10."""
    read_timeout: float = Field(30.0, gt=0, validation_alias=_env("read_timeout", "AIOSTORAGE_READ_TIMEOUT"))
    """Seconds to wait for an answer (``AIOSTORAGE_READ_TIMEOUT``); default 30."""
    addressing_style: Literal["auto", "path", "virtual"] = Field(
        "auto", validation_alias=_env("addressing_style", "AIOSTORAGE_ADDRESSING_STYLE")
    )
    """``"path"`` (``endpoint/bucket/key``), ``"virtual"`` (``bucket.endpoint/key``) or ``"auto"`` (botocore's
    choice) (``AIOSTORAGE_ADDRESSING_STYLE``); default ``"auto"``."""
    # Defaults of every write through the store, overridden field by field by a call's ``WriteOptions``.
    sse: Literal["AES256", "aws:kms", "aws:kms:dsse"] | None = Field(
        None, validation_alias=_env("sse", "AIOSTORAGE_SSE")
    )
    """Server-side encryption of writes whose options set none (``AIOSTORAGE_SSE``); default ``None``: the bucket's."""
    sse_kms_key_id: str | None = Field(None, validation_alias=_env("sse_kms_key_id", "AIOSTORAGE_SSE_KMS_KEY_ID"))
    """The KMS key of ``aws:kms`` writes (``AIOSTORAGE_SSE_KMS_KEY_ID``); default ``None``: the AWS-managed key."""
    storage_class: str | None = Field(None, validation_alias=_env("storage_class", "AIOSTORAGE_STORAGE_CLASS"))
    """Storage class of writes whose options set none (``AIOSTORAGE_STORAGE_CLASS``); default ``None``: ``STANDARD``."""

    def __init__(self, **values: Any) -> None:
        # ``extra="ignore"`` keeps a ``.env`` shared with other tools readable, but it would also drop a
        # misspelt argument without a word (``access_key_id=`` leaving the credentials to the default
        # chain): arguments are checked by name here. ``_env_file`` and the like are pydantic-settings'.
        known = _argument_names()
        for name in values:
            if not name.startswith("_") and name.lower() not in known:
                close = difflib.get_close_matches(name.lower(), known, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ConfigError(f"invalid StoreSettings: no setting named {name!r}{hint}")
        try:
            super().__init__(**values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in error['loc']) or 'settings'}: {error['msg']}"
                for error in exc.errors()
            )
            # Not chained: pydantic's error echoes the input, which may hold a secret key or token.
            raise ConfigError(f"invalid StoreSettings: {problems}") from None

    @field_validator("part_size", "multipart_threshold")
    @classmethod
    def _check_part_size(cls, value: int) -> int:
        # A part and a single PUT share S3's bounds: 5 MiB to 5 GiB.
        if not MIN_PART_SIZE <= value <= MAX_PART_SIZE:
            raise ValueError(f"must be between 5 MiB ({MIN_PART_SIZE}) and 5 GiB ({MAX_PART_SIZE}) bytes, got {value}")
        return value

    @model_validator(mode="after")
    def _check_credentials(self) -> StoreSettings:
        if (self.aws_access_key_id is None) != (self.aws_secret_access_key is None):
            raise ValueError("aws_access_key_id and aws_secret_access_key must be given together")
        if self.sse_kms_key_id and self.sse == "AES256":
            raise ValueError("sse_kms_key_id goes with sse 'aws:kms' or 'aws:kms:dsse', not 'AES256'")
        return self


@cache
def _argument_names() -> frozenset[str]:
    """Every name ``StoreSettings`` takes as an argument, in lower case: fields and their aliases."""
    names: set[str] = set()
    for name, field in StoreSettings.model_fields.items():
        names.add(name)
        if isinstance(field.validation_alias, AliasChoices):
            names.update(str(choice).lower() for choice in field.validation_alias.choices)
    return frozenset(names)
