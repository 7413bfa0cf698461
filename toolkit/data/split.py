"""A train/val split for multi-label data by iterative stratification (Sechidis, Tsoumakas and
Vlahavas, ECML PKDD 2011): the rarest class first, each of its images goes to the subset that most
lacks that class, so a class with 48 photos does not land wholly in one split."""

from __future__ import annotations

import numpy as np


def iterative_stratification(labels: np.ndarray, fractions: list[float], seed: int = 0) -> np.ndarray:
    """labels: (N, C) 0/1 -> the subset index (N,) of every example, subsets sized by ``fractions``."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels, bool)
    n = len(labels)
    ratios = np.asarray(fractions, float) / sum(fractions)
    wanted = ratios * n  # examples each subset still wants
    wanted_per_class = ratios[:, None] * labels.sum(axis=0)[None, :]  # (subsets, classes)
    subset = np.full(n, -1)
    left = labels.copy()
    while (subset < 0).any():
        counts = left[subset < 0].sum(axis=0)
        if not counts.any():  # only examples without labels are left: fill by size
            for i in rng.permutation(np.flatnonzero(subset < 0)):
                subset[i] = _pick(wanted, np.ones(len(ratios), bool), rng)
                wanted[subset[i]] -= 1
            break
        rarest = np.flatnonzero(counts == counts[counts > 0].min())[0]
        for i in rng.permutation(np.flatnonzero((subset < 0) & left[:, rarest])):
            most = wanted_per_class[:, rarest] == wanted_per_class[:, rarest].max()
            j = _pick(wanted, most, rng)
            subset[i] = j
            wanted[j] -= 1
            wanted_per_class[j] -= labels[i]
            left[i] = False
    return subset


def _pick(wanted: np.ndarray, candidates: np.ndarray, rng: np.random.Generator) -> int:
    """Among the candidate subsets, the one that wants the most examples; ties at random."""
    best = np.flatnonzero(candidates & (wanted == wanted[candidates].max()))
    return int(rng.choice(best))
