"""The interface every representation implements, and the PCA helpers several of them share."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from torch import Tensor

from geosweep.registry import REPRESENTATIONS

SYMMETRIES = frozenset({"translation", "rotation", "reflection", "permutation", "scale"})

SignRule = Literal["third_moment", "abs_weighted"]
ScaleRule = Literal["rms", "top_eig"]

# A cloud whose extent is within this many ulps of its coordinates' magnitude has no scale.
_ZERO_RADIUS_ULPS = 16

# Eigenvalues below this fraction of the largest are round-off of a rank-deficient cloud.
_NULL_EIGVAL = 1e-10

# Below these a single PCA frame is unstable: a random deformation moving every point by 1 % of its distance
# from the centroid moves the frame by more than 0.1 rad on average (a flipped sign moves a column by pi), ten
# times the perturbation. Measured by geosweep.bench.frame_stability (docs/benchmarks.md#frame-stability).
EIGENGAP_TOL = 0.08
SKEWNESS_TOL = 0.03


class Representation(torch.nn.Module):
    """Maps a batch of point clouds to one or more invariant 'frames' of per-point features.

    `invariances` is a subset of `SYMMETRIES`: "rotation" means SO(d), "rotation" with
    "reflection" means O(d), and "permutation" means permutation-EQUIVARIANT per point
    (permuting the input points permutes the output rows the same way). The class
    attribute is the documented default; a representation whose symmetries depend on
    its kwargs overrides it per instance in `__init__`.

    `equivariances` (a subset of {"rotation", "reflection"}, same reading) names the groups
    under which each frame turns with the input instead: rep(x @ Q.T) = rep(x) @ Q.T, as
    centred coordinates do. A backbone invariant under those maps of its input (Vector
    Neurons) then makes the whole model invariant (`Model.invariances`).

    `deterministic` says the output is a function of the input points alone (no random
    draws, no learned parameters, same in training and eval mode), so the platform may
    cache it by content hash.
    """

    invariances: ClassVar[frozenset[str]]
    equivariances: ClassVar[frozenset[str]] = frozenset()
    deterministic: ClassVar[bool] = True

    def out_channels(self, dim: int) -> int:
        """Number of per-point feature channels c for d-dimensional input.

        Args:
            dim: spatial dimension d of the input points.

        Returns:
            c, the size of the last output axis: d unless a representation says otherwise.
        """
        return dim

    def __call__(self, points: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        """Check the points, then run the module (its `forward`).

        The checks live here, not in each `forward`, so no representation can pass NaN or inf through
        silently (a centring one would turn a whole cloud into NaN features).

        Raises:
            ValueError: as `check_points`, or a NaN / infinite coordinate, naming the representation.
        """
        try:
            check_points(points)
            check_finite(points)
        except ValueError as err:
            name = REPRESENTATIONS.name_of(type(self)) or type(self).__name__
            raise ValueError(f"representation {name!r}: {err}") from None
        return super().__call__(points, *args, **kwargs)

    def fallback_counts(self, points: Tensor) -> dict[str, int]:
        """How many of these clouds the representation could only encode by a fallback, per fallback.

        A trial logs each as `repr/<fallback>_frac` before training, so a fallback never passes unseen.

        Args:
            points: (B, N, d) point clouds.

        Returns:
            fallback name -> clouds that took it; {} for representations without one.
        """
        return {}

    def forward(self, points: Tensor) -> Tensor:
        """Compute the frames.

        Args:
            points: (B, N, d) batch of point clouds.

        Returns:
            (B, F, N, c) per-point features for each of the F frames.
        """
        raise NotImplementedError


def check_points(points: Tensor) -> None:
    """Reject input that is not a (B, N, d) batch with d in {2, 3}.

    Args:
        points: the tensor passed to `Representation.forward`.

    Raises:
        ValueError: on a wrong rank or dimension.
    """
    if points.ndim != 3 or points.shape[-1] not in (2, 3):
        raise ValueError(f"expected points of shape (B, N, d) with d in (2, 3), got {tuple(points.shape)}")


def check_clouds(points: Tensor) -> None:
    """All of a representation's input checks, for code that takes clouds outside a representation's call.

    Args:
        points: (B, N, d) point clouds.

    Raises:
        ValueError: on a wrong shape, fewer than d + 1 points, or a NaN / infinite
            coordinate, naming the first offending sample's index.
    """
    check_points(points)
    check_enough_points(points)
    check_finite(points)


def check_enough_points(points: Tensor) -> None:
    """Reject clouds no principal-axis or MDS frame can be built from (shape and values checked already).

    Fewer than d + 1 points cannot span d dimensions, which is a data bug far more
    often than an intended shape. Degenerate but finite clouds (all points equal,
    collinear, coplanar) are accepted: their null-space columns come out zero.

    Args:
        points: (B, N, d) point clouds.

    Raises:
        ValueError: fewer than d + 1 points.
    """
    batch, num_points, dim = points.shape
    if batch and num_points < dim + 1:
        raise ValueError(
            f"sample 0: {num_points} points, but {dim}-D clouds need at least {dim + 1} "
            f"(every sample in this batch has N = {num_points})"
        )


def check_finite(points: Tensor) -> None:
    """Reject a batch with a NaN or infinite coordinate.

    Args:
        points: (B, N, d) point clouds.

    Raises:
        ValueError: naming the first offending sample's index.
    """
    bad = ~torch.isfinite(points).flatten(1).all(dim=1)
    if bad.any():
        raise ValueError(f"sample {int(bad.nonzero()[0])}: NaN or infinite coordinates")


def principal_axes(points: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Centre each cloud and diagonalise its d x d scatter matrix, in float64.

    Shared by tinv_mds and fa, so both see exactly the same frame. float64 because
    float32 eigenvectors lose accuracy at small eigengaps; the cost is O(N d^2).

    Args:
        points: (B, N, d) point clouds.

    Returns:
        centred: (B, N, d) float64 centred clouds (still differentiable w.r.t. `points`).
        eigvals: (B, d) eigenvalues of Xc^T Xc, descending, clamped at 0, detached.
        axes: (B, d, d) orthonormal eigenvectors as columns in the same order,
            detached: eigh's backward blows up at small eigengaps.
    """
    x = points.double()
    # Subtracting the first point before averaging makes identical points centre to
    # exact zeros; a round-off radius would otherwise be blown up by scale normalisation.
    x = x - x[:, :1]
    centred = x - x.mean(dim=1, keepdim=True)
    fixed = centred.detach()
    vals, vecs = torch.linalg.eigh(fixed.mT @ fixed)  # ascending
    return centred, vals.flip(-1).clamp_min(0.0), vecs.flip(-1)


