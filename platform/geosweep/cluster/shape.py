"""What a Ray cluster can hold: its node types and how many of each it can scale to.

An autoscaling cluster's worker nodes may be at zero when a sweep starts, so
admission cannot look at the live nodes alone. Its node types come, in order, from:
- the autoscaler's own config file: `$GEOSWEEP_AUTOSCALING_CONFIG`, else the
  `~/ray_bootstrap_config.yaml` that `ray up` writes on the head. A KubeRay
  `RayCluster` manifest is read through Ray's own KubeRay translation, so GPUs
  come from the pods' `nvidia.com/gpu` limits as the autoscaler sees them;
- Ray's cluster config in the GCS, where an autoscaler reports one (Ray Train
  reads the same record for its own resource check);
- the live nodes, for a cluster without an autoscaler (one machine included).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from geosweep.config import ConfigError

AUTOSCALING_CONFIG_ENV = "GEOSWEEP_AUTOSCALING_CONFIG"
RAY_UP_BOOTSTRAP_CONFIG = "~/ray_bootstrap_config.yaml"
# Resources no geosweep bundle asks for; left out so that node types read the same from every source.
_BOOKKEEPING = ("memory", "object_store_memory")


@dataclass(frozen=True)
class NodeType:
    """One kind of node a cluster has or can scale to."""

    name: str
    resources: Mapping[str, float]  # what one node of this type offers
    max_count: int  # nodes of this type at full scale (the live count when nothing autoscales)

    def describe(self) -> str:
        """E.g. `gpu x4 ({CPU: 8, GPU: 1})`, for error messages."""
        offered = ", ".join(f"{k}: {v:g}" for k, v in sorted(self.resources.items())) or "nothing"
        return f"{self.name} x{self.max_count} ({{{offered}}})"


@dataclass(frozen=True)
class ClusterShape:
    """The node types of a cluster at full scale, and where they were read."""

    node_types: tuple[NodeType, ...]
    source: str  # where the node types were read, for error messages
    autoscaling: bool

    @property
    def multi_node(self) -> bool:
        """Work may land on a node other than the driver's: storage and tracking must then be shared."""
        return self.autoscaling or sum(t.max_count for t in self.node_types) > 1

    def describe(self) -> str:
        """The node types and their source, for error messages."""
        return f"{', '.join(t.describe() for t in self.node_types)} (from {self.source})"


def shape_from_autoscaler_config(config: Mapping[str, Any], source: str) -> ClusterShape:
    """Node types of a Ray cluster-launcher/autoscaler config, or of a KubeRay RayCluster manifest."""
    if config.get("kind") == "RayCluster":
        from ray.autoscaler._private.kuberay.autoscaling_config import _derive_autoscaling_config_from_ray_cr

        config = _derive_autoscaling_config_from_ray_cr(dict(config))
    types = config.get("available_node_types")
    if not isinstance(types, Mapping) or not types:
        raise ValueError(f"{source}: an autoscaler config needs available_node_types")
    head = config.get("head_node_type")
    cluster_max = config.get("max_workers")
    node_types = []
    for name, spec in types.items():
        count = 1 if name == head else int(spec.get("max_workers", 0))
        if cluster_max is not None and name != head:
            count = min(count, int(cluster_max))
        node_types.append(NodeType(name, _usable(spec.get("resources", {})), count))
    return ClusterShape(tuple(node_types), source, autoscaling=True)


def shape_from_live_nodes(nodes: list[dict[str, Any]]) -> ClusterShape:
    """The alive nodes of `ray.nodes()`, grouped by what they offer."""
    offers = Counter(tuple(sorted(_usable(node["Resources"]).items())) for node in nodes if node.get("Alive"))
    node_types = tuple(
        NodeType(f"live nodes {i + 1}", dict(offer), count) for i, (offer, count) in enumerate(offers.items())
    )
    return ClusterShape(node_types, "the live nodes", autoscaling=False)


def current_shape() -> ClusterShape:
    """The shape of the cluster this process is connected to (Ray must be initialised)."""
    configured = os.environ.get(AUTOSCALING_CONFIG_ENV)
    path = Path(os.path.expanduser(configured or RAY_UP_BOOTSTRAP_CONFIG))
    if configured and not path.is_file():
        raise ConfigError(f"{AUTOSCALING_CONFIG_ENV}={configured}: no such file (expected the autoscaler's config)")
    if path.is_file():
        try:
            return shape_from_autoscaler_config(yaml.safe_load(path.read_text()), str(path))
        except (ValueError, KeyError, TypeError, yaml.YAMLError) as err:
            raise ConfigError(f"{path}: cannot read the cluster's node types from it: {err}") from None
    from_gcs = _shape_from_gcs_cluster_config()
    if from_gcs is not None:
        return from_gcs
    import ray

    return shape_from_live_nodes(ray.nodes())


def _shape_from_gcs_cluster_config() -> ClusterShape | None:
    from ray._private.state import state

    config = state.get_cluster_config()
    if config is None or not config.node_group_configs:
        return None
    unbounded = 10_000  # max_count -1: as many as the provider gives
    node_types = tuple(
        NodeType(group.name, _usable(dict(group.resources)), group.max_count if group.max_count >= 0 else unbounded)
        for group in config.node_group_configs
    )
    return ClusterShape(node_types, "Ray's cluster config", autoscaling=True)


def _usable(resources: Mapping[str, float]) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in resources.items()
        if k not in _BOOKKEEPING and not k.startswith("node:") and float(v) > 0
    }
