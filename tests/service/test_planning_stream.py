"""SCHEDULER = stream takes its rate and cap from [MAPPER] STREAM_RATE and STREAM_CAP."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from jupiter.mapping import StreamMapper, get_mapper
from jupiter.model.config import parse_config
from jupiter.service.planning import mapper_for


def test_the_stream_mapper_gets_the_configured_rate_and_cap(tmp_path: Path) -> None:
    config = tmp_path / "jupiter_config.ini"
    config.write_text("[CONFIG]\nSCHEDULER = stream\n[MAPPER]\nSTREAM_RATE = 2.5\nSTREAM_CAP = 0.8\nSEED = 4\n")
    parsed = parse_config(config)
    assert parsed.scheduler == "stream"
    # mapper_for reads only the spec's mapping section (and the problem for heft_modified's cap).
    spec = SimpleNamespace(mapping=SimpleNamespace(scheduler=parsed.scheduler, settings=parsed.mapper))
    name, params = mapper_for(spec, None)  # type: ignore[arg-type]
    assert (name, params) == ("stream", {"rate": 2.5, "utilisation_cap": 0.8, "seed": 4})
    assert isinstance(get_mapper(name, **params), StreamMapper)


def test_a_stream_rate_of_zero_maps_as_fast_as_it_goes(tmp_path: Path) -> None:
    config = tmp_path / "jupiter_config.ini"
    config.write_text("[CONFIG]\nSCHEDULER = stream\n")
    parsed = parse_config(config)
    spec = SimpleNamespace(mapping=SimpleNamespace(scheduler="stream", settings=parsed.mapper))
    assert mapper_for(spec, None)[1] == {"rate": None, "utilisation_cap": 0.9, "seed": 0}  # type: ignore[arg-type]
