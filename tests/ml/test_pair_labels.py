from ml.pair_labels import identity_groups, transitivity_contradictions


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