def column_signs(y: Tensor, rule: SignRule) -> Tensor:
    """Per-column signs that make a permutation-invariant column statistic nonnegative.

    "third_moment" uses sum_i y_ij^3, "abs_weighted" sum_i y_ij |y_ij|. A zero
    statistic (a cloud mirror-symmetric along that column) maps to +1: there the sign
    is ill-defined and the result is discontinuous. The column sum cannot serve as a
    rule: it is exactly 0 for centred coordinates.

    Args:
        y: (B, N, m) per-point coordinates.
        rule: which statistic.

    Returns:
        (B, m) tensor of +-1 in y's dtype, without gradient.
    """
    y = y.detach()
    stat = (y**3).sum(dim=1) if rule == "third_moment" else (y * y.abs()).sum(dim=1)
    return torch.where(stat < 0, -1.0, 1.0).to(y.dtype)


def frame_conditioning(points: Tensor) -> tuple[Tensor, Tensor]:
    """How well each cloud's single PCA frame is determined: its smallest relative eigengap and |skewness|.

    The relative eigengap of consecutive principal axes i, i + 1 is (lambda_i - lambda_{i+1}) / lambda_i
    (eigenvalues of Xc^T Xc, descending). To first order a deformation of relative size eps turns axis i
    towards axis i + 1 by about eps (lambda_i + lambda_{i+1}) / (lambda_i - lambda_{i+1}), so this ratio, not
    the gap over lambda_1, says how far the axes move: a long thin cylinder's two small axes are as loose as a
    disc's. A column's skewness, mean_i y^3 / (mean_i y^2)^{3/2}, fixes its sign (scale- and N-free).
    Null directions (below 1e-10 of the top eigenvalue) tie with each other (gap 0) and have no sign
    (skewness 0): all points equal and collinear clouds get both; a coplanar 3-D cloud's normal is a
    well-determined axis with an undetermined sign.

    Args:
        points: (B, N, d) point clouds.

    Returns:
        (B,) smallest relative eigengap and (B,) smallest |skewness| over the columns, float64.

    Raises:
        ValueError: as `check_clouds`.
    """
    check_clouds(points)
    centred, vals, axes = principal_axes(points)
    y = centred.detach() @ axes
    var = vals / points.shape[1]
    null = var <= _NULL_EIGVAL * var[:, :1]  # also catches all-equal clouds (0 <= 0)
    skew = (y**3).mean(dim=1) / torch.where(null, 1.0, var) ** 1.5
    skew = torch.where(null, 0.0, skew.abs())
    upper = vals[:, :-1]
    gaps = torch.where(null[:, :-1], 0.0, (upper - vals[:, 1:]) / torch.where(null[:, :-1], 1.0, upper))
    return gaps.amin(dim=1), skew.amin(dim=1)


