"""Where a running loop stands: progress over the whole loop and the time it has left."""

import pytest

from loupe.insights import selectors
from loupe.learning.models import LearningLoop, RunStatus, TrainingRun
from tests.factories import ProjectFactory
from tests.platform.insights.builders import finished_loop, running_loop

pytestmark = pytest.mark.django_db


def test_before_any_finished_loop_training_counts_for_most_of_the_bar():
    project = ProjectFactory()
    loop = running_loop(project, progress=0.5, elapsed=60)

    state = selectors.loop_progress(loop=loop, seconds=selectors.step_seconds(project=project))

    assert (state["step"], state["step_number"], state["phase"]) == ("train", 1, "training")
    assert state["progress"] == pytest.approx(0.4)  # half of training's 80%
    # 60 s more of training at its pace, and the other steps in proportion: 120 s * 20/80.
    assert state["eta_seconds"] == pytest.approx(90, abs=2)
    assert not state["timed_by_last_loop"]


def test_the_last_loop_times_the_steps():
    project = ProjectFactory()
    finished_loop(project, {"train": 100.0, "score": 80.0, "select": 20.0})
    loop = running_loop(project, progress=0.5, elapsed=60)
    seconds = selectors.step_seconds(project=project)

    state = selectors.loop_progress(loop=loop, seconds=seconds)

    assert state["progress"] == pytest.approx(0.25)  # half of training's 50%
    assert state["eta_seconds"] == pytest.approx(60 + 80 + 20, abs=2)
    assert state["timed_by_last_loop"]

    scoring = running_loop(ProjectFactory(), step=LearningLoop.Step.SCORE, progress=0.5)
    state = selectors.loop_progress(loop=scoring, seconds=seconds)
    assert state["progress"] == pytest.approx(0.5 + 0.4 * 0.5)
    assert state["eta_seconds"] == pytest.approx(60 + 20, abs=2)


def test_a_run_without_a_pace_has_no_time_left_and_a_queued_one_waits_for_a_worker():
    project = ProjectFactory()
    loop = running_loop(project, progress=0.0)
    TrainingRun.objects.filter(pk=loop.training_run_id).update(
        status=RunStatus.QUEUED, started_at=None
    )
    loop.refresh_from_db()

    state = selectors.loop_progress(loop=loop)

    assert state["eta_seconds"] is None and state["waiting_for_worker"]
    assert state["progress"] == 0.0


def test_a_finished_loop_is_full_and_the_current_loop_is_the_active_one():
    project = ProjectFactory()
    done = finished_loop(project, {"train": 1.0, "score": 1.0, "select": 1.0})
    assert selectors.loop_progress(loop=done)["progress"] == 1.0
    assert selectors.loop_current(project=project) == done

    active = running_loop(project)
    assert selectors.loop_current(project=project) == active
    assert selectors.loop_current(project=ProjectFactory()) is None


def test_a_cold_start_is_one_step_and_does_not_time_the_next_loop():
    project = ProjectFactory()
    finished_loop(project, {"train": 100.0, "score": 80.0, "select": 20.0})
    finished_loop(project, {"select": 3.0})  # a cold start only selects
    cold = LearningLoop.objects.create(
        project=project,
        status=RunStatus.RUNNING,
        step=LearningLoop.Step.SELECT,
        phase="cold start: selecting a first batch",
    )

    state = selectors.loop_progress(loop=cold, seconds=selectors.step_seconds(project=project))

    assert state["cold_start"] and (state["step_number"], state["steps"]) == (1, 1)
    assert state["progress"] == 0.0 and state["phase"] == "cold start: selecting a first batch"
    assert selectors.step_seconds(project=project) == {
        "train": 100.0,
        "score": 80.0,
        "select": 20.0,
    }
