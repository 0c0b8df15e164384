"""The pixel cache: a re-scored pool reads decoded pixels back instead of decoding, and a
missing, partial or corrupt cache file is decoded again, never an error, never wrong pixels."""

import hashlib

import numpy as np
import pytest

from loupe.learning.data import item_tensors
from loupe.learning.pixel_cache import PixelCache, pixel_cache_root
from tests.images import png_bytes

SIZE = 8


@pytest.fixture
def items(settings, tmp_path):
    """Three stored images (16 px, rescaled to 8 by item_tensors), named as the import names
    them: by the sha256 of their content."""
    media = tmp_path / "media"
    names, keys = [], []
    for seed in range(3):
        content = png_bytes(seed)
        key = hashlib.sha256(content).hexdigest()
        name = f"items/{key[:2]}/{key}.png"
        (media / name).parent.mkdir(parents=True, exist_ok=True)
        (media / name).write_bytes(content)
        names.append(name)
        keys.append(key)
    return names, keys


def cached_file(keys, index):
    return PixelCache(pixel_cache_root(), image_size=SIZE).path(keys[index])


def test_the_first_pass_fills_the_cache_and_the_second_reads_the_same_pixels(items, tmp_path):
    names, keys = items
    fresh = item_tensors(names, image_size=SIZE)

    first = item_tensors(names, image_size=SIZE, cache_keys=keys)
    for i in range(3):
        (tmp_path / "media" / names[i]).unlink()  # from now on only the cache can answer
    second = item_tensors(names, image_size=SIZE, cache_keys=keys)

    assert all(cached_file(keys, i).is_file() for i in range(3))
    assert first.shape == (3, 3, SIZE, SIZE)
    assert np.array_equal(first.numpy(), fresh.numpy())
    assert np.array_equal(second.numpy(), fresh.numpy())


def test_a_missing_cache_file_is_decoded_again_and_written_back(items):
    names, keys = items
    fresh = item_tensors(names, image_size=SIZE)
    item_tensors(names, image_size=SIZE, cache_keys=keys)
    cached_file(keys, 1).unlink()

    again = item_tensors(names, image_size=SIZE, cache_keys=keys)

    assert np.array_equal(again.numpy(), fresh.numpy())
    assert cached_file(keys, 1).is_file()


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[: len(data) // 2], id="truncated"),
        pytest.param(lambda data: b"", id="empty"),
        pytest.param(lambda data: data[:-1] + bytes([data[-1] ^ 0xFF]), id="flipped pixel"),
        pytest.param(lambda data: b"XXXX" + data[4:], id="foreign file"),
        pytest.param(lambda data: data + b"\0", id="too long"),
    ],
)
def test_a_damaged_cache_file_is_decoded_again_never_wrong_pixels(items, damage):
    names, keys = items
    fresh = item_tensors(names, image_size=SIZE)
    item_tensors(names, image_size=SIZE, cache_keys=keys)
    path = cached_file(keys, 2)
    path.write_bytes(damage(path.read_bytes()))

    again = item_tensors(names, image_size=SIZE, cache_keys=keys)

    assert np.array_equal(again.numpy(), fresh.numpy())
    # ...and the file was rewritten whole, so the next pass reads it from the cache.
    out = np.zeros((SIZE, SIZE, 3), dtype=np.uint8)
    assert PixelCache(pixel_cache_root(), image_size=SIZE).load_into(keys[2], out)


def test_each_image_size_has_its_own_pixels(items):
    names, keys = items
    item_tensors(names, image_size=SIZE, cache_keys=keys)

    bigger = item_tensors(names, image_size=12, cache_keys=keys)

    assert np.array_equal(bigger.numpy(), item_tensors(names, image_size=12).numpy())


def test_an_unwritable_cache_still_scores(items, settings, tmp_path):
    names, keys = items
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    settings.LOUPE_PIXEL_CACHE_DIR = str(blocker)

    tensors = item_tensors(names, image_size=SIZE, cache_keys=keys)

    assert np.array_equal(tensors.numpy(), item_tensors(names, image_size=SIZE).numpy())


def test_the_cache_can_be_turned_off(items, settings):
    names, keys = items
    settings.LOUPE_PIXEL_CACHE = False

    item_tensors(names, image_size=SIZE, cache_keys=keys)

    assert pixel_cache_root() is None
    settings.LOUPE_PIXEL_CACHE = True
    assert not cached_file(keys, 0).exists()


def test_a_key_that_is_not_a_sha256_never_reaches_the_file_system(tmp_path):
    cache = PixelCache(tmp_path, image_size=SIZE)

    cache.store("../../escape", np.zeros((SIZE, SIZE, 3), dtype=np.uint8))

    assert cache.path("../../escape") is None
    assert list(tmp_path.iterdir()) == []