def ambiguity_stats(
    points: Tensor, *, sign_tol: float = SKEWNESS_TOL, gap_tol: float = EIGENGAP_TOL
) -> dict[str, float]:
    """How many clouds of a batch sit where a single canonical PCA frame is unstable (see `frame_conditioning`).

    A sample has an ambiguous sign when some column's |skewness| is below `sign_tol`, and a small eigengap
    when some consecutive relative eigengap is below `gap_tol`. The defaults are where a 1 % deformation
    moves the frame ten times as far (EIGENGAP_TOL, SKEWNESS_TOL).

    Args:
        points: (B, N, d) point clouds.
        sign_tol: skewness threshold.
        gap_tol: relative eigengap threshold.

    Returns:
        {"num_samples", "ambiguous_sign_count", "ambiguous_sign_frac",
        "small_eigengap_count", "small_eigengap_frac"}, as Python numbers.

    Raises:
        ValueError: as `check_clouds`.
    """
    gaps, skews = frame_conditioning(points)
    ambiguous_sign, small_gap = int((skews < sign_tol).sum()), int((gaps < gap_tol).sum())
    batch = max(points.shape[0], 1)
    return {
        "num_samples": points.shape[0],
        "ambiguous_sign_count": ambiguous_sign,
        "ambiguous_sign_frac": ambiguous_sign / batch,
        "small_eigengap_count": small_gap,
        "small_eigengap_frac": small_gap / batch,
    }


def scale_divisor(aligned: Tensor, points: Tensor, rule: ScaleRule) -> Tensor:
    """(B,) divisor that makes aligned clouds scale-invariant; inf (zero output) where a cloud has no extent.

    Args:
        aligned: (B, N, d) centred clouds in their principal axes (float64).
        points: (B, N, d) the input clouds, for the round-off floor.
        rule: "rms": the RMS radius; "top_eig": the RMS extent along the first principal axis.
    """
    sq = aligned.square().sum(dim=-1) if rule == "rms" else aligned[..., 0].square()
    floor = _ZERO_RADIUS_ULPS * torch.finfo(points.dtype).eps * points.detach().abs().amax(dim=(1, 2))
    mean_sq = sq.mean(dim=1)
    # Selecting before the square root keeps sqrt(0)'s infinite slope out of backward.
    return torch.where(mean_sq > floor.double().square(), mean_sq, torch.inf).sqrt()


def pca_invariances(reflection: bool, scale: bool) -> frozenset[str]:
    """What a PCA-frame representation is invariant to: always translation, rotation and permutation."""
    declared = {"translation", "rotation", "permutation"}
    if reflection:
        declared.add("reflection")
    if scale:
        declared.add("scale")
    return frozenset(declared)
