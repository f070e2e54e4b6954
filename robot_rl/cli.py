"""``robot-rl`` command line: one verb per stage of the pipeline.

Each verb parses its own typed dataclass config with tyro (``robot-rl <verb> --help`` lists
every field). User errors (bad files, unknown names, existing outputs) print one line and exit
with status 2.
"""

from __future__ import annotations

import contextlib
import io
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import tyro
from rich.console import Console
from rich.table import Table

from robot_rl.errors import RobotRLError
from robot_rl.perf import tune_allocator
from sim.errors import SimError

console = Console(stderr=True)


def _trainers() -> dict[str, tuple[type, Callable[..., Any]]]:
    """Offline trainers by name: (config class, train function)."""
    import importlib

    # name -> (module, config class, train function); modules import lazily so one verb's
    # dependencies never slow down another's start.
    spec = {
        "bc": ("robot_rl.algos.bc", "BCConfig", "train_bc"),
        "diffusion": ("robot_rl.algos.diffusion", "DiffusionConfig", "train_diffusion"),
        "iql": ("robot_rl.algos.iql", "IQLConfig", "train_iql"),
        "calql": ("robot_rl.algos.calql", "CalQLConfig", "train_calql"),
    }
    trainers: dict[str, tuple[type, Callable[..., Any]]] = {}
    for name, (module_name, config_name, fn_name) in spec.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name != module_name:
                raise
            continue
        trainers[name] = (getattr(module, config_name), getattr(module, fn_name))
    return trainers


class UsageError(RobotRLError):
    """Command-line arguments tyro could not parse (unknown flag, bad value, missing field)."""


_TYRO_END = ("For full helptext", "Argument helptext:")
"""Where the useful part of a tyro error box ends."""
_TYRO_TITLES = {
    "Value error",
    "Invalid choice",
    "Required options",
    "Unrecognized options",
    "Missing argument",
}


def _parse(config: Any, argv: list[str], prog: str, help_prog: str | None = None) -> Any:
    """``tyro.cli`` whose parse errors become one line (a :class:`UsageError`) instead of a box.

    Help (``--help``) is printed as tyro renders it. Errors raised while the config is built
    (``__post_init__`` range checks) pass through unchanged.
    """
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            return tyro.cli(config, args=argv, prog=prog)
    except SystemExit as e:
        if not e.code:
            sys.stdout.write(out.getvalue())
            sys.stderr.write(err.getvalue())
            raise
        text = err.getvalue() + out.getvalue()
        lines = []
        for raw in text.splitlines():
            line = raw.strip(" \t│╭╮╰╯")
            if not line.strip("─-"):
                continue  # a rule
            if line.startswith(_TYRO_END):
                break
            lines.append(line)
        if len(lines) > 1 and lines[0] in _TYRO_TITLES:
            lines = lines[1:]  # the box title; the next line says the same in full
        message = " ".join(" ".join(lines).split()) or f"invalid arguments (exit {e.code})"
        raise UsageError(f"{prog}: {message} (see {help_prog or prog} --help)") from None


def _progress() -> bool:
    """Progress bars only on a terminal: a redirected log gets no carriage-return floods."""
    return sys.stderr.isatty()


def _results_table(title: str, rows: dict[str, Any]) -> Table:
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in rows.items():
        table.add_row(k, f"{v:.3f}" if isinstance(v, float) else str(v))
    return table


def cmd_demos(argv: list[str]) -> None:
    from robot_rl.demos import DemosConfig, generate_demos

    cfg = _parse(DemosConfig, argv, "robot-rl demos")
    start = time.perf_counter()
    report = generate_demos(cfg, progress=_progress())
    rows: dict[str, Any] = {
        "episodes written": report.episodes,
        "demonstrator success rate": report.success_rate,
        "mean episode length": report.mean_length,
    }
    for name, q in report.by_quality.items():
        rows[f"{name}: episodes / success"] = f"{q['episodes']} / {q['success_rate']:.2f}"
    rows["wall time (s)"] = time.perf_counter() - start
    console.print(_results_table(f"demos → {cfg.out}", rows))


def cmd_train(argv: list[str]) -> None:
    trainers = _trainers()
    if argv and not argv[0].startswith("-") and argv[0] not in trainers:
        raise UsageError(
            f"robot-rl train: unknown algorithm {argv[0]!r}; choose from {', '.join(trainers)}"
        )
    # tyro's subcommands: `train --help` lists the algorithms with their descriptions,
    # `train bc --help` the fields of BCConfig.
    configs = {name: config_cls for name, (config_cls, _) in trainers.items()}
    if not argv:
        raise UsageError(f"robot-rl train needs an algorithm: {', '.join(trainers)}")
    hint = f"robot-rl train {argv[0]}" if argv[0] in trainers else "robot-rl train"
    cfg = _parse(_algorithm_union(configs), argv, "robot-rl train", hint)
    name = next(n for n, cls in configs.items() if type(cfg) is cls)
    start = time.perf_counter()
    trainers[name][1](cfg, progress=_progress())
    console.print(f"[green]saved[/green] {cfg.out}  ({time.perf_counter() - start:.1f} s)")


