"""The invariance certifier: sampled group elements, measured errors, assertions.

Used by the tests (every registered representation is checked against exactly
the symmetries it declares) and by every training trial (`certify_model` logs
how far a trained model is from invariant). Modelled on e3nn's
`equivariance_error` / `assert_equivariant`: the checker ships in the package
and tolerances are keyed by dtype.

Groups are named by `GROUPS`. One `Transform` acts on (B, N, d) points as
x -> s * x @ Q.T + t followed by a permutation of the points (the same element
for every cloud of the batch). Errors are measured per cloud relative to
max(1, max |fn(x)|): an absolute error for O(1) outputs and a relative one for
larger outputs, so one tolerance serves clouds in any unit. An equivariant output whose
vectors turn with the input (Vector Neuron features, centred coordinates) is compared
with fn(x) turned by the same orthogonal map (`vector_axis`).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

GROUPS = ("translation", "SO(d)", "O(d)", "scale", "permutation")

TOLERANCES = {torch.float64: 1e-5, torch.float32: 1e-4}

SCALE_RANGE = (0.5, 2.0)

# Same as representations.base.SYMMETRIES, not imported from there: that would import
# every representation, and a representation may use this module's sampler.
_DECLARABLE = frozenset({"translation", "rotation", "reflection", "permutation", "scale"})


@dataclass(frozen=True)
class Transform:
    """One group element: x -> scale * x @ rotation.T + translation, then rows permuted.

    Attributes:
        rotation: (d, d) orthogonal matrix (the identity if no rotation was sampled).
        translation: (d,) offset.
        scale: positive factor.
        perm: (N,) permutation of the points, or None.
    """

    rotation: Tensor
    translation: Tensor
    scale: float
    perm: Tensor | None

    def __call__(self, points: Tensor) -> Tensor:
        """Apply to a (B, N, d) batch, in its dtype and on its device."""
        q = self.rotation.to(points)
        out = self.scale * (points @ q.T) + self.translation.to(points)
        return out if self.perm is None else out[:, self.perm.to(points.device)]


def groups_of(invariances: Iterable[str]) -> tuple[str, ...]:
    """Map a representation's declared invariances to the groups to sample.

    Args:
        invariances: subset of {"translation", "rotation", "reflection",
            "permutation", "scale"}; "rotation" alone means SO(d), with
            "reflection" it means O(d).

    Returns:
        Group names from `GROUPS`, in that order.

    Raises:
        ValueError: an unknown name, or "reflection" without "rotation" (the
            reflections generate all of O(d), so that declaration means nothing
            narrower than O(d) and is almost certainly a mistake).
    """
    declared = frozenset(invariances)
    unknown = declared - _DECLARABLE
    if unknown:
        raise ValueError(f"unknown invariances {sorted(unknown)}; valid: {sorted(_DECLARABLE)}")
    if "reflection" in declared and "rotation" not in declared:
        raise ValueError("'reflection' without 'rotation': reflections generate O(d), declare both")
    rotation = "O(d)" if "reflection" in declared else "SO(d)"
    names = {"translation", "scale", "permutation"} & declared
    if "rotation" in declared:
        names.add(rotation)
    return tuple(g for g in GROUPS if g in names)


def _as_groups(groups: str | Iterable[str]) -> tuple[str, ...]:
    names = (groups,) if isinstance(groups, str) else tuple(groups)
    unknown = set(names) - set(GROUPS)
    if unknown:
        raise ValueError(f"unknown groups {sorted(unknown)}; valid: {', '.join(GROUPS)}")
    if {"SO(d)", "O(d)"} <= set(names):
        raise ValueError("name one of 'SO(d)' and 'O(d)', not both")
    return names


def sample_transforms(
    groups: str | Iterable[str],
    dim: int,
    count: int,
    *,
    generator: torch.Generator,
    num_points: int | None = None,
    dtype: torch.dtype = torch.float64,
) -> list[Transform]:
    """Draw `count` elements of the product of `groups`, deterministically from `generator`.

    SO(d): Haar, via QR of a Gaussian matrix with the signs of R's diagonal moved
    into Q, then the first column negated if det = -1 (right-multiplying by a
    fixed reflection maps the det -1 half of Haar O(d) onto Haar SO(d)).
    O(d): the same SO(d) draws, right-multiplied by diag(-1, 1, ...) at even
    indices, so dets alternate -1, +1, ...: every O(d) check exercises
    reflections (the first sample is one) and the samples are a stratified
    Haar sample of O(d). Translation: t ~ N(0, I). Scale: log-uniform in
    `SCALE_RANGE`. Permutation: uniform over the N! orders.
    Draws are made in float64 and cast, so float32 and float64 checks see the
    same elements.

    Args:
        groups: one name or several from `GROUPS`; unnamed parts are identities.
        dim: spatial dimension d.
        count: number of elements.
        generator: CPU generator, the only source of randomness.
        num_points: N, needed when "permutation" is sampled.
        dtype: dtype of the returned matrices and offsets.

    Returns:
        `count` transforms.
    """
    names = _as_groups(groups)
    if "permutation" in names and num_points is None:
        raise ValueError("sampling 'permutation' needs num_points")
    f64 = dict(dtype=torch.float64, generator=generator)
    # Drawn as batches: one batched QR costs about what a single small QR does.
    q = torch.eye(dim, dtype=torch.float64).expand(count, dim, dim).clone()
    if "SO(d)" in names or "O(d)" in names:
        q, r = torch.linalg.qr(torch.randn(count, dim, dim, **f64))
        q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)
        flip = torch.linalg.det(q) < 0
        if "O(d)" in names:
            flip ^= torch.arange(count) % 2 == 0
        q[..., 0] = torch.where(flip[:, None], -q[..., 0], q[..., 0])
    t = torch.zeros(count, dim, dtype=torch.float64)
    if "translation" in names:
        t = torch.randn(count, dim, **f64)
    s = torch.ones(count, dtype=torch.float64)
    if "scale" in names:
        low, high = math.log(SCALE_RANGE[0]), math.log(SCALE_RANGE[1])
        s = torch.exp(low + (high - low) * torch.rand(count, **f64))
    perms = [None] * count
    if "permutation" in names:
        perms = [torch.randperm(num_points, generator=generator) for _ in range(count)]
    return [Transform(q[i].to(dtype), t[i].to(dtype), float(s[i]), perms[i]) for i in range(count)]


def _turned(ref: Tensor, rotation: Tensor, vector_axis: int | None) -> Tensor:
    """`ref` = fn(x) as fn(g.x) must be if its vectors along `vector_axis` turn with the input; unchanged if None."""
    if vector_axis is None:
        return ref
    return (ref.movedim(vector_axis, -1) @ rotation.to(ref).T).movedim(-1, vector_axis)


def _cloud_errors(out: Tensor, ref: Tensor, perm: Tensor | None, point_axis: int, frame_axis: int | None) -> Tensor:
    """(B,) errors of `out` = fn(g.x) against `ref` = fn(x), permuted by `perm` if equivariant."""
    if perm is not None:
        ref = ref.index_select(point_axis, perm.to(ref.device))
    scale = ref.flatten(1).abs().amax(1).clamp(min=1.0)
    if frame_axis is None:
        return (out - ref).flatten(1).abs().amax(1) / scale
    # Frames are an unordered set: Hausdorff distance, each frame against the nearest
    # frame of the other set, both ways (one way would accept a collapsed set).
    out, ref = out.movedim(frame_axis, 1).flatten(2), ref.movedim(frame_axis, 1).flatten(2)
    gaps = (out[:, :, None] - ref[:, None]).abs().amax(-1)  # (B, F, F)
    return torch.maximum(gaps.amin(2).amax(1), gaps.amin(1).amax(1)) / scale


def invariance_error(
    fn: Callable[[Tensor], Tensor],
    points: Tensor,
    groups: str | Iterable[str],
    *,
    samples: int = 8,
    seed: int = 0,
    permutation: Literal["invariant", "equivariant"] = "invariant",
    point_axis: int = 1,
    frame_axis: int | None = None,
    vector_axis: int | None = None,
) -> float:
    """Largest change of fn's output under sampled elements of the product of `groups`.

    Args:
        fn: maps (B, N, d) points to a tensor whose first axis is the batch.
        points: (B, N, d) clouds, any float dtype and device.
        groups: one name or several from `GROUPS`, sampled jointly.
        samples: number of group elements.
        seed: seeds the generator; equal seeds give equal elements.
        permutation: "invariant" compares fn(Px) with fn(x); "equivariant"
            compares fn(Px) with fn(x) permuted the same way along `point_axis`.
        point_axis: axis of fn's output indexing the points (equivariant mode).
        frame_axis: if given, fn's output along this axis is an unordered set
            of frames (frame averaging), compared by Hausdorff distance: each
            frame against the nearest frame of the other set, both ways.
        vector_axis: if given, fn's output along this axis holds d-vectors that must turn
            with the input (SO(d)/O(d) equivariance): fn(g.x) is compared with fn(x) @ Q.T
            there, Q being g's orthogonal part; translations and scale must leave them unchanged.

    Returns:
        max over elements and clouds of max |fn(g.x) - expected| / max(1, max |fn(x)|), expected
        being fn(x) (turned by Q along `vector_axis`, permuted in equivariant mode);
        NaN or inf if fn produced non-finite values.
    """
    transforms = sample_transforms(
        groups,
        points.shape[-1],
        samples,
        generator=torch.Generator().manual_seed(seed),
        num_points=points.shape[1],
        dtype=points.dtype,
    )
    with torch.no_grad():
        ref = fn(points)
        errors = [
            _cloud_errors(
                fn(g(points)),
                _turned(ref, g.rotation, vector_axis),
                g.perm if permutation == "equivariant" else None,
                point_axis,
                frame_axis,
            )
            for g in transforms
        ]
    # torch.max propagates NaN, Python's max would depend on the order.
    return float(torch.cat(errors).max())


def assert_invariant(
    fn: Callable[[Tensor], Tensor],
    points: Tensor,
    groups: str | Iterable[str],
    *,
    samples: int = 8,
    seed: int = 0,
    tol: float | None = None,
    permutation: Literal["invariant", "equivariant"] = "invariant",
    point_axis: int = 1,
    frame_axis: int | None = None,
    vector_axis: int | None = None,
) -> dict[str, float]:
    """Check each group separately, so a failure names the group that breaks.

    Invariance under each group implies invariance under the group they generate,
    so no joint check is needed.

    Args:
        fn: maps (B, N, d) points to a tensor whose first axis is the batch.
        points: (B, N, d) clouds, any float dtype and device.
        groups: one name or several from `GROUPS`, each checked on its own.
        samples: group elements per group.
        seed: seeds the group elements; each group gets the same seed.
        tol: bound on `invariance_error`; default `TOLERANCES[points.dtype]`.
        permutation: "invariant" or "equivariant" along `point_axis`, as for `invariance_error`.
        point_axis: axis of fn's output indexing the points (equivariant mode).
        frame_axis: if given, the axis of fn's output that holds an unordered set of frames.
        vector_axis: if given, the axis of fn's output whose vectors turn with the input.

    Returns:
        The error per group.

    Raises:
        AssertionError: naming the group, the error and the tolerance.
    """
    if tol is None:
        if points.dtype not in TOLERANCES:
            raise ValueError(f"no default tolerance for {points.dtype}; pass tol")
        tol = TOLERANCES[points.dtype]
    errors = {}
    for group in _as_groups(groups):
        err = invariance_error(
            fn,
            points,
            group,
            samples=samples,
            seed=seed,
            permutation=permutation,
            point_axis=point_axis,
            frame_axis=frame_axis,
            vector_axis=vector_axis,
        )
        turned = group in ("SO(d)", "O(d)") and vector_axis is not None
        kind = "equivariant" if turned or (group == "permutation" and permutation == "equivariant") else "invariant"
        # `not err <= tol` also fails on NaN.
        if not err <= tol:
            raise AssertionError(
                f"not {kind} under {group} (d={points.shape[-1]}, {points.dtype}): "
                f"error {err:.3g} > tolerance {tol:.3g}"
            )
        errors[group] = err
    return errors


@contextlib.contextmanager
def _eval_mode(module: nn.Module) -> Iterator[None]:
    """Eval mode (deterministic: no dropout, no random frames) and back, for use mid-training."""
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was_training)


def assert_representation(
    representation: nn.Module,
    points: Tensor,
    claim: Literal["invariances", "equivariances"] = "invariances",
    *,
    samples: int = 8,
    seed: int = 0,
    tol: float | None = None,
) -> dict[str, float]:
    """Check a representation against exactly what it declares, in eval mode.

    Output frames (B, F, N, c) are compared as an unordered set along F (frame
    averaging permutes frames among themselves). Under the groups in `invariances`
    the output must not change ("permutation" is checked as equivariance along N);
    under those in `equivariances` the frames must turn with the input,
    rep(x @ Q.T) == rep(x) @ Q.T: what lets a rotation-invariant backbone make the
    whole model rotation invariant.

    Args:
        representation: module with the `claim` attribute.
        points: (B, N, d) generic clouds (distinct eigenvalues, nonzero third
            moments: canonicalisations are discontinuous elsewhere).
        claim: which declaration to check.
        samples: group elements per group.
        seed: seeds the group elements.
        tol: bound on the error; default `TOLERANCES[points.dtype]`.

    Returns:
        The error per declared group.

    Raises:
        AssertionError: naming the group that breaks.
    """
    layout = {"permutation": "equivariant", "point_axis": 2} if claim == "invariances" else {"vector_axis": -1}
    with _eval_mode(representation):
        return assert_invariant(
            representation,
            points,
            groups_of(getattr(representation, claim)),
            samples=samples,
            seed=seed,
            tol=tol,
            frame_axis=1,
            **layout,
        )


def certify_model(
    model: nn.Module,
    points: Tensor,
    invariances: Iterable[str],
    *,
    samples: int = 8,
    seed: int = 0,
    chunk_size: int = 256,
) -> dict[str, float]:
    """Measure a classifier's invariance on a batch, for logging from a trial.

    The K = `samples` elements come from the declared groups plus permutation
    (every backbone pools, so the whole model is permutation invariant). Each
    element costs one forward per chunk of `chunk_size` clouds. The model runs
    in eval mode without grad and is restored to its previous mode. Passing more
    than the model declares (e.g. rotations for `raw` + `pointnet`) measures how far
    the model is from a symmetry it does not claim.

    Args:
        model: maps (B, N, d) points to (B, classes) logits.
        points: (B, N, d) clouds on the model's device.
        invariances: symmetry names as in `groups_of`, usually the
            model's declared invariances (`Model.invariances`).
        samples: K, the number of group elements.
        seed: seeds the elements.
        chunk_size: clouds per forward.

    Returns:
        "invariance/max_logit_diff": max |logits(g.x) - logits(x)| over elements,
        clouds and classes (absolute); "invariance/pred_agreement": fraction of
        clouds whose argmax is the same under all K elements as untransformed.
    """
    if len(points) == 0:
        raise ValueError("certify_model needs at least one cloud")
    groups = groups_of(frozenset(invariances) | {"permutation"})
    transforms = sample_transforms(
        groups,
        points.shape[-1],
        samples,
        generator=torch.Generator().manual_seed(seed),
        num_points=points.shape[1],
        dtype=points.dtype,
    )
    max_diff, agree = torch.zeros(()), 0
    with _eval_mode(model), torch.no_grad():
        for chunk in points.split(chunk_size):
            ref = model(chunk)
            label, same = ref.argmax(-1), torch.ones(len(chunk), dtype=torch.bool, device=ref.device)
            for g in transforms:
                out = model(g(chunk))
                # maximum() propagates NaN, so a non-finite model cannot look invariant.
                max_diff = torch.maximum(max_diff, (out - ref).abs().max().cpu())
                same &= out.argmax(-1) == label
            agree += int(same.sum())
    return {"invariance/max_logit_diff": float(max_diff), "invariance/pred_agreement": agree / len(points)}
