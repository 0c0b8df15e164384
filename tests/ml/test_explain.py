import numpy as np
import pytest
import torch
from PIL import Image

from ml.explain import (
    cam_layer,
    display_pixels,
    grad_cam,
    heat_overlay,
    last_conv_layer,
    nearest_labeled,
)
from ml.models import MLP, SmallCNN

SIZE = 32
# Where the bright square of each class sits: class 0 top left, class 1 bottom right.
SQUARES = {0: (slice(2, 10), slice(2, 10)), 1: (slice(22, 30), slice(22, 30))}


def corner_images(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Dim noise with one bright square; the square's corner is the class."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, SIZE, SIZE, generator=g) * 0.4
    y = torch.randint(0, 2, (n,), generator=g)
    for i in range(n):
        rows, cols = SQUARES[int(y[i])]
        x[i, :, rows, cols] = 1.0
    return x, y


def square_mask(y: torch.Tensor) -> torch.Tensor:
    mask = torch.zeros((len(y), SIZE, SIZE), dtype=torch.bool)
    for i in range(len(y)):
        mask[i][SQUARES[int(y[i])]] = True
    return mask


@pytest.fixture(scope="module")
def corner_model():
    torch.manual_seed(0)
    x, y = corner_images(128, seed=0)
    model = SmallCNN(2, image_size=SIZE, width=8, seed=0)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(40):
        batch = torch.randint(0, len(x), (64,))
        loss = torch.nn.functional.cross_entropy(model(x[batch]), y[batch])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.eval()
    test_x, test_y = corner_images(32, seed=1)
    assert (model(test_x).argmax(1) == test_y).float().mean() > 0.9
    return model, test_x, test_y


def test_the_heat_sits_on_the_square_that_decides_the_class(corner_model):
    model, x, y = corner_model

    heat = grad_cam(model, x, y)

    assert heat.shape == (len(x), SIZE, SIZE)
    assert heat.min() >= 0 and heat.max() <= 1
    inside = square_mask(y)
    heat_in = (heat * inside).sum((1, 2)) / inside.sum((1, 2))
    heat_out = (heat * ~inside).sum((1, 2)) / (~inside).sum((1, 2))
    assert bool((heat_in > heat_out).all())
    # The opposite corner, where the other class's square would be, stays cold.
    opposite = square_mask(1 - y)
    heat_opposite = (heat * opposite).sum((1, 2)) / opposite.sum((1, 2))
    assert heat_in.mean() > 3 * heat_opposite.mean()


def test_maps_are_deterministic_and_leave_the_model_as_it_was(corner_model):
    model, x, y = corner_model
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    grads = [None if p.grad is None else p.grad.clone() for p in model.parameters()]

    first = grad_cam(model, x, y, batch_size=5)
    second = grad_cam(model, x, y, batch_size=64)

    assert torch.equal(first, second)
    assert model.training
    for p, grad in zip(model.parameters(), grads, strict=True):
        assert (p.grad is None and grad is None) or torch.equal(p.grad, grad)
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name]), name  # batch-norm statistics untouched
    model.eval()


def test_without_a_class_the_predicted_one_is_explained(corner_model):
    model, x, _ = corner_model
    predicted = model(x).argmax(1)

    assert torch.equal(grad_cam(model, x, None), grad_cam(model, x, predicted))


def test_maps_read_the_activation_of_the_last_convolution():
    model = SmallCNN(2, image_size=SIZE, width=8, seed=0)
    conv = last_conv_layer(model)

    assert conv is model.features[-4]  # the deepest block: conv, batch norm, ReLU, pool
    assert cam_layer(model) is model.features[-2]


def test_a_model_without_convolutions_is_refused():
    with pytest.raises(ValueError, match="Conv2d"):
        last_conv_layer(MLP(in_features=12, num_classes=2))
    with pytest.raises(ValueError, match="out of range"):
        grad_cam(SmallCNN(2, image_size=16, width=4, seed=0), torch.rand(2, 3, 16, 16), 5)


def test_the_overlay_colours_only_the_hot_region():
    image = np.full((40, 60, 3), 100, dtype=np.uint8)
    heat = np.zeros((10, 10), dtype=np.float32)
    heat[:, :5] = 1.0  # the left half is hot

    out = heat_overlay(image, heat)

    assert out.shape == image.shape and out.dtype == np.uint8
    assert np.array_equal(out[:, -10:], image[:, -10:])  # cold: the image as it is
    assert out[:, :10, 0].mean() > 180  # hot: red


def test_nearest_labeled_items_by_cosine_distance_nearest_first():
    labeled = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0]], dtype=np.float32)
    queries = np.array([[2.0, 0.1], [0.0, 3.0]], dtype=np.float32)

    indices, distances = nearest_labeled(queries, labeled, k=3, chunk=1)

    assert indices.tolist() == [[0, 2, 1], [1, 2, 0]]
    assert np.all(np.diff(distances, axis=1) >= 0)
    few, _ = nearest_labeled(queries, labeled[:2], k=3)
    assert few.shape == (2, 2)
    none, _ = nearest_labeled(queries, np.empty((0, 2), dtype=np.float32), k=3)
    assert none.shape == (2, 0)


@pytest.mark.parametrize(
    ("size", "shown"), [((600, 300), (256, 128)), ((30, 20), (150, 100)), ((200, 150), (200, 150))]
)
def test_overlays_are_drawn_on_the_image_at_a_viewable_size(tmp_path, size, shown):
    path = tmp_path / "item.png"
    Image.new("RGB", size, (10, 200, 30)).save(path)

    pixels = display_pixels(path, max_side=256, min_side=128)

    assert pixels.shape == (shown[1], shown[0], 3)
    assert (pixels == (10, 200, 30)).all()
