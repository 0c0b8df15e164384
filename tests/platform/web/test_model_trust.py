"""The models and overview pages answer two questions at a glance: do the model's
confidences mean what they say (the reliability diagram, ECE before and after temperature
scaling), and is the model better than doing nothing clever (the baselines sentence)."""

import json
import re

import numpy as np
import pytest

from loupe.accounts.models import Role
from ml.calibration import apply_temperature, calibration_report
from tests.platform.insights.builders import build_world
from tests.platform.web.test_views import client_as

pytestmark = pytest.mark.django_db


def _over_confident_holdout(n=120, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=1.5, size=(n, 3))
    y = np.array([rng.choice(3, p=np.exp(r) / np.exp(r).sum()) for r in z])
    return y, apply_temperature(3 * z, 1.0, kind="logits")


def _models_page(world, query=""):
    client = client_as(world.project, Role.ENGINEER)
    return client.get(f"/projects/{world.project.slug}/models/{query}").content.decode()


def _json_script(html, element_id):
    match = re.search(rf'<script id="{element_id}" type="application/json">(.*?)</script>', html)
    return json.loads(match.group(1))


def test_the_models_page_draws_the_reliability_diagram_of_the_chosen_version():
    world = build_world()
    y, probs = _over_confident_holdout()
    report = calibration_report(y, probs)
    world.v2.metrics = {**world.v2.metrics, "calibration": report}
    world.v2.save()

    html = _models_page(world)

    assert 'id="reliability-chart"' in html
    data = _json_script(html, "reliability-data")
    assert sum(data["before"]["count"]) == sum(data["after"]["count"]) == 120
    assert len(data["bins"]) == len(data["before"]["accuracy"]) == len(data["midpoints"])
    ece = re.sub(r"\s+", " ", re.search(r'<p id="ece">(.*?)</p>', html, re.S).group(1))
    before, after = report["before"]["ece"], report["after"]["ece"]
    assert f"<b>{before:.3f}</b> as the model gives its probabilities" in ece
    assert f"<b>{after:.3f}</b> after temperature scaling (T = {report['temperature']:.2f})" in ece
    assert after < before
    # The versions table gives ECE before -> after for every version that has it.
    assert f"{before:.3f} → {after:.3f}" in html
    assert "cross-fitted" in html


def test_a_version_without_calibration_says_so_and_a_small_holdout_says_why():
    world = build_world()
    assert "before calibration was measured" in _models_page(world)

    y, probs = _over_confident_holdout(n=20)
    world.v2.metrics = {**world.v2.metrics, "calibration": calibration_report(y, probs)}
    world.v2.save()
    html = _models_page(world)
    assert "Not fitted: the holdout has 20 items" in html
    assert _json_script(html, "reliability-data")["after"] is None


def test_the_learning_curve_shows_both_baselines_and_says_how_the_latest_compares():
    world = build_world()
    world.v2.metrics = {
        **world.v2.metrics,
        "n": 40,
        "intervals": {"balanced_accuracy": [0.5, 0.7]},
        "per_class": [{"class": c, "support": 10} for c in ("good", "scratch", "dent")],
    }
    world.v2.baseline_metrics["majority_class"] = {
        "name": "always answering good, the majority class",
        "balanced_accuracy": 1 / 3,
    }
    world.v2.save()

    for html in (
        _models_page(world),
        client_as(world.project, Role.MANAGER)
        .get(f"/projects/{world.project.slug}/")
        .content.decode(),
    ):
        chart = _json_script(html, "curve-data")
        assert chart["majority"][-1] == pytest.approx(1 / 3) and chart["baseline"] == [0.4, 0.45]
        assert chart["model_interval"][-1] == [0.5, 0.7]
        verdict = re.search(r'<p id="baseline-verdict">(.*?)</p>', html, re.S).group(1)
        assert "v2, trained on 12 labels" in verdict
        assert (
            "clearly better than both always answering good, the majority class (0.33) and the"
            " linear probe (0.45)." in verdict
        )
        assert "not a model trained on random picks" in html
