"""Output paths that never lose data: kind checks, a writer lock, probes, killed-save leftovers.

Every verb that writes goes through :func:`claim_output` before its long work starts:

- an existing output is replaced only with ``overwrite`` and only when it is the verb's own
  kind of output (a policy directory holding only policy files, a run directory holding only
  run files, an HDF5 or JSON file), never a directory that holds an input or other files;
- the parent directory is probed for writing, so an unwritable output fails in a second,
  not after training;
- a lock file beside the output (``.<name>.lock``, ``fcntl.flock``) keeps a second writer out
  for as long as the claim is held;
- leftovers of a killed atomic save (``.<name>.tmp-*`` / ``.<name>.old-*`` directories,
  ``.<name>.*.tmp`` files) are removed, and an ``.old-*`` copy whose swap was cut short is put
  back where the output was.

The replacement itself happens later, when the verb saves (atomically, see
``robot_rl.checkpoint``), so a run that fails after the claim leaves the old output in place.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal

from robot_rl.errors import OutputError, OutputExistsError

OutputKind = Literal["policy", "run", "hdf5", "json"]

# What a directory of each kind may hold; anything else means it is not ours to replace.
_POLICY_FILES = {"config.json", "eval.json", "tb"}
_RUN_FILES = {
    "policy",
    "checkpoint",
    "curve.json",
    "curve.csv",
    "curve.png",
    "eval.json",
    "tb",
    "config.json",
}
_FILE_SUFFIXES = {"hdf5": (".hdf5", ".h5", ".hdf"), "json": (".json",)}


def _is_policy_dir(path: Path) -> bool:
    names = {p.name for p in path.iterdir() if not p.name.startswith(".")}
    return (
        "config.json" in names
        and "model.safetensors" in names
        and all(n in _POLICY_FILES or n.endswith(".safetensors") for n in names)
    )


def _is_run_dir(path: Path) -> bool:
    names = {p.name for p in path.iterdir() if not p.name.startswith(".")}
    return (
        bool(names) and names <= _RUN_FILES and bool(names & {"policy", "checkpoint", "curve.json"})
    )


def _is_report(path: Path) -> bool:
    """A JSON results file written by ``eval`` or ``quickstart`` (keys ``eval/...``)."""
    try:
        if path.stat().st_size > 1 << 20:
            return False
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and any(str(k).startswith("eval/") for k in data)


def _inside(inner: Path, outer: Path) -> bool:
    try:
        inner.resolve().relative_to(outer.resolve())
    except ValueError:
        return False
    return True


def check_replaceable(
    path: Path, kind: OutputKind, overwrite: bool, inputs: Iterable[Path | None] = ()
) -> None:
    """Raise unless ``path`` is free, or ``overwrite`` is set and it holds only ``kind`` output.

    ``inputs`` are the command's input paths: an output that is, or contains, one of them is
    refused even with ``overwrite``.
    """
    path = Path(path)
    for source in inputs:
        if source is not None and (_inside(Path(source), path) or _same(Path(source), path)):
            raise OutputError(f"{path} holds the input {source}; choose another output")
    if not path.exists() and not path.is_symlink():
        return
    if not overwrite:
        hint = " or --resume to continue it" if kind == "run" else ""
        raise OutputExistsError(f"{path} exists; pass --overwrite to replace it{hint}")
    if kind in ("policy", "run"):
        if not path.is_dir() or path.is_symlink():
            raise OutputError(f"{path} is not a directory; --overwrite replaces only a {kind} dir")
        if not any(path.iterdir()):
            return  # an empty directory holds nothing to lose
        ok = _is_policy_dir(path) if kind == "policy" else _is_run_dir(path)
        if not ok:
            what = "a policy directory" if kind == "policy" else "a fine-tuning run directory"
            raise OutputError(
                f"{path} is not {what} (it holds other files); --overwrite will not replace it"
            )
    else:
        if not path.is_file() or path.is_symlink():
            raise OutputError(f"{path} is not a regular file; --overwrite replaces only a file")
        if not path.name.lower().endswith(_FILE_SUFFIXES[kind]):
            raise OutputError(
                f"{path} is not a {kind} file (suffix {path.suffix or 'none'}); "
                "--overwrite will not replace it"
            )
        if kind == "json" and not _is_report(path):
            raise OutputError(
                f"{path} is not an evaluation report (no eval/ results); "
                "--overwrite will not replace it"
            )


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def probe_writable(path: Path) -> None:
    """Create (and remove) a file where ``path``'s atomic save writes its temporary copy."""
    path = Path(path)
    existing = path.parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"cannot write {path}: {existing} is not a directory")
    try:
        # Probe the nearest existing directory; missing ones are made at save time.
        fd, probe = tempfile.mkstemp(dir=existing, prefix=f".{path.name}.", suffix=".probe")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise OutputError(f"cannot write {path}: {e.strerror or e}") from e