def _algorithm_union(configs: dict[str, type]) -> Any:
    """``Annotated[BCConfig, subcommand("bc")] | ...``: tyro's subcommand per algorithm."""
    from typing import Annotated, Union

    members = tuple(
        Annotated[cls, tyro.conf.subcommand(name, description=_first_line(cls.__doc__))]
        for name, cls in configs.items()
    )
    return Union[members]  # noqa: UP007 (a runtime-built union)


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().splitlines()[0] if doc and doc.strip() else ""


def cmd_eval(argv: list[str]) -> None:
    from robot_rl.evaluate import EvalConfig, run_eval

    cfg = _parse(EvalConfig, argv, "robot-rl eval")
    report = run_eval(cfg, progress=_progress())
    console.print(_results_table(f"eval {report['task']}: {cfg.policy}", report))


@dataclass
class QuickstartConfig:
    """Demonstrations → Gaussian BC → evaluation, end to end on one task."""

    task: str = "push"
    """Task to learn."""
    demos: int = 100
    """Expert demonstrations to generate."""
    bc_steps: int = 20_000
    """BC gradient steps."""
    eval_episodes: int = 50
    """Evaluation episodes."""
    num_envs: int = 8
    """Parallel envs for demos and evaluation."""
    workdir: Path = Path("runs/quickstart")
    """Where the dataset, policy and report go."""
    seed: int = 0
    """Seed for demos and training."""
    overwrite: bool = False
    """Replace the outputs of an earlier quickstart in ``workdir``."""

    def __post_init__(self) -> None:
        for name in ("demos", "bc_steps", "eval_episodes", "num_envs"):
            if getattr(self, name) < 1:
                flag = "--" + name.replace("_", "-")
                raise RobotRLError(f"{flag} must be >= 1, got {getattr(self, name)}")


def cmd_quickstart(argv: list[str]) -> None:
    from robot_rl.algos.bc import BCConfig, train_bc
    from robot_rl.checkpoint import check_output
    from robot_rl.demos import DemosConfig, generate_demos
    from robot_rl.evaluate import evaluate, policy_env, write_json

    cfg = _parse(QuickstartConfig, argv, "robot-rl quickstart")
    data = cfg.workdir / f"{cfg.task}_expert.hdf5"
    policy_dir = cfg.workdir / f"bc_{cfg.task}"
    report_path = cfg.workdir / "report.json"
    from robot_rl.outputs import check_replaceable, probe_writable

    for path, kind in ((data, "hdf5"), (policy_dir, "policy"), (report_path, "json")):
        check_output(path, cfg.overwrite)
        check_replaceable(path, kind, cfg.overwrite)  # type: ignore[arg-type]
        probe_writable(path)
    times: dict[str, float] = {}
    start = time.perf_counter()

    console.rule(f"1/3 scripted demonstrations: {cfg.task}")
    demos = generate_demos(
        DemosConfig(
            task=cfg.task,
            episodes=cfg.demos,
            out=data,
            num_envs=cfg.num_envs,
            seed=cfg.seed,
            overwrite=cfg.overwrite,
        ),
        progress=_progress(),
    )
    times["demos"] = time.perf_counter() - start
    console.print(f"{demos.episodes} episodes, expert success {demos.success_rate:.2f}")

    console.rule("2/3 Gaussian behaviour cloning")
    t0 = time.perf_counter()
    policy = train_bc(
        BCConfig(
            dataset=data,
            out=policy_dir,
            steps=cfg.bc_steps,
            seed=cfg.seed,
            log_dir=cfg.workdir / "tb" / "bc",
            overwrite=cfg.overwrite,
        ),
        progress=_progress(),
    )
    times["bc"] = time.perf_counter() - t0

    console.rule("3/3 evaluation")
    t0 = time.perf_counter()
    env = policy_env(policy, min(cfg.num_envs, cfg.eval_episodes), seed=1000)
    try:
        result = evaluate(policy, env, cfg.eval_episodes, seed=1000, progress=_progress())
    finally:
        env.close()
    times["eval"] = time.perf_counter() - t0
    times["total"] = time.perf_counter() - start
    report = {
        "task": cfg.task,
        "demo_success_rate": demos.success_rate,
        **result.summary(),
        **{f"time/{k}_s": v for k, v in times.items()},
        "torch_threads": torch.get_num_threads(),
    }
    write_json(report_path, report)
    console.print(_results_table(f"quickstart {cfg.task} → {cfg.workdir}", report))


def cmd_finetune(argv: list[str]) -> None:
    from robot_rl.algos.common import check_device
    from robot_rl.train.finetune import FinetuneConfig, run_finetune

    cfg = _parse(FinetuneConfig, argv, "robot-rl finetune")
    check_device(cfg.device)
    summary = run_finetune(cfg, progress=_progress())
    console.print(_results_table(f"finetune {cfg.algo} {cfg.task} → {cfg.out}", summary))


