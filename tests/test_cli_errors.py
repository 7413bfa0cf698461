"""No user mistake, in any command, ends in a traceback: each is refused before any work, in one
line on stderr, exit 2. A real bug says so in one line, and MLEDGE_DEBUG=1 shows its traceback."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from mledge.cli import main


@pytest.fixture(scope="module")
def places(tmp_path_factory, synth_root):
    base = tmp_path_factory.mktemp("cli")
    (base / "afile").write_text("not a folder")
    return {"DATA": str(synth_root), "FILE": str(base / "afile"), "MISSING": str(base / "missing"),
            "OUT": str(base / "out")}


MISTAKES = {  # command line -> what the one line must say
    "train DATA --out OUT --epochs 0": "Invalid value for '--epochs': 0 is not in the range 1<=x<=100000",
    "train DATA --out OUT --batch 0": "'--batch'",
    "train DATA --out OUT --lr -1": "'--lr'",
    "train DATA --out OUT --jobs 0": "'--jobs'",
    "train DATA --out OUT --zoom 2": "'--zoom'",
    "train DATA --out OUT --translate 0.7": "'--translate'",
    "train DATA --out OUT --seed -1": "'--seed'",
    "train DATA --out OUT --img-size 8": "8 is below the study network's minimum of 10 pixels",
    "train DATA --out OUT --backbone efficientnet-lite0 --img-size 16": "below the efficientnet-lite0 network's "
                                                                       "minimum of 32 pixels",
    "train DATA --out OUT --widths 4,0,8": "every width must be at least 1",
    "train DATA --out FILE/run": "is a file, not a folder",
    "train DATA --out FILE": "is a file",
    "train MISSING --out OUT": "dataset root does not exist",
    "train --resume MISSING": "config.json: missing",
    "train DATA --arch shared --out OUT --trunk MISSING": "is not first-class, multitask or a run folder",
    "train DATA --arch shared --out OUT --trunk DATA": "config.json: missing",
    "train DATA --arch independent --out OUT --trunk DATA": "a trunk run applies to shared runs",
    "evaluate MISSING": "config.json: missing",
    "evaluate MISSING --threshold 1.5": "'--threshold'",
    "evaluate MISSING --plots FILE/plots": "is a file, not a folder",
    "compare MISSING": "config.json: missing",
    "export MISSING --out OUT --calib-images 0": "'--calib-images'",
    "export MISSING --out FILE/b": "is a file, not a folder",
    "export MISSING --out OUT --quant int4": "'--quant'",
    "classes retrain MISSING person --img-size 5": "config.json: missing",
    "classes retrain MISSING person --epochs 0": "'--epochs'",
    "classes add MISSING person DATA": "config.json: missing",
    "runs status MISSING": "config.json: missing",
    "weights import resnet": "'resnet' is not one of 'efficientnet-lite0'",
    "data synth OUT --images 0": "'--images'",
    "data synth OUT --size 4": "'--size'",
    "data synth FILE/x": "is a file, not a folder",
    "data stats MISSING": "dataset root does not exist",
    "data stats DATA --split nosuch": "no <class>_nosuch.txt files",
    "data fetch voc2007 --timeout 0": "'--timeout'",
    "edge predict MISSING DATA": "bundle folder does not exist",
    "edge predict MISSING DATA --threads 0": "'--threads'",
    "edge predict MISSING DATA --threshold -0.1": "'--threshold'",
    "edge bench MISSING --images DATA --runs 0": "'--runs'",
    "edge bench MISSING --images DATA --threads 1,x": "expected integers like 1,2,4",
    "edge bench MISSING --images DATA --threads 1,999": "'--threads'",
    "edge bench MISSING --images DATA --limit 0": "'--limit'",
    "edge bench MISSING": "needs exactly one of --images DIR or --data DATA",
    "edge info MISSING": "bundle folder does not exist",
}


@pytest.mark.parametrize("line", list(MISTAKES))
def test_a_mistake_is_one_line_and_exit_2(places, line):
    args = [places.get(word, word) for word in line.split()]
    args = [a.replace("FILE/", places["FILE"] + "/") for a in args]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.output.count("\n") == 1, result.output
    assert result.output.startswith("error: ") and MISTAKES[line] in result.output, result.output
    assert not os.path.exists(places["OUT"]), "a refused command wrote its output"


def test_a_bug_is_one_line_unless_debugging(monkeypatch, synth_root):
    import toolkit.data.stats

    def broken(data):
        raise TypeError("unsupported operand")

    monkeypatch.setattr(toolkit.data.stats, "compute_stats", broken)
    result = CliRunner().invoke(main, ["data", "stats", str(synth_root)])
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert "internal error, a bug in mledge (TypeError: unsupported operand)" in result.output
    assert "MLEDGE_DEBUG=1" in result.output
    monkeypatch.setenv("MLEDGE_DEBUG", "1")
    result = CliRunner().invoke(main, ["data", "stats", str(synth_root)])
    assert isinstance(result.exception, TypeError)  # the traceback is there to read


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_output_folder(tmp_path, synth_root):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    result = CliRunner().invoke(main, ["data", "synth", str(locked / "data")])
    assert result.exit_code == 2 and "is not writable" in result.output
