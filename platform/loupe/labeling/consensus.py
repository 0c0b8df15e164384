"""From annotations to ground truth, and how far annotators agree.

The rule (also in docs/label-studio.md):

- Each annotator counts once per item: their latest answer (see "Latest answer" below). A
  skip (`was_cancelled`) is an answer without a vote, and an answer naming no class Loupe
  knows is not a vote either; either one replaces the annotator's earlier vote.
- Until `annotator_overlap` annotators answered, the item waits (`in_annotation`).
- Then the class with most votes wins: one voter -> `single`, several -> `majority`, with
  `agreement` = winner's votes / votes. The item becomes `labeled`, and a pool item moves to
  the `train` split or, once and for good, to the project's fixed holdout
  (`labeling.holdout`); control-slice picks too.
- A tie between the top classes gives a ground truth marked `needs_review` (holding the
  tied class voted first), and the item stays `in_annotation`: no training label until a
  reviewer decides (`ground_truth_review`).
- Nobody voted (all skipped) -> the item is `skipped`.
- Decisions made in review or imported with the data are never overwritten by votes.
- An answered label-review task (`labeling.review`) decides its item whatever came before,
  an imported label included: the reviewers' votes on it, a tie keeping the label under
  review, make a `review` decision.

Latest answer: the voter is the annotator's name, or the Label Studio annotation when the
name is unknown (`voter_of`). Of a voter's answers on an item, the latest is the greatest by
(Label Studio's updated_at, or Loupe's created_at when Label Studio gave no time; the Label
Studio annotation id, none counting as 0; Loupe's id) (`answer_order`). The ground truth,
the review, the agreement statistics and the agreement votes the database keeps all apply
this rule: the Python functions here, and their SQL mirror (`VOTER_SQL`,
`LATEST_ANSWER_FIRST_SQL`) in the triggers (labeling.counters).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from loupe.datasets.models import Item, ItemState, Split
from loupe.labeling.holdout import HoldoutAssigner
from loupe.labeling.models import Annotation, Decision, GroundTruth
from loupe.learning.models import SelectionItem, SelectionRound
from loupe.tasktypes import Outcome, Vote, plurality, task_type_of

STICKY_DECISIONS = (Decision.IMPORTED, Decision.REVIEW)
# The strategy of a label-review round (`labeling.review`) and what its answers make.
LABEL_REVIEW = "label_review"
CONFIRMED, CORRECTED = "confirmed", "corrected"


# The rule itself is the task type's (`loupe.tasktypes`); classification's is `plurality`.
decide = plurality


# The SQL mirror of `voter_of` and `answer_order` over an annotation row `{r}`: the same rule
# in the triggers that keep the agreement votes. NULL annotators and ids behave as in Python
# (an empty name falls back to the annotation; no id counts as 0), so SQLite and PostgreSQL,
# which order NULLs differently, agree with each other and with Python.
VOTER_SQL = (
    "COALESCE(NULLIF({r}.annotator, ''), "
    "'annotation-' || CAST({r}.ls_annotation_id AS VARCHAR(24)))"
)
LATEST_ANSWER_FIRST_SQL = (
    "COALESCE({r}.ls_updated_at, {r}.created_at) DESC, "
    "COALESCE({r}.ls_annotation_id, 0) DESC, {r}.id DESC"
)


def voter_of(annotation) -> str | None:
    """Who an answer's vote belongs to: the annotator, else its Label Studio annotation
    (None for an answer with neither, which Label Studio never sends: it is no vote)."""
    if annotation.annotator:
        return annotation.annotator
    if annotation.ls_annotation_id is not None:
        return f"annotation-{annotation.ls_annotation_id}"
    return None


def answer_order(annotation) -> tuple:
    """Sort key of a voter's answers on an item: the greatest is their latest answer."""
    return (
        annotation.ls_updated_at or annotation.created_at,
        annotation.ls_annotation_id or 0,
        annotation.id,
    )


def votes_of(annotations: Iterable) -> list[Vote]:
    """Latest answer per voter, in the order voters first appear in `annotations` (the
    order they first answered, when given ordered by creation). Takes Annotation rows or
    anything with their fields (annotator, ls_annotation_id, ls_updated_at, created_at, id,
    label_class_id, was_cancelled)."""
    latest: dict[str, object] = {}
    for annotation in annotations:
        key = voter_of(annotation)
        if key is None:
            continue
        current = latest.get(key)
        if current is None or answer_order(annotation) > answer_order(current):
            latest[key] = annotation
    return [
        Vote(
            annotator=key,
            label=a.label_class_id,
            cancelled=a.was_cancelled,
            answer=getattr(a, "answer", None),
        )
        for key, a in latest.items()
    ]


ANSWER_FIELDS = (
    "item_id",
    "annotator",
    "ls_annotation_id",
    "ls_updated_at",
    "created_at",
    "id",
    "label_class_id",
    "was_cancelled",
    "answer",
)


