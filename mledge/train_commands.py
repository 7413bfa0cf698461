"""``mledge train``: a RUN from a dataset (options, a recipe, --resume, --final)."""

from __future__ import annotations

from pathlib import Path

import click
from click.core import ParameterSource

from mledge import recipe_run
from mledge.params import (
    BATCH,
    EPOCHS,
    FRACTION,
    IMAGE_SIZE,
    LEARNING_RATE,
    LOSS_CHOICES,
    PATIENCE,
    SEED,
    WEIGHT_DECAY,
    OutputFolder,
    TrunkSource,
    dataset_options,
)
from toolkit.backbones.efficientnet_lite import VARIANTS, blocks
from toolkit.errors import UserError
from toolkit.recipes import RECIPES

BACKBONE_CHOICES = ("study", *VARIANTS)
ARCH_CHOICES = ("independent", "shared", "multioutput")


@click.command()
@click.argument("root", required=False, type=click.Path())
@click.option("--arch", type=click.Choice(ARCH_CHOICES), default="multioutput", show_default=True,
              help="independent: 20 CNNs; shared: frozen shared trunk + 20 heads; multioutput: one CNN.")
@click.option("--out", type=OutputFolder(), help="RUN folder to create (models, logs, metrics).")
@click.option("--resume", "resume_run", type=click.Path(file_okay=False),
              help="Continue the interrupted RUN from its last finished epoch; finished models are kept.")
@click.option("--recipe", type=click.Choice(list(RECIPES)),
              help="Train a named recipe, every stage of it, into --out (see mledge recipes: which to pick for "
              "which board). Any option given here overrides the recipe's and is recorded as an override.")
@click.option("--force", is_flag=True,
              help="Replace --out if it holds an earlier run of mledge's (never a folder holding other files).")
@click.option("--final", "final_from", type=click.Path(file_okay=False),
              help="The model to ship: retrain this finished val RUN's settings on its train and val splits "
              "together, each model for the epochs the val run kept, with its thresholds, into --out (no ROOT; "
              "the other training options are the val run's). It reports no val mAP: it has seen val.")
@click.option("--split", default="train", show_default=True, help="Training split.")
@click.option("--val-split", default="val", show_default=True,
              help="Split for checkpoint selection, early stopping and per-class thresholds.")
@dataset_options("--format", "--data-format")
@click.option("--labels", type=click.Choice(["imagesets", "annotations"]), default="imagesets", show_default=True,
              help="VOC's label source: ImageSets/Main class files or Annotations/*.xml.")
@click.option("--difficult", type=click.Choice(["ignore", "positive", "negative"]), default="ignore",
              show_default=True, help="Difficult-only labels: masked out of the loss, or taken as 1 or 0.")
@click.option("--on-bad-image", type=click.Choice(["error", "skip"]), default="error", show_default=True,
              help="An unreadable image stops loading, or is skipped with a warning.")
@click.option("--epochs", default=30, show_default=True, type=EPOCHS, help="Maximum epochs (per model).")
@click.option("--patience", default=5, show_default=True, type=PATIENCE, help="Stop after this many epochs without a "
              "better val mAP (0: never stop early); the best epoch is kept.")
@click.option("--img-size", type=IMAGE_SIZE, help="Input side in pixels (default: 100 for the study's CNN; 224, 240 "
              "and 260 for efficientnet-lite0, -lite1 and -lite2, the sizes they were trained at).")
@click.option("--backbone", type=click.Choice(BACKBONE_CHOICES), default="study", show_default=True,
              help="study: the study's CNN from scratch; efficientnet-lite0/1/2: ImageNet-pretrained, 3.4/4.2/4.9 M "
              "parameters in the backbone (import the weights once: mledge weights import NAME).")
@click.option("--freeze-backbone/--train-backbone", default=True, show_default=True,
              help="Pretrained backbone: its frozen part runs once per image and what trains reads that cache "
              "(fast, no pixel augmentation); --train-backbone runs the whole network on augmented images "
              "every step (slow on a CPU) and trains all of it, or its last --finetune-blocks.")
