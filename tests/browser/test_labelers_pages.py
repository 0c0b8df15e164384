"""After a real loop: an expert reads the page for labelers (the method, why these items,
where the model is confused, agreement), and an engineer sends the labels the model doubts
back for review from the label-review page."""

import pytest

from loupe.accounts.models import Role
from loupe.labeling.models import Annotation, GroundTruth
from loupe.learning.label_suspects import _labeled_rows, _probabilities, label_suspects_scan
from loupe.learning.loop import loop_start
from loupe.learning.models import LearningLoop, RunStatus
from loupe.projects.models import LabelClass
from tests.browser.pages import log_in, member
from tests.platform.labeling.review_builders import inspection_line

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ALL_IMAGES_DECODED = """sel => Array.from(document.querySelectorAll(sel))
    .every(i => i.complete && i.naturalWidth > 0)"""


def _trained(project):
    loop, _ = loop_start(project=project)  # jobs run in-process: train, score, select
    loop = LearningLoop.objects.get(pk=loop.pk)
    assert loop.status == RunStatus.SUCCEEDED, loop.error
    return loop.selection_round.model_version


def _flip_two_holdout_labels(version):
    """The two holdout labels the model is surest of, changed to another class on purpose."""
    rows = _labeled_rows(version)
    probs = _probabilities(version, rows)
    holdout = sorted((i for i, r in enumerate(rows) if r[4]), key=lambda i: -probs[i, rows[i][3]])
    flipped = []
    for i in holdout[:2]:
        true = version.class_names[rows[i][3]]
        wrong = next(n for n in version.class_names if n != true)
        GroundTruth.objects.filter(item_id=rows[i][0]).update(
            label_class=LabelClass.objects.get(project=version.project, name=wrong)
        )
        flipped.append(rows[i][0])
    return flipped


def _three_annotators_on(project, vera, n=6):
    classes = list(project.classes.order_by("order"))
    truths = list(GroundTruth.objects.filter(project=project).select_related("label_class")[:n])
    ls_id = 50_000
    for k, truth in enumerate(truths):
        for who, offset in (("vera", 0), ("omar", int(k % 3 == 0)), ("lena", k % 2)):
            ls_id += 1
            label = classes[(classes.index(truth.label_class) + offset) % len(classes)]
            Annotation.objects.create(
                item_id=truth.item_id,
                project=project,
                label_class=label,
                annotator=who,
                user=vera if who == "vera" else None,
                ls_annotation_id=ls_id,
            )


def test_labelers_read_the_method_and_engineers_send_doubted_labels_back(
    live_server, page, screenshot, import_root
):
    project = inspection_line(import_root)
    version = _trained(project)
    flipped = _flip_two_holdout_labels(version)
    label_suspects_scan(model_version=version)
    vera = member(project, "vera", Role.EXPERT)
    member(project, "enzo", Role.ENGINEER)
    _three_annotators_on(project, vera)

    log_in(page, live_server, "vera")
    page.set_viewport_size({"width": 1200, "height": 900})
    page.goto(f"{live_server.url}/projects/{project.slug}/")
    page.click("nav.tabs >> text=For labelers")
    page.wait_for_selector("#strategy-words")
    # The default strategy is the adaptive mix.
    assert "Loupe mixes several ways of picking" in page.inner_text("#strategy-words")
    reasons = page.locator("#reason-counts li")
    assert reasons.count() >= 2
    assert sum(int(t) for t in page.locator("#reason-counts li b").all_inner_texts()) == 12
    assert "random checks" in page.inner_text("#reason-counts")
    assert "on the holdout" in page.inner_text("#mistakes")
    assert "vera (you)" in page.inner_text("#annotators")
    screenshot("labelers-page")

    page.click("nav.tabs >> text=Label review")
    page.wait_for_selector("#suspects")
    for item_id in flipped:
        assert page.locator(f'#suspects tr[data-item="{item_id}"]').count() == 1
    assert page.locator("#send-review").count() == 0  # experts do not send reviews
    page.wait_for_function(ALL_IMAGES_DECODED, arg="#suspects img")

    page.click("form.inline button.link")  # log out
    log_in(page, live_server, "enzo")
    page.goto(f"{live_server.url}/projects/{project.slug}/label-review/")
    page.wait_for_function(ALL_IMAGES_DECODED, arg="#suspects img")
    screenshot("label-review-queue")
    listed = page.locator("#suspects tbody tr").count()
    page.click("#send-review button")
    page.wait_for_selector("#review-notice")
    assert f"with {listed} labels is on its way to Label Studio" in page.inner_text(
        "#review-notice"
    )
    assert page.locator('#rounds td[data-field="pending"]').inner_text() == str(listed)
    screenshot("label-review-sent")
