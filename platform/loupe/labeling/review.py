"""The label-error review queue: labels the latest model version doubts, sent back to Label
Studio as a review round, and what the experts answered.

The suspects come from `learning.label_suspects` (confident learning on the version's
probabilities, out of sample where it can). The queue lists those whose label is still the
one the model doubted and that no review round has taken yet, with the evidence: the given
label and how it was decided, the model's predicted class and confidence, whether the
evidence is out of sample, the annotators' votes and their agreement.

Sending makes a SelectionRound with strategy `label_review`, pushed through the same path
as every round (`sync.round_selected`). Each pick records the label under review as its
`predicted_class` (with the model's probability of that label as `confidence`), so the
Label Studio task opens with that label chosen and a reason saying why it came back:
keeping it confirms it, choosing another class corrects it.

The rule for an answered review (in `consensus`, beside the voting rule, and applied by
`consensus.ground_truth_recompute`, so webhook and reconciliation both go through it): the
answers on the item's latest answered review task decide, each reviewer's latest answer one
vote, most votes winning and a tie keeping the label under review. The decision is a review
decision (`Decision.REVIEW`), which overrides any earlier decision, imported labels
included, and which later ordinary votes never overwrite. Confirmed: the decision is the
label under review; corrected: another class. A review answer withdrawn in Label Studio
leaves the decision it made.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable

from django.db import transaction
from django.db.models import Max

from loupe.errors import ApplicationError
from loupe.labeling.consensus import (  # noqa: F401  (the review's names, read from here too)
    CONFIRMED,
    CORRECTED,
    LABEL_REVIEW,
    ReviewDecision,
    latest_votes,
    pick_decisions,
    review_decisions,
    review_round_open,
)
from loupe.labeling.models import Annotation, Decision, GroundTruth
from loupe.labeling.sync import round_selected
from loupe.learning.label_suspects import (
    EVIDENCE_HOLDOUT,
    EVIDENCE_LABELED_SINCE,
    OUT_OF_SAMPLE,
    SUSPECT_MIN_CONFIDENCE,
    label_suspects_read,
    label_suspects_request,
    latest_version,
)
from loupe.learning.models import SelectionItem, SelectionRound
from loupe.projects.models import Project
from loupe.projects.selectors import project_classes
from loupe.tasktypes import task_type_of

PENDING = "pending"
# One send takes at most this many suspects (Label Studio tasks, one review each).
MAX_SEND = 500
# What the suspects a task type finds by itself stand on (pairs: transitivity).
OWN_EVIDENCE_NOTE = (
    "Found without a model: these labels cannot all be right together (a chain of 'same'"
    " pairs joins two images labeled different). Each is listed once; the expert who sees"
    " them again decides which is wrong."
)

EVIDENCE_WORDS = {
    EVIDENCE_HOLDOUT: "on the holdout, which it never trained on",
    EVIDENCE_LABELED_SINCE: "on an item it never trained on",
    "training": "although it trained on this label (in-sample: weaker evidence)",
}


def decided_words(decided_by: str, num_annotators: int, agreement: float | None) -> str:
    if decided_by == Decision.IMPORTED:
        return "imported with the data"
    if decided_by == Decision.SINGLE:
        return "by one annotator"
    if decided_by == Decision.MAJORITY and agreement is not None and num_annotators:
        return f"by {round(agreement * num_annotators)} of {num_annotators} annotators"
    if decided_by == Decision.REVIEW:
        return "in review"
    return "by the annotators"


def evidence_note(scan: dict) -> str:
    """Which of the version's predictions the suspects stand on, in words."""
    checked, version = scan["checked"], scan["version"]
    holdout = checked.get(EVIDENCE_HOLDOUT, 0)
    since = checked.get(EVIDENCE_LABELED_SINCE, 0)
    training = checked.get("training", 0)
    unseen = [
        text
        for n, text in (
            (holdout, f"the {holdout} holdout labels"),
            (since, f"the {since} labels given since it was trained"),
        )
        if n
    ]
    parts = []
    if unseen:
        parts.append(
            f"Out of sample: model v{version}'s predictions on {' and '.join(unseen)},"
            " none of which it trained on."
        )
    if training:
        parts.append(
            f"In sample, weaker evidence: its predictions on the {training} labels it trained"
            " on (a network remembers its training labels, so it rarely contradicts them)."
        )
    weak = scan.get("weak", 0)
    if weak:
        parts.append(
            f"{weak} more label{'s' if weak != 1 else ''} the model doubts with less than"
            f" {SUSPECT_MIN_CONFIDENCE:.0%} for the other class {'are' if weak != 1 else 'is'}"
            " not listed: too weak to spend an expert's time on."
        )
    return " ".join(parts)


def review_reason(suspect: dict, *, version: int | None, decided: str) -> str:
    """What the expert reads on the review task."""
    if suspect.get("why"):  # found by the task type itself, not by a model
        return (
            f"sent back for review: {suspect['why']} Keep {suspect['given']} if it is right,"
            f" choose {suspect['suggested']} if not."
        )[:300]
    reason = (
        f"sent back for review: labeled {suspect['given']} ({decided}), but model v{version}"
        f" says {suspect['predicted']} ({suspect['confidence']:.0%})"
        f" {EVIDENCE_WORDS.get(suspect['evidence'], '')}."
        f" Keep {suspect['given']} if it is right, choose the class you see if not."
    )
    return reason[:300]


# --- the queue --------------------------------------------------------------------------------


def _sent_item_ids(project: Project) -> set[int]:
    return set(
        SelectionItem.objects.filter(
            selection_round__project=project, selection_round__strategy=LABEL_REVIEW
        ).values_list("item_id", flat=True)
    )


