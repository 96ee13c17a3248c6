"""Task fusion_center0: fuse the two detectors of partition 0.

The program and its input and output formats: `anomaly.fusion_center`. fusion_center0,
fusion_center1 and fusion_center2 differ only in PARTITION, which main() uses to pick
its upstream tasks.
"""

from __future__ import annotations

from functools import partial

import anomaly

PARTITION = 0


def task(filename: list[str], pathin: str, pathout: str) -> list[str]:
    """Combine one simple and one astute detector output of the same partition and frame."""
    return anomaly.fusion_center(filename, pathin, pathout)


def main() -> None:
    """Run the upstream tasks and this one on sample data and print where the outputs went."""
    anomaly.print_sample_run(f"fusion_center{PARTITION}", partial(anomaly.sample_fusion_center, PARTITION))