@click.option("--finetune-blocks", default=0, show_default=True, type=click.IntRange(0, 21),
              help="Pretrained backbone: also train its last N blocks (of 16 in Lite0, 21 in Lite1 and Lite2) and "
              "the head conv (batch norms frozen; with a frozen backbone, on cached activations with random flips of "
              "the maps).")
@click.option("--head", type=click.Choice(["avg", "csra"]), default="avg", show_default=True,
              help="Pretrained backbone: avg (average pooling, Dropout, Dense) or csra (class-specific residual "
              "attention: a score map per class, its average + --csra-lambda x its softmax-attention average; "
              "multioutput and independent).")
@click.option("--csra-lambda", default=0.1, show_default=True, type=click.FloatRange(0, 10),
              help="csra head: the weight of the attention average in [0, 10] (0: a plain average of the class's "
              "score map; larger: nearer its maximum, for small objects; 0.1 is the paper's for VOC).")
@click.option("--widths", default="32,64,512", show_default=True,
              help="Conv block 1, conv block 2 and dense widths (small ones for tests).")
@click.option("--batch", default=32, show_default=True, type=BATCH, help="Batch size.")
@click.option("--lr", default=1e-3, show_default=True, type=LEARNING_RATE, help="Adam learning rate.")
@click.option("--weight-decay", default=0.0, show_default=True, type=WEIGHT_DECAY,
              help="> 0: AdamW with this weight decay.")
@click.option("--ema", default=0.0, show_default=True, type=click.FloatRange(0, 1, max_open=True),
              help="Keep a moving average of the weights, this decay a step (0: off; 0.99 to 0.9999 average about "
              "the last 1 / (1 - DECAY) steps); val scores it and the run keeps it, steadier than any one epoch's "
              "weights. multioutput, or independent/shared with --stack 1.")
@click.option("--schedule", type=click.Choice(["constant", "cosine"]), default="constant", show_default=True,
              help="Learning-rate schedule: constant (the study's) or cosine decay to 0 over --epochs.")
@click.option("--loss", type=click.Choice(LOSS_CHOICES), default="bce", show_default=True,
              help="bce (the study's), weighted (per-class positive weights), focal, asl (asymmetric).")
@click.option("--label-smoothing", default=0.0, show_default=True, type=click.FloatRange(0, 0.5),
              help="S in [0, 0.5]: the loss aims at 1 - S/2 and S/2 instead of 1 and 0 (0: off; 0.1 is usual).")
@click.option("--mixup", default=0.0, show_default=True, type=click.FloatRange(0, 10),
              help="ALPHA in [0, 10]: mixup, each training photo (or cached map of a pretrained start) blended with "
              "another by a Beta(ALPHA, ALPHA) weight, labels likewise (0: off; 0.2 to 0.4 is usual). Not with "
              "--teacher.")
@click.option("--cache-views", default=1, show_default=True, type=click.IntRange(1, 16),
              help="V in [1, 16], a pretrained start's activation cache: each training photo and V - 1 views of it "
              "augmented once by --zoom, --shear, --rotate, --translate and --jitter go through the frozen prefix, "
              "and every epoch draws one of them a photo (the maps are also flipped at random). V times the train "
              "split's cache time and memory; epochs cost the same. A --teacher scores each view and its mirror.")
@click.option("--no-augment", is_flag=True, help="Turn off flip/zoom/shear augmentation.")
@click.option("--zoom", default=0.2, show_default=True, type=click.FloatRange(0, 0.9),
              help="Random zoom range (the study's 0.2).")
@click.option("--shear", default=0.2, show_default=True, type=click.FloatRange(0, 45),
              help="Random shear in degrees (the study's 0.2).")
