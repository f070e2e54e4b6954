"""Process-level speed settings for CPU training: the allocator and matmul precision.

Measured on the 2-core machine (``bench/critic_update.py``, 10-critic update, batch 256):
glibc's default allocator returns multi-megabyte activation buffers to the kernel after each
step and page-faults them back in on the next, which made elementwise ops on a [10, 256, 256]
activation 5-10x slower than on a cached one (11.8 -> 9.5 ms per update once it stops).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
from collections.abc import Iterator
from typing import Literal

import torch
from torch.optim.optimizer import ParamsT

MatmulPrecision = Literal["highest", "high", "medium"]

# glibc mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_MAX = 32 * 1024 * 1024  # glibc's ceiling on 64-bit
_TRIM_THRESHOLD = 1024 * 1024 * 1024

_allocator_tuned: bool | None = None


def tune_allocator() -> bool:
    """Keep freed tensor memory in the process instead of returning it to the kernel.

    Serves buffers up to 32 MiB from the heap (not fresh ``mmap`` pages) and only trims the
    heap above 1 GiB of free memory, as PyTorch's CPU performance guide does with jemalloc or
    tcmalloc. Returns whether the settings applied (glibc only; elsewhere a no-op). Safe to
    call more than once.
    """
    global _allocator_tuned
    if _allocator_tuned is not None:
        return _allocator_tuned
    _allocator_tuned = False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # mallopt returns 1 on success; the order matters: setting the trim threshold alone turns
    # off glibc's adaptive mmap threshold, sending every buffer over 128 KiB to mmap.
    ok = mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX) == 1
    ok = ok and mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD) == 1
    _allocator_tuned = ok
    return ok


@contextlib.contextmanager
def matmul_precision(precision: MatmulPrecision) -> Iterator[None]:
    """Set ``torch.set_float32_matmul_precision`` inside the block and restore it after.

    ``highest`` keeps float32 matmuls exact. ``medium`` lets them run on bfloat16 inputs with
    float32 accumulation (AMX / AVX512-BF16 CPUs, tensor-core GPUs; relative error ~2e-3, like
    JAX's default precision on TPUs); ``high`` allows TF32 on GPUs and is ``highest`` on CPUs.
    """
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision(precision)
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(previous)


def adam(params: ParamsT, lr: float) -> torch.optim.Adam:
    """Adam with the fused kernel (one pass over all parameters) on CPU and CUDA."""
    return torch.optim.Adam(params, lr=lr, fused=True)


__all__ = ["MatmulPrecision", "adam", "matmul_precision", "tune_allocator"]
