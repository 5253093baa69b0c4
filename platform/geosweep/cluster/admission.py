"""How many trials a cluster can run at once, counted against what it can scale to.

A trial holds a driver bundle (a sweep's Tune trial driver) and one bundle per
DDP worker, placed by Ray's placement strategy. Admission places trial after
trial onto the nodes of the fully scaled cluster, first fit, until one no longer
fits: accelerators, CPUs and custom resources all count, and PACK keeps a
multi-GPU trial on one node whenever one node can hold it, as Ray does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from geosweep.cluster.shape import ClusterShape
from geosweep.config import ConfigError, ScalingSpec

MAX_TRIALS_COUNTED = 1_000  # more concurrent trials than any sweep runs; also caps nodes per type
_EPS = 1e-9


def worker_resources(scaling: ScalingSpec) -> dict[str, float]:
    """What one Train worker asks Ray for."""
    return {"CPU": scaling.cpus_per_worker, **({"GPU": 1.0} if scaling.use_gpu else {}), **scaling.resources_per_worker}


@dataclass(frozen=True)
class TrialDemand:
    """What one trial holds while it runs."""

    worker: Mapping[str, float]
    num_workers: int
    strategy: str  # Ray's placement strategy for the worker group
    driver: Mapping[str, float] = field(default_factory=dict)  # a Tune trial driver; none for a plain run

    @classmethod
    def of(cls, scaling: ScalingSpec, driver: Mapping[str, float] | None = None) -> TrialDemand:
        """The demand of a trial scaled as `scaling`, plus a Tune trial driver's bundle if `driver` is given."""
        return cls(worker_resources(scaling), scaling.num_workers, scaling.placement_strategy, dict(driver or {}))

    def describe(self) -> str:
        """The demand in words, for error messages."""
        text = f"{self.num_workers} workers x {_fmt(self.worker)} ({self.strategy})"
        return text + (f" + a driver {_fmt(self.driver)}" if self.driver else "")


def concurrent_trials(demand: TrialDemand, shape: ClusterShape) -> int:
    """Trials that fit at once on the fully scaled cluster (0: not even one)."""
    nodes = [dict(t.resources) for t in shape.node_types for _ in range(min(t.max_count, MAX_TRIALS_COUNTED))]
    placed = 0
    while placed < MAX_TRIALS_COUNTED and _place(demand, nodes):
        placed += 1
    return placed


def admit(demand: TrialDemand, shape: ClusterShape, what: str) -> int:
    """`concurrent_trials`, or a ConfigError naming the short resource and the node types considered."""
    fit = concurrent_trials(demand, shape)
    if fit == 0:
        raise ConfigError(
            f"{what}: a trial needs {demand.describe()}, which the cluster cannot hold even at full scale: "
            f"{_shortfall(demand, shape)}. Node types considered: {shape.describe()}"
        )
    return fit


def _place(demand: TrialDemand, nodes: list[dict[str, float]]) -> bool:
    """Place one trial onto `nodes` (free resources, updated in place); False, and untouched, if it does not fit."""
    taken: list[tuple[int, Mapping[str, float]]] = []  # undone if the trial does not fit whole

    def take(bundle: Mapping[str, float], candidates) -> int | None:
        for i in candidates:
            if _fits(nodes[i], bundle):
                for k, v in bundle.items():
                    nodes[i][k] -= v
                taken.append((i, bundle))
                return i
        return None

    if _try_place(demand, len(nodes), take):
        return True
    for i, bundle in taken:
        for k, v in bundle.items():
            nodes[i][k] += v
    return False


def _try_place(demand: TrialDemand, num_nodes: int, take) -> bool:
    everywhere = range(num_nodes)
    if demand.driver and take(demand.driver, everywhere) is None:
        return False
    if demand.strategy in ("PACK", "STRICT_PACK"):
        group = {k: v * demand.num_workers for k, v in demand.worker.items()}
        if take(group, everywhere) is not None:
            return True
        if demand.strategy == "STRICT_PACK":
            return False
    used: set[int] = set()
    for _ in range(demand.num_workers):
        fresh = [i for i in everywhere if i not in used]
        chosen = take(demand.worker, fresh if demand.strategy in ("SPREAD", "STRICT_SPREAD") else everywhere)
        if chosen is None and demand.strategy == "SPREAD":
            chosen = take(demand.worker, everywhere)
        if chosen is None:
            return False
        used.add(chosen)
    return True


def _fits(node: Mapping[str, float], bundle: Mapping[str, float]) -> bool:
    return all(node.get(k, 0.0) + _EPS >= v for k, v in bundle.items())


def _shortfall(demand: TrialDemand, shape: ClusterShape) -> str:
    """Why no trial fits, in the terms of the first resource or rule that fails."""
    types = [t for t in shape.node_types if t.max_count > 0]
    for bundle_name, bundle in (("driver", demand.driver), ("worker", demand.worker)):
        for resource, need in bundle.items():
            best = max((t.resources.get(resource, 0.0) for t in types), default=0.0)
            if best + _EPS < need:
                return f"{resource} is short: a {bundle_name} needs {need:g} and the largest node type offers {best:g}"
    total = {k: demand.num_workers * v + demand.driver.get(k, 0.0) for k, v in demand.worker.items()}
    for resource, need in total.items():
        offered = sum(t.resources.get(resource, 0.0) * t.max_count for t in types)
        if offered + _EPS < need:
            return f"{resource} is short: a trial needs {need:g} and the cluster scales to {offered:g}"
    if demand.strategy == "STRICT_SPREAD":
        return (
            f"STRICT_SPREAD puts each of {demand.num_workers} workers on its own node, and too few nodes can hold one"
        )
    if demand.strategy == "STRICT_PACK":
        return f"STRICT_PACK puts all {demand.num_workers} workers on one node, and no node type holds them all"
    return "no node holds the driver beside the workers"


def _fmt(resources: Mapping[str, float]) -> str:
    return "{" + ", ".join(f"{k}: {v:g}" for k, v in resources.items()) + "}"
