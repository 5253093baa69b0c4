"""How far a single PCA frame moves under a small deformation, against its relative eigengap and |skewness|.

    python -m geosweep.bench.frame_stability [--instances 20000] [--epsilon 0.01] [--seed 0]

The measurement behind EIGENGAP_TOL and SKEWNESS_TOL (representations/base.py), below which
`repr/small_eigengap_frac` and `repr/ambiguous_sign_frac` count a cloud. Each cloud is deformed once at
random, x -> x + eps A (x - t) with A symmetric of spectral norm 1 (a stretch or shear about the centroid t:
every point moves by at most eps of its distance from t), and its frame is compared with the original's:
- axis motion: the largest angle between an original principal axis and its new one (signs aside),
  binned by the cloud's smallest relative eigengap (`frame_conditioning`);
- sign motion: pi where a column's sign flipped (clouds whose axes turned less than 0.1 rad), binned by
  that column's |skewness|.
A bin is unstable when its mean motion exceeds 10 eps: the frame moves ten times as far as the points
(0.1 rad at eps = 1 %). The same with i.i.d. jitter of the same RMS size is printed for contrast: it
averages out over the N points, so it barely moves the frame of a large cloud.
Data: uniform TSP instances (geosweep.data.tsp, n = 20, 50, 100) and the `shapes` clouds (1024 points).
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch
from torch import Tensor

from geosweep.data.shapes import shapes
from geosweep.data.tsp import random_instances
from geosweep.representations.base import EIGENGAP_TOL, SKEWNESS_TOL, frame_conditioning, principal_axes

AMPLIFICATION = 10.0  # unstable: the frame moves this many times as far (radians) as the points (relative)
GAP_EDGES = (0.0, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.12, 0.15, 0.2, 0.3, 1.0)
SKEW_EDGES = (0.0, 0.001, 0.003, 0.01, 0.02, 0.03, 0.05, 0.1, math.inf)
MIN_BIN = 20  # fewer members say nothing about a bin's mean
SAME_AXES = 0.1  # rad: axes that turned less still pair up column by column, so a sign flip is well defined


def deform(points: Tensor, epsilon: float, generator: torch.Generator) -> Tensor:
    """A random stretch or shear about the centroid t: x -> x + eps A (x - t), A symmetric with spectral norm 1."""
    batch, _, dim = points.shape
    gaussian = torch.randn(batch, dim, dim, dtype=points.dtype, generator=generator)
    shear = gaussian + gaussian.mT
    shear = shear / torch.linalg.matrix_norm(shear, ord=2).view(-1, 1, 1)
    return points + epsilon * (points - points.mean(dim=1, keepdim=True)) @ shear


def jitter(points: Tensor, epsilon: float, generator: torch.Generator) -> Tensor:
    """I.i.d. Gaussian noise whose RMS displacement is eps times the cloud's RMS radius."""
    centred = points - points.mean(dim=1, keepdim=True)
    radius = centred.square().sum(dim=-1).mean(dim=1).sqrt().view(-1, 1, 1)
    noise = torch.randn(points.shape, dtype=points.dtype, generator=generator)
    return points + noise * epsilon * radius / math.sqrt(points.shape[-1])


def canonical_columns(points: Tensor) -> tuple[Tensor, Tensor]:
    """(B, d, d) principal axes as columns and (B, d) each column's skewness (its sign fixes the column's)."""
    centred, vals, axes = principal_axes(points)
    y = centred.detach() @ axes
    return axes, (y**3).mean(dim=1) / (vals / points.shape[1]).clamp_min(1e-300) ** 1.5


def frame_motion(points: Tensor, moved: Tensor) -> tuple[Tensor, Tensor]:
    """How far each cloud's frame moved: the largest axis angle (B,), and which column signs flipped (B, d).

    A column flips when its sign-fixed axis points the other way; only meaningful where the axes stayed put.
    """
    axes, skew = canonical_columns(points)
    new_axes, new_skew = canonical_columns(moved)
    dots = (axes * new_axes).sum(dim=1)
    angle = torch.arccos(dots.abs().clamp(max=1.0)).amax(dim=1)
    return angle, skew.sign() * new_skew.sign() * dots.sign() < 0


def binned_means(key: Tensor, motion: Tensor, edges: tuple[float, ...]) -> list[tuple[float, float, int, float]]:
    """(low, high, members, mean motion) per bin [low, high) of `key` (the last bin closed)."""
    rows = []
    for low, high in zip(edges, edges[1:], strict=False):
        inside = (key >= low) & ((key < high) if high != edges[-1] else (key <= high))
        rows.append((low, high, int(inside.sum()), motion[inside].mean().item() if inside.any() else math.nan))
    return rows


