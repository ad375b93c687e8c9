"""Synthetic tables on disk, as COPY text: generated once, streamed to every environment.

A large table is generated chunk by chunk (synth_assets.generate); each chunk is formatted once
(``publish.copy_lines``) and appended to its table's file, then dropped, so memory holds one
chunk whatever the table's size, and N environments read the same file instead of formatting
the rows N times. The folder lives under ``orchestration.storage_dir``; it is deleted when the
refresh is done (or when the object holding it is garbage collected), except for Dagster's,
which later steps of the run read and the next run deletes.
"""

from __future__ import annotations

import hashlib
import shutil
import uuid
import weakref
from pathlib import Path

import pandas as pd

from synth_assets.publish import CHUNK_ROWS, copy_lines
from synth_assets.schema import Table

SPILL_DIR = "spill"


def spill_root(storage_dir: str | Path) -> Path:
    return Path(storage_dir) / SPILL_DIR


class Spill:
    """One COPY text file per table in one folder of its own."""

    def __init__(self, folder: Path, keep: bool = False) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.paths: dict[str, Path] = {}
        self.rows: dict[str, int] = {}
        # not kept: the folder goes with this object, even when a caller forgets close()
        self._cleanup: weakref.finalize | None = (
            None if keep else weakref.finalize(self, _remove, folder)
        )

    def __getstate__(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if k != "_cleanup"}

    def __setstate__(self, state: dict[str, object]) -> None:
        """A copy (another process, a pickled run) reads the files; their owner deletes them."""
        self.__dict__.update(state)
        self._cleanup = None

    @classmethod
    def create(cls, storage_dir: str | Path, name: str | None = None, keep: bool = False) -> Spill:
        # absolute: the steps of a Dagster run may start in other processes
        return cls(spill_root(storage_dir).resolve() / (name or uuid.uuid4().hex), keep)

    def path_of(self, table: str) -> Path:
        """A file name any table name can have (odd characters, case, length)."""
        return self.folder / f"{hashlib.sha256(table.encode()).hexdigest()[:16]}.copy"

    def write(self, table: Table, frame: pd.DataFrame) -> None:
        """Append rows (every column that is not GENERATED, in table order) as COPY text."""
        path = self.paths.setdefault(table.name, self.path_of(table.name))
        columns = [c for c in table.columns if c.generated is None]
        with path.open("a", encoding="utf-8", newline="") as out:
            for start in range(0, len(frame), CHUNK_ROWS):
                out.write(copy_lines(frame.iloc[start : start + CHUNK_ROWS], columns))
        self.rows[table.name] = self.rows.get(table.name, 0) + len(frame)

    def close(self) -> None:
        """Delete the files (the owner only: a copy of the handle leaves them)."""
        if self._cleanup is not None:
            self._cleanup()


def _remove(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


def remove_others(storage_dir: str | Path, keep: str, prefix: str) -> None:
    """Drop the spill folders named ``prefix*`` other than ``keep`` (Dagster's earlier runs)."""
    root = spill_root(storage_dir)
    if not root.is_dir():
        return
    for folder in root.iterdir():
        if folder.is_dir() and folder.name.startswith(prefix) and folder.name != keep:
            _remove(folder)
