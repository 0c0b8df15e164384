from ml.pair_labels import identity_groups, implied_pairs, transitivity_contradictions


def test_a_planted_contradiction_is_found_with_its_chain():
    pairs = [(0, 1), (1, 2), (0, 2), (3, 4), (0, 3), (5, 6)]
    same = [True, True, False, True, False, True]
    found = transitivity_contradictions(pairs, same)
    assert found == [
        {"different": (0, 2), "different_label": 2, "same_chain": [0, 1, 2], "same_labels": [0, 1]}
    ]


def test_consistent_labels_have_no_contradiction():
    pairs = [(0, 1), (1, 2), (0, 3), (2, 3), (4, 5)]
    same = [True, True, False, False, False]
    assert transitivity_contradictions(pairs, same) == []
    groups = identity_groups(pairs, same)
    assert groups[0] == groups[1] == groups[2] == 0
    assert len({groups[0], groups[3], groups[4], groups[5]}) == 4


def test_a_long_chain_counts_and_the_shortest_chain_is_shown():
    pairs = [(10, 11), (11, 12), (12, 13), (10, 13), (10, 12), (13, 14)]
    same = [True, True, True, True, False, True]
    (found,) = transitivity_contradictions(pairs, same)
    assert found["different"] == (10, 12)
    assert len(found["same_chain"]) == 3  # 10-11-12 or 10-13-12, not the long way round


def test_labels_imply_the_pairs_transitivity_gives():
    # 0~1, 1~2 (one identity), 3~4 (another), 0 differs from 3.
    pairs = [(0, 1), (1, 2), (3, 4), (0, 3)]
    same = [True, True, True, False]
    all_pairs, all_same = implied_pairs(pairs, same)
    got = {tuple(p): s for p, s in zip(all_pairs.tolist(), all_same.tolist(), strict=True)}
    assert got[(0, 2)] is True  # through 1
    assert all(got[(a, b)] is False for a in (0, 1, 2) for b in (3, 4))
    assert len(got) == len(all_pairs) == 3 + 1 + 6  # 3 within, 1 within, 3 x 2 across
    assert all_pairs[:4].tolist() == [list(p) for p in pairs]
    capped, _ = implied_pairs(pairs, same, max_pairs=6, seed=0)
    assert len(capped) == 6 and capped[:4].tolist() == [list(p) for p in pairs]
