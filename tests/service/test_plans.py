"""The plan carries the app's `input` row of name_convert.txt to home."""

from __future__ import annotations

import json

from jupiter.model.deployment_spec import resolve_spec
from jupiter.model.plan import NodeAddress, Plan
from jupiter.model.workspace import load_workspace
from jupiter.service.plans import build_plan
from tests.conftest import Workdir

NAMES = "split split botnet\nleft left split\nright right split\njoin join left,right\ninput global botnet\n"


def _plan(workdir: Workdir) -> Plan:
    spec = resolve_spec(load_workspace(workdir.root / "jupiter_config.ini", workdir.root / "nodes.txt", None))
    addresses = {name: NodeAddress(name, role, "127.0.0.1", 1, 2) for name, role in spec.roles()}
    return build_plan(spec, "20260101-000000-aaaaaa", {}, addresses)


def test_the_input_row_travels_in_the_plan(workdir: Workdir) -> None:
    workdir.write_app("name_convert.txt", NAMES)  # as the generated apps write it: the `input` row last
    plan = _plan(workdir)
    assert plan.io_names == ("global", "botnet")
    assert Plan.from_json(plan.to_json()).io_names == ("global", "botnet")


def test_without_the_row_or_in_an_older_plan_there_are_none(workdir: Workdir) -> None:
    plan = _plan(workdir)
    assert plan.io_names is None
    older = json.loads(plan.to_json())
    del older["io_names"]
    assert Plan.from_json(json.dumps(older)).io_names is None
