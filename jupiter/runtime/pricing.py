"""Pricing CIRCE in the agents: price reports, controllers and routing by price.

With `PRICING = push` or `event` every compute node can run every task, and
the node that runs a task for a frame is chosen when the frame's input is
ready, by the task's *controller* (the node the mapper chose for the task):

* **Price reports.** Every compute node sends a `price` message to every
  controller and every home each `[PRICING] INTERVAL`: its slowdown, its
  backlog in seconds, how busy its processor was and its memory use
  (`jupiter.pricing.NodeReport`). Receivers stamp a report with their own
  clock when it arrives, so staleness never depends on clocks agreeing.
* **Event-driven** (`event`). The node holding a frame's input for a task
  asks the task's controller (`route`); the controller prices every compute
  node with a fresh report (`jupiter.pricing.choose`) and answers with the
  cheapest. Decisions are cached per (task, frame): every parent of a
  fan-in task, and every retry, gets the same node. Between reports the
  controller adds the work it sent to a node to that node's backlog, so a
  burst of frames spreads instead of piling onto the node that was cheapest
  at the last report.
* **Push** (`push`). Controllers recompute each of their tasks' choice every
  interval and push it (`choice`) to every node, valid for frames born
  (submitted at home) from two intervals later on; holders of a task with
  one input route with no request per frame. A choice is the set of nodes
  priced within `PUSH_SPREAD` of the cheapest, with shares inversely
  proportional to their prices (one node alone would take a whole burst); a
  frame's node is picked by a hash of its id. The parents of a fan-in task
  must send a frame's inputs to the same node, and a push is a message that
  can arrive late or not at all (it is sent once; the next interval sends
  fresh news), so their holders do not trust their own copies: they ask the
  controller, which answers from the choices it made itself and caches the
  answer per frame.
* **Failures.** A controller that does not answer is replaced by the home
  node, which receives every report and can decide for any task. A transfer
  to a node that fails after its retries is routed again without that node.
  Home declares a compute node dead when its reports stop for `STALE`
  seconds, tells every agent (`dead`), and starts the frames still in
  flight again (see `jupiter.runtime.home`), so frames held by the dead
  node are not lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import time
import zlib
from collections import OrderedDict
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psutil

from jupiter.pricing import AGGREGATES, CostModel, NodeReport, PriceWeights, choose, price_terms
from jupiter.profiles import problem_from_json
from jupiter.runtime.plan import HOME_TASK
from jupiter.runtime.protocol import reply
from jupiter.runtime.store import OutboxRecord
from jupiter.runtime.transfer import Peer, TransferFailed

if TYPE_CHECKING:
    from jupiter.runtime.agent import Agent

log = logging.getLogger("jupiter.pricing")

DECISIONS_KEPT = 50_000
"""Per-frame decisions a controller remembers (retries of older frames are decided again)."""
CHOICE_HORIZON = 300.0
"""Seconds of pushed choices a holder keeps: the parents of a fan-in task must agree on a frame
however long it waits between them, so a choice is forgotten only long after it stopped applying."""
SLOWDOWN_SMOOTHING = 0.3
PUSH_SPREAD = 1.5
"""Push mode: nodes priced within this factor of the cheapest share the frames."""
PRICE_FLOOR = 1e-4
CPU_WINDOW = 1.0
"""Seconds over which a node measures the CPU others use."""
PRICING_MESSAGES = ("price", "route", "choice", "dead")


@dataclass(frozen=True)
class PricingSettings:
    """How a deployment prices (from `plan.extra["pricing"]`)."""

    scheme: str
    aggregate: str = "sum"
    weights: PriceWeights = dataclasses.field(default_factory=PriceWeights)
    interval: float = 0.2
    stale: float = 1.0
    margin: float = 0.25
    network: bool = False
    """Whether the model's links come from a network profile (else the network term is 0)."""

    @classmethod
    def from_extra(cls, scheme: str, extra: Mapping[str, Any]) -> PricingSettings:
        raw = dict(extra.get("pricing", {}))
        aggregate = str(raw.get("aggregate", "sum"))
        if aggregate not in AGGREGATES:
            raise ValueError(f"unknown price aggregate {aggregate!r}")
        return cls(
            scheme=scheme,
            aggregate=aggregate,
            weights=PriceWeights(**raw.get("weights", {})),
            interval=float(raw.get("interval", 0.2)),
            stale=float(raw.get("stale", 1.0)),
            margin=float(raw.get("margin", 0.25)),
            network=bool(raw.get("network", False)),
        )


