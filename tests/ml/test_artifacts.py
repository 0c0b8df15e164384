"""The artifact contract: what training, scoring, selection and drift write and read back."""

import io

import numpy as np
import pytest

from ml import artifacts
from ml.artifacts import ItemArrays


def full(n: int = 6, *, start: int = 100, seed: int = 0) -> ItemArrays:
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(3), size=n).astype(np.float32)
    return ItemArrays(
        item_ids=np.arange(start, start + n),
        scores=rng.random(n),
        probs=probs,
        raw_probs=probs * 0.9,
        embeddings=rng.normal(size=(n, 4)).astype(np.float32),
        mc_probs=rng.dirichlet(np.ones(3), size=(5, n)).astype(np.float32),
        extras={"boxes": rng.random((n, 2, 4)), "pair": np.arange(n) % 2 == 0},
    )


def assert_same(a: ItemArrays, b: ItemArrays) -> None:
    for name in artifacts.FIELDS:
        left, right = getattr(a, name), getattr(b, name)
        assert (left is None) == (right is None), name
        if left is not None:
            assert left.dtype == right.dtype, name
            np.testing.assert_array_equal(left, right, err_msg=name)
    assert a.extras.keys() == b.extras.keys()
    for name in a.extras:
        assert a.extras[name].dtype == b.extras[name].dtype
        np.testing.assert_array_equal(a.extras[name], b.extras[name])


def test_round_trip_through_bytes_keeps_every_array_and_its_dtype():
    original = full()
    assert_same(artifacts.load(artifacts.save(original)), original)


def test_round_trip_through_a_path_and_a_file_object(tmp_path):
    original = full()
    path = tmp_path / "chunk-00000.npz"
    assert artifacts.save(original, path) is None
    assert_same(artifacts.load(path), original)
    assert_same(artifacts.load(str(path)), original)

    handle = io.BytesIO()
    artifacts.save(original, handle)
    handle.seek(0)
    assert_same(artifacts.load(handle), original)


def test_a_path_without_the_suffix_is_written_as_named(tmp_path):
    path = tmp_path / "embeddings"
    artifacts.save(ItemArrays(item_ids=[1, 2]), path)
    assert path.exists() and not (tmp_path / "embeddings.npz").exists()


def test_fields_left_out_stay_absent():
    loaded = artifacts.load(artifacts.save(ItemArrays(item_ids=[3, 1], probs=np.eye(2))))
    assert loaded.embeddings is None and loaded.mc_probs is None and loaded.extras == {}
    assert loaded.item_ids.dtype == np.int64 and loaded.item_ids.tolist() == [3, 1]


def test_an_artifact_written_the_old_way_loads():
    """Chunks and training embeddings already in media storage were written by np.savez
    with one key per array."""
    rng = np.random.default_rng(1)
    ids = np.array([7, 3, 9], dtype=np.int64)
    probs = rng.dirichlet(np.ones(2), size=3).astype(np.float32)
    mc = rng.dirichlet(np.ones(2), size=(4, 3)).astype(np.float32)
    embeddings = rng.normal(size=(3, 5)).astype(np.float32)
    buffer = io.BytesIO()
    np.savez(buffer, item_ids=ids, probs=probs, raw_probs=probs, embeddings=embeddings, mc_probs=mc)
    chunk = artifacts.load(buffer.getvalue())
    np.testing.assert_array_equal(chunk.item_ids, ids)
    np.testing.assert_array_equal(chunk.probs, probs)
    np.testing.assert_array_equal(chunk.raw_probs, probs)
    np.testing.assert_array_equal(chunk.embeddings, embeddings)
    np.testing.assert_array_equal(chunk.mc_probs, mc)

    buffer = io.BytesIO()  # a chunk scored before the model's own probabilities were kept
    np.savez(buffer, item_ids=ids, probs=probs, embeddings=embeddings)
    assert artifacts.load(buffer.getvalue()).raw_probs is None

    buffer = io.BytesIO()  # a version's training embeddings
    np.savez(buffer, item_ids=ids, embeddings=embeddings)
    trained = artifacts.load(buffer.getvalue(), require=("embeddings",))
    np.testing.assert_array_equal(trained.embeddings, embeddings)
    assert trained.probs is None


def test_the_file_keeps_the_keys_older_readers_know():
    saved = artifacts.save(full())
    with np.load(io.BytesIO(saved)) as stored:
        assert set(stored.files) == {
            "item_ids",
            "scores",
            "probs",
            "raw_probs",
            "embeddings",
            "mc_probs",
            "extra.boxes",
            "extra.pair",
        }
        np.testing.assert_array_equal(stored["item_ids"], np.arange(100, 106))


def test_an_unknown_key_is_read_as_an_extra():
    buffer = io.BytesIO()
    np.savez(buffer, item_ids=np.arange(3), heat=np.ones((3, 2)))
    assert artifacts.load(buffer.getvalue()).extras["heat"].shape == (3, 2)


