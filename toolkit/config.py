"""Training settings as one dataclass, saved to RUN/config.json: all that rebuilds, evaluates, exports."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from toolkit.data.pipeline import Augment
from toolkit.models import CNNConfig

# What `mledge classes retrain` may set for one class. img_size is the size the class's CNN works
# at: the bundle still takes the run's pixels, and that class's graph resizes them.
CLASS_SETTINGS = ("epochs", "lr", "loss", "batch", "patience", "weight_decay", "schedule", "seed", "img_size")


@dataclass
class Distill:
    """--teacher: the student learns the teacher's per-class probabilities besides the labels:
    loss = (1 - weight) * label loss + weight * BCE(student logits / T, teacher probabilities at T).
    The teacher scores ``views`` fixed augmented views of every training photo once (at its own
    input size); the student trains on the same views, downscaled, so both see the same pixels."""

    teacher: str  # a finished RUN or an exported bundle folder, with the run's classes
    weight: float = 0.5
    temperature: float = 1.0
    views: int = 8
    unlabeled: str | None = None  # a folder of photos whose only target is the teacher's
    cache: str | None = None  # where the views are kept for other runs (default: RUN/teacher, dropped at the end)


@dataclass
class Final:
    """mledge train --final VAL_RUN: the val run's settings on its train and val splits together, each
    unit for the epochs the val run chose (its best epoch), with the val run's thresholds."""

    from_run: str  # the val run (absolute path)
    epochs: dict[str, int]  # unit -> epochs to train
    from_run_mAP_area: float  # what the val run scored on val: the final run itself has no held-out split
    from_run_mAP_voc07: float


@dataclass
class TrainConfig:
    root: str
    arch: str = "multioutput"
    split: str = "train"
    val_split: str = "val"
    format: str = "auto"  # voc | csv | coco: the layout of root (a new run records the one it found)
    classes_file: str | None = None  # the class order, one name a line (else the dataset's own)
    labels: str = "imagesets"  # VOC's label source: imagesets | annotations
    difficult: str = "ignore"  # ignore | positive | negative
    on_bad_image: str = "error"
    classes: list[str] = field(default_factory=list)  # filled from the data when empty
    model: CNNConfig = field(default_factory=CNNConfig)
    augment: Augment = field(default_factory=Augment)
    epochs: int = 30
    batch: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.0  # > 0: AdamW with this decoupled weight decay instead of Adam
    schedule: str = "constant"  # constant | cosine (decays to 0 over the epochs)
    ema: float = 0.0  # > 0: val scores, and the run keeps, this moving average of the weights (train/ema.py)
    loss: str = "bce"
    label_smoothing: float = 0.0  # > 0: each label s/2 away from 0 or 1 in the loss
    mixup: float = 0.0  # > 0: mixup's Beta(alpha, alpha) over pairs of training photos (or cached maps)
    cache_views: int = 1  # a pretrained start's activation cache: the photo and CACHE_VIEWS - 1 augmented views
    seed: int = 0
    patience: int = 5  # epochs without a better val mAP before stopping; 0 = never stop early
    trunk: str = "first-class"  # shared only: first-class (the study) | multitask | a finished multioutput RUN
    init: str | None = None  # independent/multioutput: a finished multioutput RUN every new model starts from
    precision: str = "float32"  # float32 | bfloat16 | float16 (mixed: float32 weights, output and loss)
    strategy: str = "default"  # default | mirrored
    stack: int = 10  # independent/shared: classes whose models train side by side in one model (1: one by one)
    distill: Distill | None = None  # --teacher
    final: Final | None = None  # --final: trained on split + val_split, epochs and thresholds from a val run
    class_settings: dict[str, dict] = field(default_factory=dict)  # per-class overrides (classes retrain)
    class_roots: dict[str, str] = field(default_factory=dict)  # classes whose label files live elsewhere

    def for_class(self, name: str) -> TrainConfig:
        """This config with the class's own settings applied (independent and shared runs)."""
        overrides = dict(self.class_settings.get(name, {}))
        size = overrides.pop("img_size", self.model.img_size)
        if size != self.model.img_size:
            overrides["model"] = replace(self.model, img_size=size, input_size=self.model.img_size)
        return replace(self, **overrides) if overrides else self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        if data.get("mixed_precision"):  # runs made before --precision
            data = {**data, "precision": "float16"}
        data = {k: v for k, v in data.items() if k in known}
        data["model"] = CNNConfig(**data.get("model", {}))
        data["augment"] = Augment(**data.get("augment", {}))
        data["distill"] = Distill(**data["distill"]) if data.get("distill") else None
        data["final"] = Final(**data["final"]) if data.get("final") else None
        return cls(**data)

    @classmethod
    def load(cls, path: Path) -> TrainConfig:
        return cls.from_dict(json.loads(path.read_text()))
