"""Synthetic face-like identities for pair verification, deterministic by seed.

Each identity is a set of traits (face shape, skin tone, hair colour and style, eye colour,
spacing and size, nose, mouth, brows, glasses); each image of it varies what a camera
varies: a small shift and rotation, the light's strength and direction, the expression
(smile, open mouth, closed eyes), the background and an occlusion now and then. Some
identities are *look-alikes*: a copy of another identity with one or two traits re-drawn,
so that "different" pairs are not all easy. Written as an ImageFolder
(``root/<identity>/<image>.png``, RGB) that :class:`ml.data.ImageFolderDataset` reads.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

# Drawn at this many times the output size, then downsampled: smooth edges at 48 px.
_SUPERSAMPLE = 4

_SKIN = np.array(
    [[255, 224, 196], [234, 192, 160], [200, 150, 110], [160, 110, 75], [110, 75, 50]], float
)
_HAIR = np.array(
    [[25, 20, 18], [90, 60, 35], [170, 120, 60], [220, 200, 140], [140, 140, 140], [150, 45, 25]],
    float,
)
_EYES = np.array([[60, 40, 25], [50, 100, 160], [70, 120, 70], [40, 40, 40]], float)
HAIR_STYLES = ("short", "long", "bald", "fringe")
# Traits a look-alike may re-draw (the rest it shares with its original).
LOOKALIKE_TRAITS = ("face", "skin", "hair", "eyes", "nose", "mouth", "brows", "glasses")


def _draw_traits(rng: np.random.Generator) -> dict:
    """One identity's traits, one dict per trait group."""
    return {trait: _draw_trait(trait, rng) for trait in LOOKALIKE_TRAITS}


def _draw_trait(trait: str, rng: np.random.Generator) -> dict:
    if trait == "face":
        return {"width": rng.uniform(0.52, 0.68), "height": rng.uniform(0.66, 0.82)}
    if trait == "skin":
        return {"color": (_SKIN[rng.integers(len(_SKIN))] + rng.normal(0, 8, 3)).tolist()}
    if trait == "hair":
        return {
            "color": (_HAIR[rng.integers(len(_HAIR))] + rng.normal(0, 6, 3)).tolist(),
            "style": HAIR_STYLES[int(rng.integers(len(HAIR_STYLES)))],
        }
    if trait == "eyes":
        return {
            "color": _EYES[rng.integers(len(_EYES))].tolist(),
            "spacing": rng.uniform(0.16, 0.26),
            "size": rng.uniform(0.035, 0.06),
        }
    if trait == "nose":
        return {"length": rng.uniform(0.08, 0.17), "width": rng.uniform(0.03, 0.08)}
    if trait == "mouth":
        return {"width": rng.uniform(0.12, 0.26), "height": rng.uniform(0.63, 0.72)}
    if trait == "brows":
        return {"thickness": rng.uniform(0.01, 0.035), "tilt": rng.uniform(-0.03, 0.03)}
    if trait == "glasses":
        worn = bool(rng.random() < 0.3)
        return {"worn": worn, "color": [int(v) for v in rng.integers(0, 120, 3)]}
    raise ValueError(f"unknown trait {trait!r}")


def _lookalike(traits: dict, rng: np.random.Generator) -> tuple[dict, list[str]]:
    """A copy of ``traits`` with one or two trait groups re-drawn (never the same twice)."""
    changed = list(rng.choice(LOOKALIKE_TRAITS, size=int(rng.integers(1, 3)), replace=False))
    twin = {k: dict(v) for k, v in traits.items()}
    for trait in changed:
        fresh = _draw_trait(trait, rng)
        if trait == "glasses":  # a re-draw of the same choice would change nothing visible
            fresh["worn"] = not twin[trait]["worn"]
        twin[trait] = fresh
    return twin, [str(t) for t in changed]


