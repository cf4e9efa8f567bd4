"""``--exclude`` and ``--include``, as the AWS CLI reads them.

Every path is included to begin with. The filters are then read in the order given, and each one whose
pattern matches the path decides: ``--exclude`` leaves the path out, ``--include`` takes it back. So the
last matching filter wins: ``--exclude '*' --include '*.jpg'`` keeps only the JPEGs, while
``--include '*.jpg' --exclude '*'`` keeps nothing.

Patterns are matched against the path relative to the source (the folder, or the prefix as a folder),
``/``-separated, with ``fnmatch``'s rules: ``*`` matches any characters, ``/`` included (``*.log``
matches ``a/b/c.log``), ``?`` any one character, ``[abc]`` one of them. Case matters, as in S3 keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

__all__ = ["FILTER_OPTIONS", "Filters", "filter_rules"]

FILTER_OPTIONS = ("--exclude", "--include")


@dataclass(frozen=True)
class Filters:
    """Ordered ``(include, pattern)`` rules; calling it with a relative path says whether it is kept."""

    rules: tuple[tuple[bool, str], ...] = ()

    def __call__(self, relative: str) -> bool:
        kept = True
        for include, pattern in self.rules:
            if fnmatchcase(relative, pattern):
                kept = include
        return kept

    def __bool__(self) -> bool:
        return bool(self.rules)


def filter_rules(args: list[str]) -> Filters:
    """The filters in ``args`` (a command's arguments) in the order given, which click does not keep."""
    rules: list[tuple[bool, str]] = []
    position = 0
    while position < len(args):
        arg = args[position]
        if arg == "--":
            break
        name, equals, value = arg.partition("=")
        if name in FILTER_OPTIONS:
            if not equals:
                position += 1
                if position >= len(args):
                    break  # click reports the missing value
                value = args[position]
            rules.append((name == "--include", value))
        position += 1
    return Filters(tuple(rules))
