"""Task aggregate1: time bins of per-flow volumes of partition 1.

The program and its input and output formats: `anomaly.aggregate`. aggregate0,
aggregate1 and aggregate2 differ only in PARTITION: task() uses it to check that
local_pro's outputs were routed to the right copy and main() to pick its upstream task.
"""

from __future__ import annotations

from functools import partial

import anomaly

PARTITION = 1


def task(filename: str, pathin: str, pathout: str) -> list[str]:
    """Bin the partition `filename`; refuses a partition other than PARTITION."""
    return anomaly.aggregate(PARTITION, filename, pathin, pathout)


def main() -> None:
    """Run the upstream tasks and this one on sample data and print where the outputs went."""
    anomaly.print_sample_run(f"aggregate{PARTITION}", partial(anomaly.sample_aggregate, PARTITION))
