"""make bench-formats: the shared VOC copy converted to CSV and to COCO trains (the study's recipe,
3 epochs, 100x100) to the same val mAP as from VOC. The conversions hard-link the photos (no second
copy). ``python benchmarks/bench_formats.py VOC_ROOT WORK_DIR``; finished runs are reused."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import results  # noqa: E402
from benchmarks.common import ensure_run, mledge  # noqa: E402
from edge.text_table import format_rows  # noqa: E402

RECIPE = ["--epochs", "3", "--patience", "0"]  # the study's: BCE, Adam 1e-3, flip + zoom 0.2
TOLERANCE = 0.01  # mAP points


def main(voc_root: str, work: str) -> None:
    base = Path(work) / "formats"
    data = {"voc": voc_root}
    for layout in ("csv", "coco"):
        dest = base / f"data-{layout}"
        if not dest.is_dir():
            mledge("data", "convert", voc_root, str(dest), "--to", layout)
        data[layout] = str(dest)
    rows = []
    for layout, root in data.items():
        run = base / f"run-{layout}"
        t0 = time.time()
        ensure_run(run, root, RECIPE)
        metrics = json.loads((run / "metrics.json").read_text())
        config = json.loads((run / "config.json").read_text())
        rows.append({"layout": layout, "format_recorded": config["format"], "val_images": metrics["images"],
                     "mAP_area": round(100 * metrics["mAP_area"], 4), "mAP_voc07": round(100 * metrics["mAP_voc07"], 4),
                     "train_s": metrics["train_seconds"], "wall_s": round(time.time() - t0, 1)})
    for row in rows:
        row["delta_vs_voc"] = round(row["mAP_area"] - rows[0]["mAP_area"], 4)
    results.write("bench_formats", rows, "layout")
    print(format_rows(rows))
    worst = max(abs(r["delta_vs_voc"]) for r in rows)
    print(f"largest difference from VOC: {worst:.4f} mAP points (target: within {TOLERANCE})")
    if worst > TOLERANCE:
        sys.exit(1)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
