"""Label a folder of photos on a device, with the edge API alone (numpy, Pillow, a TFLite interpreter).

    python examples/label_folder.py BUNDLE PHOTO_DIR [--threads 2]

Prints one line per photo: its labels over the bundle's per-class thresholds, and the top scores.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from edge import BundleError, Predictor
from edge.preprocess import ImageError, list_images


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("photos", type=Path)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    try:
        predictor = Predictor(args.bundle, num_threads=args.threads)
    except BundleError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    failed = 0
    t0 = time.perf_counter()
    photos = list_images(args.photos)
    for path in photos:
        try:
            result = predictor.predict([path])[0]
        except ImageError as err:
            print(f"skipped: {err}", file=sys.stderr)
            failed += 1
            continue
        top = sorted(result.probabilities.items(), key=lambda kv: -kv[1])[:3]
        print(f"{path.name}: {', '.join(result.labels) or '-'}   ({', '.join(f'{c} {p:.2f}' for c, p in top)})")
    seconds = time.perf_counter() - t0
    print(f"{len(photos) - failed} photos in {seconds:.2f}s ({predictor.manifest['architecture']}, "
          f"{predictor.manifest['quantization']})", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
