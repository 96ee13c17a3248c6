"""Task global_fusion (exit): merge the partitions' fused anomalies into the frame's report.

The program and its input and output formats: `anomaly.global_fusion`.
"""

from __future__ import annotations

import anomaly


def task(filename: list[str], pathin: str, pathout: str) -> list[str]:
    """Write the frame's anomaly report from the fusion_center outputs of all partitions."""
    return anomaly.global_fusion(filename, pathin, pathout)


def main() -> None:
    """Run the whole DAG on sample data and print where the report went."""
    anomaly.print_sample_run("global_fusion", anomaly.sample_global_fusion)
