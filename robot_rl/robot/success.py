"""A success classifier for robots without a success sensor: a small MLP on the state.

Trained on labelled episodes from a robomimic-layout HDF5 file: the per-step label is the
sparse reward (1 on steps where the task is solved, as the sim tasks and the recorder write
it, or a person's labels written the same way). Episodes are split into train / held-out
(never steps of one episode on both sides), and precision and recall on the held-out steps
are reported and saved with the model (``config.json`` + ``model.safetensors``).

On the robot, :class:`SuccessClassifier` turns an observation dict into success when the
probability exceeds ``threshold`` for ``consecutive`` steps (a debounce against one-step
false positives); the actor uses it in place of a success topic (``--success-classifier``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from robot_rl.errors import ConfigError, RobotRLError

CONFIG = "config.json"
WEIGHTS = "model.safetensors"


@dataclass
class SuccessConfig:
    """Train a success classifier on labelled episodes."""

    dataset: Path
    """robomimic-layout HDF5 with per-step rewards (1 = success)."""
    out: Path
    """Classifier directory (config.json + model.safetensors)."""
    obs_keys: list[str] = field(
        default_factory=lambda: ["robot0_eef_pos", "robot0_gripper_qpos", "object"]
    )
    """State keys the classifier reads (all must be on the robot's topics)."""
    hidden_dims: list[int] = field(default_factory=lambda: [64, 64])
    holdout: float = 0.25
    """Share of episodes held out for precision / recall."""
    steps: int = 2000
    batch_size: int = 256
    lr: float = 1e-3
    threshold: float = 0.5
    consecutive: int = 2
    """Steps above the threshold before success is reported."""
    seed: int = 0


class _MLP(nn.Module):
    def __init__(self, in_dim: int, hidden: list[int]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        d = in_dim
        for h in hidden:
            layers += [nn.Linear(d, h), nn.ReLU()]
            d = h
        layers.append(nn.Linear(d, 1))
        self.net = nn.Sequential(*layers)
        self.register_buffer("mean", torch.zeros(in_dim))
        self.register_buffer("std", torch.ones(in_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std).squeeze(-1)


def _features(obs: dict[str, Any], keys: list[str]) -> torch.Tensor:
    missing = [k for k in keys if k not in obs]
    if missing:
        raise RobotRLError(f"success classifier needs observations {missing}")
    return torch.cat([torch.as_tensor(np.asarray(obs[k]), dtype=torch.float32) for k in keys], -1)


def precision_recall(pred: np.ndarray, label: np.ndarray) -> dict[str, float]:
    tp = float(np.sum(pred & label))
    fp = float(np.sum(pred & ~label))
    fn = float(np.sum(~pred & label))
    return {
        "precision": tp / (tp + fp) if tp + fp else float("nan"),
        "recall": tp / (tp + fn) if tp + fn else float("nan"),
        "positives": int(label.sum()),
        "steps": int(label.size),
    }


def episode_precision_recall(pred: np.ndarray, label: np.ndarray, episode: np.ndarray) -> dict:
    """Per episode: labelled successful if any step is, predicted successful if the classifier
    fires on any step (the reward a session would get; recorded episodes end at the first
    success, so one confident step is all a successful episode may offer)."""
    ids = np.unique(episode)
    p = np.array([pred[episode == i].any() for i in ids], bool)
    lab = np.array([label[episode == i].any() for i in ids], bool)
    out = precision_recall(p, lab)
    out["episodes"] = out.pop("steps")
    return out


def train_success(cfg: SuccessConfig) -> dict[str, Any]:
    """Fit, report held-out precision / recall, save; returns the report."""
    from robot_rl.data.hdf5 import read_robomimic

    if not 0.0 < cfg.holdout < 1.0 or cfg.steps < 1 or cfg.consecutive < 1:
        raise ConfigError("holdout in (0, 1), steps >= 1 and consecutive >= 1")
    data = read_robomimic(cfg.dataset, obs_keys=cfg.obs_keys)
    x = _features(data.obs, cfg.obs_keys)
    y = (data.rewards > 0.5).float()
    ep = data.episode_ids.long()
    n_ep = int(ep.max()) + 1
    g = torch.Generator().manual_seed(cfg.seed)
    perm = torch.randperm(n_ep, generator=g)
    n_hold = max(1, round(cfg.holdout * n_ep))
    if n_ep - n_hold < 1:
        raise ConfigError(f"{cfg.dataset}: {n_ep} episodes is too few to hold any out")
    held = torch.isin(ep, perm[:n_hold])
    xtr, ytr = x[~held], y[~held]
    if ytr.sum() == 0 or ytr.sum() == len(ytr):
        raise ConfigError(f"{cfg.dataset}: training labels are all one class (rewards all 0/1?)")
    torch.manual_seed(cfg.seed)
    model = _MLP(x.shape[1], cfg.hidden_dims)
    model.mean.copy_(xtr.mean(0))
    model.std.copy_(xtr.std(0).clamp_min(1e-3))
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    for _ in range(cfg.steps):
        idx = torch.randint(len(xtr), (cfg.batch_size,), generator=g)
        # plain (unweighted) cross-entropy keeps the probabilities calibrated, so the
        # threshold means what it says; rare positives are handled by the debounce and by
        # reporting precision / recall, not by reweighting
        loss = nn.functional.binary_cross_entropy_with_logits(model(xtr[idx]), ytr[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        p = torch.sigmoid(model(x)).numpy()
    pred, lab = p > cfg.threshold, y.numpy() > 0.5
    h = held.numpy()
    report = {
        "held_out_episodes": n_hold,
        "train_episodes": n_ep - n_hold,
        "held_out": precision_recall(pred[h], lab[h]),
        "train": precision_recall(pred[~h], lab[~h]),
        "held_out_by_episode": episode_precision_recall(pred[h], lab[h], ep.numpy()[h]),
    }
    save_classifier(cfg.out, model, cfg, report)
    return report


def save_classifier(out: Path, model: _MLP, cfg: SuccessConfig, report: dict[str, Any]) -> None:
    from safetensors.torch import save_file

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    conf = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()}
    conf["in_dim"] = int(model.mean.shape[0])
    (out / CONFIG).write_text(json.dumps({"success_classifier": conf, "report": report}, indent=1))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out / WEIGHTS))


class SuccessClassifier:
    """A saved classifier; call it once per control step with the observation."""

    def __init__(self, path: Path) -> None:
        from safetensors.torch import load_file

        path = Path(path)
        try:
            conf = json.loads((path / CONFIG).read_text())["success_classifier"]
        except (OSError, KeyError, json.JSONDecodeError) as e:
            raise RobotRLError(f"{path}: not a success classifier directory ({e})") from e
        self.keys = list(conf["obs_keys"])
        self.threshold = float(conf["threshold"])
        self.consecutive = int(conf["consecutive"])
        self.model = _MLP(int(conf["in_dim"]), list(conf["hidden_dims"]))
        self.model.load_state_dict(load_file(str(path / WEIGHTS)))
        self.model.eval()
        self._run = 0

    def probability(self, obs: dict[str, Any]) -> float:
        with torch.no_grad():
            return float(torch.sigmoid(self.model(_features(obs, self.keys)[None]))[0])

    def __call__(self, obs: dict[str, Any]) -> bool:
        """Success of this step (after ``consecutive`` confident steps in a row)."""
        self._run = self._run + 1 if self.probability(obs) > self.threshold else 0
        return self._run >= self.consecutive

    def reset(self) -> None:
        self._run = 0
