"""--force replaces only what mledge wrote: a folder holding one file of the user's is refused (exit 2,
naming the file, the file intact) by every command that writes; places above the user's work and the
inputs being read are never an --out; a replaced run is kept until its successor is finished."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from mledge.cli import main
from tests.helpers import tiny_cli_args
from toolkit.outputs import MARKER, set_aside, set_aside_path

REPO = Path(__file__).parents[1]


def invoke(*args) -> object:
    return CliRunner().invoke(main, [str(a) for a in args])


def user_folder(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "thesis.txt").write_text("three years of work\n")
    return path


def assert_refused(result, folder: Path) -> None:
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "thesis.txt" in lines[0] and "which mledge did not write" in lines[0], result.output
    assert "Traceback" not in result.output
    assert sorted(p.name for p in folder.iterdir()) == ["thesis.txt"]
    assert (folder / "thesis.txt").read_text() == "three years of work\n"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, synth_root, trained):
    """A dataset and a finished run to read, and a bundle made from it."""
    from export.convert import ExportOptions, export_run

    root = tmp_path_factory.mktemp("inputs")
    run = trained("multioutput")
    export_run(run, root / "bundle", ExportOptions())
    return {"data": synth_root, "run": run, "bundle": root / "bundle"}


def commands(inputs, out: Path) -> dict[str, list]:
    data, run = inputs["data"], inputs["run"]
    return {
        "train": tiny_cli_args(data, "multioutput", out),
        "export": ["export", run, "--out", out],
        "data synth": ["data", "synth", out, "--images", 16, "--size", 32],
        "data convert": ["data", "convert", data, out, "--to", "csv"],
        "data split": ["data", "split", data, "--out", out],
    }


@pytest.mark.parametrize("command", ["train", "export", "data synth", "data convert", "data split"])
def test_force_never_replaces_a_folder_of_the_users(tmp_path, inputs, command):
    folder = user_folder(tmp_path / "mine")
    for force in ([], ["--force"]):
        assert_refused(invoke(*commands(inputs, folder)[command], *force), folder)


@pytest.mark.parametrize("command", ["train", "export", "data synth", "data convert", "data split"])
def test_force_replaces_our_own_output(tmp_path, inputs, command):
    out = tmp_path / "out"
    args = commands(inputs, out)[command]
    assert invoke(*args).exit_code == 0
    kind = json.loads((out / MARKER).read_text())["kind"]
    again = invoke(*args)
    assert again.exit_code == 2 and f"holds an earlier {kind} (use --force" in again.output
    assert invoke(*args, "--force").exit_code == 0
    assert json.loads((out / MARKER).read_text())["kind"] == kind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary or set-aside folder left


def test_one_foreign_file_deep_inside_our_output_makes_it_the_users(tmp_path, inputs):
    out = tmp_path / "data"
    assert invoke("data", "synth", out, "--images", 16, "--size", 32).exit_code == 0
    (out / "VOC2007" / "JPEGImages" / "notes.txt").write_text("mine")
    result = invoke("data", "synth", out, "--images", 16, "--size", 32, "--force")
    assert result.exit_code == 2 and "VOC2007/JPEGImages/notes.txt" in result.output
    assert (out / "VOC2007" / "JPEGImages" / "notes.txt").read_text() == "mine"


def test_a_real_voc_devkit_is_never_taken_for_ours(tmp_path, synth_root):
    """A dataset without our marker (the user's VOC download) is the user's, whatever its layout."""
    import shutil

    devkit = tmp_path / "VOCdevkit"
    shutil.copytree(synth_root, devkit)
    (devkit / MARKER).unlink()
    result = invoke("data", "synth", devkit, "--images", 16, "--size", 32, "--force")
    assert result.exit_code == 2 and "which mledge did not write" in result.output
    assert (devkit / "VOC2007" / "ImageSets" / "Main" / "train.txt").is_file()


def test_report_replaces_only_a_report(tmp_path, inputs):
    mine = tmp_path / "page.html"
    mine.write_text("<html>my own page</html>")
    for force in ([], ["--force"]):
        result = invoke("report", inputs["run"], "--out", mine, *force)
        assert result.exit_code == 2 and "is not a report that mledge wrote" in result.output
    assert mine.read_text() == "<html>my own page</html>"
    ours = tmp_path / "report.html"
    assert invoke("report", inputs["run"], "--out", ours).exit_code == 0
    assert invoke("report", inputs["run"], "--out", ours).exit_code == 2
    assert invoke("report", inputs["run"], "--out", ours, "--force").exit_code == 0


def test_places_never_an_output(tmp_path, monkeypatch, inputs):
    home, work = tmp_path / "home", tmp_path / "home" / "projects" / "work"
    work.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    data, run = inputs["data"], inputs["run"]
    refused = {
        ".": "is the current folder", "..": "holds the current folder", str(home): "is the home folder",
        "/": "is the file system root", str(REPO): "is the multilabel-edge checkout",
    }
    for out, why in refused.items():
        for args in (["data", "synth", out, "--images", 16, "--force"],
                     tiny_cli_args(data, "multioutput", out, "--force"), ["export", run, "--out", out, "--force"]):
            result = invoke(*args)
            assert result.exit_code == 2 and why in result.output, (args, result.output)
    for args in (["data", "convert", data, data.parent, "--to", "coco", "--force"],
                 ["data", "split", data, "--out", data, "--force"],
                 tiny_cli_args(data, "multioutput", data, "--force"),
                 ["export", run, "--out", run, "--force"]):
        result = invoke(*args)
        assert result.exit_code == 2 and "which this command reads" in result.output, (args, result.output)
    assert sorted(p.name for p in work.iterdir()) == []


def test_a_replaced_run_is_kept_until_its_successor_is_finished(tmp_path, synth_root):
    out = tmp_path / "run"
    assert invoke(*tiny_cli_args(synth_root, "multioutput", out)).exit_code == 0
    first = (out / "metrics.json").read_text()
    kept = set_aside(out)  # what --force does before the new run trains; a kill here leaves it there
    assert kept == set_aside_path(out) and (kept / "metrics.json").read_text() == first and not out.exists()
    out.mkdir()
    (out / "config.json").write_text((kept / "config.json").read_text())  # an unfinished successor
    assert set_aside(out) == kept and (kept / "metrics.json").read_text() == first  # the finished one stays
    result = invoke(*tiny_cli_args(synth_root, "multioutput", out, "--seed", "7"), "--force")
    assert result.exit_code == 0, result.output
    assert json.loads((out / "config.json").read_text())["seed"] == 7
    assert not kept.exists()


def test_bench_save_replaces_only_a_bench_result(tmp_path, inputs):
    mine = tmp_path / "notes.json"
    mine.write_text('{"mine": true}')
    photos = inputs["data"] / "VOC2007" / "JPEGImages"
    args = ["edge", "bench", inputs["bundle"], "--images", photos, "--limit", 4, "--runs", 2, "--warmup", 0]
    result = invoke(*args, "--save", mine)
    assert result.exit_code == 2 and "is not a bench result that mledge wrote" in result.output
    assert mine.read_text() == '{"mine": true}'
    ours = tmp_path / "bench.json"
    assert invoke(*args, "--save", ours).exit_code == 0
    assert invoke(*args, "--save", ours).exit_code == 0  # an earlier result of ours is replaced


def test_a_job_arrays_task_never_writes_into_a_folder_of_the_users(tmp_path, synth_root):
    folder = user_folder(tmp_path / "mine")
    result = invoke(*tiny_cli_args(synth_root, "independent", folder, "--classes", "cat"))
    assert_refused(result, folder)