def cost_model(extra: Mapping[str, Any]) -> CostModel:
    """The cost model a plan carries (`extra["pricing"]["problem"]`)."""
    raw = extra.get("pricing", {})
    problem = raw.get("problem")
    if not problem:
        return CostModel(exec_times={})
    return CostModel.from_problem(problem_from_json(problem), network=bool(raw.get("network", False)))


class PricingService:
    """One agent's part in pricing CIRCE: reporter (compute), controller, and router (everyone)."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        plan = agent.plan
        self.settings = PricingSettings.from_extra(plan.pricing, plan.extra)
        self.model = cost_model(plan.extra)
        self.compute = tuple(name for name, address in plan.nodes.items() if address.role == "compute")
        self.is_compute = agent.node in self.compute
        self.peers = {
            name: Peer(name, address.host, address.data_port, retries=0, pool_size=2, timeout=2.0)
            for name, address in plan.nodes.items()
        }
        # Reporter: how slow this node has been lately, and how much of its CPU others use.
        self.slowdown = 1.0
        self.measured: dict[str, float] = {}
        self.group = self._process_group()
        self.cpu_mark = (time.monotonic(), self._own_cpu_seconds())
        self.cpu_others = 0.0
        psutil.cpu_percent(interval=None)  # starts psutil's measurement window
        # Controller (and home, the backup controller): the latest report of every node.
        self.reports: dict[str, NodeReport] = {}
        self.busy_until: dict[str, float] = {}
        """When each node will have done the work it reported plus what this controller sent it since."""
        self.decisions: OrderedDict[tuple[str, str], str] = OrderedDict()
        self.pushed: dict[str, str] = {}
        # Router: pushed choices and the nodes home declared dead.
        self.choices: dict[str, list[tuple[float, list[tuple[str, float]]]]] = {}
        self.dead: set[str] = set()
        self.asked = 0
        self.decided = 0

    # ------------------------------------------------------------- model

    def set_model(self, problem: Mapping[str, Any] | None, network: bool) -> None:
        """Use measured costs (sent with the mapping after profiling)."""
        if problem:
            self.model = CostModel.from_problem(problem_from_json(problem), network=network)

    # ---------------------------------------------------------- reporter

    def task_finished(self, task: str, answers: list[dict[str, Any]]) -> None:
        """Frames of `task` finished: update its measured time and the node's slowdown."""
        profiled = self.model.exec_time(task, self.agent.node)
        for answer in answers:
            if answer.get("ok"):
                seconds = max(0.0, float(answer["finish"]) - float(answer["execute"]))
                if profiled > 0:
                    self.slowdown += SLOWDOWN_SMOOTHING * (seconds / profiled - self.slowdown)
                before = self.measured.get(task, seconds)
                self.measured[task] = before + SLOWDOWN_SMOOTHING * (seconds - before)

    @staticmethod
    def _process_group() -> psutil.Process:
        """The root of the processes that are Jupiter's own work on this machine.

        The leader of our session when it is one of our ancestors: on the
        local backend the supervisor, so every node's agents and workers
        (nodes that share the machine are not each other's contention); in a
        container, the container's processes. Otherwise this agent.
        """
        me = psutil.Process()
        with contextlib.suppress(psutil.Error, OSError):
            leader = os.getsid(0)
            if leader == me.pid or leader in {parent.pid for parent in me.parents()}:
                return psutil.Process(leader)
        return me

    def _own_cpu_seconds(self) -> float:
        """CPU seconds used so far by Jupiter's processes on this machine (see `_process_group`)."""
        total = 0.0
        with contextlib.suppress(psutil.Error):
            for process in [self.group, *self.group.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    times = process.cpu_times()
                    total += times.user + times.system
        return total

    def others_cpu(self) -> float:
        """Share of the machine's CPU used lately by anything but Jupiter's own processes (0-1).

        Jupiter's own work is the queue term already; this is the contention
        that term cannot see (other programs on the node). Measured at most
        once per CPU_WINDOW seconds.
        """
        now = time.monotonic()
        then, before = self.cpu_mark
        if now - then < CPU_WINDOW:
            return self.cpu_others
        own = self._own_cpu_seconds()
        self.cpu_mark = (now, own)
        mine = (own - before) / max(now - then, 1e-6) / (psutil.cpu_count() or 1)
        self.cpu_others = min(1.0, max(0.0, psutil.cpu_percent(interval=None) / 100.0 - mine))
        return self.cpu_others

    def report(self) -> NodeReport:
        """This node's figures now."""
        node = self.agent.node
        backlog = sum(
            (counters.waiting + counters.queued + counters.running)
            * self.measured.get(task, self.model.exec_time(task, node) * self.slowdown)
            for task, counters in self.agent.counters.items()
        )
        return NodeReport(
            node=node,
            time=time.time(),
            slowdown=self.slowdown,
            backlog=backlog,
            cpu=self.others_cpu(),
            memory=psutil.virtual_memory().percent / 100.0,
            exec_times=dict(self.measured),
        )

    def report_targets(self) -> list[str]:
        """Controllers and homes: everyone who prices or watches liveness."""
        plan = self.agent.plan
        return sorted(set(plan.mapping.values()) | set(plan.all_homes))

    async def report_loop(self) -> None:
        """Send this node's price report every interval."""
        while True:
            report = self.report()
            payload = json.dumps(report.to_json()).encode()
            sends = []
            for target in self.report_targets():
                if target == self.agent.node:
                    self.on_report(report)
                else:
                    sends.append(self.tell(target, {"kind": "price"}, payload))
            await asyncio.gather(*sends)
            await asyncio.sleep(self.settings.interval)

    async def tell(self, target: str, header: dict[str, Any], payload: bytes) -> bool:
        """Send one pricing message, without insisting: the next interval sends fresh news."""
        try:
            await self.peers[target].ask(
                dict(header, token=self.agent.token), payload, timeout=self.settings.stale, attempts=1
            )
        except TransferFailed as exc:
            log.debug("%s: %s", target, exc)
            return False
        return True

    # -------------------------------------------------------- controller

    def on_report(self, report: NodeReport) -> None:
        """Keep a node's report, stamped with our clock."""
        if report.node not in self.compute:
            return
        self.reports[report.node] = dataclasses.replace(report, time=time.time())
        self.busy_until[report.node] = time.time() + report.backlog

    def fresh_reports(self) -> dict[str, NodeReport]:
        """Reports in nodes.txt order (the tie-break), including stale ones (choose skips them)."""
        return {node: self.reports[node] for node in self.compute if node in self.reports}

    def decide(
        self,
        task: str,
        frame: str,
        holder: str,
        size: float,
        exclude: Collection[str] = (),
        pending: Mapping[str, float] | None = None,
        born: float | None = None,
    ) -> str | None:
        """The node to run `task` for `frame` (cached per frame), or None when no node has a fresh price.

        `pending`: seconds of work the holder has just placed on nodes for
        the same frame (sibling tasks), which no report shows yet. `born`
        (push): when the frame started; the answer is then the node this
        controller's own pushed choice gives the frame, when it has one.
        """
        key = (task, frame)
        cached = self.decisions.get(key)
        if cached is not None and cached not in exclude and cached not in self.dead:
            return cached
        if self.settings.scheme == "push" and born is not None and not exclude:
            pushed = self.pushed_choice(task, frame, born)
            if pushed is not None:
                self._remember(key, pushed)
                return pushed
        now = time.time()
        choice = choose(
            self.model,
            task,
            self.fresh_reports(),
            holder,
            size,
            now,
            self.settings.stale,
            self.settings.weights,
            self.settings.aggregate,
            exclude=set(exclude) | self.dead,
            extra_backlog=self._queue_adjustment(now, pending),
            preferred=self.agent.plan.mapping.get(task),
            margin=self.settings.margin,
        )
        if choice is None:
            return None
        self._remember(key, choice.node)
        self.busy_until[choice.node] = max(now, self.busy_until.get(choice.node, now)) + choice.terms.execution
        return choice.node

    def _remember(self, key: tuple[str, str], node: str) -> None:
        self.decided += 1
        self.decisions[key] = node
        self.decisions.move_to_end(key)
        if len(self.decisions) > DECISIONS_KEPT:
            self.decisions.popitem(last=False)

    def _queue_adjustment(self, now: float, pending: Mapping[str, float] | None) -> dict[str, float]:
        """Per node, the queue as this controller predicts it now minus the reported backlog.

        A report's backlog drains as time passes and grows with every frame
        sent since (a virtual queue per node), so a burst spreads and a
        finished burst is forgotten without waiting for the next report.
        Sibling tasks the holder just placed (`pending`) count too.
        """
        adjustment = {}
        for node, report in self.reports.items():
            queue = max(0.0, self.busy_until.get(node, now) - now)
            adjustment[node] = queue - report.backlog + (pending or {}).get(node, 0.0)
        return adjustment

    async def push_loop(self) -> None:
        """Push mode: recompute this controller's choices and push them to every node, every interval."""
        while True:
            await asyncio.sleep(self.settings.interval)
            choices: dict[str, list[tuple[str, float]]] = {}
            for task in self.agent.plan.controls(self.agent.node):
                shares = self.push_shares(task)
                if shares:
                    choices[task] = shares
            if not choices:
                continue
            self.pushed = {task: shares[0][0] for task, shares in choices.items()}
            # Valid from two intervals on: every node has it before a frame born then is routed.
            start = time.time() + 2 * self.settings.interval
            payload = json.dumps({"from": start, "choices": choices}).encode()
            self.on_choice(start, choices)
            await asyncio.gather(
                *(
                    self.tell(node, {"kind": "choice"}, payload)
                    for node in self.agent.plan.nodes
                    if node != self.agent.node
                )
            )

    def push_shares(self, task: str) -> list[tuple[str, float]]:
        """A task's pushed choice: the nodes priced within PUSH_SPREAD of the cheapest, with shares.

        A single node would take every frame until the next push (a burst
        would pile onto it); instead frames are split among the nearly
        cheapest nodes in inverse proportion to their price. The price is
        taken from the task's first parent's controller at the profiled
        input size, since push mode prices no frame in particular, and with
        each node's backlog as it will be when the choice applies.
        """
        plan = self.agent.plan
        parents = plan.tasks[task].parents
        holder = plan.mapping.get(parents[0], plan.home) if parents else plan.home
        size = self.model.edge_bytes.get((parents[0], task), 0.0) if parents else 0.0
        now = time.time()
        # The choice routes frames born from two intervals on: by then a node has worked off
        # that much of the backlog it reported (a queue that outlasts it still counts).
        applies = now + 2 * self.settings.interval
        prices: list[tuple[float, str]] = []
        for node, report in self.fresh_reports().items():
            if node in self.dead or now - report.time > self.settings.stale:
                continue
            terms = price_terms(self.model, task, report, holder, size, extra_backlog=report.time - applies)
            prices.append((terms.total(self.settings.weights, self.settings.aggregate), node))
        if not prices:
            return []
        cheapest = min(price for price, _ in prices)
        mapped = plan.mapping.get(task)
        if any(node == mapped and price <= cheapest * (1.0 + self.settings.margin) for price, node in prices):
            return [(str(mapped), 1.0)]  # the mapper's choice is as good as any: keep it
        kept = [
            (node, 1.0 / max(price, PRICE_FLOOR))
            for price, node in prices
            if price <= cheapest * PUSH_SPREAD + PRICE_FLOOR
        ]
        total = sum(weight for _, weight in kept)
        return sorted(((node, weight / total) for node, weight in kept), key=lambda item: -item[1])

    # ------------------------------------------------------------ router

    def on_choice(self, start: float, choices: Mapping[str, list[tuple[str, float]]]) -> None:
        for task, shares in choices.items():
            history = self.choices.setdefault(task, [])
            history.append((start, [(str(node), float(weight)) for node, weight in shares]))
            history.sort(key=lambda item: item[0])
            # Keep the last choice that started before the horizon: it still applies to older frames.
            horizon = time.time() - CHOICE_HORIZON
            while len(history) > 1 and history[1][0] <= horizon:
                del history[0]

    def pushed_choice(self, task: str, frame: str, born: float, avoid: Collection[str] = ()) -> str | None:
        """The node the pushed choice in force for a frame born at `born` gives this frame.

        The frame's place among the shares comes from a hash of its id, so
        every parent of a fan-in task picks the same node for it.
        """
        history = self.choices.get(task)
        if not history:
            return None
        shares = history[0][1]
        for start, entry in history:
            if start <= born:
                shares = entry
        alive = [(node, weight) for node, weight in shares if node not in self.dead]
        if not alive:
            return None
        point = zlib.crc32(frame.encode()) / 2**32 * sum(weight for _, weight in alive)
        index = len(alive) - 1
        for position, (_, weight) in enumerate(alive):
            point -= weight
            if point < 0:
                index = position
                break
        # A sibling of this frame already went there: take the next share instead.
        for step in range(len(alive)):
            node = alive[(index + step) % len(alive)][0]
            if node not in avoid:
                return node
        return alive[index][0]

    def controllers_of(self, task: str) -> list[str]:
        """Who may decide for a task: its controller, then the homes (backups)."""
        plan = self.agent.plan
        order = [plan.mapping[task], *plan.all_homes]
        return [node for index, node in enumerate(order) if node not in order[:index] and node not in self.dead]

    async def destination(
        self,
        task: str,
        frame: str,
        born: float,
        size: float,
        exclude: Collection[str] = (),
        pending: Mapping[str, float] | None = None,
    ) -> str:
        """Where `task` runs for `frame`; never fails (the mapped node is the last resort)."""
        push = self.settings.scheme == "push"
        if push and not exclude and self.agent.plan.tasks[task].num_inputs == 1:
            # One input: this holder alone routes the frame, so its own copy of the
            # pushed choice will do, and it may dodge the frame's siblings. A fan-in
            # task's parents ask the controller instead (module docstring).
            pushed = self.pushed_choice(task, frame, born, set(pending or {}))
            if pushed is not None:
                return pushed
        deadline = time.monotonic() + 2 * self.settings.stale
        while True:
            for controller in self.controllers_of(task):
                if controller == self.agent.node:
                    node = self.decide(task, frame, self.agent.node, size, exclude, pending, born if push else None)
                else:
                    header = {
                        "kind": "route",
                        "task": task,
                        "frame": frame,
                        "holder": self.agent.node,
                        "size": size,
                        "exclude": sorted(exclude),
                        "pending": dict(pending or {}),
                        **({"born": born} if push else {}),
                    }
                    try:
                        answer = await self.peers[controller].ask(
                            dict(header, token=self.agent.token), b"", timeout=self.settings.stale
                        )
                    except TransferFailed as exc:
                        log.warning("controller %s of %s: %s; asking the next one", controller, task, exc)
                        continue
                    node = answer.get("node") if isinstance(answer.get("node"), str) else None
                self.asked += 1
                if node is not None:
                    return node
            if time.monotonic() > deadline:
                fallback = self.agent.plan.mapping[task]
                log.warning("no fresh price for %s (frame %s); sending it to its mapped node %s", task, frame, fallback)
                return fallback
            await asyncio.sleep(self.settings.interval / 2)

    async def place(self, records: list[OutboxRecord], born: float) -> list[OutboxRecord]:
        """Choose the node of every record that goes to a task (outputs to home keep their home).

        Frames are placed side by side; the child tasks of one frame one
        after the other, longest first, each knowing where its siblings went,
        so parallel branches spread instead of queueing on the same node.
        """

        async def frame_records(group: list[OutboxRecord]) -> list[OutboxRecord]:
            pending: dict[str, float] = {}
            placed = []
            # The longest sibling first: it gains most from running here, without a transfer.
            node = self.agent.node
            group = sorted(group, key=lambda record: -self.model.exec_time(str(record.header["task"]), node))
            for record in group:
                task = str(record.header["task"])
                if task == HOME_TASK:
                    placed.append(record)
                    continue
                size = os.path.getsize(record.payload)
                dest = await self.destination(task, str(record.header["frame"]), born, size, pending=pending)
                pending[dest] = pending.get(dest, 0.0) + self.model.exec_time(task, dest)
                placed.append(dataclasses.replace(record, dest=dest))
            return placed

        groups: dict[str, list[OutboxRecord]] = {}
        for record in records:
            groups.setdefault(str(record.header["frame"]), []).append(record)
        results = await asyncio.gather(*(frame_records(group) for group in groups.values()))
        return [record for group in results for record in group]

    # ---------------------------------------------------------- messages

    def handle(self, kind: str, header: Mapping[str, Any], payload: bytes) -> bytes:
        """Answer one pricing message (the answer line to write back)."""
        try:
            body = json.loads(payload) if payload else {}
        except json.JSONDecodeError:
            return reply(False, f"{kind} payload is not JSON")
        try:
            if kind == "price":
                self.on_report(NodeReport.from_json(body))
            elif kind == "choice":
                choices = body.get("choices", {})
                if not isinstance(choices, dict) or not all(
                    task in self.agent.plan.tasks
                    and isinstance(shares, list)
                    and all(
                        isinstance(share, list) and len(share) == 2 and share[0] in self.compute for share in shares
                    )
                    for task, shares in choices.items()
                ):
                    return reply(False, "choice names an unknown task or node")
                self.on_choice(float(body["from"]), choices)
            elif kind == "dead":
                dead = body.get("dead", [])
                if not isinstance(dead, list):
                    return reply(False, "dead list expected")
                self.dead = {str(node) for node in dead}
            elif kind == "route":
                return self._route(header)
        except (ValueError, TypeError, KeyError) as exc:
            return reply(False, f"bad {kind} message: {exc}")
        return reply(True)

    def _route(self, header: Mapping[str, Any]) -> bytes:
        task, frame, holder = header.get("task"), header.get("frame"), header.get("holder")
        if not isinstance(task, str) or task not in self.agent.plan.tasks:
            return reply(False, f"route: unknown task {task!r}")
        if not isinstance(frame, str) or not isinstance(holder, str):
            return reply(False, "route: frame and holder must be names")
        size = header.get("size", 0)
        exclude = header.get("exclude", [])
        raw_pending = header.get("pending", {})
        pending = (
            {str(node): float(seconds) for node, seconds in raw_pending.items()}
            if isinstance(raw_pending, dict)
            else {}
        )
        born = header.get("born")
        node = self.decide(
            task,
            frame,
            holder,
            float(size),
            [str(name) for name in exclude],
            pending,
            float(born) if isinstance(born, int | float) else None,
        )
        if node is None:
            return reply(False, f"no compute node has a fresh price for {task}")
        return reply(True, node=node)

    def status(self) -> dict[str, Any]:
        now = time.time()
        return {
            "scheme": self.settings.scheme,
            "aggregate": self.settings.aggregate,
            "dead": sorted(self.dead),
            "decided": self.decided,
            "slowdown": round(self.slowdown, 3),
            "reports": {
                node: {**report.to_json(), "age": round(now - report.time, 3)} for node, report in self.reports.items()
            },
            "pushed": dict(self.pushed),
        }

    def loops(self) -> list[Any]:
        """Coroutines to run for the agent's lifetime."""
        coroutines: list[Any] = []
        if self.is_compute:
            coroutines.append(self.report_loop())
        if self.settings.scheme == "push":
            coroutines.append(self.push_loop())
        return coroutines
