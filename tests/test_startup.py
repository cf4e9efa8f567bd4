"""``import aiostorage`` is lazy, and the command line's declarations import only click."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

import aiostorage

HEAVY = ("aiohttp", "aiobotocore", "botocore", "boto3", "pydantic", "rich", "anyio")


@pytest.mark.parametrize("module", ["aiostorage", "aiostorage.cli"])
def test_start_up_imports_no_client_library(module: str) -> None:
    """``import aiostorage`` and the command line's ``--help`` load none of the heavy libraries."""
    probe = (
        f"import sys, {module}; heavy = {HEAVY!r};"
        "print(sorted({name.split('.')[0] for name in sys.modules} & set(heavy)))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False)
    assert loaded.stdout.strip() == "[]", loaded.stderr


def test_every_public_name_loads_where_type_checkers_see_it() -> None:
    """``_LOCATIONS`` (what ``__getattr__`` imports) agrees with ``__all__`` and the ``TYPE_CHECKING`` imports."""
    tree = ast.parse(open(aiostorage.__file__).read())  # noqa: SIM115 - read once, closed by the collector
    checked: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for statement in node.body:
                assert isinstance(statement, ast.ImportFrom)
                for alias in statement.names:
                    checked[alias.name] = "." * statement.level + (statement.module or "")
    locations = aiostorage._LOCATIONS
    assert checked == locations
    assert sorted(aiostorage.__all__) == sorted(locations)
    for name in aiostorage.__all__:
        value = getattr(aiostorage, name)
        assert value.__module__.startswith("aiostorage"), name
    assert set(aiostorage.__all__) <= set(dir(aiostorage))
    with pytest.raises(AttributeError, match="no_such_name"):
        aiostorage.no_such_name  # type: ignore[attr-defined]  # noqa: B018