def latest_votes(annotations) -> dict[int, list[Vote]]:
    """{item id: its voters' votes for a class} of an Annotation queryset, by the rule."""
    by_item: dict[int, list] = defaultdict(list)
    rows = annotations.order_by("created_at", "id").values_list(*ANSWER_FIELDS, named=True)
    for row in rows.iterator(chunk_size=5000):
        by_item[row.item_id].append(row)
    return {
        item_id: [v for v in votes_of(answers) if v.counts] for item_id, answers in by_item.items()
    }


def _reviewed(label, votes: Sequence[Vote]) -> Outcome:
    """A review decision for `label`, with how many of all the item's voters chose it."""
    labels = [v.label for v in votes if v.counts]
    return Outcome(
        state=ItemState.LABELED,
        label=label,
        decided_by=Decision.REVIEW,
        votes=len(labels),
        agreement=labels.count(label) / len(labels) if labels else None,
    )


@transaction.atomic
def ground_truth_recompute(
    *, project, item_ids: Iterable[int], returned: Iterable[int] = ()
) -> int:
    """Brings ground truth and item state of these items in line with their annotations.

    `returned` holds items whose Label Studio task was deleted: without a label they go back
    to the unlabeled pool. Returns how many items got a new or changed usable label.
    """
    ids, returned = set(item_ids), set(returned)
    if not ids:
        return 0
    items = {i.pk: i for i in Item.objects.filter(project=project, pk__in=ids)}
    truths = {g.item_id: g for g in GroundTruth.objects.filter(item_id__in=items)}
    by_item: dict[int, list[Annotation]] = defaultdict(list)
    for annotation in Annotation.objects.filter(item_id__in=items).order_by("created_at", "id"):
        by_item[annotation.item_id].append(annotation)
    create, update, delete, changed_items = [], [], [], []
    new_labels = 0
    holdout = HoldoutAssigner(project=project)
    rule = task_type_of(project)
    reviewed = review_decisions(item_ids=items)
    for item_id in sorted(items):
        item = items[item_id]
        truth = truths.get(item_id)
        if item_id in reviewed:
            outcome = _reviewed(reviewed[item_id].label, votes_of(by_item[item_id]))
        elif truth is not None and truth.decided_by in STICKY_DECISIONS:
            continue
        else:
            outcome = rule.decide(votes_of(by_item[item_id]), overlap=project.annotator_overlap)
        state = outcome.state
        if not outcome.decided and item_id in returned and not by_item[item_id]:
            state = ItemState.UNLABELED
        split = item.split
        if state == ItemState.LABELED and split == Split.POOL:
            # Assigned once, when the item enters ground truth; it never moves after.
            split = holdout.split_for(sha256=item.sha256, class_id=outcome.label)
        elif state != ItemState.LABELED and split in (Split.TRAIN, Split.HOLDOUT):
            # Only Loupe's own decisions move an item out of the pool (imported labels are
            # sticky and never get here); undoing one moves it back.
            split = Split.POOL
        if not outcome.decided:
            if truth is not None:
                delete.append(truth.pk)
        else:
            fields = {
                "label_class_id": outcome.label,
                "answer": outcome.answer,
                "decided_by": outcome.decided_by,
                "num_annotators": outcome.votes,
                "agreement": outcome.agreement,
                "needs_review": outcome.needs_review,
                "in_holdout": split == Split.HOLDOUT,
            }
            if truth is None:
                create.append(GroundTruth(item_id=item_id, project_id=project.pk, **fields))
                new_labels += not outcome.needs_review
            elif any(getattr(truth, k) != v for k, v in fields.items()):
                changed = not outcome.needs_review and (
                    truth.needs_review
                    or truth.label_class_id != outcome.label
                    or truth.answer != outcome.answer
                )
                new_labels += changed
                # What training learns from moved: the label, or whether it is one yet.
                truth.relabeled = changed or truth.needs_review != outcome.needs_review
                for key, value in fields.items():
                    setattr(truth, key, value)
                update.append(truth)
        if (state, split) != (item.state, item.split):
            item.state, item.split = state, split
            changed_items.append(item)
    GroundTruth.objects.filter(pk__in=delete).delete()
    GroundTruth.objects.bulk_create(create, batch_size=500)
    # `updated_at` is set by hand: bulk_update skips auto_now, and the retraining trigger
    # counts labels changed since the last training by it. Only a changed label moves it: a
    # second vote that agrees, or a review that confirms the label, is no new label.
    now = timezone.now()
    for truth in update:
        if truth.relabeled:
            truth.updated_at = now
    GroundTruth.objects.bulk_update(
        update,
        [
            "label_class",
            "answer",
            "decided_by",
            "num_annotators",
            "agreement",
            "needs_review",
            "in_holdout",
            "updated_at",
        ],
        batch_size=500,
    )
    # One UPDATE per (state, split) pair: a few statements instead of a CASE per row.
    moves: dict[tuple[str, str], list[int]] = defaultdict(list)
    for item in changed_items:
        moves[(item.state, item.split)].append(item.pk)
    for (state, split), pks in moves.items():
        for start in range(0, len(pks), 500):
            Item.objects.filter(pk__in=pks[start : start + 500]).update(
                state=state, split=split, updated_at=now
            )
    return new_labels


