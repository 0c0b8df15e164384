"""A photo saved with an EXIF orientation is read upright, whatever its format."""

import numpy as np
import pytest
from PIL import Image

from ml.data import load_image_array


@pytest.mark.parametrize("suffix", ["png", "jpg"])
def test_an_exif_rotated_image_is_read_upright(tmp_path, suffix):
    pixels = np.zeros((20, 40, 3), dtype=np.uint8)
    pixels[:, :20] = 255  # left half white: upright, the image is wider than tall
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera was turned: rotate 90 degrees clockwise to view
    path = tmp_path / f"photo.{suffix}"
    Image.fromarray(pixels).save(path, exif=exif.tobytes())

    upright = load_image_array(path, image_size=(40, 20), mode="RGB")

    assert upright.shape == (40, 20, 3)
    assert upright[:20].mean() > 200 and upright[20:].mean() < 50  # white on top
