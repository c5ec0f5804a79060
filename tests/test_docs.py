"""The docs hold together: every relative link resolves, and the README stays a quick start."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# [text](target) and [text](target "title"), skipping images' alt text is not needed: ![..](..) matches too.
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md"), ROOT / "shards" / "README.md",
                ROOT / "benchmarks" / "README.md"])


def relative_links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.DOTALL)  # code is not links
    return [target for target in LINK.findall(text)
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target) and not target.startswith("#")]


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_relative_link_resolves(page: Path) -> None:
    broken = [target for target in relative_links(page)
              if not (page.parent / target.split("#", 1)[0]).exists()]
    assert not broken, f"{page.relative_to(ROOT)}: links to missing files: {broken}"


def test_the_link_check_finds_links_and_broken_ones(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("[a](docs/x.md) [b](https://example.org) [c](#anchor) ![d](img/y.png \"t\")\n"
                    "```\n[e](not/a/link.md)\n```\n")
    assert relative_links(page) == ["docs/x.md", "img/y.png"]


def test_the_readme_is_a_quick_start_and_names_the_manual() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text) <= 12_000, f"README.md is {len(text)} characters; move detail into docs/"
    assert "make demo" in text and "make test" in text and "docs/README.md" in text