# --- agreement statistics -------------------------------------------------------------------


def krippendorff_alpha(units: Iterable[Sequence[Hashable]]) -> float | None:
    """Krippendorff's alpha for nominal data; each unit is the labels its raters gave.

    Units with fewer than two labels carry no pairs and are left out; None when there is no
    pair, or when every label is the same class (no variation to agree on).
    """
    coincidence: Counter = Counter()
    for labels in units:
        m = len(labels)
        if m < 2:
            continue
        counts = Counter(labels)
        for c, n_c in counts.items():
            for k, n_k in counts.items():
                pairs = n_c * (n_k - 1) if c == k else n_c * n_k
                coincidence[(c, k)] += pairs / (m - 1)
    totals: Counter = Counter()
    for (c, _), value in coincidence.items():
        totals[c] += value
    n = sum(totals.values())
    if n <= 1:
        return None
    observed = sum(v for (c, k), v in coincidence.items() if c != k)
    expected = sum(totals[c] * totals[k] for c in totals for k in totals if c != k)
    if expected == 0:
        return None
    return 1.0 - (n - 1) * observed / expected


def cohen_kappa(first: Sequence[Hashable], second: Sequence[Hashable]) -> float | None:
    """Cohen's kappa of two paired label lists; None when chance agreement is certain."""
    if not first or len(first) != len(second):
        return None
    n = len(first)
    observed = sum(a == b for a, b in zip(first, second, strict=True)) / n
    a_counts, b_counts = Counter(first), Counter(second)
    expected = sum(a_counts[c] * b_counts.get(c, 0) for c in a_counts) / (n * n)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def pairwise_agreement(units: Iterable[Sequence[Hashable]]) -> float | None:
    """Share of annotator pairs on the same item who chose the same class."""
    agree = total = 0
    for labels in units:
        counts = Counter(labels)
        m = len(labels)
        agree += sum(n * (n - 1) for n in counts.values())
        total += m * (m - 1)
    return agree / total if total else None


def class_specific_agreement(units: Iterable[Sequence[Hashable]], label: Hashable) -> float | None:
    """Of the pairs where one annotator chose `label`, the share where the other did too."""
    agree = total = 0
    for labels in units:
        m, n = len(labels), Counter(labels)[label]
        agree += n * (n - 1)
        total += n * (m - 1)
    return agree / total if total else None


# --- the rule for answered reviews ------------------------------------------------------------


@dataclass(frozen=True)
class ReviewDecision:
    label: int
    under_review: int | None
    reviewers: int

    @property
    def outcome(self) -> str:
        return CONFIRMED if self.label == self.under_review else CORRECTED


def _decide(votes, under_review: int | None) -> ReviewDecision | None:
    labels = [v.label for v in votes if v.counts]
    if not labels:
        return None
    counts = Counter(labels)
    top = max(counts.values())
    tied = [label for label in dict.fromkeys(labels) if counts[label] == top]
    label = under_review if under_review in tied else tied[0]
    return ReviewDecision(label=label, under_review=under_review, reviewers=len(labels))


def _review_picks(item_ids: Iterable[int]) -> list[SelectionItem]:
    return list(
        SelectionItem.objects.filter(
            item_id__in=list(item_ids),
            selection_round__strategy=LABEL_REVIEW,
            ls_task_id__isnull=False,
        )
        .select_related("selection_round")
        .order_by("item_id", "-selection_round__number")
    )


def _answers_by_task(picks: list[SelectionItem]) -> dict[int, list]:
    by_task: dict[int, list] = defaultdict(list)
    answers = Annotation.objects.filter(
        ls_task_id__in={p.ls_task_id for p in picks}, item_id__in={p.item_id for p in picks}
    ).order_by("created_at", "id")
    for answer in answers:
        by_task[answer.ls_task_id].append(answer)
    return by_task


def pick_decisions(picks: list[SelectionItem]) -> dict[int, ReviewDecision | None]:
    """{pick id: the decision its review task's answers make, None while unanswered}."""
    by_task = _answers_by_task([p for p in picks if p.ls_task_id])
    return {
        p.pk: _decide(votes_of(by_task.get(p.ls_task_id, [])), p.predicted_class_id)
        if p.ls_task_id
        else None
        for p in picks
    }


def review_decisions(*, item_ids: Iterable[int]) -> dict[int, ReviewDecision]:
    """{item id: decision} for items whose latest answered review task decides them."""
    picks = _review_picks(item_ids)
    decided = pick_decisions(picks)
    out: dict[int, ReviewDecision] = {}
    for pick in picks:  # newest round first per item
        decision = decided[pick.pk]
        if decision is not None and pick.item_id not in out:
            out[pick.item_id] = decision
    return out


def review_round_open(selection_round: SelectionRound) -> bool:
    """Whether a review round still has a pick nobody answered."""
    picks = list(SelectionItem.objects.filter(selection_round=selection_round))
    decided = pick_decisions(picks)
    return any(decided[p.pk] is None for p in picks)
