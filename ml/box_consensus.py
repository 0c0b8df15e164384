"""Ground-truth boxes from several annotators' boxes on one page, and how far they agree.

The rule:

- Only annotators who answered count: an answer is a list of boxes (an empty list says
  "nothing here"); ``None`` is a skip and is left out. Nobody answered -> no boxes.
- One annotator -> their boxes as they are (``decided_by="single"``).
- Several: boxes are grouped across annotators, at most one box of each annotator per
  group. Annotators are taken in the order given; each one's boxes are matched to the
  groups so far, greedily by IoU with the group's mean box, best pair first, a pair needing
  IoU >= ``iou_threshold`` (0.5). Matching ignores the class, so that "the same sharp, called
  keySharp by one and accidentalSharp by another" is one object with a class disagreement
  rather than two objects nobody agrees on; a same-class pair is preferred over a
  different-class one at any IoU. Unmatched boxes start groups of their own.
- A group becomes a ground-truth box when enough annotators drew it: ``min_votes``, by
  default a strict majority of those who answered (2 of 2, 2 of 3, 3 of 4). Its
  coordinates are the mean of its boxes' corners, its class the most frequent among them;
  a tie keeps the class drawn first and marks the box (and the page) for review.
- Agreement (the page's figure): the mean over pairs of annotators of the F1 between their
  boxes, a match needing IoU >= ``iou_threshold`` *and* the same class (two empty answers
  agree fully). Per class: the same F1 over the boxes of that class, averaged over the
  pairs where either annotator drew one. ``confusions`` counts location matches of
  different classes, by (class, class) sorted by name.
- ``needs_review`` when agreement < ``review_below`` (0.8) or a class tie decided a box.

Greedy matching rather than Hungarian: boxes of one page rarely compete for the same
partner at IoU >= 0.5, greedy needs nothing beyond numpy, and its result is easy to explain.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np

from ml.detection_io import Box


@dataclass(frozen=True)
class ConsensusBox:
    """A ground-truth box: the mean of the boxes grouped into it, and who drew it."""

    box: Box
    votes: int
    annotators: tuple[str, ...]
    class_votes: dict[str, int]
    class_tie: bool = False


@dataclass(frozen=True)
class BoxConsensus:
    """What several answers on a page decide. ``boxes`` is the ground truth (``None`` when
    nobody answered); ``dropped`` are the groups that missed the vote; ``agreement`` is
    ``None`` with fewer than two answers."""

    boxes: tuple[Box, ...] | None
    answered: int
    decided_by: str | None
    agreement: float | None = None
    per_class: dict[str, float] = field(default_factory=dict)
    confusions: dict[tuple[str, str], int] = field(default_factory=dict)
    needs_review: bool = False
    kept: tuple[ConsensusBox, ...] = ()
    dropped: tuple[ConsensusBox, ...] = ()


def iou_matrix(a: Sequence[Box], b: Sequence[Box]) -> np.ndarray:
    """Intersection over union of every box of ``a`` with every box of ``b``, (len a, len b)."""
    if not a or not b:
        return np.zeros((len(a), len(b)))
    xa = np.array([box.xyxy() for box in a], float)
    xb = np.array([box.xyxy() for box in b], float)
    ix = np.clip(
        np.minimum(xa[:, None, 2], xb[None, :, 2]) - np.maximum(xa[:, None, 0], xb[None, :, 0]),
        0,
        None,
    )
    iy = np.clip(
        np.minimum(xa[:, None, 3], xb[None, :, 3]) - np.maximum(xa[:, None, 1], xb[None, :, 1]),
        0,
        None,
    )
    inter = ix * iy
    area_a = (xa[:, 2] - xa[:, 0]) * (xa[:, 3] - xa[:, 1])
    area_b = (xb[:, 2] - xb[:, 0]) * (xb[:, 3] - xb[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def greedy_match(
    a: Sequence[Box], b: Sequence[Box], *, iou_threshold: float = 0.5, same_class: bool = False
) -> list[tuple[int, int]]:
    """Pairs (i, j) of boxes of ``a`` and ``b``, each box in one pair at most, best IoU
    first, IoU >= ``iou_threshold``; with ``same_class`` only pairs of one class, otherwise
    same-class pairs first."""
    iou = iou_matrix(a, b)
    if iou.size == 0:
        return []
    same = np.array([[x.label == y.label for y in b] for x in a])
    eligible = (iou >= iou_threshold) & (same if same_class else True)
    rank = iou + same.astype(float)  # a same-class pair beats any different-class one
    candidates = np.argwhere(eligible)
    order = np.lexsort((candidates[:, 1], candidates[:, 0], -rank[eligible]))
    used_a, used_b, pairs = set(), set(), []
    for i, j in candidates[order]:
        if i not in used_a and j not in used_b:
            used_a.add(int(i))
            used_b.add(int(j))
            pairs.append((int(i), int(j)))
    return pairs


def _f1(a: Sequence[Box], b: Sequence[Box], iou_threshold: float) -> float:
    if not a and not b:
        return 1.0
    matched = len(greedy_match(a, b, iou_threshold=iou_threshold, same_class=True))
    return 2 * matched / (len(a) + len(b))


def _mean_box(members: list[tuple[str, Box]], label: str) -> Box:
    corners = np.array([box.xyxy() for _, box in members], float).mean(axis=0)
    x0, y0, x1, y1 = (float(v) for v in corners)
    return Box(x0, y0, x1 - x0, y1 - y0, label)


def _group(answers: dict[str, Sequence[Box]], iou_threshold: float) -> list[list[tuple[str, Box]]]:
    groups: list[list[tuple[str, Box]]] = []
    for annotator, boxes in answers.items():
        means = [_mean_box(g, Counter(b.label for _, b in g).most_common(1)[0][0]) for g in groups]
        pairs = greedy_match(list(boxes), means, iou_threshold=iou_threshold)
        matched = {i for i, _ in pairs}
        for i, j in pairs:
            groups[j].append((annotator, boxes[i]))
        groups += [[(annotator, box)] for i, box in enumerate(boxes) if i not in matched]
    return groups


def box_consensus(
    answers: Mapping[str, Sequence[Box] | None],
    *,
    iou_threshold: float = 0.5,
    min_votes: int | None = None,
    review_below: float = 0.8,
) -> BoxConsensus:
    """Ground-truth boxes of one page from each annotator's boxes (by annotator name;
    ``None`` for a skip), by the rule of the module docstring."""
    answered = {name: list(boxes) for name, boxes in answers.items() if boxes is not None}
    if not answered:
        return BoxConsensus(boxes=None, answered=0, decided_by=None)
    if len(answered) == 1:
        name, boxes = next(iter(answered.items()))
        kept = tuple(ConsensusBox(b, 1, (name,), {b.label: 1}) for b in boxes)
        return BoxConsensus(
            boxes=tuple(boxes), answered=1, decided_by="single", agreement=None, kept=kept
        )
    needed = min_votes if min_votes is not None else len(answered) // 2 + 1
    kept, dropped = [], []
    for members in _group(answered, iou_threshold):
        class_votes = Counter(box.label for _, box in members)
        top = max(class_votes.values())
        tied = [
            label
            for label in dict.fromkeys(b.label for _, b in members)
            if class_votes[label] == top
        ]
        outcome = ConsensusBox(
            box=_mean_box(members, tied[0]),
            votes=len(members),
            annotators=tuple(name for name, _ in members),
            class_votes=dict(class_votes),
            class_tie=len(tied) > 1,
        )
        (kept if outcome.votes >= needed else dropped).append(outcome)

    pairs = list(combinations(answered, 2))
    agreement = float(np.mean([_f1(answered[a], answered[b], iou_threshold) for a, b in pairs]))
    per_class: dict[str, float] = {}
    classes = sorted({box.label for boxes in answered.values() for box in boxes})
    for label in classes:
        scores = []
        for a, b in pairs:
            mine = [x for x in answered[a] if x.label == label]
            theirs = [x for x in answered[b] if x.label == label]
            if mine or theirs:
                scores.append(_f1(mine, theirs, iou_threshold))
        per_class[label] = float(np.mean(scores))
    confusions: Counter[tuple[str, str]] = Counter()
    for a, b in pairs:
        for i, j in greedy_match(answered[a], answered[b], iou_threshold=iou_threshold):
            first, second = answered[a][i].label, answered[b][j].label
            if first != second:
                confusions[tuple(sorted((first, second)))] += 1
    tie = any(k.class_tie for k in kept)
    return BoxConsensus(
        boxes=tuple(k.box for k in kept),
        answered=len(answered),
        decided_by="majority",
        agreement=agreement,
        per_class=per_class,
        confusions=dict(confusions),
        needs_review=agreement < review_below or tie,
        kept=tuple(kept),
        dropped=tuple(dropped),
    )
