"""n-step chunk returns against a plain-Python reference on hand-built chunks."""

from __future__ import annotations

import pytest
import torch

from robot_rl.data.chunks import chunk_returns


def _by_hand(rewards: list[float], terminals: list[float], dones: list[float], gamma: float):
    """Independent reference: walk the chunk, stop after the first done."""
    total, steps, not_done = 0.0, 0, 1.0
    for k, (r, t, d) in enumerate(zip(rewards, terminals, dones, strict=True)):
        total += gamma**k * r
        steps += 1
        if t:
            not_done = 0.0
        if d:
            break
    return total, not_done, gamma**steps


CASES = [
    # rewards, terminals, dones
    ([1.0, 2.0, 3.0, 4.0], [0, 0, 0, 0], [0, 0, 0, 0]),  # full chunk
    ([1.0, 2.0, 3.0, 4.0], [0, 1, 0, 0], [0, 1, 0, 0]),  # terminal at k = 1
    ([1.0, 2.0, 3.0, 4.0], [0, 0, 0, 0], [0, 0, 1, 0]),  # time limit (done, not terminal)
    ([-1.0, 0.5, 2.0, -3.0], [0, 0, 0, 1], [0, 0, 0, 1]),  # terminal at the last step
    ([5.0, 7.0, 11.0, 13.0], [0, 0, 1, 1], [1, 0, 1, 1]),  # done first: later steps ignored
]


@pytest.mark.parametrize("gamma", [0.5, 0.9])
def test_chunk_returns_match_a_step_by_step_reference(gamma: float) -> None:
    r = torch.tensor([c[0] for c in CASES])
    t = torch.tensor([c[1] for c in CASES], dtype=torch.float32)
    d = torch.tensor([c[2] for c in CASES], dtype=torch.float32)
    total, not_done, disc = chunk_returns(r, t, d, gamma)
    want = [_by_hand(*c, gamma) for c in CASES]
    torch.testing.assert_close(total, torch.tensor([w[0] for w in want]))
    torch.testing.assert_close(not_done, torch.tensor([w[1] for w in want]))
    torch.testing.assert_close(disc, torch.tensor([w[2] for w in want]))


def test_chunk_returns_worked_by_hand() -> None:
    # gamma 0.5, rewards [2, 4, 8], done (and terminal) at k = 1: 2 + 0.5*4 = 4, two steps.
    total, not_done, disc = chunk_returns(
        torch.tensor([[2.0, 4.0, 8.0]]), torch.tensor([[0.0, 1.0, 0.0]]),
        torch.tensor([[0.0, 1.0, 0.0]]), 0.5,
    )  # fmt: skip
    assert total.tolist() == [4.0] and not_done.tolist() == [0.0] and disc.tolist() == [0.25]


def test_chunk_returns_stay_on_the_inputs_device() -> None:
    # The meta device stands in for a GPU: a CPU temporary mixed into the sums would raise.
    rewards = torch.zeros(3, 4, device="meta")
    total, not_done, disc = chunk_returns(rewards, rewards, rewards, 0.9)
    assert {t.device.type for t in (total, not_done, disc)} == {"meta"}
    assert total.shape == not_done.shape == disc.shape == (3,)
