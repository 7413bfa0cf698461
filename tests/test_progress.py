"""Long work says how far it is: photos a second and the time left; short work says nothing."""

from __future__ import annotations

import re

from toolkit.progress import QUIET_BELOW, Progress


def test_long_work_reports_its_rate_and_the_time_left(capsys):
    progress = Progress("decoding train", 4 * QUIET_BELOW, every=0)
    for _ in range(QUIET_BELOW):
        progress.update(2)
    progress.close()
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) > 1
    assert re.fullmatch(r"decoding train: 2/4,000 photos, [\d,]+/s, [\d,]+ s left", lines[0])
    assert re.fullmatch(r"decoding train: 2,000 photos in [\d.,]+ s \([\d,]+/s\)", lines[-1])


def test_short_work_says_nothing(capsys):
    progress = Progress("decoding val", QUIET_BELOW - 1, every=0)
    for _ in range(QUIET_BELOW - 1):
        progress.update()
    progress.close()
    assert capsys.readouterr().err == ""
