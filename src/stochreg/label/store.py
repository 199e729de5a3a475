"""What ``stochreg label`` does to a folder: each answer moves one image, and is written down.

A person's answer to an image of ROOT/unlabelled/ is a class (the file moves to labelled/CLASS/, the
class folder made when it is new), "none of these" (the file moves to ``out-of-class/``, which training
does not read) or "skip" (the file stays). Every answer and every undo is one line appended to
ROOT/labels.jsonl; no file is overwritten (a name already taken gets ``-2``, ``-3``, ... before its
suffix) and none is deleted. Each change is made under an exclusive lock on labels.jsonl, so that two
pages (or two ``stochreg label`` processes) on one folder cannot lose an answer: the second answer to
an image already moved is refused, naming the first.
"""
from __future__ import annotations

import fcntl
import json
import os
import threading
import unicodedata
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ..data.folders import LABELLED_FOLDERS, UNLABELLED_FOLDERS
from ..data.image_files import hidden, images_under
from ..errors import DataError

LOG_NAME = "labels.jsonl"
OUT_OF_CLASS = "out-of-class"
SKIP, NONE_OF_THESE = "skip", "none"
MAX_CLASS_NAME = 80


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Refused(DataError):
    """An answer the folder cannot take (the image is gone, the class name is not one); ``status`` is
    the HTTP status the page gets."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass
class Item:
    file: str                       # relative to ROOT, with forward slashes
    guess: str | None = None        # the run's guess, when a run's suggestions named the image
    confidence: float | None = None
    reason: str | None = None


def class_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a class folder's name, or None."""
    if not name or not name.strip():
        return "a class name cannot be empty"
    if name != name.strip():
        return f"class name {name!r} starts or ends with a space"
    if len(name) > MAX_CLASS_NAME:
        return f"a class name has at most {MAX_CLASS_NAME} characters"
    if "/" in name or "\\" in name or name in (".", ".."):
        return f"class name {name!r} cannot hold a slash or be . or ..: it names one folder"
    if hidden(name):
        return f"class name {name!r} starts with a dot, which hides the folder"
    if any(unicodedata.category(ch).startswith("C") for ch in name):
        return f"class name {name!r} holds a control character"
    return None


