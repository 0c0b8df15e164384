"""Reads behind the dashboards, one module per topic, gathered here so callers import one
place. Every statistic is computed by the database (grouped counts and joins), except the
drift tests, which run ml.drift on embeddings and are cached per scoring run."""

from loupe.insights.agreement import agreement
from loupe.insights.balance import (
    class_balance,
    imbalance,
    pool_predicted_counts,
    project_item_totals,
    state_counts,
)
from loupe.insights.common import latest_scored_version, latest_scoring_run
from loupe.insights.curves import control_slice_scores, learning_curve, stopping
from loupe.insights.gallery import gallery_details, gallery_items
from loupe.insights.loops import loop_current, loop_progress, step_seconds
from loupe.insights.pace import eta, label_pace, throughput
from loupe.insights.shift import drift

__all__ = [
    "agreement",
    "class_balance",
    "control_slice_scores",
    "drift",
    "eta",
    "gallery_details",
    "gallery_items",
    "imbalance",
    "latest_scored_version",
    "label_pace",
    "latest_scoring_run",
    "learning_curve",
    "loop_current",
    "loop_progress",
    "pool_predicted_counts",
    "project_item_totals",
    "state_counts",
    "step_seconds",
    "stopping",
    "throughput",
]
