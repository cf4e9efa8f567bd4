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
    bucket: str | None = Field(None, validation_alias=_env("bucket", "AWS_S3_BUCKET_NAME"))
    queue_url: str | None = Field(None, validation_alias=_env("queue_url", "AWS_SQS_QUEUE_URL"))
    profile: str | None = Field(None, validation_alias=_env("profile", "AWS_PROFILE"))
    endpoint_url: str | None = Field(None, validation_alias=_env("endpoint_url", "AWS_ENDPOINT_URL"))
    aws_access_key_id: str | None = Field(
        None, repr=False, validation_alias=_env("aws_access_key_id", "AWS_ACCESS_KEY_ID")
    )
    aws_secret_access_key: SecretStr | None = Field(
        None, validation_alias=_env("aws_secret_access_key", "AWS_SECRET_ACCESS_KEY")
    )
    aws_session_token: SecretStr | None = Field(None, validation_alias=_env("aws_session_token", "AWS_SESSION_TOKEN"))

    part_size: int = Field(8 * MiB, validation_alias=_env("part_size", "AIOSTORAGE_PART_SIZE"))
    multipart_threshold: int = Field(
        8 * MiB, validation_alias=_env("multipart_threshold", "AIOSTORAGE_MULTIPART_THRESHOLD")
    )
    concurrency: int = Field(10, ge=1, le=1024, validation_alias=_env("concurrency", "AIOSTORAGE_CONCURRENCY"))
    max_attempts: int = Field(
        5, ge=1, le=50, validation_alias=_env("max_attempts", "AIOSTORAGE_MAX_ATTEMPTS", "AWS_MAX_ATTEMPTS")
    )
    connect_timeout: float = Field(10.0, gt=0, validation_alias=_env("connect_timeout", "AIOSTORAGE_CONNECT_TIMEOUT"))
    read_timeout: float = Field(30.0, gt=0, validation_alias=_env("read_timeout", "AIOSTORAGE_READ_TIMEOUT"))
    addressing_style: Literal["auto", "path", "virtual"] = Field(
        "auto", validation_alias=_env("addressing_style", "AIOSTORAGE_ADDRESSING_STYLE")
    )
    # Defaults of every write through the store, overridden field by field by a call's ``WriteOptions``.
    sse: Literal["AES256", "aws:kms", "aws:kms:dsse"] | None = Field(
        None, validation_alias=_env("sse", "AIOSTORAGE_SSE")
    )
    sse_kms_key_id: str | None = Field(None, validation_alias=_env("sse_kms_key_id", "AIOSTORAGE_SSE_KMS_KEY_ID"))
    storage_class: str | None = Field(None, validation_alias=_env("storage_class", "AIOSTORAGE_STORAGE_CLASS"))

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
