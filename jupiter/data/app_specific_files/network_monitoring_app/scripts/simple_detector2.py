"""Task simple_detector2: the volume detector of partition 2.

The program and its input and output formats: `anomaly.simple_detector`.
simple_detector0, simple_detector1 and simple_detector2 differ only in PARTITION, which
main() uses to pick its upstream task.
"""

from __future__ import annotations

from functools import partial

import anomaly

PARTITION = 2


def task(filename: str, pathin: str, pathout: str) -> list[str]:
    """Flag the bins of the aggregate `filename` whose packet or byte count is an outlier."""
    return anomaly.simple_detector(filename, pathin, pathout)


def main() -> None:
    """Run the upstream tasks and this one on sample data and print where the outputs went."""
    anomaly.print_sample_run(f"simple_detector{PARTITION}", partial(anomaly.sample_simple_detector, PARTITION))
