"""Finding a person's image files: folders searched recursively, hidden files and folders left out,
the files that are not images by their name counted for a note.
"""
from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from ..errors import DataError

# iPhone photos: read with the pillow-heif plugin (the heic extra), registered on the first such file
HEIF_SUFFIXES = {".heic", ".heif"}
# the raster formats of photos, scans and screenshots Pillow reads (.jfif: JPEG as some browsers save it;
# .pgm/.ppm: scientific and scanner output; .mpo: JPEG from stereo cameras)
IMAGE_SUFFIXES = {".png", ".apng", ".jpg", ".jpeg", ".jpe", ".jfif", ".mpo", ".bmp", ".gif", ".tif", ".tiff", ".webp",
                  ".avif", ".jp2", ".j2k", ".pgm", ".ppm", ".pbm", ".pnm", ".tga", ".qoi", *HEIF_SUFFIXES}


def hidden(name: str) -> bool:
    """Whether a file or folder is one that file browsers hide and tools leave behind: dot names
    (macOS's ``._photo.jpg`` resource forks, which are no images; Jupyter's ``.ipynb_checkpoints``
    copies) and the ``__MACOSX`` folder of zip archives made on a Mac."""
    return name.startswith(".") or name == "__MACOSX"


def images_under(folder: Path, others: Counter | None = None) -> list[Path]:
    """The image files under ``folder``, any depth, sorted, leaving out hidden files and folders;
    symbolic links to folders are not followed (a link back up the tree would never end). The
    other files are counted by suffix into ``others`` when given."""
    def unreadable(exc: OSError) -> None:
        raise DataError(f"cannot read folder {exc.filename}: {exc.strerror}")

    found = []
    for directory, subdirs, files in os.walk(folder, onerror=unreadable):
        subdirs[:] = [d for d in subdirs if not hidden(d)]
        for name in files:
            suffix = Path(name).suffix.lower()
            if suffix in IMAGE_SUFFIXES and not hidden(name):
                found.append(Path(directory) / name)
            elif others is not None and not hidden(name):
                others[suffix] += 1
    return sorted(found)


def files_left_out_note(others: Counter) -> str | None:
    """A note on the files of a folder tree that are not images by their suffix (camera raw files,
    SVG drawings, notes), the commonest suffixes first; None when there are none."""
    if not others:
        return None
    kinds = ", ".join(f"{count} {suffix or 'without a suffix'}" for suffix, count in others.most_common(4))
    more = ", ..." if len(others) > 4 else ""
    count = sum(others.values())
    what = "1 file that is not an image by its name was" if count == 1 else \
        f"{count} files that are not images by their name were"
    return f"note: {what} left out ({kinds}{more}); camera raw files and drawings need converting to JPEG or PNG first"


def find_images(paths: list[str | Path]) -> list[Path]:
    """The files named, and the image files inside the folders named (recursively, sorted)."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            inside = images_under(path)
            if not inside:
                raise DataError(f"no image files (png, jpg, ...) in folder {path}")
            found += inside
        elif path.is_file():
            found.append(path)
        else:
            raise DataError(f"no such image file or folder: {path}")
    return found
