"""Faces of the embedded benchmark: drawn RGB images from traits, then nuisance transforms.

``plan_faces`` turns an identity's expressed traits into per-frame drawing parameters (no
rendering); ``render_face`` draws one frame with PIL at twice the output size:

* the person (on a transparent layer): shoulders in the session's clothing colour, long hair
  behind the head, the head (an ellipse whose aspect is the realised face length and whose lower
  half narrows to the realised jaw width), eyes, brows (thickness: the realised "tone"), nose,
  mouth (expression varies per frame), beard, forehead wrinkles and grey hair (realised age),
  skin tone along the realised "region" axis;
* nuisance: pose (rotation, scale, shift) of the person layer, the session's background (gradient
  plus clutter), an optional occluding patch, lighting (a gradient, tint and exposure), blur,
  sensor noise; the caller saves it as JPEG at the frame's quality.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from dsanet.data.synth_traits import AGE_MEAN, AGE_SD, SHARED, realise, rng_for, session_ids

ASPECT_BASE = {"m": 1.32, "f": 1.24}   # face length / face width
ASPECT_SCALE = 0.08                    # log-aspect per latent sd of "size"
JAW_BASE = {"m": 0.80, "f": 0.68}      # jaw width / cheek width
JAW_SCALE = 0.07                       # per latent sd of "width" (higher f0 <-> narrower jaw)
SKIN_LIGHT, SKIN_DARK = np.array([236, 200, 172]), np.array([92, 62, 45])
HAIR = np.array([(30, 25, 22), (70, 45, 30), (120, 80, 45), (200, 170, 110), (150, 70, 35)])
IRIS = np.array([(60, 40, 25), (70, 110, 160), (80, 110, 70), (40, 30, 25)])


# ----------------------------------------------------------------------------- planning

def face_physics(r: np.ndarray, gender: str) -> dict[str, np.ndarray]:
    """Drawing parameters from realised shared traits ``r (n, 5)`` (columns ``SHARED``)."""
    col = {t: r[:, i] for i, t in enumerate(SHARED)}
    return {
        "face_length": ASPECT_BASE[gender] * np.exp(ASPECT_SCALE * col["size"]),
        "jaw_width": np.clip(JAW_BASE[gender] - JAW_SCALE * col["width"], 0.4, 1.0),
        "brow": np.clip(0.022 + 0.006 * col["tone"], 0.006, 0.05),
        "face_age": np.clip(AGE_MEAN + AGE_SD * col["age"], 16.0, 90.0),
        "skin_tone": 1 / (1 + np.exp(-1.3 * col["region"])),       # 0 light .. 1 dark
    }


def plan_faces(ident: dict, n_faces: int, n_sessions: int, nuisance: float,
               seed: int) -> dict[str, np.ndarray]:
    """Columns (arrays of length ``n_faces``) for one identity's frames.

    path, session, realised shared traits ``r_*``, drawing physics and nuisance values.
    """
    rng = rng_for(seed, ident["j"], "face_plan")
    e = np.array([ident[f"f_{t}"] for t in SHARED])
    session, r = realise(e, n_faces, n_sessions, rng)
    n_s = int(session.max()) + 1
    sids = session_ids(rng, n_s)
    frame = np.sort(rng.choice(9_000_000, n_faces, replace=False))       # 7-digit frame numbers
    nu = float(nuisance)
    light_angle = rng.uniform(0, 2 * np.pi, n_s)[session] + 0.3 * rng.standard_normal(n_faces)
    cols = {
        "voice_id": np.full(n_faces, ident["voice_id"]), "session": np.array(sids)[session],
        "session_index": session, "frame": frame,
        **{f"r_{t}": r[:, i] for i, t in enumerate(SHARED)},
        **face_physics(r, ident["gender"]),
        "rotation": nu * rng.normal(0.0, 10.0, n_faces),
        "scale": np.exp(nu * rng.normal(0.0, 0.08, n_faces)),
        "shift_x": nu * rng.normal(0.0, 0.05, n_faces),
        "shift_y": nu * rng.normal(0.0, 0.05, n_faces),
        "light_angle": light_angle, "light": nu * rng.uniform(0.0, 0.6, n_faces),
        "exposure": np.exp(nu * rng.normal(0.0, 0.2, n_faces)),
        "blur": nu * rng.uniform(0.0, 1.0, n_faces),
        "noise_sd": nu * rng.uniform(0.0, 4.0, n_faces),
        "occluded": rng.random(n_faces) < 0.4 * nu,
        "quality": np.round(rng.uniform(95 - 55 * nu, 95, n_faces)).astype(int),
        "mouth_open": rng.uniform(0.0, 1.0, n_faces), "blink": rng.random(n_faces) < 0.1,
    }
    paths = [f"faces/{ident['face_id']}/{s}/{f:07d}.jpg" for s, f in zip(cols["session"], frame)]
    return {"path": np.array(paths), **cols}


# ----------------------------------------------------------------------------- drawing the person

def _rgb(c) -> tuple[int, int, int]:
    return tuple(int(v) for v in np.clip(np.round(c), 0, 255))


def _colours(p: dict) -> dict:
    jitter = np.array([p["skin_dr"], p["skin_dg"], p["skin_db"]])
    skin = SKIN_LIGHT + (SKIN_DARK - SKIN_LIGHT) * p["skin_tone"] + jitter
    grey = np.clip((p["face_age"] - 40.0) / 35.0, 0.0, 1.0) ** 1.5
    hair = HAIR[p["hair_colour"]] * (1 - grey) + np.array([195, 195, 190]) * grey
    lips = np.array([185, 70, 80]) if p["gender"] == "f" else skin * [0.85, 0.65, 0.65]
    return {"skin": skin, "hair": hair, "lips": lips, "iris": IRIS[p["iris"]]}


def head_outline(cx: float, cy: float, a: float, b: float, jaw: float, n: int = 48) -> list:
    """Polygon of the head: an ellipse (half-axes a, b) whose lower half narrows to ``jaw``."""
    th = np.linspace(0, 2 * np.pi, n, endpoint=False)
    low = np.clip(np.sin(th), 0, 1)                                    # 1 at the chin (y down)
    x = cx + a * np.cos(th) * (1 - (1 - jaw) * low ** 2)
    y = cy + b * np.sin(th)
    return list(zip(x.tolist(), y.tolist()))


def _draw_hair(d: ImageDraw.ImageDraw, p: dict, geo: tuple, hair, back: bool) -> None:
    cx, cy, a, b = geo
    if back and p["hair_style"] >= 2:                                   # long hair behind the head
        w = 1.25 if p["hair_style"] == 2 else 1.12
        d.rounded_rectangle((cx - w * a, cy - 1.08 * b, cx + w * a, cy + 1.15 * b), radius=0.6 * a,
                            fill=hair)
    elif not back and not p["bald"]:                                    # cap over the forehead
        top = 0.35 if p["hair_style"] in (1, 3) else 0.5
        d.chord((cx - 1.06 * a, cy - 1.1 * b, cx + 1.06 * a, cy + (1 - 2 * top) * b), 180, 360, fill=hair)


def _draw_eyes(d: ImageDraw.ImageDraw, p: dict, geo: tuple, c: dict, W: int) -> float:
    cx, cy, a, b = geo
    ey = cy - 0.12 * b
    rx, ry = 0.17 * a * p["eye_size"], 0.1 * a * p["eye_size"]
    for side in (-1, 1):
        ex = cx + side * p["eye_spacing"] * a
        if p["blink"]:
            d.line((ex - rx, ey, ex + rx, ey), fill=_rgb(c["skin"] * 0.5), width=max(1, W // 96))
        else:
            d.ellipse((ex - rx, ey - ry, ex + rx, ey + ry), fill=(240, 240, 235))
            d.ellipse((ex - ry, ey - ry, ex + ry, ey + ry), fill=_rgb(c["iris"]))
            d.ellipse((ex - ry / 2.5, ey - ry / 2.5, ex + ry / 2.5, ey + ry / 2.5), fill=(10, 10, 10))
        by, bw = ey - 2.4 * ry, max(1, round(p["brow"] * W))
        d.line((ex - 1.3 * rx, by, ex + 1.3 * rx, by), fill=_rgb(c["hair"] * 0.6), width=bw)
    return ey


def _draw_lower(d: ImageDraw.ImageDraw, p: dict, geo: tuple, c: dict, ey: float, W: int) -> None:
    cx, cy, a, b = geo
    line = max(1, W // 96)
    nose_y = ey + 0.55 * b * p["nose_length"] * 0.6
    d.line((cx, ey + 0.1 * a, cx - 0.06 * a, nose_y, cx + 0.06 * a, nose_y), fill=_rgb(c["skin"] * 0.75),
           width=line)
    my, mw, mh = cy + 0.55 * b, 0.33 * a * p["mouth_width"], 0.03 * a + 0.12 * a * p["mouth_open"]
    if p["beard"]:
        d.chord((cx - 0.85 * a, cy + 0.2 * b, cx + 0.85 * a, cy + 1.02 * b), 0, 180,
                fill=_rgb(c["hair"]) + (200,))
    d.ellipse((cx - mw, my - mh, cx + mw, my + mh), fill=_rgb(c["lips"]))
    for i in range(int(np.clip((p["face_age"] - 35.0) / 10.0, 0, 4))):       # forehead wrinkles
        y = ey - (0.45 + 0.1 * i) * b
        d.line((cx - 0.35 * a, y, cx + 0.35 * a, y), fill=_rgb(c["skin"] * 0.8), width=line)


def draw_person(p: dict, W: int, clothing) -> Image.Image:
    """RGBA layer ``W x W`` with the person, transparent elsewhere."""
    layer = Image.new("RGBA", (W, W), (0, 0, 0, 0))
    d = ImageDraw.Draw(layer, "RGBA")
    a = 0.23 * W
    geo = (0.5 * W, 0.44 * W, a, a * p["face_length"])
    c = _colours(p)
    d.ellipse((0.05 * W, 0.86 * W, 0.95 * W, 1.5 * W), fill=clothing)               # shoulders
    d.rectangle((0.5 * W - 0.32 * a, geo[1] + 0.6 * geo[3], 0.5 * W + 0.32 * a, 0.85 * W),
                fill=_rgb(c["skin"] * 0.9))                                             # neck
    _draw_hair(d, p, geo, _rgb(c["hair"]), back=True)
    d.polygon(head_outline(*geo, p["jaw_width"]), fill=_rgb(c["skin"]))
    ey = _draw_eyes(d, p, geo, c, W)
    _draw_lower(d, p, geo, c, ey, W)
    _draw_hair(d, p, geo, _rgb(c["hair"]), back=False)
    return layer


# ----------------------------------------------------------------------------- nuisance

def pose(layer: Image.Image, p: dict) -> Image.Image:
    """Rotate by ``rotation`` degrees, scale and shift (fractions of the width) about the centre."""
    W = layer.width
    th, s = np.deg2rad(p["rotation"]), p["scale"]
    c, sn = np.cos(th) / s, np.sin(th) / s
    ox, oy = W / 2 + p["shift_x"] * W, W / 2 + p["shift_y"] * W          # output centre
    # inverse map: input = C + R(-th) (out - O) / s
    data = (c, sn, W / 2 - c * ox - sn * oy, -sn, c, W / 2 + sn * ox - c * oy)
    return layer.transform((W, W), Image.Transform.AFFINE, data, resample=Image.Resampling.BILINEAR)


def background(session_rng: np.random.Generator, W: int) -> Image.Image:
    """The session's backdrop: a vertical two-colour gradient plus a few clutter rectangles."""
    top, bottom = session_rng.uniform(20, 235, (2, 3))
    t = np.linspace(0, 1, W)[:, None, None]
    img = Image.fromarray(np.broadcast_to(top * (1 - t) + bottom * t, (W, W, 3)).astype(np.uint8))
    d = ImageDraw.Draw(img)
    for _ in range(int(session_rng.integers(1, 5))):
        x0, y0 = session_rng.uniform(-0.2, 1.0, 2) * W
        w, h = session_rng.uniform(0.1, 0.5, 2) * W
        d.rectangle((x0, y0, x0 + w, y0 + h), fill=_rgb(session_rng.uniform(0, 255, 3)))
    return img