def test_take_by_mask_cuts_every_array_along_its_item_axis():
    arrays = full()
    keep = np.array([True, False, True, False, False, True])
    taken = arrays.take(keep)
    assert taken.item_ids.tolist() == [100, 102, 105] and len(taken) == 3
    np.testing.assert_array_equal(taken.probs, arrays.probs[keep])
    np.testing.assert_array_equal(taken.raw_probs, arrays.raw_probs[keep])
    np.testing.assert_array_equal(taken.scores, arrays.scores[keep])
    np.testing.assert_array_equal(taken.embeddings, arrays.embeddings[keep])
    assert taken.mc_probs.shape == (5, 3, 3)
    np.testing.assert_array_equal(taken.mc_probs, arrays.mc_probs[:, keep])
    np.testing.assert_array_equal(taken.extras["boxes"], arrays.extras["boxes"][keep])
    assert taken.extras["pair"].tolist() == [True, True, False]
    assert len(arrays) == 6  # the original is left as it was


def test_take_by_positions_keeps_their_order():
    arrays = full()
    taken = arrays.take([4, 0])
    assert taken.item_ids.tolist() == [104, 100]
    np.testing.assert_array_equal(taken.mc_probs, arrays.mc_probs[:, [4, 0]])
    np.testing.assert_array_equal(taken.extras["boxes"], arrays.extras["boxes"][[4, 0]])
    assert len(arrays.take([])) == 0 and arrays.take([]).mc_probs.shape == (5, 0, 3)


def test_take_refuses_a_mask_of_another_length_and_non_integer_positions():
    with pytest.raises(ValueError, match="mask over 6 items"):
        full().take(np.ones(5, dtype=bool))
    with pytest.raises(ValueError, match="integer positions"):
        full().take(np.array([0.0, 1.0]))


def test_concat_joins_items_in_order_and_mc_draws_along_their_item_axis():
    first, second = full(4, start=0, seed=1), full(3, start=4, seed=2)
    joined = artifacts.concat([first, second])
    assert joined.item_ids.tolist() == list(range(7))
    np.testing.assert_array_equal(joined.probs, np.concatenate([first.probs, second.probs]))
    assert joined.mc_probs.shape == (5, 7, 3)
    np.testing.assert_array_equal(joined.mc_probs[:, 4:], second.mc_probs)
    np.testing.assert_array_equal(joined.extras["boxes"][:4], first.extras["boxes"])


def test_concat_leaves_out_what_one_part_lacks():
    old = ItemArrays(item_ids=[1], probs=np.ones((1, 3)), embeddings=np.zeros((1, 4)))
    joined = artifacts.concat([full(2), old])
    assert joined.item_ids.tolist() == [100, 101, 1]
    assert joined.raw_probs is None and joined.mc_probs is None and joined.extras == {}
    assert joined.probs.shape == (3, 3) and joined.embeddings.shape == (3, 4)


def test_concat_of_nothing_is_an_error():
    with pytest.raises(ValueError, match="at least one"):
        artifacts.concat([])


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"embeddings": np.zeros((4, 2))}, "embeddings has 4 items"),
        ({"probs": np.zeros((2, 3))}, "probs has 2 items"),
        ({"mc_probs": np.zeros((3, 5, 2))}, r"mc_probs has 5 items \(axis 1"),
        ({"scores": np.zeros(2)}, "scores has 2 items"),
        ({"probs": np.zeros(3)}, "probs must have 2 dimensions"),
        ({"extras": {"boxes": np.zeros((2, 4))}}, "extra 'boxes'.*first axis must be the 3"),
        ({"extras": {"flag": np.float32(1)}}, "extra 'flag'"),
        (
            {"probs": np.zeros((3, 2)), "raw_probs": np.zeros((3, 4))},
            "probs .* and raw_probs .* differ",
        ),
    ],
)
def test_arrays_that_disagree_on_the_items_are_refused(arrays, message):
    with pytest.raises(ValueError, match=message):
        ItemArrays(item_ids=np.arange(3), **arrays)


def test_item_ids_must_be_a_vector_of_integers():
    with pytest.raises(ValueError, match="one-dimensional"):
        ItemArrays(item_ids=np.zeros((2, 2), dtype=np.int64))
    with pytest.raises(ValueError, match="integers"):
        ItemArrays(item_ids=np.array([1.5, 2.0]))


def test_load_says_what_is_missing():
    with pytest.raises(ValueError, match="no embeddings"):
        artifacts.load(artifacts.save(ItemArrays(item_ids=[1])), require=("embeddings",))
    buffer = io.BytesIO()
    np.savez(buffer, embeddings=np.zeros((2, 2)))
    with pytest.raises(ValueError, match="no item_ids"):
        artifacts.load(buffer.getvalue())
    with pytest.raises(ValueError, match="no such field"):
        artifacts.load(artifacts.save(ItemArrays(item_ids=[1])), require=("embedings",))


def test_a_disagreeing_archive_is_refused_on_load():
    buffer = io.BytesIO()
    np.savez(buffer, item_ids=np.arange(3), embeddings=np.zeros((2, 4)))
    with pytest.raises(ValueError, match="embeddings has 2 items"):
        artifacts.load(buffer.getvalue())


def test_an_empty_artifact_has_the_shapes_of_a_run_that_scored_nothing():
    empty = ItemArrays.empty(num_classes=4)
    assert len(empty) == 0
    assert empty.probs.shape == (0, 4) and empty.embeddings.shape == (0, 0)
    assert empty.item_ids.dtype == np.int64
