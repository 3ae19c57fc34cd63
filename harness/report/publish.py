"""Publishing a run's reports so two runs never mix: render into a staging folder, then move the
files into place and remove what the previous run wrote that this one did not (the folder's
``.ft-reports.json`` lists what the last run wrote); an interrupted run replaces them with a short
"interrupted" report instead of rendering everything."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path

from harness.jsonio import strict_dumps, write_atomic
from harness.report.json_out import write_results_json
from harness.results import RunState

MANIFEST = ".ft-reports.json"


def staging_dir(out_dir: Path) -> Path:
    """A fresh, empty staging folder inside ``out_dir`` (same file system: moves are renames)."""
    staging = Path(out_dir) / f".ft-staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    return staging


def discard(staging: Path) -> None:
    """Remove a staging folder and everything rendered into it."""
    shutil.rmtree(staging, ignore_errors=True)


def _previous(out_dir: Path) -> list[Path]:
    """The files the previous run wrote into ``out_dir`` (none when it left no list)."""
    try:
        listed = json.loads((out_dir / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    root = out_dir.resolve()
    files = []
    for name in listed if isinstance(listed, list) else []:
        path = (root / str(name)).resolve()
        if isinstance(name, str) and path.is_relative_to(root) and path != root:
            files.append(path)
    return files


def _replace_previous(out_dir: Path, new: Iterable[Path], keep: Iterable[Path]) -> None:
    """Remove the previous run's files that this run did not write, then list this run's."""
    out_dir = Path(out_dir)
    root = out_dir.resolve()
    new = [Path(p).resolve() for p in new]
    kept = {Path(p).resolve() for p in keep} | set(new)
    for path in _previous(out_dir):
        if path not in kept and path.is_file():
            path.unlink(missing_ok=True)
    names = sorted(p.relative_to(root).as_posix() for p in new if p.is_relative_to(root))
    write_atomic(out_dir / MANIFEST, strict_dumps(names, indent=1) + "\n")


def publish(staging: Path, out_dir: Path, written: Iterable[Path], *, keep: Iterable[Path] = ()) -> list[Path]:
    """Move the files rendered into ``staging`` into ``out_dir`` (results.json last) and remove the
    previous run's leftovers; returns where the files now are. Files written elsewhere (a CI step
    summary) are returned as they are."""
    staging, out_dir = Path(staging), Path(out_dir)
    moved: list[Path] = []
    ordered = sorted(written, key=lambda p: Path(p).name == "results.json")
    for path in ordered:
        path = Path(path)
        if not path.is_relative_to(staging):
            moved.append(path)
            continue
        target = out_dir / path.relative_to(staging)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)
        moved.append(target)
    discard(staging)
    _replace_previous(out_dir, moved, keep)
    return moved


def write_interrupted(state: RunState, out_dir: Path, *, reason: str, keep: Iterable[Path] = (),
                      also: Iterable[Path] = ()) -> list[Path]:
    """The short report of an interrupted run: ``results.json`` (marked incomplete) and an
    ``index.md`` saying so, beside ``also`` (the outputs the caller wrote); the previous run's reports
    are removed, so nothing mixes."""

    out_dir = Path(out_dir)
    written = [*also, write_results_json(state, out_dir / "results.json")]
    evaluated = ", ".join(f"{r.suite}/{r.candidate}" for r in state.results) or "nothing"
    date = datetime.now(timezone.utc).isoformat(timespec="seconds")
    index = out_dir / "index.md"
    write_atomic(index, f"# ft-harness: run interrupted\n\n{date}: {reason}, so no verdicts or full reports "
                        f"were written and the baseline was not updated.\n\nEvaluated before the interrupt: "
                        f"{evaluated} (per-example outputs in `outputs/`, records in `results.json`, marked "
                        "incomplete). Run the suites again for the full reports.\n")
    written.append(index)
    _replace_previous(out_dir, written, keep)
    return written
