"""MkDocs hooks for the docs site (``hooks:`` in mkdocs.yml).

Some pages the nav names are written alongside the features they describe and may not be in a checkout yet.
Listed in ``PENDING``, such a page is dropped from the nav while its file is missing, and links to it are
shown as their text, so the strict build still fails on every other missing page or broken link. Once a
page exists, nothing here touches it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

PENDING = frozenset(
    {
        "guides/object-options.md",
        "guides/browser-uploads.md",
        "guides/lambda.md",
        "guides/cli.md",
        "performance-large-objects.md",
    }
)


def _missing(config: Any) -> set[str]:
    docs = Path(config["docs_dir"])
    return {page for page in PENDING if not (docs / page).is_file()}


def _prune(nav: Any, missing: set[str]) -> Any:
    if isinstance(nav, list):
        kept = [_prune(entry, missing) for entry in nav]
        return [entry for entry in kept if entry is not None]
    if isinstance(nav, dict):
        pruned = {title: _prune(entry, missing) for title, entry in nav.items()}
        pruned = {title: entry for title, entry in pruned.items() if entry not in (None, [])}
        return pruned or None
    if isinstance(nav, str) and nav in missing:
        return None
    return nav


def on_config(config: Any) -> Any:
    missing = _missing(config)
    if missing and config.get("nav"):
        config["nav"] = _prune(config["nav"], missing)
    return config


_LINK = re.compile(r"\[([^\]]+)\]\(([^)#\s]+)(#[^)\s]*)?\)")


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    missing = _missing(config)
    if not missing:
        return markdown
    here = Path(page.file.src_uri).parent

    def unlink(match: re.Match[str]) -> str:
        target = (here / match.group(2)).as_posix()
        parts: list[str] = []
        for part in target.split("/"):
            if part == "..":
                if parts:
                    parts.pop()
            elif part not in ("", "."):
                parts.append(part)
        return match.group(1) if "/".join(parts) in missing else match.group(0)

    return _LINK.sub(unlink, markdown)
