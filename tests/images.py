"""Small real image files for tests."""

import io
import random

from PIL import Image


def png_bytes(seed: int, size: int = 16) -> bytes:
    """A distinct, valid PNG for each seed."""
    rng = random.Random(seed)
    image = Image.new("RGB", (size, size), tuple(rng.randrange(256) for _ in range(3)))
    for _ in range(10):
        image.putpixel((rng.randrange(size), rng.randrange(size)), (rng.randrange(256), 0, 0))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def write_imagefolder(root, layout: dict[str, int], *, start_seed: int = 0) -> int:
    """Writes `root/<class>/<n>.png` for {class: count}; class '' means directly in root."""
    seed = start_seed
    for label, count in layout.items():
        folder = root / label if label else root
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            (folder / f"img{i}.png").write_bytes(png_bytes(seed))
            seed += 1
    return seed
