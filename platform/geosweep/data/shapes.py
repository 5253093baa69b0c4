"""The generated `shapes` dataset: surface point clouds of parametric 3-D objects.

Each class is a family of objects with random proportions. Points are drawn
uniformly by area over the object's surface, then each cloud is centred,
scaled to unit radius, jittered in scale and perturbed by Gaussian noise.
Clouds stay in canonical pose: rotation protocols are applied afterwards
(`geosweep.data.rotations`), so one generated set serves every protocol.

Three classes are chiral (`helix`, `l_knob`, `propeller`): a mirror image is
not a rotated copy, so they can test whether a representation keeps handedness
(an O(3)-invariant one, such as one built on pairwise distances, cannot).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import numpy as np
from pydantic import Field, PositiveInt

from geosweep import random_streams
from geosweep.data.splits import SPLITS, PointCloudSplits, Split
from geosweep.registry import DATASETS

# A surface patch: its area per sample (S,), and a function drawing points
# uniformly on it for the sample indices `s` of the points (P,) -> (P, 3).
Draw = Callable[[np.random.Generator, np.ndarray], np.ndarray]
Part = tuple[np.ndarray, Draw]

TAU = 2.0 * np.pi
Z = np.array([0.0, 0.0, 1.0])


def _unit_vectors(rng: np.random.Generator, count: int) -> np.ndarray:
    v = rng.standard_normal((count, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _rejection(rng: np.random.Generator, s: np.ndarray, propose) -> np.ndarray:
    """Fill one point per entry of `s` from `propose(rng, s) -> (points, acceptance)`.

    Used where the area element is not separable: proposing uniformly in the
    parameters and accepting in proportion to the area element is exact.
    """
    out = np.empty((s.size, 3))
    todo = np.arange(s.size)
    while todo.size:
        points, acceptance = propose(rng, s[todo])
        ok = rng.random(todo.size) < acceptance
        out[todo[ok]] = points[ok]
        todo = todo[~ok]
    return out


# --- primitive patches; per-sample parameters are arrays with leading dim S ---


def _parallelogram(origin: np.ndarray, e1: np.ndarray, e2: np.ndarray) -> Part:
    def draw(rng, s):
        u, v = rng.random((2, s.size, 1))
        return origin[s] + u * e1[s] + v * e2[s]

    return np.linalg.norm(np.cross(e1, e2), axis=1), draw


def _triangle(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> Part:
    def draw(rng, s):
        u, v = rng.random((2, s.size, 1))
        root = np.sqrt(u)  # the square root makes the density uniform, not apex-heavy
        return (1.0 - root) * a[s] + root * (1.0 - v) * b[s] + root * v * c[s]

    return 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1), draw


def _box(center: np.ndarray, half: np.ndarray, drop: tuple[int, ...] = ()) -> list[Part]:
    """Faces of a box; `half` (S, 3, 3) holds orthogonal half-edge vectors as rows.

    Face 2*i (2*i+1) is the one at -half[i] (+half[i]); `drop` omits faces
    that lie against another part, so no points fall inside a composite.
    """
    faces = []
    for i in range(3):
        j, k = (i + 1) % 3, (i + 2) % 3
        for side, sign in enumerate((-1.0, 1.0)):
            if 2 * i + side in drop:
                continue
            origin = center + sign * half[:, i] - half[:, j] - half[:, k]
            faces.append(_parallelogram(origin, 2.0 * half[:, j], 2.0 * half[:, k]))
    return faces


def _aligned(extents: np.ndarray) -> np.ndarray:
    """Half-edge vectors (S, 3, 3) of an axis-aligned box with half extents (S, 3)."""
    return extents[:, :, None] * np.eye(3)


def _disk(center: np.ndarray, radius: np.ndarray) -> Part:
    """Disk normal to z."""

    def draw(rng, s):
        r = radius[s] * np.sqrt(rng.random(s.size))
        t = TAU * rng.random(s.size)
        return center[s] + np.stack([r * np.cos(t), r * np.sin(t), np.zeros_like(r)], axis=1)

    return np.pi * radius**2, draw


def _tube(base: np.ndarray, radius: np.ndarray, height: np.ndarray) -> Part:
    """Lateral surface of a z-aligned cylinder rising `height` from `base`."""

    def draw(rng, s):
        t = TAU * rng.random(s.size)
        h = height[s] * rng.random(s.size)
        return base[s] + np.stack([radius[s] * np.cos(t), radius[s] * np.sin(t), h], axis=1)

    return TAU * radius * height, draw


def _cone(base: np.ndarray, radius: np.ndarray, height: np.ndarray) -> Part:
    """Lateral surface of a z-aligned cone with its apex `height` above `base`."""

    def draw(rng, s):
        f = np.sqrt(rng.random(s.size))  # area grows linearly with distance from the apex
        t = TAU * rng.random(s.size)
        offset = np.stack([radius[s] * np.cos(t), radius[s] * np.sin(t), -height[s]], axis=1)
        return base[s] + height[s, None] * Z + f[:, None] * offset

    return np.pi * radius * np.hypot(radius, height), draw


def _sphere(center: np.ndarray, radius: np.ndarray, hemisphere: float = 0.0) -> Part:
    """Whole sphere, or the half towards +z (`hemisphere=1`) or -z (`-1`)."""

    def draw(rng, s):
        d = _unit_vectors(rng, s.size)
        if hemisphere:
            d[:, 2] = hemisphere * np.abs(d[:, 2])
        return center[s] + radius[s, None] * d

    return (TAU if hemisphere else 2 * TAU) * radius**2, draw


def _ellipsoid(axes: np.ndarray) -> Part:
    """Origin-centred ellipsoid with semi-axes (S, 3)."""
    cross = axes[:, [1, 0, 0]] * axes[:, [2, 2, 1]]  # (bc, ac, ab)

    def propose(rng, s):
        u = _unit_vectors(rng, s.size)
        # Area stretch of the map u -> axes * u from the unit sphere.
        stretch = np.linalg.norm(u * cross[s], axis=1)
        return u * axes[s], stretch / cross[s].max(axis=1)

    p = 1.6075  # Thomsen's approximation of the area, within about 1%
    area = 2 * TAU * (((cross**p).sum(axis=1)) / 3.0) ** (1.0 / p)
    return area, lambda rng, s: _rejection(rng, s, propose)


def _torus(major: np.ndarray, minor: np.ndarray) -> Part:
    """Torus around the z axis."""

    def propose(rng, s):
        theta, phi = TAU * rng.random((2, s.size))
        ring = major[s] + minor[s] * np.cos(theta)
        points = np.stack([ring * np.cos(phi), ring * np.sin(phi), minor[s] * np.sin(theta)], axis=1)
        return points, ring / (major[s] + minor[s])

    return TAU**2 * major * minor, lambda rng, s: _rejection(rng, s, propose)


def _helix_tube(radius: np.ndarray, rise: np.ndarray, turns: np.ndarray, tube: np.ndarray) -> Part:
    """Tube around the right-handed helix (r cos t, r sin t, rise * t), t in [0, 2 pi turns]."""
    speed = np.hypot(radius, rise)
    curvature = radius / speed**2

    def propose(rng, s):
        t = TAU * turns[s] * rng.random(s.size)
        phi = TAU * rng.random(s.size)
        a, b, v = radius[s, None], rise[s, None], speed[s, None]
        cos, sin = np.cos(t)[:, None], np.sin(t)[:, None]
        centre = np.concatenate([a * cos, a * sin, b * t[:, None]], axis=1)
        normal = np.concatenate([-cos, -sin, np.zeros_like(cos)], axis=1)
        binormal = np.concatenate([b * sin, -b * cos, a], axis=1) / v
        r = tube[s, None]
        points = centre + r * (np.cos(phi)[:, None] * normal + np.sin(phi)[:, None] * binormal)
        # The tube's area element is proportional to 1 - curvature * r * cos(phi).
        k = curvature[s] * tube[s]
        return points, (1.0 - k * np.cos(phi)) / (1.0 + k)

    return TAU * tube * speed * TAU * turns, lambda rng, s: _rejection(rng, s, propose)


# --- classes: each returns the surface parts of `count` random instances ---


def _at(x: np.ndarray | float, y: np.ndarray | float, z: np.ndarray | float, count: int) -> np.ndarray:
    """Per-sample points (count, 3) from scalars or (count,) coordinates."""
    return np.stack([np.broadcast_to(np.asarray(c, dtype=float), (count,)) for c in (x, y, z)], axis=1)


def _box_class(rng, count):
    return _box(np.zeros((count, 3)), _aligned(rng.uniform(0.25, 1.0, (count, 3))))


def _ellipsoid_class(rng, count):
    return [_ellipsoid(rng.uniform(0.3, 1.0, (count, 3)))]


def _cylinder(rng, count):
    r, h = rng.uniform(0.3, 1.0, count), rng.uniform(0.5, 2.5, count)
    bottom = _at(0, 0, -h / 2, count)
    return [_tube(bottom, r, h), _disk(bottom, r), _disk(-bottom, r)]


def _cone_class(rng, count):
    r, h = rng.uniform(0.3, 1.0, count), rng.uniform(0.5, 2.0, count)
    base = np.zeros((count, 3))
    return [_cone(base, r, h), _disk(base, r)]


def _torus_class(rng, count):
    major = rng.uniform(0.6, 1.0, count)
    return [_torus(major, major * rng.uniform(0.15, 0.45, count))]


def _pyramid(rng, count):
    wx, wy, h = rng.uniform(0.4, 1.0, count), rng.uniform(0.4, 1.0, count), rng.uniform(0.5, 1.5, count)
    corners = [_at(sx * wx, sy * wy, 0, count) for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1))]
    apex = _at(0, 0, h, count)
    sides = [_triangle(corners[i], corners[(i + 1) % 4], apex) for i in range(4)]
    return sides + [_parallelogram(corners[0], corners[1] - corners[0], corners[3] - corners[0])]


def _capsule(rng, count):
    r, h = rng.uniform(0.25, 0.6, count), rng.uniform(0.5, 2.0, count)
    bottom, top = _at(0, 0, -h / 2, count), _at(0, 0, h / 2, count)
    return [_tube(bottom, r, h), _sphere(top, r, 1.0), _sphere(bottom, r, -1.0)]


def _helix(rng, count):
    return [
        _helix_tube(
            radius=rng.uniform(0.5, 1.0, count),
            rise=rng.uniform(0.08, 0.2, count),
            turns=rng.uniform(2.0, 3.5, count),
            tube=rng.uniform(0.08, 0.18, count),
        )
    ]


def _dumbbell(rng, count):
    bells = rng.uniform(0.3, 0.6, (2, count))
    rod, length = rng.uniform(0.08, 0.2, count), rng.uniform(0.8, 2.0, count)
    # Place each bell so that the rod's rim lies on its surface.
    lower = _at(0, 0, -length / 2 - np.sqrt(bells[0] ** 2 - rod**2), count)
    upper = _at(0, 0, length / 2 + np.sqrt(bells[1] ** 2 - rod**2), count)
    rod_base = _at(0, 0, -length / 2, count)
    return [_tube(rod_base, rod, length), _sphere(lower, bells[0]), _sphere(upper, bells[1])]


def _table(rng, count):
    tx, ty = rng.uniform(0.6, 1.0, (2, count))
    slab, leg = rng.uniform(0.04, 0.1, (2, count))
    height = rng.uniform(0.5, 1.2, count)
    parts = _box(_at(0, 0, height + slab, count), _aligned(_at(tx, ty, slab, count)))
    for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
        centre = _at(sx * (tx - 2 * leg), sy * (ty - 2 * leg), height / 2, count)
        parts += _box(centre, _aligned(_at(leg, leg, height / 2, count)), drop=(5,))
    return parts


def _l_knob(rng, count):
    """An L of two boxes in the xz plane with a peg on its +y side: chiral."""
    height, reach = rng.uniform(1.0, 2.0, count), rng.uniform(0.8, 1.6, count)
    thick, depth = rng.uniform(0.2, 0.4, count), rng.uniform(0.15, 0.35, count)
    peg, peg_length = thick * rng.uniform(0.35, 0.5, count), rng.uniform(0.25, 0.45, count)
    upright = _box(_at(thick / 2, 0, height / 2, count), _aligned(_at(thick / 2, depth, height / 2, count)))
    arm = _box(
        _at((thick + reach) / 2, 0, thick / 2, count),
        _aligned(_at((reach - thick) / 2, depth, thick / 2, count)),
        drop=(0,),
    )
    knob = _box(
        _at(reach - peg, depth + peg_length / 2, thick / 2, count),
        _aligned(_at(peg, peg_length / 2, peg, count)),
        drop=(2,),
    )
    return upright + arm + knob


def _propeller(rng, count):
    """A hub with three pitched blades: chiral, its mirror image turns the other way."""
    hub, hub_height = rng.uniform(0.15, 0.25, count), rng.uniform(0.3, 0.5, count)
    length, width = rng.uniform(0.6, 1.0, count), rng.uniform(0.2, 0.35, count)
    thick, pitch = rng.uniform(0.03, 0.06, count), rng.uniform(0.3, 0.7, count)
    bottom = _at(0, 0, -hub_height / 2, count)
    parts = [_tube(bottom, hub, hub_height), _disk(bottom, hub), _disk(-bottom, hub)]
    for k in range(3):
        angle = TAU * k / 3
        radial = np.array([np.cos(angle), np.sin(angle), 0.0])
        tangent = np.cross(Z, radial)
        cp, sp = np.cos(pitch)[:, None], np.sin(pitch)[:, None]
        half = np.stack(
            [
                (length / 2)[:, None] * radial,
                (width / 2)[:, None] * (cp * tangent + sp * Z),
                (thick / 2)[:, None] * (cp * Z - sp * tangent),
            ],
            axis=1,
        )
        # Blades start slightly inside the hub so they read as attached.
        centre = (0.8 * hub + length / 2)[:, None] * radial
        parts += _box(centre, half)
    return parts


CLASSES: dict[str, Callable[[np.random.Generator, int], list[Part]]] = {
    "box": _box_class,
    "ellipsoid": _ellipsoid_class,
    "cylinder": _cylinder,
    "cone": _cone_class,
    "torus": _torus_class,
    "pyramid": _pyramid,
    "capsule": _capsule,
    "helix": _helix,
    "dumbbell": _dumbbell,
    "table": _table,
    "l_knob": _l_knob,
    "propeller": _propeller,
}
CHIRAL_CLASSES: tuple[str, ...] = ("helix", "l_knob", "propeller")


def _surface_points(rng: np.random.Generator, parts: list[Part], num_points: int) -> np.ndarray:
    """Sample (S, num_points, 3) points, choosing each point's part in proportion to its area."""
    areas = np.stack([area for area, _ in parts], axis=1)
    cdf = np.cumsum(areas, axis=1)
    cdf /= cdf[:, -1:]
    u = rng.random((areas.shape[0], num_points))
    which = (u[:, :, None] > cdf[:, None, :-1]).sum(axis=2)
    points = np.empty((areas.shape[0], num_points, 3))
    for k, (_, draw) in enumerate(parts):
        s, p = np.nonzero(which == k)
        points[s, p] = draw(rng, s)
    return points


