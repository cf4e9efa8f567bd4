from __future__ import annotations

from pathlib import Path

import pytest

from aiostorage import AsyncS3Store, ConfigError, StoreSettings


def test_reads_api_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    monkeypatch.setenv("AWS_S3_BUCKET_NAME", "media")
    monkeypatch.setenv("AWS_SQS_QUEUE_URL", "http://127.0.0.1:1/123/q")
    monkeypatch.setenv("AWS_PROFILE", "dev")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000")
    monkeypatch.setenv("AIOSTORAGE_CONCURRENCY", "32")
    settings = StoreSettings()
    assert settings.region == "eu-west-3"
    assert settings.bucket == "media"
    assert settings.queue_url == "http://127.0.0.1:1/123/q"
    assert settings.profile == "dev"
    assert settings.endpoint_url == "http://127.0.0.1:9000"
    assert settings.concurrency == 32


def test_defaults() -> None:
    settings = StoreSettings()
    assert settings.region == "us-east-1"
    assert settings.bucket is None and settings.queue_url is None and settings.endpoint_url is None
    assert settings.part_size == 8 * 1024 * 1024
    assert settings.multipart_threshold == 8 * 1024 * 1024
    assert settings.max_attempts >= 1


def test_default_region_fallback_and_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")
    assert StoreSettings().region == "ap-south-1"
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    assert StoreSettings().region == "eu-central-1"
    assert StoreSettings(region="us-west-2").region == "us-west-2"


def test_dotenv_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A .env shared with other tools may hold variables that are none of ours.
    (tmp_path / ".env").write_text("AWS_S3_BUCKET_NAME=from-dotenv\nAWS_REGION=eu-north-1\nDATABASE_URL=x\n")
    monkeypatch.chdir(tmp_path)
    settings = StoreSettings()
    assert (settings.bucket, settings.region) == ("from-dotenv", "eu-north-1")
    monkeypatch.setenv("AWS_S3_BUCKET_NAME", "from-env")
    assert StoreSettings().bucket == "from-env"


@pytest.mark.parametrize(
    "values",
    [
        {"part_size": 5 * 1024 * 1024 - 1},
        {"part_size": 5 * 1024**3 + 1},
        {"multipart_threshold": 1024},
        {"concurrency": 0},
        {"max_attempts": 0},
        {"read_timeout": 0},
        {"aws_access_key_id": "only-the-id"},
    ],
)
def test_invalid_settings_raise_config_error(values: dict[str, object]) -> None:
    with pytest.raises(ConfigError) as caught:
        StoreSettings(**values)
    field = next(iter(values))
    assert field in str(caught.value) or "together" in str(caught.value)


def test_a_misspelt_argument_is_refused_with_a_suggestion() -> None:
    """Dropped silently, ``access_key_id=`` would leave the credentials to the default chain."""
    with pytest.raises(ConfigError, match="'access_key_id'; did you mean 'aws_access_key_id'"):
        StoreSettings(access_key_id="x", aws_secret_access_key="y")
    with pytest.raises(ConfigError, match="'concurency'; did you mean 'concurrency'"):
        StoreSettings(concurency=3)
    # Fields, their environment names as arguments, and pydantic-settings' own options are all taken.
    taken = StoreSettings(region="eu-west-1", AWS_S3_BUCKET_NAME="b", _env_file=None)
    assert (taken.region, taken.bucket) == ("eu-west-1", "b")


def test_credentials_never_in_repr() -> None:
    settings = StoreSettings(
        aws_access_key_id="AKIAEXAMPLEKEYID", aws_secret_access_key="s3cr3t-value", aws_session_token="tok3n-value"
    )
    for text in (repr(settings), str(settings), repr(AsyncS3Store("b", settings=settings))):
        assert "AKIAEXAMPLEKEYID" not in text
        assert "s3cr3t-value" not in text
        assert "tok3n-value" not in text
    assert settings.aws_secret_access_key is not None
    assert settings.aws_secret_access_key.get_secret_value() == "s3cr3t-value"


def test_bucket_from_argument_or_settings() -> None:
    assert AsyncS3Store("given", settings=StoreSettings(bucket="configured")).bucket == "given"
    assert AsyncS3Store(settings=StoreSettings(bucket="configured")).bucket == "configured"
    with pytest.raises(ConfigError, match="no bucket"):
        AsyncS3Store(settings=StoreSettings())