def _color(values, light: float = 1.0) -> tuple[int, int, int]:
    return tuple(int(np.clip(v * light, 0, 255)) for v in values)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A plain, two-tone gradient or noisy backdrop, ``(size, size, 3)`` float."""
    a, b = rng.uniform(30, 230, 3), rng.uniform(30, 230, 3)
    t = np.linspace(0, 1, size)[:, None, None]
    if rng.random() < 0.5:
        t = t.transpose(1, 0, 2)
    img = a * (1 - t) + b * t
    return img + rng.normal(0, rng.uniform(2, 12), (size, size, 1))


def _render(traits: dict, rng: np.random.Generator, size: int) -> Image.Image:
    """One photo of an identity: its traits under this image's pose, light and expression."""
    s = size * _SUPERSAMPLE
    layer = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    cx, cy = s / 2, s * 0.52
    face, hair, eyes = traits["face"], traits["hair"], traits["eyes"]
    fw, fh = face["width"] * s / 2, face["height"] * s / 2
    skin = _color(traits["skin"]["color"])
    hair_color = _color(hair["color"])
    if hair["style"] == "long":  # hair behind the face, down to the shoulders
        draw.rounded_rectangle(
            (cx - fw * 1.2, cy - fh * 1.1, cx + fw * 1.2, cy + fh * 1.05),
            radius=int(fw * 0.6),
            fill=hair_color,
        )
    draw.ellipse((cx - fw, cy - fh, cx + fw, cy + fh), fill=skin)
    if hair["style"] in ("short", "long", "fringe"):
        draw.chord(
            (cx - fw * 1.05, cy - fh * 1.12, cx + fw * 1.05, cy + fh * 0.35),
            180,
            360,
            fill=hair_color,
        )
    if hair["style"] == "fringe":
        draw.rectangle(
            (cx - fw * 0.85, cy - fh * 0.55, cx + fw * 0.85, cy - fh * 0.38), fill=hair_color
        )

    smile = rng.choice(["neutral", "smile", "open"], p=[0.5, 0.35, 0.15])
    blink = rng.random() < 0.1
    ey = cy - fh * 0.12
    dx, r = eyes["spacing"] * s, eyes["size"] * s
    brow_t, tilt = traits["brows"]["thickness"] * s, traits["brows"]["tilt"] * s
    for side in (-1, 1):
        ex = cx + side * dx
        if blink:
            draw.line((ex - r, ey, ex + r, ey), fill=(40, 30, 30), width=max(1, int(r * 0.4)))
        else:
            draw.ellipse((ex - r * 1.4, ey - r, ex + r * 1.4, ey + r), fill=(245, 245, 245))
            draw.ellipse(
                (ex - r * 0.7, ey - r * 0.7, ex + r * 0.7, ey + r * 0.7), fill=_color(eyes["color"])
            )
        by = ey - r * 2.2
        draw.line(
            (ex - r * 1.6, by + side * tilt, ex + r * 1.6, by - side * tilt),
            fill=hair_color,
            width=max(1, int(brow_t)),
        )
        if traits["glasses"]["worn"]:
            draw.ellipse(
                (ex - r * 2.3, ey - r * 1.9, ex + r * 2.3, ey + r * 1.9),
                outline=tuple(traits["glasses"]["color"]),
                width=max(2, int(s * 0.012)),
            )
    if traits["glasses"]["worn"]:
        draw.line(
            (cx - dx + r * 2.3, ey, cx + dx - r * 2.3, ey),
            fill=tuple(traits["glasses"]["color"]),
            width=max(2, int(s * 0.012)),
        )
    nose = traits["nose"]
    nl, nw = nose["length"] * s, nose["width"] * s
    shade = _color(traits["skin"]["color"], 0.78)
    draw.polygon([(cx, ey + r), (cx - nw, ey + r + nl), (cx + nw, ey + r + nl)], fill=shade)
    mouth = traits["mouth"]
    mw, my = mouth["width"] * s / 2, mouth["height"] * s
    lips = (150, 60, 60)
    if smile == "open":
        draw.ellipse(
            (cx - mw * 0.7, my - s * 0.03, cx + mw * 0.7, my + s * 0.04), fill=(70, 20, 25)
        )
    elif smile == "smile":
        draw.arc(
            (cx - mw, my - s * 0.06, cx + mw, my + s * 0.03),
            20,
            160,
            fill=lips,
            width=max(2, int(s * 0.015)),
        )
    else:
        draw.line((cx - mw, my, cx + mw, my), fill=lips, width=max(2, int(s * 0.015)))

    # Pose: a small rotation and shift of the whole head.
    angle = rng.uniform(-10, 10)
    shift = rng.uniform(-0.06, 0.06, 2) * s
    layer = layer.rotate(angle, resample=Image.BILINEAR, translate=tuple(shift))
    # Occlusion: a hand, a scarf or a hat over part of the face now and then.
    if rng.random() < 0.2:
        occ = ImageDraw.Draw(layer)
        color = tuple(int(v) for v in rng.integers(0, 255, 3)) + (255,)
        kind = rng.choice(["scarf", "hat", "hand"])
        if kind == "scarf":
            occ.rectangle((0, s * rng.uniform(0.68, 0.8), s, s), fill=color)
        elif kind == "hat":
            occ.rectangle((s * 0.15, 0, s * 0.85, s * rng.uniform(0.22, 0.32)), fill=color)
        else:
            x0, y0 = rng.uniform(0.15, 0.6, 2) * s
            occ.ellipse(
                (x0, y0, x0 + s * 0.25, y0 + s * 0.3), fill=_color(traits["skin"]["color"]) + (255,)
            )

    face_rgba = np.asarray(layer.resize((size, size), Image.LANCZOS), dtype=np.float64) / 255.0
    alpha = face_rgba[..., 3:]
    img = face_rgba[..., :3] * 255.0 * alpha + _background(rng, size) * (1 - alpha)
    # Light: overall exposure times a gradient from a random direction.
    direction = rng.normal(size=2)
    direction /= np.linalg.norm(direction) + 1e-9
    yy, xx = np.mgrid[0:size, 0:size] / size - 0.5
    gradient = 1 + rng.uniform(0.0, 0.5) * (xx * direction[0] + yy * direction[1])
    img = img * rng.uniform(0.7, 1.25) * gradient[..., None]
    img = img + rng.normal(0, 3, img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


def make_faces_imagefolder(
    root: str | Path,
    *,
    identities: int = 40,
    images_per_identity: int = 10,
    image_size: int = 48,
    lookalike_fraction: float = 0.4,
    seed: int = 0,
) -> dict:
    """Writes ``identities`` synthetic people, ``images_per_identity`` photos each, under
    ``root/<identity>/<nnn>.png`` and returns what was made.

    About ``lookalike_fraction`` of the identities are look-alikes of an earlier one (one or
    two trait groups re-drawn, see :data:`LOOKALIKE_TRAITS`). The answer lists
    ``identities`` (folder names), ``lookalikes`` (``{"identity", "of", "changed"}`` per
    look-alike), ``n_images`` and ``image_size``. The same ``seed`` writes the same bytes.
    """
    if identities < 2 or images_per_identity < 1:
        raise ValueError("need at least two identities and one image each")
    if not 0.0 <= lookalike_fraction < 1.0:
        raise ValueError("lookalike_fraction must lie in [0, 1)")
    root = Path(root)
    rng = np.random.default_rng([seed, 11])
    names = [f"person_{i:03d}" for i in range(identities)]
    people: list[dict] = []
    lookalikes: list[dict] = []
    n_twins = int(round(lookalike_fraction * identities))
    # Every look-alike follows an original; originals are the first identities drawn.
    twin_slots = set(
        rng.choice(np.arange(1, identities), size=min(n_twins, identities - 1), replace=False)
    )
    originals: list[int] = []
    for i in range(identities):
        if i in twin_slots and originals:
            source = originals[int(rng.integers(len(originals)))]
            traits, changed = _lookalike(people[source], rng)
            lookalikes.append({"identity": names[i], "of": names[source], "changed": changed})
        else:
            traits = _draw_traits(rng)
            originals.append(i)
        people.append(traits)
    n_images = 0
    for i, (name, traits) in enumerate(zip(names, people, strict=True)):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        image_rng = np.random.default_rng([seed, 13, i])
        for j in range(images_per_identity):
            _render(traits, image_rng, image_size).save(folder / f"{j:03d}.png", optimize=False)
            n_images += 1
    return {
        "root": str(root),
        "identities": names,
        "lookalikes": lookalikes,
        "n_images": n_images,
        "image_size": image_size,
        "traits": people,
    }
