"""Fetching VOC 2007: an unreachable host and a wrong archive each give one clear line."""

from __future__ import annotations

from click.testing import CliRunner

from mledge.cli import main


def test_unreachable_host_says_how_to_place_files(tmp_path):
    result = CliRunner().invoke(main, ["data", "fetch", "voc2007", "--dest", str(tmp_path),
                                       "--mirror", "http://127.0.0.1:9/", "--timeout", "5"])
    assert result.exit_code == 2
    error = result.stderr.strip()
    assert error.startswith("error: http://127.0.0.1:9/VOCtrainval_06-Nov-2007.tar: cannot download")
    assert "put them in" in error and str(tmp_path) in error
    assert not list(tmp_path.glob("*.part"))


def test_wrong_archive_is_refused(tmp_path):
    (tmp_path / "VOCtrainval_06-Nov-2007.tar").write_bytes(b"not the archive")
    result = CliRunner().invoke(main, ["data", "fetch", "voc2007", "--dest", str(tmp_path),
                                       "--mirror", "http://127.0.0.1:9/"])
    assert result.exit_code == 2
    assert "VOCtrainval_06-Nov-2007.tar: md5 does not match the official archive" in result.output
