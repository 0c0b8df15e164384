"""Stacked uint8 pixels become the float tensor the models take."""

import numpy as np
import torch

from ml.data import batch_to_tensor, to_tensor


def test_a_batch_of_pixels_converts_as_each_image_would_on_its_own():
    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 256, size=(5, 6, 7, 3), dtype=np.uint8)

    batch = batch_to_tensor(pixels)

    assert batch.shape == (5, 3, 6, 7) and batch.dtype == torch.float32
    assert batch.is_contiguous()
    for i in range(5):
        assert torch.equal(batch[i], to_tensor(Image.fromarray(pixels[i])))