def threshold(rows: list[tuple[float, float, int, float]], level: float) -> float:
    """The upper edge of the highest bin (of MIN_BIN members or more) whose mean motion reaches `level`."""
    unstable = [high for _, high, members, mean in rows if members >= MIN_BIN and mean >= level]
    return max(unstable, default=0.0)


def measure(points: Tensor, epsilon: float, seed: int) -> dict:
    """The axis and sign motion of one set of clouds under a deformation and under jitter, binned."""
    points = points.double()
    gaps, least_skews = frame_conditioning(points)
    _, skews = canonical_columns(points)
    result: dict = {
        "median_gap": gaps.median().item(),
        "below_gap_tol": (gaps < EIGENGAP_TOL).double().mean().item(),
        "below_skew_tol": (least_skews < SKEWNESS_TOL).double().mean().item(),
    }
    for name, perturb in (("deform", deform), ("jitter", jitter)):
        angle, flipped = frame_motion(points, perturb(points, epsilon, torch.Generator().manual_seed(seed)))
        steady = (angle < SAME_AXES).unsqueeze(1).expand_as(flipped)
        result[name] = {
            "axes": binned_means(gaps, angle, GAP_EDGES),
            "signs": binned_means(skews.abs()[steady], math.pi * flipped[steady].double(), SKEW_EDGES),
        }
    return result


def datasets(instances: int, seed: int) -> dict[str, Tensor]:
    """Uniform TSP instances of 20, 50 and 100 cities, and the `shapes` training clouds of 1024 points."""
    rng = np.random.default_rng(seed)
    clouds = {f"tsp{n}": torch.from_numpy(random_instances(rng, instances, n)) for n in (20, 50, 100)}
    per_class = max(1, instances // 120)  # 12 classes; clouds of 1024 points cost ~10x a TSP instance
    clouds["shapes1024"] = torch.from_numpy(shapes(seed, num_points=1024, train_per_class=per_class).train.points)
    return clouds


def table(rows: list[tuple[float, float, int, float]], epsilon: float, what: str) -> list[str]:
    """A bin table as text lines: range, members, mean motion in degrees and in units of eps."""
    lines = [f"    {what:<17} {'clouds':>7} {'mean motion':>14} {'/ eps':>7}"]
    for low, high, members, mean in rows:
        if members:
            span = f"[{low:.3g}, {high:.3g})"
            lines.append(f"    {span:<17} {members:7d} {math.degrees(mean):10.2f} deg {mean / epsilon:7.1f}")
    return lines


def main() -> None:
    """The command line: measure every data set, print the tables and the thresholds they give."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=20_000, help="TSP instances per size")
    parser.add_argument("--epsilon", type=float, default=0.01, help="relative size of the perturbation")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    level = AMPLIFICATION * args.epsilon
    found = {"axes": [], "signs": []}
    for name, points in datasets(args.instances, args.seed).items():
        result = measure(points, args.epsilon, args.seed)
        print(
            f"{name}: {len(points)} clouds, median relative eigengap {result['median_gap']:.3f}, "
            f"{100 * result['below_gap_tol']:.1f} % below EIGENGAP_TOL = {EIGENGAP_TOL}, "
            f"{100 * result['below_skew_tol']:.1f} % below SKEWNESS_TOL = {SKEWNESS_TOL}"
        )
        for perturbation in ("deform", "jitter"):
            axes, signs = result[perturbation]["axes"], result[perturbation]["signs"]
            gap_at, skew_at = threshold(axes, level), threshold(signs, level)
            print(f"  {perturbation}, eps {args.epsilon:g}: unstable (mean motion >= {level:g} rad) below")
            print(f"    relative eigengap {gap_at:g}, |skewness| {skew_at:g}")
            print("\n".join([*table(axes, args.epsilon, "rel. eigengap"), *table(signs, args.epsilon, "|skewness|")]))
            if perturbation == "deform":
                found["axes"].append(gap_at)
                found["signs"].append(skew_at)
    print(
        f"thresholds (largest over the data sets, deformation): relative eigengap {max(found['axes']):g} "
        f"(EIGENGAP_TOL = {EIGENGAP_TOL}), |skewness| {max(found['signs']):g} (SKEWNESS_TOL = {SKEWNESS_TOL})"
    )


if __name__ == "__main__":
    main()
