"""Plots for the offline evaluations (matplotlib, imported only here)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from server.matching.evaluation import FAILED, Evaluation
from server.matching.matcher import FaceMatcher


def plot_match_scores(evaluation: Evaluation, matcher: FaceMatcher, path: str | Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (hist, roc) = plt.subplots(1, 2, figsize=(11, 4.5))
    bins = np.linspace(-0.3, 1.0, 66)
    hist.hist(evaluation.impostor[evaluation.impostor > FAILED], bins=bins, alpha=0.6, label="different people", density=True)
    hist.hist(evaluation.genuine[evaluation.genuine > FAILED], bins=bins, alpha=0.6, label="same person", density=True)
    hist.axvline(matcher.match_threshold, color="k", linestyle="--", label=f"match ≥ {matcher.match_threshold:.3f}")
    hist.axvline(matcher.review_threshold, color="grey", linestyle=":", label=f"review ≥ {matcher.review_threshold:.3f}")
    hist.set_xlabel("cosine similarity")
    hist.set_ylabel("density")
    hist.legend()
    thresholds = np.unique(np.concatenate([evaluation.genuine, evaluation.impostor]))
    fars = np.array([max(evaluation.far(t), 1e-6) for t in thresholds])
    tars = np.array([evaluation.tar(t) for t in thresholds])
    roc.semilogx(fars, tars)
    roc.plot([max(evaluation.far(matcher.match_threshold), 1e-6)], [evaluation.tar(matcher.match_threshold)], "ko", label="operating point (match)")
    roc.set_xlabel("false-accept rate")
    roc.set_ylabel("true-accept rate")
    roc.set_xlim(1e-5, 1)
    roc.grid(True, which="both", alpha=0.3)
    roc.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