def cmd_record(argv: list[str]) -> None:
    from robot_rl.record import RecordConfig, run_record

    cfg = _parse(RecordConfig, argv, "robot-rl record")
    start = time.perf_counter()
    report = run_record(cfg, progress=_progress())
    rows: dict[str, Any] = {
        "episodes written": report.episodes,
        "success rate": report.success_rate,
        "wall time (s)": time.perf_counter() - start,
    }
    console.print(_results_table(f"record {cfg.env} → {cfg.out}", rows))


def cmd_learner(argv: list[str]) -> None:
    from robot_rl.session.learner import LearnerConfig, run_learner

    cfg = tyro.cli(LearnerConfig, args=argv, prog="robot-rl learner")
    console.print(_results_table(f"learner {cfg.algo} → {cfg.out}", run_learner(cfg)))


def cmd_robot(argv: list[str]) -> None:
    from robot_rl.robot.cli import main as robot_main

    robot_main(argv)


COMMANDS: dict[str, Callable[[list[str]], None]] = {
    "demos": cmd_demos,
    "record": cmd_record,
    "train": cmd_train,
    "eval": cmd_eval,
    "quickstart": cmd_quickstart,
    "finetune": cmd_finetune,
    "robot": cmd_robot,
    "import": lambda argv: cmd_robot(["import", *argv]),
    "learner": cmd_learner,
}
DESCRIPTIONS = {
    "demos": "scripted-expert demonstrations for a built-in task, into robomimic-layout HDF5",
    "record": "record episodes from any env (registry spec) with a policy or expert, into HDF5",
    "train": "offline training on a robomimic-layout file: bc | diffusion | iql | calql",
    "eval": "roll a policy directory out in its env and write eval.json",
    "quickstart": "demos -> BC -> eval on a built-in task, end to end",
    "finetune": "online fine-tuning (sac | rlpd | wsrl | expo) on a VecEnv",
    "robot": "robot-side nodes over Cyclone DDS (ROS 2 wire-compatible): sim, policy, record, actor, success",
    "import": "rosbag2 recordings (sqlite3, mcap) into robomimic-layout HDF5: rosbag",
    "learner": "on-robot fine-tuning: learn from a robot actor's stream, send signed weights",
}
DEFAULT_THREADS = 1
"""torch intra-op threads unless ``--threads`` says otherwise. On a shared, loaded machine
torch's default pool (one thread per core) collapses; one thread never does."""


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: robot-rl [--threads N] <command> [--help]", "", "commands:"]
    lines += [f"  {name:<{width}}  {DESCRIPTIONS[name]}" for name in COMMANDS]
    lines += ["", f"--threads N  torch threads for the command (default {DEFAULT_THREADS})"]
    return "\n".join(lines)


def _pop_threads(argv: list[str]) -> int:
    """Remove ``--threads N`` / ``--threads=N`` from anywhere in argv and return N."""
    threads = DEFAULT_THREADS
    for i, arg in enumerate(list(argv)):
        if arg == "--threads" or arg.startswith("--threads="):
            value = (
                arg.partition("=")[2] if "=" in arg else (argv[i + 1] if i + 1 < len(argv) else "")
            )
            del argv[i : i + (1 if "=" in arg else 2)]
            if not value.isdigit() or int(value) < 1:
                raise RobotRLError(f"--threads needs a positive integer, got {value!r}")
            threads = int(value)
            break
    return threads


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``robot-rl`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        threads = _pop_threads(argv)
    except RobotRLError as e:
        _error(str(e))
        return 2
    if argv and argv[0] not in COMMANDS and argv[0] not in ("-h", "--help"):
        _error(f"unknown command {argv[0]!r}; choose from {', '.join(COMMANDS)} (robot-rl --help)")
        return 2
    if not argv or argv[0] in ("-h", "--help"):
        console.print(_usage(), highlight=False, soft_wrap=True)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    tune_allocator()
    torch.set_num_threads(threads)
    try:
        COMMANDS[argv[0]](argv[1:])
    except (RobotRLError, SimError) as e:
        _error(str(e))
        return 2
    except SystemExit as e:  # --help of a verb (parse errors became UsageError)
        return e.code if isinstance(e.code, int) else 0
    except KeyboardInterrupt:
        _error(f"robot-rl {argv[0]}: interrupted; " + INTERRUPTED.get(argv[0], "nothing was saved"))
        return 130
    except OSError as e:
        # A filesystem failure the checks could not foresee (disk full, permissions changed
        # mid-run): one line naming the file, not a traceback.
        where = f": {e.filename}" if e.filename else ""
        _error(f"robot-rl {argv[0]}: {e.strerror or e}{where}")
        return 2
    return 0


INTERRUPTED = {
    "finetune": "the checkpoint in <out>/checkpoint is current (continue with --resume)",
    "train": "the output was not written (an existing one is left as it was)",
    "demos": "the output was not written (an existing one is left as it was)",
    "record": "the output was not written (an existing one is left as it was)",
}
"""What an interrupted verb leaves behind: saves are atomic, so never a half-written output."""


def _error(message: str) -> None:
    """One line on stderr: ``error: <message>`` (newlines in messages folded)."""
    from rich.markup import escape

    text = escape(" ".join(str(message).split()))
    console.print(f"[red]error:[/red] {text}", highlight=False, soft_wrap=True)


if __name__ == "__main__":
    sys.exit(main())