@click.option("--rotate", default=0.0, show_default=True, type=click.FloatRange(0, 180),
              help="Random rotation of up to +- this many degrees (the study's tips: 20; off by default).")
@click.option("--translate", default=0.0, show_default=True, type=click.FloatRange(0, 0.5),
              help="Random shift, fraction of the side (0: off).")
@click.option("--jitter", default=0.0, show_default=True, type=FRACTION,
              help="Random brightness and contrast change, as a fraction (0: off, the study's).")
@click.option("--trunk", type=TrunkSource(), default="first-class", show_default=True,
              help="shared only: first-class: the trunk of the first class's CNN (the study); multitask: a CNN trained "
              "on all labels first (--epochs); RUN: the conv layers of a finished multioutput run of the study's CNN "
              "at the same size and widths (a distilled one, say), copied into this run.")
@click.option("--init", "init_run", type=click.Path(exists=True, file_okay=False),
              help="independent/multioutput, the study's CNN: start every new model from a finished multioutput run "
              "at the same size and widths (a distilled one, say): its conv and dense layers, and for a class's CNN "
              "its class's column of the output layer; then train as usual (each CNN on its own class).")
@click.option("--seed", default=0, show_default=True, type=SEED, help="Random seed.")
@click.option("--precision", type=click.Choice(["auto", "float32", "bfloat16", "float16"]), default="auto",
              show_default=True, help="What training computes in: auto is float16 on a GPU with tensor cores, bfloat16 "
              "on a CPU with AMX or AVX512-BF16, else float32. Weights, the output layer, the loss and the saved "
              "models stay float32 (bundles do not change); the run records the one used.")
@click.option("--mixed-precision", is_flag=True, hidden=True, help="Old name of --precision float16.")
@click.option("--strategy", type=click.Choice(["default", "mirrored", "multiworker"]), default="default",
              show_default=True, help="mirrored: MirroredStrategy over this machine's GPUs; multiworker: "
              "MultiWorkerMirroredStrategy over the cluster in TF_CONFIG (start the same command on every worker).")
@click.option("--teacher", type=click.Path(exists=True, file_okay=False),
              help="Distil: a finished RUN or an exported bundle with this run's classes; the student also learns "
              "its per-class probabilities on the same augmented photos (a student on cached activations of a "
              "pretrained start: its mean on each photo and its mirror).")
@click.option("--distill-weight", default=0.5, show_default=True, type=FRACTION,
              help="With --teacher: A in (1 - A) x label loss + A x BCE(student logits / T, teacher probabilities "
              "at T); 0 learns from labels only, 1 from the teacher only.")
@click.option("--temperature", default=1.0, show_default=True, type=click.FloatRange(0.1, 20),
              help="With --teacher: T, the temperature both sides' logits are divided by.")
@click.option("--teacher-views", default=8, show_default=True, type=click.IntRange(1, 64),
              help="With --teacher: augmented views of each photo the teacher scores once (at its own input "
              "size); each epoch trains on one of them per photo. Costs views x photos teacher passes and "
              "views x photos x side^2 x 3 bytes of disk under RUN/teacher until the run is finished. Not for a "
              "student on cached activations (the photo and its mirror, 2 passes).")
@click.option("--unlabeled", type=click.Path(exists=True, file_okay=False),
              help="With --teacher: a folder of photos (searched recursively) with no labels; only the teacher's "
              "probabilities teach on them.")
@click.option("--teacher-cache", type=OutputFolder(),
              help="With --teacher: keep the views here for other runs (a sweep of --distill-weight, --temperature "
              "or architectures reuses them when teacher, views, seed, augmentation and size agree); default: "
              "inside the RUN, removed when it is finished.")
@click.option("--classes", "only", help="independent/shared: train only these classes (comma-separated) into the "
              "RUN, joining it if it exists with the same settings: for job arrays.")
@click.option("--stage", type=click.Choice(["all", "trunk", "heads"]), default="all", show_default=True,
              help="shared: train only the trunk, or only the heads (the trunk must exist).")
