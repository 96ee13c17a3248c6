"""How input files make frames.

Usually each input file starts one frame. When an entry task waits for
more than one file per frame (NUM_INPUTS > 1 on a task home feeds, as in
the original's image-stitching app whose frames are a left and a right
camera image), files are grouped as the original grouped them: by the part
of the name before the first `_` (`test_left.jpeg` and `test_right.jpeg`
make frame `test`), and a group is a frame once it holds that many files.
`jupiter submit --frame a b` gives the grouping explicitly instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from jupiter.model.dag import Dag

T = TypeVar("T")


def files_per_frame(dag: Dag, ingress: Sequence[str]) -> int:
    """How many input files make one frame: the most any ingress task waits for (1 usually)."""
    return max((dag[task].num_inputs for task in ingress if task in dag), default=1)


def prefix(name: str) -> str:
    """The part of a file name that names its frame (the original's rule: before the first `_`)."""
    stem = name.split("_", 1)[0]
    return stem if stem != name else name.rsplit(".", 1)[0]


def group_frames(paths: Sequence[Path], per_frame: int) -> list[list[Path]]:
    """Input files grouped into frames, in order of each frame's first file (see `group_by_name`)."""
    return group_by_name(paths, lambda path: path.name, per_frame)


def group_by_name(items: Sequence[T], name: Callable[[T], str], per_frame: int) -> list[list[T]]:
    """Items (files, uploads) grouped into frames by their names, in order of each frame's first item.

    With one file per frame every item is a frame. Otherwise items are
    grouped by `prefix` of their name; a group whose size is not a multiple
    of `per_frame` is not made of frames (ValueError naming it), a bigger
    one is split in order.
    """
    if per_frame <= 1:
        return [[item] for item in items]
    groups: dict[str, list[T]] = {}
    for item in items:
        groups.setdefault(prefix(name(item)), []).append(item)
    frames: list[list[T]] = []
    for key, group in groups.items():
        if len(group) % per_frame:
            files = ", ".join(name(item) for item in group)
            raise ValueError(
                f"frame {key!r} has {len(group)} files ({files}) but every frame needs {per_frame}; "
                f"name one frame's files <frame>_<part>.<ext>, or give them together with `jupiter submit --frame`"
            )
        frames += [group[start : start + per_frame] for start in range(0, len(group), per_frame)]
    return frames