def _class_clouds(rng: np.random.Generator, name: str, count: int, num_points: int, noise: float) -> np.ndarray:
    points = _surface_points(rng, CLASSES[name](rng, count), num_points)
    points -= points.mean(axis=1, keepdims=True)
    points /= np.linalg.norm(points, axis=2).max(axis=1)[:, None, None]
    points *= rng.uniform(0.9, 1.1, (count, 1, 1))
    points += noise * rng.standard_normal(points.shape)
    return points.astype(np.float32)


def _split(seed: int, index: int, per_class: int, num_points: int, noise: float) -> Split:
    # One stream per (split, class), `index` being the split's in SPLITS: changing one split's size leaves
    # the other splits bit-identical, and appending a class leaves the others' clouds alone.
    clouds = []
    for c, name in enumerate(CLASSES):
        rng = random_streams.generator("shapes.cloud", seed, index, c)
        clouds.append(_class_clouds(rng, name, per_class, num_points, noise))
    labels = np.repeat(np.arange(len(CLASSES), dtype=np.int64), per_class)
    order = random_streams.generator("shapes.order", seed, index).permutation(labels.size)
    return Split(points=np.concatenate(clouds)[order], labels=labels[order])


@DATASETS.register("shapes", kind="classification")
def shapes(
    seed: Annotated[int, Field(ge=0)],
    num_points: Annotated[int, Field(ge=16)] = 1024,
    train_per_class: PositiveInt = 64,
    val_per_class: PositiveInt = 16,
    test_per_class: PositiveInt = 16,
    noise: Annotated[float, Field(ge=0, le=0.2)] = 0.01,
) -> PointCloudSplits:
    """Generate the `shapes` classification dataset in canonical pose.

    Args:
        seed: the same seed gives bit-identical arrays.

    Ranges are declared in the signature: the registry checks them when a
    config is validated, before any data is generated.
        num_points: points per cloud, >= 16.
        train_per_class: train clouds per class, >= 1.
        val_per_class: validation clouds per class, >= 1.
        test_per_class: test clouds per class, >= 1.
        noise: std of the Gaussian noise added to every coordinate, in [0, 0.2]
            (clouds have unit radius).

    Returns:
        Splits with points (M, num_points, 3) float32 and labels (M,) int64,
        shuffled, every class in every split; class_names follow CLASSES.
    """
    sizes = {"train": train_per_class, "val": val_per_class, "test": test_per_class}
    train, val, test = (_split(seed, SPLITS.index(name), sizes[name], num_points, noise) for name in SPLITS)
    return PointCloudSplits(train=train, val=val, test=test, class_names=tuple(CLASSES))
