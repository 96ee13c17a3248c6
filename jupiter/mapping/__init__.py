"""Pure mapping algorithms: which node runs each task of a DAG, and when.

No I/O here (an import-linter contract enforces it): problems come in as
frozen data (:class:`Problem`), schedules go out as frozen data
(:class:`Schedule`), and one independent checker (:func:`check`) verifies
any schedule against its problem.

Typical use::

    from jupiter.mapping import get_mapper, check
    schedule = get_mapper("heft").schedule(problem)
    check(problem, schedule)
"""

from __future__ import annotations

from jupiter.mapping.base import Mapper
from jupiter.mapping.best import BestMapper
from jupiter.mapping.checker import ScheduleViolation, check, violations
from jupiter.mapping.cpop import CpopMapper
from jupiter.mapping.evaluator import evaluate_mapping
from jupiter.mapping.fastest_node import FastestNodeMapper
from jupiter.mapping.heft import HeftMapper, heft_order
from jupiter.mapping.heft_modified import HeftModifiedMapper
from jupiter.mapping.minmin import MinMinMapper
from jupiter.mapping.peft import PeftMapper
from jupiter.mapping.predict import ArrivalProcess, Percentiles, Periods, Prediction, pipeline_periods, predict_stream
from jupiter.mapping.problem import Edge, LinkCost, Problem, Resources, related_machines
from jupiter.mapping.registry import get_mapper, mapper_names
from jupiter.mapping.schedule import Placement, Schedule
from jupiter.mapping.static import StaticMapper
from jupiter.mapping.stream import StreamMapper
from jupiter.mapping.wave import (
    GreedyPolicy,
    RandomPolicy,
    WaveGreedyMapper,
    WaveRandomMapper,
    appoint_children,
    select_controllers,
)

__all__ = [
    "ArrivalProcess",
    "BestMapper",
    "CpopMapper",
    "Edge",
    "FastestNodeMapper",
    "GreedyPolicy",
    "HeftMapper",
    "HeftModifiedMapper",
    "LinkCost",
    "Mapper",
    "MinMinMapper",
    "PeftMapper",
    "Percentiles",
    "Periods",
    "Placement",
    "Prediction",
    "Problem",
    "RandomPolicy",
    "Resources",
    "Schedule",
    "ScheduleViolation",
    "StaticMapper",
    "StreamMapper",
    "WaveGreedyMapper",
    "WaveRandomMapper",
    "appoint_children",
    "check",
    "evaluate_mapping",
    "get_mapper",
    "heft_order",
    "mapper_names",
    "pipeline_periods",
    "predict_stream",
    "related_machines",
    "select_controllers",
    "violations",
]
