"""From labelled photos to predictions in Python, as in a notebook: a recipe, evaluation, export.

    python examples/recipe_api.py WORK_DIR [--quick]

Makes a small synthetic dataset in WORK_DIR (use your own photos instead), trains the `study`
recipe on it (--quick: 2 epochs of a narrow CNN at 32 px, for a smoke test), evaluates, exports in
the recipe's quantization and labels three photos with the bundle.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mledge import api
from toolkit.data.synth import make_synthetic_voc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    data = make_synthetic_voc(args.work / "data", images=48, size=48, force=True).parent
    quick = {"epochs": 2, "img_size": 32, "widths": "4,8,16"} if args.quick else {}

    metrics = api.train(data, args.work / "run", recipe="study", force=True, **quick)
    print(f"val mAP {100 * metrics['mAP_area']:.2f}")
    report = api.evaluate(args.work / "run", split="test")
    print(f"test mAP {100 * report['mAP_area']:.2f}")
    manifest = api.export(args.work / "run", args.work / "bundle", force=True)
    print(f"bundle: {manifest['quantization']}, {manifest['bytes'] / 1e6:.2f} MB")
    photos = sorted((data / "VOC2007" / "JPEGImages").glob("*.jpg"))[:3]
    for result in api.load(args.work / "bundle").predict(photos):
        print(result.source, result.labels)


if __name__ == "__main__":
    main()
