"""Checks on pair labels that need no model: "same" is transitive.

If A and B are the same person and B and C are too, then A and C are; a label saying A and
C differ contradicts the other two, and one of the three (at least) is wrong. Such triples
and longer chains are label-error suspects worth a second look. The same rule, applied
to consistent labels, gives pairs for free: :func:`implied_pairs`.
"""

from __future__ import annotations

from collections import deque

import numpy as np


def identity_groups(pairs, same) -> dict[int, int]:
    """Image -> group id, joining images linked by a chain of "same" labels (union-find);
    every image of ``pairs`` appears, a group id is its smallest image."""
    parent: dict[int, int] = {}

    def find(i: int) -> int:
        parent.setdefault(i, i)
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    for (a, b), s in zip(pairs.tolist(), np.asarray(same).astype(bool).tolist(), strict=True):
        ra, rb = find(a), find(b)
        if s and ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {i: find(i) for i in list(parent)}


def _path(graph: dict[int, list[int]], start: int, goal: int) -> list[int]:
    """Shortest chain of "same" links from ``start`` to ``goal`` (breadth first)."""
    previous = {start: start}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        if node == goal:
            break
        for nxt in graph.get(node, ()):
            if nxt not in previous:
                previous[nxt] = node
                queue.append(nxt)
    chain = [goal]
    while chain[-1] != start:
        chain.append(previous[chain[-1]])
    return chain[::-1]


def transitivity_contradictions(pairs, same) -> list[dict]:
    """Every "different" label whose two images are joined by a chain of "same" labels.

    ``pairs (m, 2)`` are image indices (or ids), ``same (m,)`` the labels (true = same).
    Each contradiction is ``{"different": (a, c), "different_label": i, "same_chain":
    [a, b, ..., c], "same_labels": [j, ...]}``: the positions in ``pairs`` of the labels
    involved, the shortest chain first, so a reviewer sees the fewest labels to re-check.
    """
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    same = np.asarray(same).astype(bool)
    if len(pairs) != len(same):
        raise ValueError(f"{len(pairs)} pairs but {len(same)} labels")
    groups = identity_groups(pairs, same)
    graph: dict[int, list[int]] = {}
    label_of: dict[tuple[int, int], int] = {}
    for i, ((a, b), s) in enumerate(zip(pairs.tolist(), same.tolist(), strict=True)):
        if s and a != b:
            graph.setdefault(a, []).append(b)
            graph.setdefault(b, []).append(a)
            label_of.setdefault((min(a, b), max(a, b)), i)
    found = []
    for i, ((a, c), s) in enumerate(zip(pairs.tolist(), same.tolist(), strict=True)):
        if s or groups[a] != groups[c]:
            continue
        chain = _path(graph, a, c) if a != c else [a]
        links = [label_of[(min(x, y), max(x, y))] for x, y in zip(chain, chain[1:], strict=False)]
        found.append(
            {"different": (a, c), "different_label": i, "same_chain": chain, "same_labels": links}
        )
    return found


def implied_pairs(pairs, same, *, max_pairs: int | None = None, seed: int = 0):
    """The labeled pairs plus every pair their labels imply: ``(pairs (m, 2), same (m,))``.

    Images joined by "same" labels are one identity, so every two of them are the same; a
    "different" label between two identities makes every image of one different from every
    image of the other. The labeled pairs come first (their own label wins over an implied
    one; contradictions are :func:`transitivity_contradictions`' business); with
    ``max_pairs``, a random sample of the implied ones (by ``seed``) fills up to that many.
    """
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    same = np.asarray(same).astype(bool)
    groups = identity_groups(pairs, same)
    members: dict[int, list[int]] = {}
    for image, group in sorted(groups.items()):
        members.setdefault(group, []).append(image)
    seen = {(min(a, b), max(a, b)) for a, b in pairs.tolist()}
    extra: list[tuple[int, int, bool]] = []
    for images in members.values():
        for i, a in enumerate(images):
            for b in images[i + 1 :]:
                if (a, b) not in seen:
                    seen.add((a, b))
                    extra.append((a, b, True))
    apart = {
        (min(groups[a], groups[b]), max(groups[a], groups[b]))
        for (a, b), s in zip(pairs.tolist(), same.tolist(), strict=True)
        if not s and groups[a] != groups[b]
    }
    for g, h in sorted(apart):
        for a in members[g]:
            for b in members[h]:
                key = (min(a, b), max(a, b))
                if key not in seen:
                    seen.add(key)
                    extra.append((key[0], key[1], False))
    if max_pairs is not None and len(pairs) + len(extra) > max_pairs:
        keep = np.random.default_rng([seed, 47]).permutation(len(extra))
        extra = [extra[i] for i in np.sort(keep[: max(0, max_pairs - len(pairs))])]
    if not extra:
        return pairs, same
    more = np.array([(a, b) for a, b, _ in extra], dtype=np.int64)
    return np.concatenate([pairs, more]), np.concatenate([same, [s for _, _, s in extra]])
