"""How well does a pair project's latest model tell people apart? Its holdout ROC AUC (with
its interval), EER and TAR at FAR 1% beside the baseline without learning, read from the
learning curve's points (`insights.curves.learning_curve`), with the sentence that compares
them and what the holdout can and cannot measure."""

from __future__ import annotations

from loupe.insights.curves import _VERDICT_WORDS, _versus

# The false-accept rate the headline TAR is read at.
FAR_TARGET = 0.01


def verification_summary(points: list[dict]) -> dict | None:
    """The latest version with a holdout ROC AUC: its figures, the baseline's ROC AUC on the
    same holdout pairs, a sentence comparing them (by the model's 95% interval where it has
    one) and, when the holdout has too few different pairs to measure a FAR of 1%, a note
    that says so. None before any version has pair figures (or for other task types)."""
    latest = next((p for p in reversed(points) if p.get("roc_auc") is not None), None)
    if latest is None:
        return None
    score, interval = latest["roc_auc"], latest.get("roc_auc_interval")
    baseline = latest.get("baseline_roc_auc")
    baseline_name = latest.get("baseline_name") or "the baseline without learning"
    figure = f"{score:.2f}"
    figure += (
        f" (95% interval {interval[0]:.2f}–{interval[1]:.2f})"
        if interval
        else " (too few pairs for an interval)"
    )
    message = (
        f"v{latest['version']}, trained on {latest['labels_used']} labeled pairs, has a"
        f" holdout ROC AUC of {figure}"
    )
    verdict = None
    if baseline is not None:
        verdict = _versus(score, interval, baseline)
        before, after, _ = _VERDICT_WORDS[verdict]
        name = baseline_name.split(",")[0]
        message += f": {before} the {name} ({baseline:.2f}){after}."
    else:
        message += "."
    return {
        "version": latest["version"],
        "labels_used": latest["labels_used"],
        "roc_auc": score,
        "roc_auc_interval": interval,
        "eer": latest.get("eer"),
        "eer_interval": latest.get("eer_interval"),
        "tar_at_far_1pct": latest.get("tar_at_far_1pct"),
        "threshold_distance": latest.get("threshold_distance"),
        "holdout": latest.get("holdout"),
        "baseline_roc_auc": baseline,
        "baseline_eer": latest.get("baseline_eer"),
        "baseline_name": baseline_name,
        "verdict": verdict,
        "message": message,
        "far_note": far_note(latest.get("far_resolution")),
    }


def far_note(resolution: float | None) -> str | None:
    """With n different pairs the smallest FAR above zero is 1/n: below 100 of them, "TAR at
    FAR 1%" is the share of same pairs accepted while no different pair is."""
    if resolution is None or resolution <= FAR_TARGET:
        return None
    n_different = round(1 / resolution)
    return (
        f"The holdout has {n_different} different pairs, so the smallest false-accept rate"
        f" it can measure is {resolution:.1%}: TAR at FAR 1% is the share of same pairs"
        " accepted while no different pair is."
    )
