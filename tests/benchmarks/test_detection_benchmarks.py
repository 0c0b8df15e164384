"""The pure helpers of the detection benchmarks: the shift split and the scored tiles."""

import numpy as np
import torch

from benchmarks.detection_shift import shift_split
from benchmarks.detection_speed import page_tiles
from ml.detection import CenterNet, detect


def test_shift_split_starts_clean_and_pools_both_kinds():
    scanned = np.array([False] * 20 + [True] * 20)
    split = shift_split(scanned, initial=4, pool=10, holdout=3, seed=1)
    assert not scanned[split.initial].any()
    assert scanned[split.pool].sum() == 5 and len(split.pool) == 10
    assert not scanned[split.holdout_clean].any() and len(split.holdout_clean) == 3
    assert scanned[split.holdout_scanned].all() and len(split.holdout_scanned) == 3
    every = np.concatenate([split.initial, split.pool, split.holdout_clean, split.holdout_scanned])
    assert len(set(every.tolist())) == len(every)
    other = shift_split(scanned, initial=4, pool=10, holdout=3, seed=2)
    assert not np.array_equal(split.pool, other.pool)


def test_shift_split_refuses_too_few_clean_pages():
    scanned = np.array([False] * 5 + [True] * 20)
    try:
        shift_split(scanned, initial=4, pool=10, holdout=3, seed=0)
    except ValueError as error:
        assert "clean pages" in str(error)
    else:
        raise AssertionError("expected a ValueError")


def test_page_tiles_are_the_windows_detect_scores():
    rng = np.random.default_rng(0)
    page = rng.random((200, 300)).astype(np.float32)
    small = rng.random((40, 50)).astype(np.float32)
    tiles, one = page_tiles([page, small], tile_size=128, overlap=32)
    # 200 px high: starts 0, 72; 300 wide: 0, 96, 172; the small page one tile of 48x64.
    assert tiles.shape == (6, 1, 128, 128) and one.shape == (1, 1, 48, 64)
    assert torch.equal(tiles[0, 0], torch.as_tensor(page[:128, :128]))
    assert torch.equal(tiles[5, 0], torch.as_tensor(page[72:200, 172:300]))
    assert torch.equal(one[0, 0, :40, :50], torch.as_tensor(small))
    # detect's page embedding pools the deepest features of exactly these windows.
    model = CenterNet(3, seed=0).eval()
    found = detect(model, [page], tile_size=128, overlap=32)
    with torch.inference_mode():
        _, c16 = model._features(tiles)
    pooled = torch.cat((c16.mean(dim=(2, 3)).mean(0), c16.amax(dim=(2, 3)).amax(0)))
    np.testing.assert_allclose(found[0].embedding, pooled.numpy(), rtol=1e-4, atol=1e-5)
