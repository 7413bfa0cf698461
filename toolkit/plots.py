"""Per-class precision-recall curves and an AP bar chart as PNG (needs the ``plots`` extra)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from toolkit.errors import UserError
from toolkit.metrics import pr_curve


def write_plots(out: Path, classes: list[str], labels: np.ndarray, scores: np.ndarray, valid: np.ndarray,
                report: dict) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UserError("--plots needs matplotlib: pip install 'multilabel-edge[plots]'") from None
    out.mkdir(parents=True, exist_ok=True)
    cols = 5
    rows = math.ceil(len(classes) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 2.6 * rows), squeeze=False)
    for k, name in enumerate(classes):
        ax = axes[k // cols][k % cols]
        y, s = labels[valid[:, k], k], scores[valid[:, k], k]
        if y.sum() > 0:
            precision, recall, _ = pr_curve(y, s)
            ax.step(np.r_[0, recall], np.r_[precision[0], precision], where="post")
        ap = report["AP_area"][k]
        ax.set_title(f"{name} AP {100 * ap:.1f}" if ap is not None else f"{name} (no positives)", fontsize=9)
        ax.set_xlim(0, 1), ax.set_ylim(0, 1.02)
    for k in range(len(classes), axes.size):
        axes.flat[k].axis("off")
    fig.supxlabel("recall"), fig.supylabel("precision")
    fig.tight_layout()
    fig.savefig(out / "pr_curves.png", dpi=80)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(10, 4))
    aps = [0 if v is None else 100 * v for v in report["AP_area"]]
    ax.bar(range(len(classes)), aps)
    ax.set_xticks(range(len(classes)), classes, rotation=60, ha="right")
    ax.set_ylabel("AP (area under PR curve)")
    ax.set_title(f"per-class AP, mAP {100 * report['mAP_area']:.1f}")
    fig.tight_layout()
    fig.savefig(out / "ap_per_class.png", dpi=80)
    plt.close(fig)
