"""Every path of a deployment folder, in one place.

A deployment lives in `<STATE_DIR>/<id>/`; the CLI, the backends, the agents
(home's statistics, each node's journals), reports and teardown all find
their files through :class:`DeploymentLayout`, so the folder's shape is
written down once::

    <id>/deployment.json   the record to reach and stop the deployment again
         state             starting, running, stopped or failed
         token             the deployment's secret (0600)
         plan.json         what every agent reads
         profile.json      the profilers' measurements; mapping.json the predicted schedule
         logs/<node>.log   each agent's log; logs/<node>-<helper>.log each helper process's
         nodes/<node>/     an agent's own state (journals, task logs)
         home/             the first home's statistics, event log, outputs (`output/<frame>/`),
                           and `summary.json` of the last `jupiter run`
         <home2>/          further homes' (pricing with several homes)
         report/           `jupiter report`'s page and charts

Files in transit between tasks may live elsewhere (a spool folder in
memory, `SpoolLayout`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

LEGACY_CURRENT = "current"
"""File in the state folder that named the one active deployment before deployments ran side by side."""
RECORD = "deployment.json"
STATISTICS_FILES = ("runtime_tasks.txt", "runtime_transfer_sender.txt", "runtime_transfer_receiver.txt")
EVENTS_FILE = "events.jsonl"
SUMMARY_FILE = "summary.json"
STORE_FILE = "profiles.sqlite"


def is_statistics_file(name: str) -> bool:
    """Whether a file of a home folder is one of its statistics files (`events.jsonl`, `runtime_*.txt`)."""
    return name == EVENTS_FILE or (name.startswith("runtime_") and name.endswith(".txt"))


@dataclass(frozen=True)
class HomeLayout:
    """One home node's folder: inputs, frames in flight, outputs and statistics."""

    dir: Path

    @property
    def input(self) -> Path:
        """Files dropped here start frames."""
        return self.dir / "input"

    @property
    def frames(self) -> Path:
        """Home's copies of the inputs of frames in flight."""
        return self.dir / "frames"

    @property
    def output(self) -> Path:
        return self.dir / "output"

    def frame_output(self, frame: str) -> Path:
        return self.output / frame

    def frame_results(self, frame: str) -> Path:
        """The slot markers of a frame's final outputs while it is in flight (outputs only in `output/`)."""
        return self.dir / "results" / frame

    @property
    def events(self) -> Path:
        return self.dir / EVENTS_FILE

    @property
    def summary(self) -> Path:
        """`jupiter run`'s summary of the run (beside `output/`)."""
        return self.dir / SUMMARY_FILE

    def statistics(self, name: str) -> Path:
        return self.dir / name

    @property
    def store(self) -> Path:
        """The SQLite store of profiles and statistics (STORE = sqlite)."""
        return self.dir / STORE_FILE


@dataclass(frozen=True)
class NodeLayout:
    """One agent's own folder (on the deployment's disk) and its files in transit (in the spool)."""

    dir: Path
    spool: Path

    @property
    def logs(self) -> Path:
        """Task workers' logs (`<task>.log`)."""
        return self.dir / "logs"

    def task_log(self, task: str) -> Path:
        return self.logs / f"{task}.log"

    @property
    def outbox(self) -> Path:
        return self.dir / "outbox.log"

    @property
    def done(self) -> Path:
        """(task, frame) pairs finished here, one per line (`task frame`, `task frame failed`)."""
        return self.dir / "done.log"

    @property
    def counters(self) -> Path:
        """Counters `done.log` cannot tell after a restart (peaks, pricing's decisions)."""
        return self.dir / "counters.json"

    @property
    def staging(self) -> Path:
        return self.dir / "staging"

    @property
    def profiling(self) -> Path:
        """Scratch folder of the execution profiler."""
        return self.dir / "profile" / "exec"

    def inbox(self, task: str) -> Path:
        """Inputs of a task's frames (pooled folders)."""
        return self.spool / "inbox" / task

    def work(self, task: str) -> Path:
        """Outputs of a task's frames until they are delivered (pooled folders)."""
        return self.spool / "work" / task


@dataclass(frozen=True)
class DeploymentLayout:
    """The folder of one deployment."""

    root: Path
    spool: Path | None = None
    """Where files in transit live (None: inside the deployment folder)."""

    @property
    def id(self) -> str:
        return self.root.name

    @property
    def record(self) -> Path:
        return self.root / RECORD

    @property
    def state(self) -> Path:
        """Where the deployment is in its life (`jupiter.service.record.State`)."""
        return self.root / "state"

    @property
    def token(self) -> Path:
        return self.root / "token"

    @property
    def plan(self) -> Path:
        return self.root / "plan.json"

    @property
    def profile(self) -> Path:
        return self.root / "profile.json"

    @property
    def predicted(self) -> Path:
        """The mapper's predicted schedule (`mapping.json`)."""
        return self.root / "mapping.json"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def log(self, node: str) -> Path:
        return self.logs / f"{node}.log"

    def helper_log(self, node: str, helper: str) -> Path:
        """Output of one of the app's helper processes (`jupiter.runtime.helpers`)."""
        return self.logs / f"{node}-{helper}.log"

    @property
    def report(self) -> Path:
        return self.root / "report"

    # Local backend's supervisor.
    @property
    def agents(self) -> Path:
        """node -> argument list of its agent."""
        return self.root / "agents.json"

    @property
    def pids(self) -> Path:
        return self.root / "pids.json"

    @property
    def held(self) -> Path:
        """Nodes named here stay down (fault injection)."""
        return self.root / "held"

    @property
    def supervisor_log(self) -> Path:
        return self.root / "supervisor.log"

    # Container backends.
    @property
    def plans(self) -> Path:
        """Each container's own plan (docker)."""
        return self.root / "plans"

    @property
    def shaping(self) -> Path:
        """Link shaping rules and reports (docker)."""
        return self.root / "shaping"

    def node(self, name: str) -> NodeLayout:
        return NodeLayout(self.root / "nodes" / name, (self.spool or self.root) / "nodes" / name)

    def home(self, name: str, first: str) -> HomeLayout:
        """A home node's folder: `home/` for the first home (the original's name), `<name>/` for others."""
        return HomeLayout(self.root / "home" if name == first else self.root / name)


def token_of(root: Path) -> str:
    """A deployment's token, read from its folder."""
    return (root / "token").read_text().strip()