class LabelStore:
    """One folder's unlabelled images, its classes and the answers given to them."""

    def __init__(self, root: str | Path, suggestions: str | Path | None = None):
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise DataError(f"no such folder: {root}")
        self.unlabelled = next((self.root / n for n in UNLABELLED_FOLDERS if (self.root / n).is_dir()), None)
        if self.unlabelled is None:
            raise DataError(f"{root} has no unlabelled/ folder: put the images to label in {self.root / 'unlabelled'}/")
        self.labelled = next((self.root / n for n in LABELLED_FOLDERS if (self.root / n).is_dir()),
                             self.root / "labelled")
        self.log_path = self.root / LOG_NAME
        self._thread_lock = threading.Lock()
        suggested = suggested_items(self.root, self.unlabelled, Path(suggestions)) if suggestions else []
        known = {item.file for item in suggested}
        rest = [Item(file) for file in map(self.relative, images_under(self.unlabelled)) if file not in known]
        self.queue: list[Item] = []
        self.place: dict[str, int] = {}   # each file's last place in the queue: a skipped image moves to the end
        for item in suggested + rest:
            self._enqueue(item)
        self.suggested = len(suggested)

    # --- paths -----------------------------------------------------------------------------
    def relative(self, path: Path) -> str:
        return Path(os.path.normpath(path)).relative_to(self.root).as_posix()

    def unlabelled_file(self, file: str) -> Path:
        """ROOT/``file`` where it lies in the unlabelled folder; anything else (a path out of ROOT, a
        labelled image) is refused. The check is on the path as written (``..`` taken away), so that
        an image that is a link to a file elsewhere can still be labelled."""
        if not file or "\x00" in file or Path(file).is_absolute():
            raise Refused(f"not an image of {self.unlabelled.name}/: {file!r}", 404)
        path = Path(os.path.normpath(self.root / file))
        if not path.is_relative_to(self.unlabelled) or path == self.unlabelled:
            raise Refused(f"not an image of {self.unlabelled.name}/: {file!r}", 404)
        return path

    def pending(self, file: str) -> bool:
        try:
            return self.unlabelled_file(file).is_file()
        except Refused:
            return False

    def classes(self) -> list[str]:
        if not self.labelled.is_dir():
            return []
        return sorted(p.name for p in self.labelled.iterdir() if p.is_dir() and not hidden(p.name))

    # --- the queue -------------------------------------------------------------------------
    def _enqueue(self, item: Item) -> None:
        """``item`` at the end of the queue; its earlier place (if any) no longer counts, so that the
        places the page has already been given do not shift."""
        self.place[item.file] = len(self.queue)
        self.queue.append(item)

    def waiting(self, start: int = 0, count: int = 20) -> tuple[list[Item], int]:
        """Up to ``count`` images still to answer from position ``start`` of the queue (skipped ones
        come last), and the queue position after the last one returned."""
        found, position = [], max(0, start)
        while position < len(self.queue) and len(found) < count:
            file = self.queue[position].file
            if self.place[file] == position and self.pending(file):
                found.append(self.queue[position])
            position += 1
        return found, position

    def left(self) -> int:
        return sum(self.pending(file) for file in self.place)

    # --- answers ---------------------------------------------------------------------------
    @contextmanager
    def _locked_log(self):
        with self._thread_lock, open(self.log_path, "a+", encoding="utf-8") as log:
            fcntl.flock(log, fcntl.LOCK_EX)
            try:
                log.seek(0)
                yield log, [json.loads(line) for line in log if line.strip()]
            finally:
                fcntl.flock(log, fcntl.LOCK_UN)

    @staticmethod
    def _append(log, record: dict) -> dict:
        log.seek(0, os.SEEK_END)
        log.write(json.dumps(record, ensure_ascii=False) + "\n")
        log.flush()
        os.fsync(log.fileno())
        return record

    def _free_name(self, folder: Path, name: str) -> Path:
        target, stem, suffix, k = folder / name, Path(name).stem, Path(name).suffix, 1
        while target.exists():
            k += 1
            target = folder / f"{stem}-{k}{suffix}"
        return target

    def answer(self, file: str, answer: str, new_class: bool = False) -> dict:
        """Record ``answer`` (a class, ``none`` or ``skip``) for the unlabelled image ``file``; returns
        the line written to labels.jsonl. A class not yet in labelled/ is refused unless
        ``new_class`` (so that a typo does not make a class)."""
        with self._locked_log() as (log, records):
            source = self.unlabelled_file(file)
            if not source.is_file():
                earlier = next((r for r in reversed(records) if r.get("file") == file and "answer" in r), None)
                said = f" (answered {earlier['answer']!r})" if earlier else ""
                raise Refused(f"{file} is no longer in {self.unlabelled.name}/{said}: another page answered it", 409)
            record = {"id": 1 + max((r["id"] for r in records), default=0), "time": now(),
                      "file": file, "answer": answer, "moved_to": None}
            if answer == SKIP:
                self._enqueue(self.queue[self.place[file]] if file in self.place else Item(file))
                return self._append(log, record)
            if answer == NONE_OF_THESE:
                folder = self.root / OUT_OF_CLASS
            else:
                problem = class_name_problem(answer)
                if problem:
                    raise Refused(problem)
                existing = {name.casefold(): name for name in self.classes()}
                if answer not in self.classes():
                    if answer.casefold() in existing:
                        raise Refused(f"class {answer!r} differs from {existing[answer.casefold()]!r} only in case")
                    if not new_class:
                        raise Refused(f"no class {answer!r} in {self.labelled.name}/: add it as a new class")
                folder = self.labelled / answer
            folder.mkdir(parents=True, exist_ok=True)
            target = self._free_name(folder, source.name)
            os.rename(source, target)
            record["moved_to"] = self.relative(target)
            return self._append(log, record)

    def undo(self, answer_id: int) -> dict:
        """Take back answer ``answer_id``: its image returns to where it was (unless a file took its
        place since, or the image moved on); the undo is one more line in labels.jsonl."""
        with self._locked_log() as (log, records):
            original = next((r for r in records if r.get("id") == answer_id and "answer" in r), None)
            if original is None:
                raise Refused(f"no answer {answer_id} in {LOG_NAME}", 404)
            if any(r.get("undo") == answer_id for r in records):
                raise Refused(f"answer {answer_id} was already undone", 409)
            if original["moved_to"]:
                moved, back = self.root / original["moved_to"], self.unlabelled_file(original["file"])
                if not moved.is_file():
                    raise Refused(f"{original['moved_to']} is gone: it cannot go back", 409)
                if back.exists():
                    raise Refused(f"{original['file']} exists again: undoing would overwrite it", 409)
                back.parent.mkdir(parents=True, exist_ok=True)
                os.rename(moved, back)
            if original["file"] not in self.place:
                self._enqueue(Item(original["file"]))
            record = {"id": 1 + max(r["id"] for r in records), "time": now(),
                      "undo": answer_id, "file": original["file"]}
            return self._append(log, record)


def reason_of(row: dict) -> str | None:
    """A list row's reason: suggestions.csv says it; outliers.csv gives the score and the nearest class."""
    if row.get("reason"):
        return row["reason"]
    if row.get("out_of_class_score"):
        return (f"out-of-class score {float(row['out_of_class_score']):.2f}: its nearest labelled image is a "
                f"{row.get('nearest_labelled_class')}, the model guesses {row.get('guess')}")
    return None


def suggested_items(store_root: Path, unlabelled: Path, suggestions_csv: Path) -> list[Item]:
    """A run's suggestions.csv (or outliers.csv) as items of the folder at ``store_root``: each path is taken as written
    (relative to the working folder) or, where the folder has moved since, by its part under the
    unlabelled folder; suggestions of images no longer there are left out."""
    import csv
    items = []
    with open(suggestions_csv, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            path = Path(os.path.abspath(row["path"]))
            if not path.is_relative_to(unlabelled):
                parts = Path(row["path"]).parts
                cut = max((k for k, part in enumerate(parts) if part in UNLABELLED_FOLDERS), default=None)
                if cut is None:
                    continue
                path = unlabelled.joinpath(*parts[cut + 1:])
            if path.is_file():
                # an image listed as foreign gets no class preselected: Enter must not file it under a guess
                guess = None if row.get("out_of_class_score") else row.get("guess") or None
                items.append(Item(path.relative_to(store_root).as_posix(), guess,
                                  float(row["confidence"]) if row.get("confidence") else None, reason_of(row)))
    return items
