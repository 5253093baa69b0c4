"""cluster.yaml is a valid Ray cluster-launcher config and keeps the properties the README promises."""

import json
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path

import jsonschema
import pytest
import ray.autoscaler
import yaml
from ray.autoscaler._private.command_runner import SSHCommandRunner
from ray.autoscaler._private.util import prepare_config

REPO_ROOT = Path(__file__).resolve().parents[1]
# Local state that must never reach the nodes (the study's nodes need none of it; .venv alone is GBs).
LOCAL_STATE = [".venv/", "mlflow.db", "ray_results/", "mlartifacts/"]


@pytest.fixture(scope="module")
def config() -> dict:
    return yaml.safe_load((REPO_ROOT / "cluster.yaml").read_text())


def image_of(config: dict, node_type: str) -> str:
    """The image `ray up` (head) or the autoscaler (workers) starts a node of this type in.

    Ray merges a node type's `docker` over the top-level one (StandardAutoscaler
    `_get_node_specific_docker_config`) and then picks `head_image`/`worker_image`, else `image`.
    """
    docker = {**config["docker"], **config["available_node_types"][node_type].get("docker", {})}
    role = "head" if node_type == config["head_node_type"] else "worker"
    return docker.get(f"{role}_image", docker.get("image"))


def env_of(command: str) -> dict[str, str]:
    """The VAR=value words before the command in a shell command line."""
    env = {}
    for word in shlex.split(command):
        name, sep, value = word.partition("=")
        if not sep or not name.isidentifier():
            break
        env[name] = value
    return env


def ray_start(commands: list[str]) -> str:
    (start,) = [command for command in commands if "ray start" in command]
    return start


def test_cluster_yaml_validates_against_rays_own_schema(config):
    schema = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())
    jsonschema.validate(config, schema)
    prepare_config(config)  # what `ray up` does next: fills defaults, checks the docker block

    assert any("--shm-size" in option for option in config["docker"]["run_options"])
    nodes = config["available_node_types"]
    assert nodes[config["head_node_type"]]["resources"] == {"CPU": 0}
    assert nodes["gpu_workers"]["min_workers"] == 0
    assert "trial_driver" in nodes["trial_drivers"]["resources"]
    assert "InstanceMarketOptions" not in nodes["trial_drivers"]["node_config"]  # drivers are not spot
    for worker_type in ("trial_drivers", "gpu_workers"):  # shared s3:// storage_path: workers need S3 access
        assert "IamInstanceProfile" in nodes[worker_type]["node_config"], worker_type
    head_start = " ".join(config["head_start_ray_commands"])
    assert "RAY_AUTH_MODE=token" in head_start and "--dashboard-host=127.0.0.1" in head_start
    ports = [p["FromPort"] for p in config["provider"]["security_group"]["IpPermissions"]]
    assert ports == [22], "only SSH may be open; the dashboard is reached through `ray dashboard`"


def test_only_the_gpu_workers_run_the_gpu_image(config):
    images = {node_type: image_of(config, node_type) for node_type in config["available_node_types"]}
    assert images == {
        "head": f"rayproject/ray:{ray.__version__}-py311-cpu",
        "trial_drivers": f"rayproject/ray:{ray.__version__}-py311-cpu",
        "gpu_workers": f"rayproject/ray:{ray.__version__}-py311-gpu",
    }


def setup_of(config, node_type):
    """The setup commands a node of `node_type` runs after the shared ones, as the cluster launcher picks them."""
    if node_type == config["head_node_type"]:
        return config["head_setup_commands"]
    return config["available_node_types"][node_type].get("worker_setup_commands", config["worker_setup_commands"])


def test_only_the_gpu_workers_install_the_cuda_torch(config):
    cpu_index = "--index-url https://download.pytorch.org/whl/cpu"
    dependencies = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (torch_pin,) = [d for d in dependencies if d.startswith("torch==")]
    for node_type in config["available_node_types"]:
        commands = setup_of(config, node_type)
        assert commands[-1] == "pip install -e /home/ubuntu/geosweep", node_type
        torch_first = [c for c in commands if c.startswith("pip install torch==")]
        if node_type == "gpu_workers":  # PyPI's Linux wheel of the pinned release is the CUDA build
            assert torch_first == [], node_type
        else:  # the CPU build of the release geosweep pins, so that `pip install -e` keeps it
            assert torch_first == [f"pip install {torch_pin} {cpu_index}"], node_type


