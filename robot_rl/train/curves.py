"""Learning curves of a fine-tuning run: summary numbers, ``curve.json``/``.csv``/``.png``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from robot_rl.evaluate import write_json


def curve_summary(rows: list[dict[str, Any]], threshold: float = 0.9) -> dict[str, Any]:
    """Start, minimum after updates begin, final, and steps to ``threshold`` success."""
    after = [r["success_rate"] for r in rows if r["updates"] > 0]
    reached = [r["env_steps"] for r in rows if r["success_rate"] >= threshold]
    return {
        "start_success": rows[0]["success_rate"] if rows else None,
        "min_success_after_updates": min(after) if after else None,
        "final_success": rows[-1]["success_rate"] if rows else None,
        f"steps_to_{round(threshold * 100)}": reached[0] if reached else None,
    }


def write_curve(
    out: Path, rows: list[dict[str, Any]], meta: dict[str, Any], learn_start: int
) -> dict[str, Any]:
    """Write ``curve.json``, ``curve.csv`` and ``curve.png`` into ``out``; returns the summary
    (``meta`` with ``algo``, ``task`` and ``seed``, plus :func:`curve_summary`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = {**meta, "learn_start": learn_start, **curve_summary(rows)}
    write_json(out / "curve.json", {**summary, "rows": rows})
    columns = ["env_steps", "updates", "success_rate", "mean_return", "wall_s"]
    lines = [",".join(columns)] + [",".join(f"{r[c]:g}" for c in columns) for r in rows]
    (out / "curve.csv").write_text("\n".join(lines) + "\n")
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([r["env_steps"] for r in rows], [r["success_rate"] for r in rows], marker="o")
    if learn_start > 0:
        ax.axvline(learn_start, color="gray", linestyle="--", label="updates begin")
        ax.legend(loc="lower right")
    ax.set(xlabel="env steps", ylabel="eval success rate", ylim=(-0.02, 1.02),
           title=f"{meta['algo']} on {meta['task']} (seed {meta['seed']})")  # fmt: skip
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "curve.png", dpi=100)
    plt.close(fig)
    return summary


__all__ = ["curve_summary", "write_curve"]
