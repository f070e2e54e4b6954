"""Offline data: robomimic-layout HDF5 IO, the tensor dataset, and normalizers."""

from __future__ import annotations

from robot_rl.data.dataset import OfflineDataset
from robot_rl.data.hdf5 import read_robomimic, write_robomimic
from robot_rl.data.normalizer import Normalizer

__all__ = ["Normalizer", "OfflineDataset", "read_robomimic", "write_robomimic"]