def clean_leftovers(path: Path) -> list[Path]:
    """Remove what a killed atomic save of ``path`` left beside it; return what was removed.

    If ``path`` is missing and an ``.old-*`` copy of it exists (killed between moving the old
    output aside and moving the new one in), the old copy is restored first.
    """
    path = Path(path)
    parent = path.parent
    if not parent.is_dir():
        return []
    removed: list[Path] = []
    for old in sorted(parent.glob(f".{_glob_escape(path.name)}.old-*")):
        inner = old / path.name
        if not path.exists() and inner.exists():
            os.replace(inner, path)
        shutil.rmtree(old, ignore_errors=True)
        removed.append(old)
    for tmp in sorted(parent.glob(f".{_glob_escape(path.name)}.tmp-*")):
        shutil.rmtree(tmp, ignore_errors=True)
        removed.append(tmp)
    for tmp in sorted(parent.glob(f".{_glob_escape(path.name)}.*.tmp")):
        if tmp.is_file():
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def _glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def lock_path(path: Path) -> Path:
    """The lock file guarding ``path``: a hidden sibling, so replacing ``path`` keeps it."""
    path = Path(path)
    return path.parent / f".{path.name}.lock"


@contextlib.contextmanager
def output_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path``'s lock file; a second holder fails at once."""
    lock = lock_path(path)
    made = [p for p in (lock.parent, *lock.parent.parents) if not p.exists()]
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create {lock.parent}: {e.strerror or e}") from e
    try:
        with _locked(lock, path):
            yield
    finally:
        for d in made:  # deepest first: directories made only for the lock, if still empty
            with contextlib.suppress(OSError):
                d.rmdir()


@contextlib.contextmanager
def _locked(lock: Path, path: Path) -> Iterator[None]:
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as e:
            raise OutputError(f"cannot lock {path}: {e.strerror or e}") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutputError(
                f"{path} is in use by another robot-rl process (lock {lock.name}); "
                "wait for it or choose another output"
            ) from None
        # The previous holder may have unlinked the file between our open and our lock.
        try:
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock)
        os.close(fd)


@contextlib.contextmanager
def claim_output(
    path: Path,
    kind: OutputKind,
    overwrite: bool,
    inputs: Iterable[Path | None] = (),
) -> Iterator[None]:
    """Check, probe, lock and tidy ``path`` for one writer; hold the lock inside the block."""
    path = Path(path)
    inputs = list(inputs)
    check_replaceable(path, kind, overwrite, inputs)
    probe_writable(path)
    with output_lock(path):
        clean_leftovers(path)
        # Checked again under the lock: a restored .old-* copy or another writer's output.
        check_replaceable(path, kind, overwrite, inputs)
        yield


class DeferredInterrupt:
    """Ctrl+C, deferred to a point where a loop can save: the first SIGINT sets ``requested``
    (the loop saves and raises KeyboardInterrupt itself), a second one interrupts at once.

    Outside the main thread (where no signal handler can be installed) it does nothing.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous: object = None

    def __enter__(self) -> DeferredInterrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)  # type: ignore[arg-type]

    def _handle(self, signum: int, frame: object) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def check(self, save: object = None) -> None:
        """If Ctrl+C came: call ``save()`` (when given), then raise KeyboardInterrupt."""
        if self.requested:
            if callable(save):
                save()
            raise KeyboardInterrupt


__all__ = [
    "DeferredInterrupt",
    "OutputKind",
    "check_replaceable",
    "claim_output",
    "clean_leftovers",
    "lock_path",
    "output_lock",
    "probe_writable",
]