@lru_cache(maxsize=8)
def _grid(W: int) -> tuple[np.ndarray, np.ndarray]:
    g = np.linspace(-1, 1, W, dtype=np.float32)
    return g[None, :, None], g[:, None, None]                               # x (1,W,1), y (W,1,1)


def lighting(img: np.ndarray, p: dict, tint: np.ndarray) -> np.ndarray:
    """Directional gradient, colour tint and exposure on ``img (W, W, 3)`` float."""
    x, y = _grid(img.shape[0])
    gain = 1 + p["light"] * (np.cos(p["light_angle"]) * x + np.sin(p["light_angle"]) * y)
    return img * gain * (tint * p["exposure"]).astype(np.float32)


def occlude(img: Image.Image, rng: np.random.Generator) -> None:
    """Draw an opaque patch (a hand, a microphone, a caption) over part of the face, in place."""
    W = img.width
    w, h = rng.uniform(0.15, 0.4, 2) * W
    x0, y0 = rng.uniform(0.2, 0.8, 2) * W - [w / 2, h / 2]
    ImageDraw.Draw(img).rectangle((x0, y0, x0 + w, y0 + h), fill=_rgb(rng.uniform(0, 255, 3)))


def render_face(p: dict, size: int, rng: np.random.Generator,
                session_rng: np.random.Generator) -> Image.Image:
    """One RGB ``size x size`` frame from frame parameters ``p`` (identity traits merged in).

    ``rng`` draws the frame's occluder and sensor noise; ``session_rng`` the session's
    background, clothing and light tint, so every frame of a session shares them.
    """
    W = 2 * size
    bg = background(session_rng, W)
    clothing = _rgb(session_rng.uniform(0, 255, 3))
    tint = 1 + 0.08 * p["light"] * session_rng.standard_normal(3)
    person = pose(draw_person(p, W, clothing), p)
    img = Image.alpha_composite(bg.convert("RGBA"), person).convert("RGB")
    if p["occluded"]:
        occlude(img, rng)
    arr = lighting(np.asarray(img, dtype=np.float32), p, tint)
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).reduce(2)
    if p["blur"] * size / 64 > 0.05:
        img = img.filter(ImageFilter.GaussianBlur(p["blur"] * size / 64))
    noise = p["noise_sd"] * rng.standard_normal((size, size, 3), np.float32)
    noisy = np.asarray(img, dtype=np.float32) + noise
    return Image.fromarray(np.clip(np.round(noisy), 0, 255).astype(np.uint8))
