"""The front door: a README of at most 250 lines that links every docs page, docs that speak of the
software as it is, and every benchmark table the same as what benchmarks/results/ generates."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).parents[1]
DOCS = sorted((REPO / "docs").glob("*.md"))


def test_readme_is_short_and_links_every_page():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    assert "make demo" in readme and "make test" in readme
    for page in DOCS:
        assert f"(docs/{page.name})" in readme, f"README does not link docs/{page.name}"


def test_links_between_pages_resolve():
    for page in [REPO / "README.md", *DOCS]:
        for target in re.findall(r"\]\(([^)#:]+\.(?:md|png))(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).is_file(), f"{page.name} links {target}, which does not exist"


def test_no_history_in_readme_or_docs():
    words = re.compile(r"\b(sessions?|last time|earlier today|this session|the AMD machine)\b", re.I)
    for page in [REPO / "README.md", *DOCS]:
        found = words.search(page.read_text())
        assert not found, f"{page.name} tells history: {found.group(0)!r}"


def test_docs_match_the_records():
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "make_docs.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_record_names_its_command_commit_and_machine():
    for path in sorted((REPO / "benchmarks" / "results").glob("*.jsonl")):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            assert record["command"] and record["commit"] and record["date"] and record["run_id"]
            assert {"cpu", "flags", "cores", "tensorflow"} <= record["machine"].keys(), path.name


def test_the_generator_fails_on_a_stale_table(tmp_path, monkeypatch):
    sys.path.insert(0, str(REPO / "scripts"))
    import make_docs

    page = tmp_path / "README.md"
    page.write_text("before\n<!-- results:study -->\na number typed by hand\n<!-- /results -->\nafter\n")
    filled = make_docs.fill(page.read_text())
    assert "a number typed by hand" not in filled and filled.startswith("before\n") and filled.endswith("after\n")
    assert make_docs.fill(filled) == filled
