import pytest
import torch

from ml.augment import OFF, Augment, affine


def test_shapes_and_value_range_are_preserved_for_images_and_batches():
    aug = Augment(seed=0)
    img = torch.rand(3, 20, 24)
    batch = torch.rand(5, 1, 16, 16)
    out = aug(img)
    assert out.shape == img.shape and out.dtype == img.dtype
    assert aug(batch).shape == batch.shape
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_seeded_policies_repeat_and_different_seeds_differ():
    x = torch.rand(4, 3, 16, 16)
    assert torch.equal(Augment(seed=1)(x), Augment(seed=1)(x))
    assert not torch.equal(Augment(seed=1)(x), Augment(seed=2)(x))
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(Augment()(x, generator=g1), Augment()(x, generator=g2))


def test_a_disabled_policy_is_the_identity_and_leaves_the_input_untouched():
    x = torch.rand(2, 3, 8, 8)
    before = x.clone()
    assert torch.equal(Augment(**OFF)(x), x)
    assert torch.equal(x, before)


def test_flip_is_an_exact_mirror():
    x = torch.rand(3, 8, 8)
    flipped = Augment(**{**OFF, "hflip": 1.0})(x)
    assert torch.equal(flipped, x.flip(2))


def test_identity_affine_keeps_pixels_and_shift_moves_them_without_rescaling():
    x = torch.zeros(1, 1, 16, 16)
    x[0, 0, 6:10, 6:10] = 1.0  # a 4x4 square
    same = affine(x, torch.zeros(1), torch.zeros(1, 2))
    torch.testing.assert_close(same, x, atol=1e-5, rtol=0)
    moved = affine(x, torch.zeros(1), torch.tensor([[3.0, 0.0]]))
    torch.testing.assert_close(moved[0, 0, 6:10, 9:13], torch.ones(4, 4), atol=1e-5, rtol=0)
    assert moved.sum().item() == pytest.approx(16.0, abs=1e-3)  # same size: nothing rescaled


def test_rotation_by_ninety_degrees_turns_the_image_counter_clockwise():
    x = torch.rand(1, 1, 8, 8)
    turned = affine(x, torch.tensor([90.0]), torch.zeros(1, 2))
    torch.testing.assert_close(turned, torch.rot90(x, k=1, dims=(2, 3)), atol=1e-4, rtol=0)


def test_brightness_shifts_the_mean():
    x = torch.full((4, 1, 8, 8), 0.5)
    out = Augment(**{**OFF, "brightness": 0.2}, seed=0)(x)
    per_image = out.mean(dim=(1, 2, 3))
    assert (per_image - 0.5).abs().max() <= 0.2 + 1e-6
    assert per_image.std() > 0


def test_quarter_turns_turn_square_images_by_whole_quarters_and_leave_others_alone():
    x = torch.rand(64, 1, 6, 6)
    out = Augment(**{**OFF, "quarter_turns": 1.0}, seed=0)(x)
    turns = []
    for original, turned in zip(x, out, strict=True):
        matches = [k for k in (1, 2, 3) if torch.equal(turned, torch.rot90(original, k, (1, 2)))]
        assert len(matches) == 1  # exactly a turn, never the image as it was
        turns.append(matches[0])
    assert set(turns) == {1, 2, 3}
    wide = torch.rand(4, 1, 6, 8)
    assert torch.equal(Augment(**{**OFF, "quarter_turns": 1.0}, seed=0)(wide), wide)


def test_named_policies_keep_orientation_where_they_say_so():
    from ml.augment import POLICIES

    assert POLICIES["none"]() is None
    light = POLICIES["light"]()
    assert light.hflip == light.vflip == light.quarter_turns == light.rotate_degrees == 0.0
    assert POLICIES["standard"]() == Augment()
    assert POLICIES["dihedral"]().quarter_turns > 0 and POLICIES["dihedral"]().vflip > 0


def test_classification_augments_nothing_unless_changes_turn_something_on():
    from ml.augment import from_changes

    assert from_changes({}) is None
    assert from_changes({"hflip": 0, "brightness": 0}) is None
    assert from_changes({"shift_fraction": 0.05}) == Augment(**{**OFF, "shift_fraction": 0.05})


def test_a_policy_says_what_it_does_in_words():
    assert Augment(**OFF).describe() == "nothing"
    words = Augment(**{**OFF, "vflip": 0.5, "shift_fraction": 0.05}).describe()
    assert words == "upside down with probability 0.5, shifted by up to 5%"
    assert "mirrored left to right" in Augment().describe()
