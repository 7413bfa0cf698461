"""``mledge export``: a finished RUN -> a TFLite bundle."""

from __future__ import annotations

import sys

import click

from mledge.params import COUNT, OutputFolder


@click.command("export")
@click.argument("run", type=click.Path(file_okay=False))
@click.option("--quant", type=click.Choice(["float32", "float16", "dynamic", "int8", "int8-float-last"]),
              # = export.quantize.QUANT_MODES, which `mledge edge` must not load
              help="Default: the run's recipe's mode (see mledge recipes), float32 for a run without a recipe. "
              "float32; float16 weights; dynamic (int8 weights); int8 (full integer, uint8 input); "
              "int8-float-last (int8 but the logits layer in float: keeps a wide-logit model's mAP; float input). "
              "int8 modes calibrate on training images (see export/quantize.py).")
@click.option("--out", required=True, type=OutputFolder(), help="Bundle folder to write.")
@click.option("--calib-split", default="train", show_default=True, help="int8: split the calibration images come from.")
@click.option("--calib-images", type=click.IntRange(1, 100_000),
              help="int8: number of calibration images (default: the run's recipe's, 100 for the edge recipes; "
              "300 otherwise).")
@click.option("--fuse", is_flag=True, help="independent/shared: one .tflite for the ensemble (shared: the trunk "
              "runs once, then the 20 heads) instead of one file per class.")
@click.option("--output", type=click.Choice(["logits", "probabilities"]), default="logits", show_default=True,
              help="logits: sigmoid applied in float on the device (keeps int8 mAP); probabilities: in-graph sigmoid.")
@click.option("--eval-split", help="Split to compare Keras and bundle on (default: the run's val split).")
@click.option("--eval-images", type=COUNT, help="Evaluate on the first N images only.")
@click.option("--max-map-drop", type=click.FloatRange(-100, 100),
              help="Exit non-zero (bundle kept) when the bundle loses more than "
              "this many mAP points against Keras.")
@click.option("--flip-average/--single-view", default=None,
              help="The device averages each photo's probabilities with its mirror's: two invocations, twice the "
              "latency, a few tenths of mAP (docs/pretrained.md). Recorded in the manifest; the Keras figure "
              "it is compared with averages the same way. A bare copy of a file scores one view. Default: the "
              "run's recipe's choice (edge-best-flip: flip), a single view for a run without a recipe.")
@click.option("--force", is_flag=True,
              help="Replace --out if it holds an earlier bundle of mledge's (never a folder holding other files).")
def export_cmd(run, quant, out, calib_split, calib_images, fuse, output, eval_split, eval_images, max_map_drop,
               flip_average, force):
    """Convert a finished RUN into a TFLite bundle, then measure it against the Keras model."""
    from export.convert import ExportOptions, export_run
    from mledge.recipe_run import recipe_export

    recipe = recipe_export(run)
    chosen = f" (no --quant: {recipe.why})" if quant is None else ""
    quant, calib_images, flip_average = recipe.fill(quant, calib_images, flip_average)
    manifest = export_run(run, out, ExportOptions(quant=quant, calib_split=calib_split, calib_images=calib_images,
                                                  fuse=fuse, output=output, eval_split=eval_split,
                                                  eval_images=eval_images, force=force,
                                                  flip_average=flip_average))
    ev = manifest["evaluation"]
    drop = 100 * (ev["keras_mAP_area"] - ev["bundle_mAP_area"])
    flip = ", each photo averaged with its mirror" if flip_average else ""
    click.echo(f"{out}: {manifest['architecture']} {quant}{chosen}{flip}, {len(manifest['files'])} file(s), "
               f"{manifest['bytes'] / 1e6:.2f} MB, converted in {manifest['conversion_seconds']:.1f}s")
    click.echo(f"  {ev['split']} ({ev['images']} images): mAP Keras {100 * ev['keras_mAP_area']:.2f} -> bundle "
               f"{100 * ev['bundle_mAP_area']:.2f} (area; drop {drop:+.2f}), max |dprob| {ev['max_abs_prob_diff']:.2e}")
    if ev.get("seen_in_training"):
        click.echo(f"  (a final run was trained on {ev['split']}: the drop is the quantization's; the mAP is not "
                   "held out)")
    if max_map_drop is not None and drop > max_map_drop:
        click.echo(f"warning: bundle loses {drop:.2f} mAP points, more than --max-map-drop {max_map_drop} "
                   f"(bundle kept at {out})", err=True)
        sys.exit(1)
