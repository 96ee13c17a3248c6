"""Task local_pro (entry): split each frame of traffic into partitions by source address.

The program and its input and output formats: `anomaly.local_pro`.
"""

from __future__ import annotations

import anomaly


def task(filename: str, pathin: str, pathout: str) -> list[str]:
    """Split the frame `filename` into anomaly.PARTITIONS ipsumdump files, in partition order."""
    return anomaly.local_pro(filename, pathin, pathout)


def main() -> None:
    """Run the task on sample data and print where its outputs went."""
    anomaly.print_sample_run("local_pro", anomaly.sample_local_pro)
