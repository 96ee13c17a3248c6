"""Pricing CIRCE in the agents: price reports, controllers and routing by price.

With `PRICING = push` or `event` every compute node can run every task, and
the node that runs a task for a frame is chosen when the frame's input is
ready, by the task's *controller* (the node the mapper chose for the task):

* **Price reports.** Every compute node sends a `price` message to every
  controller and every home each `[PRICING] INTERVAL`: its slowdown, its
  backlog in seconds, how busy its processor was and its memory use
  (`jupiter.mapping.price_function.NodeReport`). Receivers stamp a report with their own
  clock when it arrives, so staleness never depends on clocks agreeing.
* **Event-driven** (`event`). The node holding a frame's input for a task
  asks the task's controller (`route`); the controller prices every compute
  node with a fresh report (`jupiter.mapping.price_function.choose`) and answers with the
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
  flight again (see `jupiter.runtime.extensions.home`), so frames held by the dead
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
from collections.abc import Awaitable, Callable, Collection, Coroutine, Mapping
from typing import Any

import psutil

from jupiter.mapping.price_function import AGGREGATES, CostModel, NodeReport, PriceWeights, choose, price_terms
from jupiter.model.errors import InputError
from jupiter.model.events import NodesDead
from jupiter.model.plan import HOME_TASK, PlanPricing
from jupiter.model.problem_files import problem_from_json
from jupiter.runtime.peers import Peer, TransferFailed
from jupiter.runtime.protocol import Message, Refusal, reply
from jupiter.runtime.routes import HttpError, Request, Routes
from jupiter.runtime.services import AgentServices, Extension, RequestHandler
from jupiter.runtime.spool import OutboxRecord

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


def cost_model(pricing: PlanPricing) -> CostModel:
    """The cost model a plan carries (default costs until profiling measured them)."""
    if pricing.problem is None:
        return CostModel(exec_times={})
    return CostModel.from_problem(pricing.problem, network=pricing.network)


class Pricing(Extension):
    """One agent's part in pricing CIRCE: reporter (compute), controller, and router (everyone).

    It is the agent's router (`jupiter.runtime.router.Router`) too: it places
    each output on the node its task's controller chooses, reroutes what a
    node could not take, and learns from every finished task.
    """

    name = "pricing"

    def __init__(self, services: AgentServices, on_dead: Callable[[str], Awaitable[int]] | None = None) -> None:
        self.services = services
        plan = services.plan
        assert plan.pricing is not None, "pricing needs a plan with a pricing section"
        if plan.pricing.aggregate not in AGGREGATES:
            raise ValueError(f"unknown price aggregate {plan.pricing.aggregate!r}")
        self.scheme = plan.pricing.scheme
        self.aggregate = plan.pricing.aggregate
        self.settings = plan.pricing.settings
        """`[PRICING]`: interval, staleness, margin and the weights."""
        self.weights = PriceWeights(
            network=self.settings.w_network,
            execution=self.settings.w_execution,
            queue=self.settings.w_queue,
            cpu=self.settings.w_cpu,
            memory=self.settings.w_memory,
        )
        self.model = cost_model(plan.pricing)
        self.on_dead = on_dead
        """Home: starts the frames in flight again when nodes die (wired by `jupiter.runtime.node`)."""
        self.compute = tuple(name for name, address in plan.nodes.items() if address.role == "compute")
        self.is_compute = services.node in self.compute
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

    # ---------------------------------------------------------- reporter

    def task_finished(self, task: str, answers: list[dict[str, Any]]) -> None:
        """Frames of `task` finished: update its measured time and the node's slowdown."""
        profiled = self.model.exec_time(task, self.services.node)
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
        node = self.services.node
        backlog = sum(
            (counters.waiting + counters.queued + counters.running)
            * self.measured.get(task, self.model.exec_time(task, node) * self.slowdown)
            for task, counters in self.services.counters().items()
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
        plan = self.services.plan
        return sorted(set(plan.mapping.values()) | set(plan.all_homes))

    async def report_loop(self) -> None:
        """Send this node's price report every interval."""
        while True:
            report = self.report()
            payload = json.dumps(report.to_json()).encode()
            sends = []
            for target in self.report_targets():
                if target == self.services.node:
                    self.on_report(report)
                else:
                    sends.append(self.tell(target, {"kind": "price"}, payload))
            await asyncio.gather(*sends)
            await asyncio.sleep(self.settings.interval)

    async def tell(self, target: str, header: dict[str, Any], payload: bytes) -> bool:
        """Send one pricing message, without insisting: the next interval sends fresh news."""
        try:
            await self.peers[target].ask(
                dict(header, token=self.services.token), payload, timeout=self.settings.stale, attempts=1
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
        if self.scheme == "push" and born is not None and not exclude:
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
            self.weights,
            self.aggregate,
            exclude=set(exclude) | self.dead,
            extra_backlog=self._queue_adjustment(now, pending),
            preferred=self.services.plan.mapping.get(task),
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
            for task in self.services.plan.controls(self.services.node):
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
                    for node in self.services.plan.nodes
                    if node != self.services.node
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
        plan = self.services.plan
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
            prices.append((terms.total(self.weights, self.aggregate), node))
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
        plan = self.services.plan
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
        push = self.scheme == "push"
        if push and not exclude and self.services.plan.tasks[task].num_inputs == 1:
            # One input: this holder alone routes the frame, so its own copy of the
            # pushed choice will do, and it may dodge the frame's siblings. A fan-in
            # task's parents ask the controller instead (module docstring).
            pushed = self.pushed_choice(task, frame, born, set(pending or {}))
            if pushed is not None:
                return pushed
        deadline = time.monotonic() + 2 * self.settings.stale
        while True:
            for controller in self.controllers_of(task):
                if controller == self.services.node:
                    node = self.decide(task, frame, self.services.node, size, exclude, pending, born if push else None)
                else:
                    header = {
                        "kind": "route",
                        "task": task,
                        "frame": frame,
                        "holder": self.services.node,
                        "size": size,
                        "exclude": sorted(exclude),
                        "pending": dict(pending or {}),
                        **({"born": born} if push else {}),
                    }
                    try:
                        answer = await self.peers[controller].ask(
                            dict(header, token=self.services.token), b"", timeout=self.settings.stale
                        )
                    except TransferFailed as exc:
                        log.warning("controller %s of %s: %s; asking the next one", controller, task, exc)
                        continue
                    node = answer.get("node") if isinstance(answer.get("node"), str) else None
                self.asked += 1
                if node is not None:
                    return node
            if time.monotonic() > deadline:
                fallback = self.services.plan.mapping[task]
                log.warning("no fresh price for %s (frame %s); sending it to its mapped node %s", task, frame, fallback)
                return fallback
            await asyncio.sleep(self.settings.interval / 2)

    # ------------------------------------------------------- as the router

    async def place(self, records: list[OutboxRecord]) -> list[OutboxRecord]:
        """Choose each record's node, frame by frame (records of one frame share its birth time)."""
        by_birth: dict[float, list[OutboxRecord]] = {}
        for record in records:
            by_birth.setdefault(float(record.header.get("born") or 0.0), []).append(record)
        placed: list[OutboxRecord] = []
        for born, group in by_birth.items():
            placed += await self.place_born(group, born)
        return placed

    async def reroute(self, dest: str, batch: list[OutboxRecord], errors: dict[str, Refusal]) -> list[OutboxRecord]:
        """Send what `dest` could not take (not mere backpressure) to another node instead.

        Returns the records still to be settled here; the others are journalled
        again for their new node (the outbox acknowledges the old entries
        without a failure; their folders are released when the new copies are
        delivered).
        """
        keep: list[OutboxRecord] = []
        again: list[OutboxRecord] = []
        for record in batch:
            error = errors.get(record.ident)
            task = str(record.header.get("task"))
            if error is None or error.busy or task == HOME_TASK:
                keep.append(record)
                continue
            size = os.path.getsize(record.payload) if os.path.exists(record.payload) else 0
            new_dest = await self.destination(
                task, str(record.header.get("frame")), float(record.header.get("born") or 0.0), size, exclude={dest}
            )
            if new_dest == dest:
                keep.append(record)
                continue
            log.warning(
                "%s did not take %s of frame %s (%s); sending it to %s",
                dest,
                task,
                record.header.get("frame"),
                error,
                new_dest,
            )
            again.append(OutboxRecord(self.services.new_id(), new_dest, record.header, record.payload, record.release))
        if again:
            self.services.deliver(again)
        return keep

    async def place_born(self, records: list[OutboxRecord], born: float) -> list[OutboxRecord]:
        """Choose the node of every record that goes to a task (outputs to home keep their home).

        Frames are placed side by side; the child tasks of one frame one
        after the other, longest first, each knowing where its siblings went,
        so parallel branches spread instead of queueing on the same node.
        """

        async def frame_records(group: list[OutboxRecord]) -> list[OutboxRecord]:
            pending: dict[str, float] = {}
            placed = []
            # The longest sibling first: it gains most from running here, without a transfer.
            node = self.services.node
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

    def requests(self) -> Mapping[str, RequestHandler]:
        async def answer(message: Message) -> bytes:
            return self.handle(message.kind, message.header, message.payload)

        return {kind: answer for kind in PRICING_MESSAGES}

    def add_routes(self, routes: Routes) -> None:
        routes.post("/pricing/model", self._model_route)

    def _model_route(self, request: Request) -> Any:
        """Dispatch: the measured cost model (a problem document) controllers price with from now on."""
        data = request.json_object()
        problem = data.get("problem")
        if not isinstance(problem, dict):
            raise HttpError(400, 'send {"problem": <problem document>, "network": true|false}')
        try:
            model = CostModel.from_problem(problem_from_json(problem), network=bool(data.get("network", True)))
        except (ValueError, InputError) as exc:
            raise HttpError(400, f"not a problem document: {exc}") from None

        async def install() -> None:
            self.model = model

        self.services.on_loop(install(), 10.0)
        return {"ok": True}

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
                    task in self.services.plan.tasks
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
        if not isinstance(task, str) or task not in self.services.plan.tasks:
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

    def status(self) -> Mapping[str, Any]:
        return {"pricing": self.summary()}

    def counters(self) -> Mapping[str, int]:
        return {"decided": self.decided}

    def restore_counters(self, saved: Mapping[str, int]) -> None:
        self.decided = saved.get("decided", self.decided)

    def summary(self) -> dict[str, Any]:
        """What `jupiter status` shows of pricing."""
        now = time.time()
        return {
            "scheme": self.scheme,
            "aggregate": self.aggregate,
            "dead": sorted(self.dead),
            "decided": self.decided,
            "slowdown": round(self.slowdown, 3),
            "reports": {
                node: {**report.to_json(), "age": round(now - report.time, 3)} for node, report in self.reports.items()
            },
            "pushed": dict(self.pushed),
        }

    def loops(self) -> list[Coroutine[Any, Any, Any]]:
        """Coroutines to run for the agent's lifetime."""
        coroutines: list[Coroutine[Any, Any, Any]] = []
        if self.is_compute:
            coroutines.append(self.report_loop())
        if self.scheme == "push":
            coroutines.append(self.push_loop())
        if self.services.node in self.services.plan.all_homes:
            coroutines.append(self.watch_nodes())
        return coroutines

    async def watch_nodes(self) -> None:
        """Home: declare a compute node dead when its price reports stop; start frames in flight again.

        A node silent for STALE seconds is pinged first: one that still
        answers on its data port is only late (busy), not dead. A round in
        which this loop itself woke up late judges nobody (the silence may
        be ours).
        """
        dead: set[str] = set()
        loop = asyncio.get_running_loop()
        interval, stale = self.settings.interval, self.settings.stale
        while True:
            asleep = loop.time()
            await asyncio.sleep(interval)
            if loop.time() - asleep > interval + stale / 2:
                continue
            now = time.time()
            silent = {node for node, report in self.reports.items() if now - report.time > stale}
            for node in sorted(silent - dead):
                if await self.tell(node, {"kind": "ping"}, b""):
                    silent.discard(node)
            if silent == dead:
                continue
            newly = sorted(silent - dead)
            dead = silent
            self.dead = set(dead)
            self.services.emit(NodesDead(dead=tuple(sorted(dead)), time=now))
            payload = json.dumps({"dead": sorted(dead)}).encode()
            await asyncio.gather(
                *(
                    self.tell(node, {"kind": "dead"}, payload)
                    for node in self.services.plan.nodes
                    if node != self.services.node
                )
            )
            if newly and self.on_dead is not None:
                count = await self.on_dead(f"{', '.join(newly)} stopped reporting")
                log.error("%s stopped reporting; %d frames in flight started again", ", ".join(newly), count)
