"""What the people who label are told about the method: the strategy in plain words, why
they see the items of the current batch, where the model is confused, and how their
agreement compares with the others'."""

from __future__ import annotations

import re
from collections import Counter

from loupe.errors import ApplicationError
from loupe.insights.agreement import agreement
from loupe.labeling.models import Annotation
from loupe.labeling.review import LABEL_REVIEW
from loupe.learning.models import ModelVersion, SelectionRound
from loupe.projects.models import Project

# One short text per strategy name, as an annotator reads it.
STRATEGY_WORDS = {
    "adaptive": (
        "Loupe mixes several ways of picking: items the model is unsure about (kept varied),"
        " items of classes with few labels, items unlike anything labeled yet (a kind of"
        " image nobody has seen could be a new defect), and some at random. After each batch"
        " it checks which way found the items that taught the model most, compared with the"
        " random checks, and gives that way more of the next batch."
    ),
    "discovery": (
        "Loupe picks typical items from groups of similar images that nobody has labeled"
        " yet, so a kind of item no one has seen is found early."
    ),
    "hybrid": (
        "Loupe first shortlists the items the model is least sure about (its two best guesses"
        " are close), then keeps a varied set among them, so one batch does not hold twenty"
        " near-copies of the same doubt."
    ),
    "margin": (
        "Loupe picks the items where the model's two best guesses are closest: an answer"
        " there teaches it the most about where one class ends and the next begins."
    ),
    "least_confidence": (
        "Loupe picks the items whose best guess the model gives the lowest probability: the"
        " ones it is least sure of."
    ),
    "entropy": (
        "Loupe picks the items where the model spreads its belief most evenly over the"
        " classes: the ones it has least idea about."
    ),
    "bald": (
        "Loupe asks the model many times with small changes and picks the items where its"
        " answers disagree with each other: doubt that more labels can remove."
    ),
    "coreset": (
        "Loupe picks items unlike everything labeled so far, so that every kind of image in"
        " the pool gets covered."
    ),
    "badge": (
        "Loupe picks items the model is unsure of that are also unlike each other: doubt and"
        " variety together."
    ),
    "class_balanced": (
        "Loupe picks items the model believes belong to the classes still short of their"
        " targets, so rare classes get their labels."
    ),
    "random": "Loupe picks items at random from the pool: no cleverness, a fair sample.",
    "cold_start": (
        "There is no model yet: Loupe picks typical items of every kind of image (by source,"
        " camera and look), so the first model sees everything early."
    ),
    LABEL_REVIEW: (
        "These are labels the model doubts: it was confident the item is of another class."
        " Keep the label if it is right; choose the class you see if it is not."
    ),
}

# How pick reasons start (loupe.learning.selection.pick_reason), and the words they are
# counted under: what the batch is made of, without the percentages of each item.
_REASONS = [
    (re.compile(r"^picked at random, to explore"), lambda m: ("explore", ()), None),
    (re.compile(r"^picked at random"), lambda m: ("random", ()), None),
    (re.compile(r"^from a group of similar images none"), lambda m: ("discovery", ()), None),
    (
        re.compile(r"^the model hesitates between (.+?) \(\d+%\) and (.+?) \(\d+%\)"),
        lambda m: ("hesitates", tuple(sorted(m.groups()))),
        None,
    ),
    (re.compile(r"^the model is unsure; its best guess is (.+?) \(\d+%\)"), None, "unsure"),
    (re.compile(r"^the model says (.+?) \(\d+%\), a class with only"), None, "rare"),
    (re.compile(r"^unlike the items labeled so far"), lambda m: ("unlike", ()), None),
    (re.compile(r"^first batch, before any model"), lambda m: ("first", ()), None),
    (re.compile(r"^sent back for review"), lambda m: ("review", ()), None),
]
_EARLY = re.compile(r"\(an early model, trained on (\d+) labels")


def _reason_key(reason: str) -> tuple[str, tuple]:
    for pattern, key, kind in _REASONS:
        match = pattern.match(reason)
        if match:
            return key(match) if key else (kind, match.groups())
    return ("other", (reason,))


def _reason_words(kind: str, args: tuple, n: int) -> str:
    plural = n != 1
    if kind == "random":
        return "random checks, to see how the model does on ordinary items"
    if kind == "explore":
        return "picked at random to explore, beyond what the model already asks about"
    if kind == "discovery":
        return "from groups of similar images that nobody has labeled yet"
    if kind == "hesitates":
        return f"because the model hesitates between {args[0]} and {args[1]}"
    if kind == "unsure":
        return f"because the model is unsure (its best guess: {args[0]})"
    if kind == "rare":
        return f"because the model sees {args[0]}, a class with few labels so far"
    if kind == "unlike":
        return (
            "because they are unlike the items labeled so far"
            if plural
            else ("because it is unlike the items labeled so far")
        )
    if kind == "first":
        return "typical items of one kind of image, picked before any model existed"
    if kind == "review":
        return "labels sent back because the model doubts them"
    return args[0]


def current_round(project: Project) -> SelectionRound | None:
    """The batch the experts work on: the latest selection round (review rounds apart)."""
    return (
        SelectionRound.objects.filter(project=project)
        .exclude(strategy=LABEL_REVIEW)
        .select_related("model_version")
        .order_by("-number")
        .first()
    )


