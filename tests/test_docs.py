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


def test_every_record_validates_against_the_schema():
    import jsonschema

    schema = json.loads((REPO / "benchmarks" / "record.schema.json").read_text())
    for path in sorted((REPO / "benchmarks" / "results").glob("*.jsonl")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            record = json.loads(line)
            jsonschema.validate(record, schema)
            assert record["bench"] == path.stem, f"{path.name}:{number} holds a record of {record['bench']}"


def test_a_record_written_by_a_bench_validates(tmp_path, monkeypatch):
    import jsonschema

    from benchmarks import results

    monkeypatch.setattr(results, "RESULTS", tmp_path)
    results.write("bench_probe", [{"name": "a", "MB": 1.5}, {"name": "b", "MB": None}], "name", ["probe"])
    results.write("bench_probe", [{"name": "a", "MB": 2.0}], "name", ["probe"])  # a rerun replaces row a
    records = results.read("bench_probe")
    schema = json.loads((REPO / "benchmarks" / "record.schema.json").read_text())
    for record in records:
        jsonschema.validate(record, schema)
    assert sorted((r["row"], r["figures"]["MB"]) for r in records) == [("a", 2.0), ("b", None)]


def test_the_generator_fails_on_a_stale_table(tmp_path, monkeypatch):
    sys.path.insert(0, str(REPO / "scripts"))
    import make_docs

    page = tmp_path / "README.md"
    page.write_text("before\n<!-- results:study -->\na number typed by hand\n<!-- /results -->\nafter\n")
    filled = make_docs.fill(page.read_text())
    assert "a number typed by hand" not in filled and filled.startswith("before\n") and filled.endswith("after\n")
    assert make_docs.fill(filled) == filled


def shell_commands(page: Path) -> list[list[str]]:
    """Every `mledge ...` line of the page's sh blocks, line continuations joined, comments dropped."""
    import shlex

    commands = []
    for block in re.findall(r"```sh\n(.*?)```", page.read_text(), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #")[0].strip()
            if line.startswith("mledge "):
                commands.append([t.strip("[]") for t in shlex.split(line)[1:]])
    return commands


def test_every_command_on_the_pages_names_real_commands_and_options():
    import click

    from mledge.cli import main

    checked = 0
    for page in [REPO / "README.md", *DOCS]:
        for tokens in shell_commands(page):
            command, path = main, ["mledge"]
            while isinstance(command, click.Group) and tokens and not tokens[0].startswith("-"):
                assert tokens[0] in command.commands, f"{page.name}: no command {' '.join(path + tokens[:1])}"
                path.append(tokens[0])
                command = command.commands[tokens.pop(0)]
            names = {o for p in command.params for o in (*p.opts, *getattr(p, "secondary_opts", []))} | {"--help"}
            for token in tokens:
                if token.startswith("--"):
                    assert token.split("=")[0] in names, f"{page.name}: {' '.join(path)} has no option {token}"
            checked += 1
    assert checked > 40