def test_gpu_workers_state_what_admission_counts_and_the_head_points_admission_at_it(config):
    gpu_workers = config["available_node_types"]["gpu_workers"]
    assert gpu_workers["node_config"]["InstanceType"] == "g5.12xlarge"
    assert gpu_workers["resources"] == {"CPU": 48, "GPU": 4}  # 48 vCPU, 4 x A10G
    assert gpu_workers["max_workers"] > 0
    head_env = env_of(ray_start(config["head_start_ray_commands"]))
    # `ray up` writes the cluster config (this file, as the head sees it) to ~/ray_bootstrap_config.yaml.
    assert head_env["GEOSWEEP_AUTOSCALING_CONFIG"] == "~/ray_bootstrap_config.yaml"
    assert "--autoscaling-config=~/ray_bootstrap_config.yaml" in ray_start(config["head_start_ray_commands"])


def test_the_data_cache_is_a_host_directory_the_container_sees(config):
    cache = env_of(ray_start(config["worker_start_ray_commands"]))["GEOSWEEP_DATA_CACHE_DIR"]
    assert env_of(ray_start(config["head_start_ray_commands"]))["GEOSWEEP_DATA_CACHE_DIR"] == cache
    mounts = [option.split()[1] for option in config["docker"]["run_options"] if option.startswith("-v ")]
    assert f"{cache}:{cache}" in mounts  # the same path on the host's EBS volume and in the container
    # Docker would create a missing bind-mount source owned by root, unwritable for the image's user.
    assert any(f"mkdir -p {cache}" in command for command in config["initialization_commands"])


def test_file_mounts_ship_the_checkout_through_the_gitignore_filter(config):
    assert config["file_mounts"]["/home/ubuntu/geosweep"] == "."
    assert config["rsync_filter"] == [".gitignore"]
    assert ".git" in config["rsync_exclude"]
    if shutil.which("git") is None or not (REPO_ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", *LOCAL_STATE], cwd=REPO_ROOT, capture_output=True, text=True
    ).stdout.split()
    assert sorted(ignored) == sorted(LOCAL_STATE), "the repository's .gitignore must list the local state"


@pytest.mark.skipif(shutil.which("rsync") is None, reason="needs rsync")
def test_rsync_as_ray_runs_it_leaves_local_state_and_history_behind(config, tmp_path):
    source = tmp_path / "checkout"
    for tracked in ("pyproject.toml", "platform/geosweep/__init__.py", "configs/sweeps/representations.yaml"):
        (source / tracked).parent.mkdir(parents=True, exist_ok=True)
        (source / tracked).write_text("")
    shutil.copy(REPO_ROOT / ".gitignore", source / ".gitignore")
    for state in (
        "mlflow.db",
        ".venv/bin/python",
        "ray_results/sweep/trial/result.json",
        "mlartifacts/1/model.pt",
        "platform/geosweep/__pycache__/cli.cpython-311.pyc",
        ".git/HEAD",
    ):
        (source / state).parent.mkdir(parents=True, exist_ok=True)
        (source / state).write_text("")

    # The very filter arguments `ray up` and the autoscaler give rsync (-avz) for file_mounts; -n: list only.
    options = {"rsync_exclude": config["rsync_exclude"], "rsync_filter": config["rsync_filter"]}
    filters = SSHCommandRunner._create_rsync_filter_args(None, options=options)
    listed = subprocess.run(
        ["rsync", "-azn", *filters, "--out-format=%n", f"{source}/", f"{tmp_path / 'node'}/"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    shipped = {name for name in listed if not name.endswith("/")}  # files; rsync lists directories with a /
    assert shipped == {
        ".gitignore",
        "pyproject.toml",
        "platform/geosweep/__init__.py",
        "configs/sweeps/representations.yaml",
    }


def test_ssh_is_the_only_way_in_and_only_from_a_network_the_user_names(config):
    (rule,) = config["provider"]["security_group"]["IpPermissions"]
    assert (rule["FromPort"], rule["ToPort"], rule["IpProtocol"]) == (22, 22, "tcp")
    ranges = [entry["CidrIp"] for entry in rule["IpRanges"]] + [e["CidrIpv6"] for e in rule.get("Ipv6Ranges", [])]
    assert ranges and not {"0.0.0.0/0", "::/0"} & set(ranges)
