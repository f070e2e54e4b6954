"""The ROS 2 launch files where ROS 2 is not installed: each compiles, runs its
``generate_launch_description`` against small stand-ins for ``launch``/``launch_ros`` (they
record what the file asks for; no node starts), its YAML parses, and every parameter, launch
argument and remapped topic it names exists: parameters on the node that gets them (with the
ROS 2 type the node declares), arguments declared, remaps onto topics the node uses."""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
LAUNCH = REPO / "launch"
PKG_MOD = REPO / "ros_ws" / "src" / "robot_rl_ros" / "robot_rl_ros"
FILES = sorted(p.name for p in LAUNCH.glob("*.launch.py"))


class LaunchConfiguration:
    def __init__(self, name: str, default: Any = None) -> None:
        self.name = name
        USED.append(name)

    def perform(self, context: dict) -> str:
        return context[self.name]


class ParameterValue:
    def __init__(self, value: Any, value_type: Any = None) -> None:
        self.value, self.value_type = value, value_type


class Recorded:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs = args, kwargs


USED: list[str] = []


class LaunchConfigurationEquals(Recorded):
    def __init__(self, name: str, value: str) -> None:
        super().__init__(name, value)
        USED.append(name)


def fake_modules() -> dict[str, types.ModuleType]:
    mods = {}
    for name in (
        "launch",
        "launch.actions",
        "launch.conditions",
        "launch.substitutions",
        "launch_ros",
        "launch_ros.actions",
        "launch_ros.parameter_descriptions",
    ):
        mods[name] = types.ModuleType(name)
    mods["launch"].LaunchDescription = type("LaunchDescription", (Recorded,), {})
    mods["launch.actions"].DeclareLaunchArgument = type("DeclareLaunchArgument", (Recorded,), {})
    mods["launch.actions"].ExecuteProcess = type("ExecuteProcess", (Recorded,), {})
    mods["launch.actions"].OpaqueFunction = type("OpaqueFunction", (Recorded,), {})
    mods["launch.conditions"].LaunchConfigurationEquals = LaunchConfigurationEquals
    mods["launch.conditions"].IfCondition = type("IfCondition", (Recorded,), {})
    mods["launch.substitutions"].LaunchConfiguration = LaunchConfiguration
    mods["launch_ros.actions"].Node = type("Node", (Recorded,), {})
    mods["launch_ros.parameter_descriptions"].ParameterValue = ParameterValue
    return mods


