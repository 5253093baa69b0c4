"""Ray's own autoscaling cluster, simulated on one machine (the `fake_multinode` node provider).

The head, its autoscaler and the Jobs API are the real ones; each "node" the
autoscaler launches is a real raylet on this machine with the resources its
node type advertises. Tests and the occupancy benchmark use it to see what only
a cluster shows: nodes scaling up from zero, where workers land, idle nodes
scaling back down. Everything it starts is stopped by process id, never by
`ray stop` (which would end every Ray on the machine).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

from geosweep.cluster.shape import AUTOSCALING_CONFIG_ENV
from geosweep.localhost import free_port, stop_processes_mentioning

HEAD_TYPE = "ray.head.default"  # the provider's fixed name for the head's node type
# Nothing to set up on a fake node: it is a raylet on this machine, started by the provider itself.
_NO_COMMANDS = (
    "setup_commands",
    "head_setup_commands",
    "worker_setup_commands",
    "initialization_commands",
    "head_start_ray_commands",
    "worker_start_ray_commands",
)
_BIN = Path(sys.executable).parent


class FakeCluster:
    """A token-authenticated autoscaling Ray cluster on 127.0.0.1, shaped by `worker_types`.

    The head offers no CPU, as cluster.yaml's: it runs drivers only.

    Args:
        worker_types: node type name -> {"resources": {...}, "min_workers": m, "max_workers": n}.
        idle_timeout_minutes: how long an idle worker node lives before the autoscaler removes it.
    """

    def __init__(self, worker_types: dict[str, dict[str, Any]], idle_timeout_minutes: float = 0.1) -> None:
        self.worker_types = worker_types
        self.idle_timeout_minutes = idle_timeout_minutes
        self.temp_dir = tempfile.mkdtemp(prefix="gs-fake-", dir="/tmp")  # short: Ray's socket paths must fit
        self.gcs_port, self.dashboard_port = free_port(), free_port()
        self.token = secrets.token_hex(32)
        self.config_path = Path(self.temp_dir) / "autoscaler.json"

    @property
    def dashboard(self) -> str:
        """The dashboard's URL, which also serves the Jobs and state APIs."""
        return f"http://127.0.0.1:{self.dashboard_port}"

    @property
    def env(self) -> dict[str, str]:
        """The environment a client (ray job submit, ray status) needs to reach this cluster."""
        token_path = Path(self.temp_dir) / "token"
        token_path.write_text(self.token)
        return {
            **os.environ,
            "PATH": f"{_BIN}:{os.environ['PATH']}",
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN_PATH": str(token_path),
            "RAY_USAGE_STATS_ENABLED": "0",
            "RAY_USAGE_STATS_REPORT_URL": "http://127.0.0.1:9/",  # a dead port: nothing leaves the machine
            "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # keep nodes on loopback
        }

    def autoscaler_config(self) -> dict[str, Any]:
        """The whole autoscaler config (the wheel lacks the provider's example.yaml to extend)."""
        node_types = {HEAD_TYPE: {"resources": {"CPU": 0}, "node_config": {}, "max_workers": 0}}
        for name, spec in self.worker_types.items():
            node_types[name] = {"node_config": {}, "min_workers": 0, **spec}
        return {
            "cluster_name": "geosweep-fake",
            "max_workers": sum(spec["max_workers"] for spec in self.worker_types.values()),
            "idle_timeout_minutes": self.idle_timeout_minutes,
            "upscaling_speed": 100.0,  # launch what pending demand asks for at once
            "provider": {
                "type": "fake_multinode",
                "gcs_address": f"127.0.0.1:{self.gcs_port}",
                "use_node_id_as_ip": True,
                "disable_node_updaters": True,
                "disable_launch_config_check": True,
            },
            "auth": {"ssh_user": "ubuntu"},
            "head_node_type": HEAD_TYPE,
            "available_node_types": node_types,
            "file_mounts": {},
            "cluster_synced_files": [],
            "file_mounts_sync_continuously": False,
            **{key: [] for key in _NO_COMMANDS},
        }

    def start(self, timeout_s: float = 120) -> None:
        """Start the head and its autoscaler, and wait until the head has registered."""
        self.config_path.write_text(json.dumps(self.autoscaler_config()))
        # The head's environment reaches every job's driver: it tells admission where the node types are,
        # as cluster.yaml does.
        env = {
            **self.env,
            "RAY_FAKE_CLUSTER": "1",
            "AUTOSCALER_UPDATE_INTERVAL_S": "1",
            AUTOSCALING_CONFIG_ENV: str(self.config_path),
        }
        flags = {
            "node-ip-address": "127.0.0.1",
            "port": self.gcs_port,
            "num-cpus": 0,
            "dashboard-host": "127.0.0.1",
            "dashboard-port": self.dashboard_port,
            "temp-dir": self.temp_dir,
            "ray-client-server-port": free_port(),  # outside the worker port range, or ray start refuses
            "autoscaling-config": self.config_path,
        }
        command = [
            str(_BIN / "ray"),
            "start",
            "--head",
            "--disable-usage-stats",
            *(f"--{k}={v}" for k, v in flags.items()),
        ]
        subprocess.run(command, env=env, check=True, capture_output=True, text=True, timeout=timeout_s)
        self.wait_for(lambda: self.node_counts().get(HEAD_TYPE, 0) == 1, timeout_s, "the head to register")

    def stop(self) -> None:
        """Stop every process of this cluster, by process id, and remove its files."""
        stop_processes_mentioning(self.temp_dir)
        stop_processes_mentioning(f"127.0.0.1:{self.gcs_port}")
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def __enter__(self) -> FakeCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def submit(
        self,
        entrypoint: list[str],
        *,
        working_dir: Path,
        runtime_env: Path,
        submission_id: str,
        timeout_s: float = 1800,
    ) -> subprocess.CompletedProcess:
        """`ray job submit` as a user would, waiting for the job to end.

        `timeout_s` guards against a hang only: Ray's workers run at nice 15, so other load on the machine can
        slow a job tenfold.

        The working directory is given as `local://`: every fake node shares this machine's disk, so the
        checkout is already "on every node" (as cluster.yaml's file_mounts put it there). An uploaded
        working_dir would be unpacked by every node's agent into the one shared directory, and each
        unpacking replaces the directory that running processes have as their cwd.
        """
        command = [
            str(_BIN / "ray"),
            "job",
            "submit",
            f"--address={self.dashboard}",
            f"--submission-id={submission_id}",
            f"--working-dir=local://{working_dir}",
            f"--runtime-env={runtime_env}",
            "--",
            *entrypoint,
        ]
        deadline = time.monotonic() + 60
        while True:  # the head's job agent registers a little after the head itself
            done = subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=timeout_s)
            if "No available agent to submit job" not in done.stdout + done.stderr or time.monotonic() > deadline:
                return done
            time.sleep(2)

    # --- what the cluster shows, through the dashboard's state API ------------------------------

    def state(self, resource: str, **filters: str) -> list[dict[str, Any]]:
        """Rows of the state API (`nodes`, `actors`, ...), every state included."""
        params = [("limit", "10000"), ("detail", "true")]
        for key, value in filters.items():
            params += [("filter_keys", key), ("filter_predicates", "="), ("filter_values", value)]
        request = urllib.request.Request(
            f"{self.dashboard}/api/v0/{resource}?{urllib.parse.urlencode(params)}",
            headers={"Authorization": f"Bearer {self.token}"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)["data"]["result"]["result"]

    def usage(self) -> dict[str, tuple[float, float]]:
        """(used, total) of every resource, as the autoscaler last saw them (`ray status`'s usage)."""
        request = urllib.request.Request(
            f"{self.dashboard}/api/cluster_status?format=0", headers={"Authorization": f"Bearer {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            report = json.load(response)["data"]["clusterStatus"]["loadMetricsReport"]["usage"]
        return {name: (used, total) for name, (used, total) in report.items()}

    def node_type_of(self, node: dict[str, Any]) -> str:
        """The node type whose advertised resources a state-API node row carries."""
        if node.get("is_head_node"):
            return HEAD_TYPE
        total = node.get("resources_total", {})
        for name, spec in self.worker_types.items():
            if all(total.get(k, 0) == v for k, v in spec["resources"].items()):
                return name
        return "unknown"

    def node_counts(self) -> Counter:
        """Alive nodes by node type."""
        return Counter(self.node_type_of(node) for node in self.state("nodes") if node["state"] == "ALIVE")

    @staticmethod
    def wait_for(condition, timeout_s: float, what: str, interval_s: float = 1.0) -> None:
        """Poll `condition` until it holds; a TimeoutError naming `what` after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if condition():
                    return
            except OSError:  # the dashboard is still starting
                pass
            time.sleep(interval_s)
        raise TimeoutError(f"fake cluster: gave up after {timeout_s:g} s waiting for {what}")