# What each arm of the adaptive mix picks, as a labeler reads it.
ARM_WORDS = {
    "hybrid": "the model is unsure about",
    "class_balanced": "of classes with few labels",
    "discovery": "from kinds of image nobody has labeled yet",
    "random": "picked at random",
}


def mix_words(mix: dict | None) -> str:
    """ "18 items the model is unsure about, 8 of classes with few labels, ... and 4 random
    checks": how a mixed batch was split, biggest share first; "" for one strategy's batch."""
    picks = dict((mix or {}).get("picks") or {})
    if not picks:
        return ""
    control = picks.pop("control", 0)
    parts = [
        f"{n} item{'s' if n != 1 else ''} {ARM_WORDS.get(arm, f'picked by {arm}')}"
        for arm, n in sorted(picks.items(), key=lambda kv: (-kv[1], kv[0]))
        if n
    ]
    if control:
        parts.append(f"{control} random check{'s' if control != 1 else ''}")
    return ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1]


def strategy_explained(*, project: Project, selection_round: SelectionRound | None) -> dict:
    """The project's strategy in plain words, and the share of random checks."""
    from loupe.projects.selectors import strategy_name

    try:
        name = strategy_name(project)
    except ApplicationError:
        name = project.strategy
    # Before any model, the batch is a cold start whatever the strategy says.
    shown = selection_round.strategy if selection_round is not None else name
    control = project.control_fraction
    return {
        "name": name,
        "words": STRATEGY_WORDS.get(name, f"Loupe picks items with the '{name}' strategy."),
        "round_strategy": shown,
        "round_words": STRATEGY_WORDS.get(shown, "") if shown != name else "",
        # How a mix split the current batch (the adaptive default), in words.
        "mix_words": mix_words(selection_round.mix if selection_round else None),
        "control_words": (
            f"About {round(control * 100)} items in 100 of each batch are random checks:"
            " they tell everyone honestly how the model does on ordinary items."
            if control
            else ""
        ),
    }


def pick_reasons(*, selection_round: SelectionRound | None) -> dict:
    """The current round's picks counted by why they were picked, most common first."""
    if selection_round is None:
        return {"round": None, "total": 0, "groups": [], "early_labels": None}
    counts: Counter = Counter()
    early = None
    for reason in selection_round.items.values_list("reason", flat=True):
        counts[_reason_key(reason)] += 1
        found = _EARLY.search(reason)
        if found:
            early = int(found.group(1))
    groups = [
        {"n": n, "words": _reason_words(kind, args, n)}
        for (kind, args), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    return {
        "round": selection_round.number,
        "total": sum(counts.values()),
        "groups": groups,
        "early_labels": early,
    }


def confusion_in_words(*, version: ModelVersion | None, limit: int = 6) -> dict:
    """The latest version's confusion matrix on the holdout as sentences, the most frequent
    mistakes (as a share of the true class's holdout items) first."""
    if version is None:
        return {"version": None, "mistakes": [], "holdout": 0, "clean": False}
    matrix = (version.metrics or {}).get("confusion_matrix") or []
    names = version.class_names
    mistakes = []
    for i, row in enumerate(matrix):
        total = sum(row)
        for j, n in enumerate(row):
            if i != j and n and total:
                mistakes.append(
                    {
                        "true": names[i],
                        "predicted": names[j],
                        "n": n,
                        "of": total,
                        "share": n / total,
                        "words": f"it mistakes {names[i]} for {names[j]} {n}"
                        f" time{'s' if n != 1 else ''} out of {total} on the holdout",
                    }
                )
    mistakes.sort(key=lambda m: (-m["share"], -m["n"], m["true"], m["predicted"]))
    recalls = [(row[i] / sum(row), names[i]) for i, row in enumerate(matrix) if sum(row)]
    return {
        "version": version.version,
        "holdout": sum(sum(row) for row in matrix),
        "mistakes": mistakes[:limit],
        "more": max(0, len(mistakes) - limit),
        "clean": bool(matrix) and not mistakes,
        "best": max(recalls) if recalls else None,
        "worst": min(recalls) if recalls else None,
    }


def agreement_compared(*, project: Project, user) -> dict:
    """Each annotator's agreement with the others (insights.agreement), the team's, and
    which rows are the viewer's own."""
    stats = agreement(project=project)
    mine = set(
        Annotation.objects.filter(project=project, user=user)
        .values_list("annotator", flat=True)
        .distinct()
    ) | {user.username}
    rows = [{**row, "is_you": row["annotator"] in mine} for row in stats["annotators"]]
    you = next((row for row in rows if row["is_you"]), None)
    return {
        "team": stats["pairwise_agreement"],
        "items_compared": stats["items_compared"],
        "annotators": rows,
        "you": you,
        "classes": [c for c in stats["classes"] if c["pairs"]],
    }


def labelers_page(*, project: Project, user) -> dict:
    """Everything the page for the people who label shows."""
    selection_round = current_round(project)
    version = ModelVersion.objects.filter(project=project).order_by("-version").first()
    return {
        "strategy": strategy_explained(project=project, selection_round=selection_round),
        "reasons": pick_reasons(selection_round=selection_round),
        "confusion": confusion_in_words(version=version),
        "agreement": agreement_compared(project=project, user=user),
    }
