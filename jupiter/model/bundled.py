"""Files shipped inside the package: default config, node list, example apps.

They live in `jupiter/data/` so that a non-editable install carries them; the
repository's top-level `jupiter_config.ini`, `nodes.txt` and
`app_specific_files/` are links to these.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def data_dir() -> Path:
    """Folder of the package's data files."""
    return Path(str(files("jupiter") / "data"))


def example_apps() -> dict[str, Path]:
    """Example apps shipped with Jupiter, by folder name."""
    root = data_dir() / "app_specific_files"
    return {path.name: path for path in sorted(root.iterdir()) if (path / "configuration.txt").is_file()}