@pytest.fixture
def run_launch(monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201 - the runner below
    for name, mod in fake_modules().items():
        monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.syspath_prepend(str(PKG_MOD.parent))

    def run(fname: str) -> tuple[Any, Any]:
        USED.clear()
        spec = importlib.util.spec_from_file_location(fname.replace(".", "_"), LAUNCH / fname)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module, module.generate_launch_description()

    return run


def node_topics(executable: str) -> set[str]:
    """Relative topic names a robot_rl_ros node subscribes or publishes."""
    src = (PKG_MOD / f"{executable}.py").read_text()
    found = set(re.findall(r"create_(?:subscription|publisher)\(\s*[\w.]+,\s*\"(\w+)\"", src))
    if executable == "actor_node":  # the policy node's topics and its own
        found |= node_topics("policy_node")
    if executable == "recorder_node":
        from robot_rl_ros.params import RECORDER_TOPICS

        found |= set(RECORDER_TOPICS)
    return found


@pytest.mark.parametrize("fname", FILES)
def test_launch_file_compiles(fname: str) -> None:
    src = (LAUNCH / fname).read_text()
    tree = ast.parse(src)
    compile(tree, fname, "exec")
    assert any(
        isinstance(n, ast.FunctionDef) and n.name == "generate_launch_description"
        for n in tree.body
    )


# session.launch.py starts robot-rl processes (ExecuteProcess), not robot_rl_ros nodes.
NODE_FILES = [f for f in FILES if f != "session.launch.py"]


@pytest.mark.parametrize("fname", NODE_FILES)
def test_launch_file_parameters_arguments_and_remaps_exist(run_launch, fname: str) -> None:
    from robot_rl_ros.params import check_parameters

    module, desc = run_launch(fname)
    entities = desc.args[0]
    declared = {
        e.args[0]: e.kwargs for e in entities if type(e).__name__ == "DeclareLaunchArgument"
    }
    nodes = [e for e in entities if type(e).__name__ == "Node"]
    assert nodes
    # every launch argument used is declared; every declared one is used
    assert set(USED) <= set(declared), set(USED) - set(declared)
    assert set(declared) <= set(USED), set(declared) - set(USED)
    # the default parameter file exists and parses as ROS 2 parameters
    config = Path(declared["params"]["default_value"])
    assert config.parent == LAUNCH / "config" and config.is_file()
    data = yaml.safe_load(config.read_text())
    ours = [n for n in nodes if n.kwargs["package"] == "robot_rl_ros"]
    names = {n.kwargs["name"]: n.kwargs["executable"] for n in ours}
    assert set(data) == set(names), "the YAML configures exactly the launched nodes"
    for node_name, body in data.items():
        assert set(body) == {"ros__parameters"}
        assert check_parameters(names[node_name], body["ros__parameters"]) == []
    for node in ours:
        exe = node.kwargs["executable"]
        assert node.kwargs["name"] == exe
        for p in node.kwargs.get("parameters", []):
            if isinstance(p, dict):  # overrides in the launch file itself
                values = {
                    k: ("str" if isinstance(v, ParameterValue) and v.value_type is str else v)
                    for k, v in p.items()
                }
                assert check_parameters(exe, values) == []
            else:
                assert isinstance(p, LaunchConfiguration) and p.name == "params"
        topics = node_topics(exe)
        for src, dst in node.kwargs.get("remappings", []):
            assert src in topics, f"{fname}: {exe} has no topic {src!r}"
            assert isinstance(dst, LaunchConfiguration) and dst.name in declared
            default = declared[dst.name].get("default_value")
            assert default is None or default.startswith("/"), (dst.name, default)


def test_deploy_real_remaps_every_controller_facing_topic(run_launch) -> None:
    _, desc = run_launch("deploy_real.launch.py")
    policy = next(e for e in desc.args[0] if e.kwargs.get("executable") == "policy_node")
    remapped = {src for src, _ in policy.kwargs["remappings"]}
    assert node_topics("policy_node") <= remapped, "a policy-node topic cannot be remapped"
    declared = {
        e.args[0]: e.kwargs.get("default_value")
        for e in desc.args[0]
        if type(e).__name__ == "DeclareLaunchArgument"
    }
    assert declared["command_topic"] == "/forward_position_controller/commands"
    assert declared["trajectory_topic"] == "/joint_trajectory_controller/joint_trajectory"
    data = yaml.safe_load((LAUNCH / "config" / "deploy_real.yaml").read_text())
    p = data["policy_node"]["ros__parameters"]
    assert p["request_reset"] is False and len(p["joint_names"]) == len(p["vel_limit"]) == 9


@pytest.mark.parametrize("kind", ["dds", "rclpy"])
def test_session_launch_starts_the_actor_as_a_process_or_the_rclpy_node(
    run_launch, tmp_path: Path, kind: str
) -> None:
    from robot_rl_ros.params import check_parameters

    cfg = yaml.safe_load((LAUNCH / "session.yaml").read_text())
    cfg["session"]["actor"] = kind
    cfg["session"]["remap"] = {"commands": "/forward_position_controller/commands"}
    path = tmp_path / "session.yaml"
    path.write_text(yaml.safe_dump(cfg))
    module, desc = run_launch("session.launch.py")
    procs = module._processes({"config": str(path)})
    names = [p.kwargs["name"] for p in procs]
    assert names == ["sim_robot", "learner", "actor" if kind == "dds" else "actor_node"]
    learner = procs[1].kwargs["cmd"]
    dom = learner[learner.index("--domain-id") + 1]
    if kind == "dds":
        assert procs[2].kwargs["cmd"][:5] == ["robot-rl", "--threads", "1", "robot", "actor"]
        return
    node = procs[2].kwargs
    assert node["package"] == "robot_rl_ros" and node["executable"] == "actor_node"
    (params,) = node["parameters"]
    assert check_parameters("actor_node", params) == []
    assert str(params["link_domain_id"]) == dom == node["additional_env"]["ROS_DOMAIN_ID"]
    topics = node_topics("actor_node")
    remaps = dict(node["remappings"])
    assert set(remaps) <= topics, set(remaps) - topics
    assert remaps["teleop_action"] == "/teleop/action"
    assert remaps["commands"] == "/forward_position_controller/commands"
