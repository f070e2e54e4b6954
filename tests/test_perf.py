"""Process speed settings: the allocator tuning and the scoped matmul precision."""

from __future__ import annotations

import platform
from pathlib import Path

import pytest
import torch

from robot_rl.cli import main
from robot_rl.perf import adam, matmul_precision, tune_allocator


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_tune_allocator_applies_once_on_glibc() -> None:
    assert tune_allocator() is True
    assert tune_allocator() is True  # idempotent


def test_matmul_precision_is_scoped_and_restored_on_error() -> None:
    assert torch.get_float32_matmul_precision() == "highest"
    with matmul_precision("medium"):
        assert torch.get_float32_matmul_precision() == "medium"
    with pytest.raises(RuntimeError), matmul_precision("medium"):
        raise RuntimeError("boom")
    assert torch.get_float32_matmul_precision() == "highest"


def test_medium_precision_stays_within_bfloat16_error() -> None:
    torch.manual_seed(0)
    a, b = torch.randn(4, 64, 128), torch.randn(4, 128, 64)
    exact = torch.bmm(a.double(), b.double())
    with matmul_precision("medium"):
        fast = torch.bmm(a, b)
    rel = ((fast.double() - exact).abs().max() / exact.abs().max()).item()
    assert rel < 1e-2  # bfloat16 inputs: 8 mantissa bits, float32 accumulation


def test_fused_adam_matches_reference_adam() -> None:
    torch.manual_seed(0)
    w1 = torch.nn.Parameter(torch.randn(8, 8))
    w2 = torch.nn.Parameter(w1.detach().clone())
    fused, plain = adam([w1], lr=1e-2), torch.optim.Adam([w2], lr=1e-2, foreach=False)
    for _ in range(5):
        for w, opt in ((w1, fused), (w2, plain)):
            opt.zero_grad()
            (w.sin().sum() + w.pow(2).sum()).backward()
            opt.step()
    torch.testing.assert_close(w1, w2)


def test_trainer_runs_under_its_precision_and_restores_it(push_demos: Path, tmp_path: Path) -> None:
    args = ["train", "bc", "--dataset", str(push_demos), "--out", str(tmp_path / "bc")]
    args += ["--steps", "2", "--matmul-precision", "medium", "--log-dir", str(tmp_path / "tb")]
    assert main(args) == 0
    assert torch.get_float32_matmul_precision() == "highest"
    assert '"matmul_precision": "medium"' in (tmp_path / "bc" / "config.json").read_text()