@click.option("--jobs", default=1, show_default=True, type=click.IntRange(1, 256),
              help="independent/shared: train N classes at once in separate processes on this machine.")
@click.option("--stack", default=10, show_default=True, type=click.IntRange(1, 256),
              help="independent/shared: train up to N classes' models side by side as one Keras model: one decode "
              "and augmentation per batch (and one pass of a shared trunk) for all of them, each model with its own "
              "loss, best epoch and early stopping; 1 trains them one after another. Costs N models' weights and "
              "optimizer state in memory, and as checkpoint on disk (the study's CNN: about 0.7 GB each at the peak).")
def train(root, arch, out, resume_run, recipe, force, final_from, split, val_split, data_format, classes_file, labels,
          difficult, on_bad_image, epochs, patience, img_size, backbone, freeze_backbone, finetune_blocks, head,
          csra_lambda, widths, batch, lr, weight_decay, ema, schedule, loss, label_smoothing, mixup, cache_views,
          no_augment, zoom, shear, rotate, translate, jitter, trunk, init_run, seed,
          precision, mixed_precision, strategy, teacher, distill_weight, temperature, teacher_views, unlabeled,
          teacher_cache, only, stage, jobs, stack):
    """Train an architecture on the dataset at ROOT into the RUN folder --out."""
    from edge.datasets import detect_format
    from toolkit import train as training
    from toolkit.config import Distill, TrainConfig
    from toolkit.data.pipeline import Augment
    from toolkit.models import DEFAULT_SIZE, MIN_INPUT_SIZE, CNNConfig
    from toolkit.train.precision import resolve as resolve_precision

    only = [c.strip() for c in only.split(",") if c.strip()] if only else None
    if recipe:
        if resume_run or final_from or only or stage != "all":
            raise UserError("--recipe trains the whole recipe: no --resume, --final, --classes or --stage with it")
        if not root or not out:
            raise UserError("train --recipe NAME needs ROOT and --out")
        ctx = click.get_current_context()
        explicit = ctx.get_parameter_source("arch") == ParameterSource.COMMANDLINE
        metrics = recipe_run.start(recipe, root, out, arch if explicit else None, overrides(ctx), force, ctx.command)
    elif resume_run and recipe_run.is_recipe_run(resume_run):
        metrics = recipe_run.run_stages(Path(resume_run))
        out = resume_run
    elif resume_run:
        metrics = training.resume(resume_run, only, stage)
        out = resume_run
    elif final_from:
        if root or not out:
            raise UserError("train --final VAL_RUN takes no ROOT (the val run's dataset is used) and needs --out")
        cfg = training.final_config(final_from)
        metrics = (training.train_parallel(cfg, out, jobs, force=force) if jobs > 1 else
                   training.start(cfg, out, force=force, only=only, stage=stage))
    else:
        if not root or not out:
            raise UserError("train needs ROOT and --out (or --resume RUN)")
        try:
            c1, c2, d = (int(v) for v in widths.split(","))
        except ValueError:
            raise UserError(f"--widths must be three integers like 32,64,512, not {widths!r}") from None
        if min(c1, c2, d) < 1:
            raise click.BadParameter(f"every width must be at least 1, not {widths!r}", param_hint="--widths")
        img_size = img_size or DEFAULT_SIZE[backbone]
        if img_size < MIN_INPUT_SIZE[backbone]:
            raise click.BadParameter(f"{img_size} is below the {backbone} network's minimum of "
                                     f"{MIN_INPUT_SIZE[backbone]} pixels", param_hint="--img-size")
        if mixup and teacher:
            raise click.BadParameter("not with --teacher: its targets are of the unmixed views", param_hint="--mixup")
        for value, name in ((unlabeled, "--unlabeled"), (teacher_cache, "--teacher-cache")):
            if value and not teacher:
                raise click.BadParameter("needs a --teacher", param_hint=name)
        distill = Distill(str(Path(teacher).resolve()), distill_weight, temperature, teacher_views,
                          str(Path(unlabeled).resolve()) if unlabeled else None,
                          str(Path(teacher_cache).resolve()) if teacher_cache else None) if teacher else None
        if backbone != "study" and finetune_blocks > len(blocks(backbone)):
            raise click.BadParameter(f"{backbone} has {len(blocks(backbone))} blocks", param_hint="--finetune-blocks")
        augment = (Augment(flip=False, zoom=0.0, shear_degrees=0.0) if no_augment else
                   Augment(zoom=zoom, shear_degrees=shear, translate=translate, brightness=jitter, contrast=jitter,
                           rotate_degrees=rotate))
        cfg = TrainConfig(
            root=str(Path(root).resolve()), arch=arch, split=split, val_split=val_split, labels=labels,
            format=detect_format(root) if data_format == "auto" else data_format,
            classes_file=str(Path(classes_file).resolve()) if classes_file else None,
            difficult=difficult, on_bad_image=on_bad_image, augment=augment,
            model=CNNConfig(img_size, c1, c2, d, backbone=backbone,
                            freeze_backbone=freeze_backbone, finetune_blocks=finetune_blocks, head=head,
                            csra_lambda=csra_lambda),
            epochs=epochs, batch=batch, lr=lr, weight_decay=weight_decay, ema=ema, schedule=schedule, loss=loss,
            label_smoothing=label_smoothing, mixup=mixup, cache_views=cache_views,
            seed=seed, patience=patience, trunk=trunk, init=str(Path(init_run).resolve()) if init_run else None,
            strategy=strategy, distill=distill, stack=stack,
            precision=resolve_precision("float16" if mixed_precision else precision),
        )
        if jobs > 1:
            metrics = training.train_parallel(cfg, out, jobs, force=force)
        else:
            metrics = training.start(cfg, out, force=force, only=only, stage=stage)
    if metrics is None:
        from toolkit.run import Run

        if not training.is_chief():
            click.echo(f"{out}: this worker is done; the chief writes the models and metrics")
            return
        run = Run(Path(out))
        done = sum(run.is_done(u) for u in run.units())
        click.echo(f"{out}: {done} of {len(run.units())} model(s) done (mledge runs status {out})")
        return
    if metrics.get("final"):
        click.echo(f"{out}: final model, trained on {' + '.join(metrics['trained_on'])} ({metrics['train_images']} "
                   f"images) for the epochs of {metrics['from_run']} (its val mAP "
                   f"{100 * metrics['from_run_mAP_area']:.2f}); no held-out mAP")
        return
    click.echo(f"{out}: val mAP {100 * metrics['mAP_area']:.2f} (area) / {100 * metrics['mAP_voc07']:.2f} (VOC07 "
               f"11-point), CF1 {100 * metrics['at_thresholds']['CF1']:.2f}, OF1 "
               f"{100 * metrics['at_thresholds']['OF1']:.2f} at per-class thresholds")


# What a recipe run passes on to its stages: every option but those that say which run to make.
NOT_OVERRIDES = {"root", "out", "recipe", "force", "resume_run", "final_from", "arch", "only", "stage"}


def overrides(ctx: click.Context) -> list[str]:
    """The options given on the command line, as `mledge train` arguments again."""
    args = []
    for param in ctx.command.params:
        if (not isinstance(param, click.Option) or param.name in NOT_OVERRIDES
                or ctx.get_parameter_source(param.name) != ParameterSource.COMMANDLINE):
            continue
        args += as_args(param, ctx.params[param.name])
    return args


def as_args(param: click.Option, value) -> list[str]:
    """An option's value as `mledge train` arguments (a flag that is off and has no --no- form: none)."""
    if param.is_flag:
        return [param.opts[0]] if value else param.secondary_opts[:1]
    return [param.opts[0], str(value)]
