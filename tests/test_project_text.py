"""The tracked text files speak of the software alone: no development history (who worked on it
when, under which tracker number), so that a reader never meets a name they cannot look up."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Built from parts so that this file does not match itself.
FORBIDDEN = {
    "a period of work": re.compile(r"\b" + "sess" + r"ions?\b", re.I),
    "a tracker number": re.compile(r"\b" + "iss" + r"ue #?\d+", re.I),
    "a run letter": re.compile(r"\b(?:runs?|tuning) [A-Z](?: (?:and|to) [A-Z])?\b(?![\w-])"),
    "a machine named by when it was used": re.compile(r"\bthe machine of\b", re.I),
    "a path outside the repository": re.compile(r"\.\./shared/"),
}
# pytest's fixture scope is a legitimate use of the word
ALLOWED = [re.compile(r"""scope=["']""" + "sess" + r"""ion["']""")]


def tracked_text_files() -> list[Path]:
    try:
        listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
        files = [ROOT / name for name in listed.splitlines()]
    except (OSError, subprocess.CalledProcessError):   # not a git checkout: every file but the build output
        files = [p for p in ROOT.rglob("*") if p.is_file() and not {".git", ".venv", "runs", "data"} & set(p.parts)]
    texts = []
    for path in files:
        try:
            texts.append((path, path.read_text(encoding="utf-8")))
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue   # images and other binary files
    return texts


def test_no_development_history_in_tracked_files():
    found = []
    for path, text in tracked_text_files():
        for number, line in enumerate(text.splitlines(), start=1):
            cleaned = line
            for allowed in ALLOWED:
                cleaned = allowed.sub("", cleaned)
            for what, pattern in FORBIDDEN.items():
                if pattern.search(cleaned):
                    found.append(f"{path.relative_to(ROOT)}:{number}: {what}: {line.strip()[:120]}")
    assert not found, "\n".join(found[:30])


def test_the_check_finds_what_it_forbids():
    samples = {"a period of work": "as in the " + "sess" + "ion of yesterday", "a tracker number": "see " + "iss" + "ue 12",
               "a run letter": "tuning" + " H", "a machine named by when it was used": "on the machine" + " of X"}
    for what, sample in samples.items():
        assert FORBIDDEN[what].search(sample), what
    assert not FORBIDDEN["a run letter"].search("a run A-to-B comparison is fine as run-time")
