"""Task astute_detector0: the ASTUTE detector of partition 0.

The program and its input and output formats: `anomaly.astute_detector`.
astute_detector0, astute_detector1 and astute_detector2 differ only in PARTITION, which
main() uses to pick its upstream tasks.
"""

from __future__ import annotations

from functools import partial

import anomaly

PARTITION = 0


def task(filename: str, pathin: str, pathout: str) -> list[str]:
    """Test flow volume equilibrium between each pair of consecutive bins of `filename`."""
    return anomaly.astute_detector(filename, pathin, pathout)


def main() -> None:
    """Run the upstream tasks and this one on sample data and print where the outputs went."""
    anomaly.print_sample_run(f"astute_detector{PARTITION}", partial(anomaly.sample_astute_detector, PARTITION))
