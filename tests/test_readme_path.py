"""The README's path for a new user, followed as written: its "Your own photos" commands on a small
synthetic CSV dataset named `photos`, from labels to a bundle that labels new photos."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

from click.testing import CliRunner

from mledge.cli import main

REPO = Path(__file__).parents[1]


def readme_commands(section: str) -> list[list[str]]:
    """The mledge commands of the first sh block under ``## section``, comments and line breaks joined."""
    text = (REPO / "README.md").read_text()
    body = text[text.index(f"## {section}\n"):]
    block = re.search(r"```sh\n(.*?)```", body, re.S).group(1).replace("\\\n", " ")
    lines = [line.split("#")[0].strip() for line in block.splitlines()]
    return [shlex.split(line)[1:] for line in lines if line.startswith("mledge ")]


def test_own_photos_as_the_readme_says(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    made = runner.invoke(main, ["data", "synth", "photos", "--format", "csv", "--images", "32", "--size", "40"])
    assert made.exit_code == 0, made.output
    (tmp_path / "new-photos").mkdir()
    for photo in sorted((tmp_path / "photos" / "images").iterdir())[:3]:
        shutil.copy(photo, tmp_path / "new-photos" / photo.name)
    commands = readme_commands("Your own photos")
    assert [c[0] for c in commands] == ["data", "train", "export", "edge"]
    for args in commands:
        result = runner.invoke(main, args)
        assert result.exit_code == 0, (args, result.output)
    assert (tmp_path / "runs" / "mine" / "metrics.json").is_file()
    assert (tmp_path / "bundles" / "mine" / "manifest.json").is_file()
    assert all(name in result.output for name in sorted(p.name for p in (tmp_path / "new-photos").iterdir()))