def _still_suspect(project: Project, suspects: list[dict]) -> list[dict]:
    """The stored suspects whose label is still the one the model doubted, and that no
    review round took yet, with the annotators' votes and how the label was decided."""
    ids = {s["item_id"] for s in suspects}
    truths = {
        g.item_id: g
        for g in GroundTruth.objects.filter(item_id__in=ids, needs_review=False).select_related(
            "label_class"
        )
    }
    sent = _sent_item_ids(project)
    names = {c.pk: c.name for c in project_classes(project=project)}
    votes = latest_votes(Annotation.objects.filter(project=project, item_id__in=ids))
    out = []
    for suspect in suspects:
        truth = truths.get(suspect["item_id"])
        if truth is None or truth.label_class.name != suspect["given"]:
            continue
        if suspect["item_id"] in sent:
            continue
        out.append(
            {
                **suspect,
                "out_of_sample": suspect["evidence"] in OUT_OF_SAMPLE,
                "decided_by": truth.decided_by,
                "decided": decided_words(truth.decided_by, truth.num_annotators, truth.agreement),
                "agreement": truth.agreement,
                "num_annotators": truth.num_annotators,
                "votes": [
                    {"annotator": v.annotator, "label": names.get(v.label, str(v.label))}
                    for v in votes.get(suspect["item_id"], [])
                ],
            }
        )
    return out


def review_rounds(*, project: Project) -> list[dict]:
    """The project's review rounds, newest first: how many picks were confirmed, corrected
    and are still waiting for an answer."""
    rounds = list(
        SelectionRound.objects.filter(project=project, strategy=LABEL_REVIEW)
        .select_related("model_version")
        .order_by("-number")
    )
    picks = list(SelectionItem.objects.filter(selection_round__in=rounds))
    decided = pick_decisions(picks)
    counts: dict[int, Counter] = defaultdict(Counter)
    for pick in picks:
        decision = decided[pick.pk]
        counts[pick.selection_round_id][decision.outcome if decision else PENDING] += 1
    return [
        {
            "id": r.pk,
            "number": r.number,
            "status": r.status,
            "model_version": r.model_version.version if r.model_version else None,
            "created_at": r.created_at,
            "push_error": r.push_error,
            "sent": sum(counts[r.pk].values()),
            CONFIRMED: counts[r.pk][CONFIRMED],
            CORRECTED: counts[r.pk][CORRECTED],
            PENDING: counts[r.pk][PENDING],
        }
        for r in rounds
    ]


def label_review_queue(*, project: Project) -> dict:
    """The latest model version's suspects still to review, the evidence they stand on,
    and the outcome of every review round so far.

    `status`: `no_model` before any version, `scanning` while the version's scan is
    computed (the first call asks a worker for it), `ready` once it is there."""
    version = latest_version(project)
    rounds = review_rounds(project=project)
    totals = {key: sum(r[key] for r in rounds) for key in (CONFIRMED, CORRECTED, PENDING)}
    out = {
        "status": "no_model",
        "model_version": None,
        "checked": {},
        "evidence_note": "",
        "suspects": [],
        "rounds": rounds,
        "totals": totals,
    }
    own = task_type_of(project).label_suspects(project=project)
    if own is not None:
        return {
            **out,
            "status": "ready",
            "model_version": version.version if version else None,
            "evidence_note": OWN_EVIDENCE_NOTE,
            "suspects": _still_suspect(project, own),
        }
    if version is None:
        return out
    out["model_version"] = version.version
    scan = label_suspects_read(model_version=version)
    if scan is None:
        label_suspects_request(model_version=version)
        return {**out, "status": "scanning"}
    return {
        **out,
        "status": "ready",
        "checked": scan["checked"],
        "evidence_note": evidence_note(scan),
        "suspects": _still_suspect(project, scan["suspects"]),
    }


# --- sending ----------------------------------------------------------------------------------


@transaction.atomic
def label_review_send(
    *, project: Project, item_ids: Iterable[int] | None = None, limit: int | None = None
) -> SelectionRound:
    """Sends the listed suspects (those of `item_ids` only, when given; at most `limit`)
    to Label Studio as a review round; the push runs in a worker after commit."""
    queue = label_review_queue(project=project)
    if queue["status"] != "ready":
        raise ApplicationError(
            "There is no list of suspect labels yet: it needs a trained model version.",
            code="not_ready",
            status=409,
            extra={"status": queue["status"]},
        )
    suspects = queue["suspects"]
    if item_ids is not None:
        wanted = set(item_ids)
        suspects = [s for s in suspects if s["item_id"] in wanted]
    suspects = suspects[: min(limit or MAX_SEND, MAX_SEND)]
    if not suspects:
        raise ApplicationError("No suspect label is waiting for review.", code="nothing_to_send")
    version = latest_version(project)
    number = (
        SelectionRound.objects.select_for_update()
        .filter(project=project)
        .aggregate(n=Max("number"))["n"]
        or 0
    ) + 1
    selection_round = SelectionRound.objects.create(
        project=project,
        number=number,
        model_version=version,
        strategy=LABEL_REVIEW,
        batch_size=len(suspects),
        control_fraction=0.0,
        pool_size=len(queue["suspects"]),
    )
    by_name = {c.name: c.pk for c in project_classes(project=project)}
    SelectionItem.objects.bulk_create(
        SelectionItem(
            selection_round=selection_round,
            item_id=s["item_id"],
            rank=rank,
            score=s["score"],
            strategy=LABEL_REVIEW,
            is_control=False,
            predicted_class_id=by_name.get(s["given"]),
            confidence=s["given_probability"],
            reason=review_reason(
                s, version=version.version if version else None, decided=s["decided"]
            ),
        )
        for rank, s in enumerate(suspects, start=1)
    )
    round_selected(selection_round=selection_round)
    return selection_round
