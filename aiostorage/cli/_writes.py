"""The options of what ``cp`` and ``sync`` write: content type, metadata, and ``WriteOptions``' fields."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._exceptions import InvalidArgument

if TYPE_CHECKING:
    from .._options import WriteOptions

__all__ = ["FLAGS", "Writes", "attachment"]

# Each option's flag, by the name click gives its value; the last six are WriteOptions' fields.
FLAGS = {
    "content_type": "--content-type",
    "metadata": "--metadata",
    "cache_control": "--cache-control",
    "content_disposition": "--content-disposition",
    "storage_class": "--storage-class",
    "sse": "--sse",
    "sse_kms_key_id": "--sse-kms-key-id",
    "tags": "--tag",
}


def _pairs(flag: str, values: tuple[str, ...]) -> dict[str, str] | None:
    if not values:
        return None
    pairs: dict[str, str] = {}
    for value in values:
        name, equals, text = value.partition("=")
        if not equals or not name:
            raise InvalidArgument(f"{flag} {value!r}: write {flag} name=value")
        pairs[name] = text
    return pairs


@dataclass(frozen=True)
class Writes:
    """What the command line asked the written objects to carry."""

    given: dict[str, Any]

    @classmethod
    def from_options(cls, **values: Any) -> Writes:
        return cls({name: value for name, value in values.items() if value not in (None, ())})

    def refuse(self, *names: str, what: str) -> None:
        """Refuse, naming its flag, any of ``names`` (all by default) that ``what`` (e.g. "a download") cannot carry."""
        for name in self.given:
            if name in (names or FLAGS):
                raise InvalidArgument(f"{FLAGS[name]} does not apply to {what}")

    @property
    def content_type(self) -> str | None:
        return self.given.get("content_type")

    @property
    def metadata(self) -> dict[str, str] | None:
        return _pairs("--metadata", self.given.get("metadata", ()))

    @property
    def options(self) -> WriteOptions | None:
        fields = {name: value for name, value in self.given.items() if name not in ("content_type", "metadata")}
        if not fields:
            return None
        from .._options import WriteOptions

        if "tags" in fields:
            fields["tags"] = _pairs("--tag", fields["tags"])
        return WriteOptions(**fields)


def attachment(filename: str) -> str:
    """A ``Content-Disposition`` that makes a browser save the download as ``filename`` (RFC 6266).

    The quoted ``filename`` is the ASCII fallback; a name outside ASCII also goes in ``filename*``,
    percent-encoded UTF-8, which browsers prefer.
    """
    from urllib.parse import quote

    if not filename or any(character in filename for character in "\r\n\0/\\"):
        raise InvalidArgument(f"--filename {filename!r}: give a file name (no slashes, no line breaks)")
    fallback = filename.encode("ascii", "replace").decode().replace('"', "'")
    value = f'attachment; filename="{fallback}"'
    if fallback != filename:
        value += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return value
