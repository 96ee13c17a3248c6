"""The [PROFILING] section of jupiter_config.ini."""

from __future__ import annotations

from pathlib import Path

import pytest

from jupiter.model.config import parse_config
from jupiter.model.errors import InputError


def test_defaults_and_values(tmp_path: Path) -> None:
    path = tmp_path / "jupiter_config.ini"
    path.write_text("[CONFIG]\nSCHEDULER = heft\n")
    default = parse_config(path).profiling
    assert default.network_sizes == (1024, 10240, 102400, 1048576)
    assert (default.network_samples, default.network_interval, default.store, default.testbed) == (
        3,
        0.0,
        "sqlite",
        None,
    )
    path.write_text(
        "[PROFILING]\nNETWORK_SIZES = 1K, 10K 1M\nNETWORK_SAMPLES = 5\nNETWORK_INTERVAL = 60\n"
        "STORE = mongodb\nTESTBED = testbed.ini\nLINKS = link_list.txt\n[MAPPER]\nWAVE_TIMEOUT = 5\n"
    )
    config = parse_config(path)
    assert config.profiling.network_sizes == (1024, 10240, 1048576)
    assert config.profiling.network_samples == 5
    assert config.profiling.network_interval == 60.0
    assert config.profiling.store == "mongodb"
    assert config.profiling.testbed == Path("testbed.ini")
    assert config.mapper.wave_timeout == 5.0
    assert config.warnings == ()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[PROFILING]\nNETWORK_SIZES = 1K big\n", ":2: NETWORK_SIZES: 'big' is not a size"),
        ("[PROFILING]\n\nSTORE = redis\n", ":3: STORE: unknown store 'redis'; use sqlite or mongodb"),
        ("[PROFILING]\nNETWORK_SAMPLES = 0\n", ":2: NETWORK_SAMPLES: must be at least 1"),
    ],
)
def test_errors(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "jupiter_config.ini"
    path.write_text(body)
    with pytest.raises(InputError, match=message):
        parse_config(path)
