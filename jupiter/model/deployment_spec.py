"""A deployment's settings, resolved once from a validated workspace.

`resolve_spec` turns the three input files (config, nodes, app) into one
frozen :class:`DeploymentSpec`: every path absolute, the testbed and the
link list parsed, every choice typed. The service layer builds it at the
start of `deploy`, `run`, `profile` or `render` and passes it down to the
backends, the plan builder, the profilers and the mappers; nothing below
re-reads the workspace or the config file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from jupiter.model.app import App
from jupiter.model.config import (
    ContainerSettings,
    ControlLimits,
    JupiterConfig,
    MapperSettings,
    Ports,
    PricingSettings,
)
from jupiter.model.errors import InputError
from jupiter.model.links import parse_link_list
from jupiter.model.nodes import NodeList, NodeRole
from jupiter.model.plan import Limits, PlanProfiling, StoreSpec
from jupiter.model.testbed import Testbed, parse_testbed
from jupiter.model.workspace import Workspace


@dataclass(frozen=True)
class ProfilingSpec:
    """What the profilers measure before mapping (`[PROFILING]`, resolved)."""

    sizes: tuple[int, ...]
    samples: int
    interval: float
    """Seconds between network re-profiles of a long-lived deployment; 0 = once."""
    exec_runs: int
    timeout: float
    links: tuple[tuple[str, str], ...] | None
    """The link list's links; None = every ordered pair of agents."""
    store: str
    """`sqlite` or `mongodb`."""
    mongo_url: str
    profiler: str
    """`[CONFIG] PROFILER`: `drupe` or a plug-in `package.module:Factory`."""
    exec_budget: float = 10.0
    """Seconds of runs per task and node after which the execution profiler runs it no more."""
    exec_parallel: str = "auto"
    """`auto` (the backend says), `yes` or `no`: compute nodes run the execution profiler side by side."""
    cache: bool = True
    """`[PROFILING] CACHE`: reuse the cached profile of the same app, nodes and settings, and keep new ones."""
    reuse: Path | None = None
    """`--profile FILE`: map from this profile instead of measuring."""
    fresh: bool = False
    """`--reprofile`: measure even when a cached profile would do (and keep the new one)."""

    def plan(self, reprofile: bool) -> PlanProfiling:
        """The agents' part of it (no periodic re-profiles unless `reprofile`)."""
        return PlanProfiling(
            sizes=self.sizes,
            samples=self.samples,
            interval=self.interval if reprofile else 0.0,
            links=self.links,
        )

    def store_spec(self, sqlite_file: Path) -> StoreSpec:
        """Home's store: the SQLite file given (in home's folder), or the MongoDB server."""
        if self.store == "mongodb":
            return StoreSpec(kind="mongodb", url=self.mongo_url)
        return StoreSpec(kind="sqlite", path=str(sqlite_file))


@dataclass(frozen=True)
class TransferSpec:
    """How files travel between agents (`[CONFIG] TRANSFER` and, for SCP, `[AUTH]`, `[PORT] SSH_SVC`)."""

    method: str
    """`http` (inside data-plane messages), `scp`, or a plug-in `package.module:Factory`."""
    user: str = "jupiter"
    port: int = 5000
    key_file: Path | None = None
    known_hosts: Path | None = None


@dataclass(frozen=True)
class PricingSpec:
    """Pricing CIRCE's settings (`[CONFIG] PRICING`, `PRICE_OPTION`, `[PRICING]`); absent without pricing."""

    scheme: str
    """`push` or `event`."""
    aggregate: str
    settings: PricingSettings


@dataclass(frozen=True)
class RuntimeSpec:
    """Limits of the agents' runtime (`[OTHER]`, `[CONFIG] RUNTIME`)."""

    queue_size: int = -1
    retries: int = 20
    receiver_stats: bool = True
    max_log: int = 10
    """Log files kept per agent (`<node>.log` and the rotated ones)."""
    log_file_size: int = 10 * 1024**2
    """Bytes at which an agent's log is rotated (local: by the supervisor; docker: by the engine)."""
    control: ControlLimits = field(default_factory=ControlLimits)
    """The agents' control-plane limits (`[LIMITS] CONTROL_*`)."""
    task_timeout: float = 0.0
    """`[RUNTIME] TASK_TIMEOUT`: seconds a frame may run, unless the app says otherwise; 0 = no limit."""
    task_memory: int = 0
    """`[RUNTIME] TASK_MEMORY`: bytes a task's worker may allocate, unless the app says otherwise; 0 = no limit."""


@dataclass(frozen=True)
class MappingSpec:
    """How tasks get their nodes: a static mapping file, or the configured scheduler after profiling."""

    scheduler: str
    settings: MapperSettings
    static_file: Path | None = None
    """`--mapping FILE` or `STATIC_MAPPING = 1` with `[DEPLOY] MAPPING`; None = measure and map."""

    @property
    def measured(self) -> bool:
        """Whether the deployment profiles and maps (no static mapping)."""
        return self.static_file is None

    @property
    def distributed(self) -> bool:
        """Whether the agents map the DAG among themselves (distributed WAVE)."""
        return self.scheduler in ("wave_random", "wave_greedy")


@dataclass(frozen=True)
class DeploymentSpec:
    """Everything a deployment needs, resolved once (module docstring)."""

    app: App
    nodes: NodeList
    config_path: Path | None
    backend: str
    state_dir: Path
    """Absolute folder of this working folder's deployments."""
    spool_dir: Path | None
    """Local backend: absolute parent of spool folders; None = in memory when possible."""
    containers: ContainerSettings
    """Images and clusters; `kubeconfig` absolute."""
    ports: Ports
    mapping: MappingSpec
    profiling: ProfilingSpec
    transfer: TransferSpec
    runtime: RuntimeSpec
    ingress: tuple[str, ...]
    pricing: PricingSpec | None = None
    testbed: Testbed | None = None
    limits: Limits = field(default_factory=Limits)
    warnings: tuple[str, ...] = field(default_factory=tuple)
    umask: int = 0o077
    """`[DEPLOY] UMASK` of everything the deployment writes."""
    env_dir: Path = field(default_factory=lambda: default_env_dir({}))
    """Absolute cache folder of per-app environments (`[DEPLOY] ENV_DIR`)."""
    wheels: Path | None = None
    """Absolute folder of wheels requirements are installed from offline (`[DEPLOY] WHEELS`), or None."""

    @property
    def homes(self) -> tuple[str, ...]:
        """Every home node, in nodes.txt order (the first is `home`)."""
        return tuple(node.name for node in self.nodes.homes)

    @property
    def compute(self) -> tuple[str, ...]:
        return tuple(node.name for node in self.nodes.compute)

    @property
    def agents(self) -> tuple[str, ...]:
        """Nodes that get an agent: every node but the data sources (they feed nothing yet)."""
        return tuple(node.name for node in self.nodes if node.role is not NodeRole.DATASOURCE)

    def roles(self) -> list[tuple[str, str]]:
        """(name, role) of every node that gets an agent."""
        return [(node.name, node.role.value) for node in self.nodes if node.role is not NodeRole.DATASOURCE]

    def with_static_mapping(self, path: Path | None) -> DeploymentSpec:
        """The same deployment with a static mapping file (None: measure and map)."""
        return replace(self, mapping=replace(self.mapping, static_file=path))

    def with_profile(self, reuse: Path | None = None, fresh: bool = False) -> DeploymentSpec:
        """The same deployment mapped from a profile file (`--profile`), or measured afresh (`--reprofile`)."""
        return replace(self, profiling=replace(self.profiling, reuse=reuse, fresh=fresh))


def default_env_dir(environ: Mapping[str, str]) -> Path:
    """Where per-app environments are cached when `[DEPLOY] ENV_DIR` is empty (the XDG cache folder)."""
    cache = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "jupiter" / "envs"


def env_dir(config: JupiterConfig) -> Path:
    """The absolute cache folder of per-app environments (`[DEPLOY] ENV_DIR`, else the XDG cache folder)."""
    folder = config.deploy.env_dir
    return (config.resolve(folder.expanduser()) if folder is not None else default_env_dir(os.environ)).resolve()


def wheels_dir(config: JupiterConfig) -> Path | None:
    """The absolute folder of wheels requirements are installed from offline (`[DEPLOY] WHEELS`), or None."""
    folder = config.deploy.wheels
    return config.resolve(folder.expanduser()).resolve() if folder is not None else None


def state_dir(config: JupiterConfig) -> Path:
    """The absolute folder holding this working folder's deployments (`[DEPLOY] STATE_DIR`)."""
    return config.resolve(config.deploy.state_dir).resolve()


AUTO_PAYLOAD_FACTOR = 16
AUTO_PAYLOAD_FLOOR = 256 * 1024**2


def resolve_limits(workspace: Workspace) -> Limits:
    """`[LIMITS]`, with MAX_PAYLOAD = 0 made automatic: 16 times the largest sample input, at least 256 MiB."""
    settings = workspace.config.limits
    largest = max((path.stat().st_size for path in workspace.app.sample_inputs), default=0)
    payload = settings.max_payload or max(AUTO_PAYLOAD_FLOOR, AUTO_PAYLOAD_FACTOR * largest)
    return Limits(
        max_header=settings.max_header,
        max_payload=payload,
        max_message=settings.max_message,
        idle_timeout=settings.idle_timeout,
        read_timeout=settings.read_timeout,
        max_connections=settings.max_connections,
        batch_bytes=settings.batch_bytes,
        spool_free=settings.spool_free,
    )


def resolve_spec(workspace: Workspace, mapping_file: Path | None = None) -> DeploymentSpec:
    """The deployment spec of a validated workspace; InputError for settings that only now can fail.

    `mapping_file` (`--mapping`) wins over `STATIC_MAPPING = 1` with `[DEPLOY] MAPPING`.
    """
    config = workspace.config
    agents = [node.name for node in workspace.nodes if node.role is not NodeRole.DATASOURCE]
    static = mapping_file
    if static is None and config.static_mapping:
        if config.deploy.mapping is None:
            raise InputError(
                config.path, None, "STATIC_MAPPING = 1 needs a mapping file; set [DEPLOY] MAPPING or pass --mapping"
            )
        static = config.resolve(config.deploy.mapping)
    settings = config.profiling
    links = parse_link_list(config.resolve(settings.links), agents) if settings.links is not None else None
    testbed = (
        parse_testbed(config.resolve(settings.testbed), tuple(node.name for node in workspace.nodes))
        if settings.testbed is not None
        else None
    )
    containers = config.deploy.containers
    if containers.kubeconfig is not None:
        containers = replace(containers, kubeconfig=config.resolve(containers.kubeconfig))
    return DeploymentSpec(
        app=workspace.app,
        nodes=workspace.nodes,
        config_path=config.path,
        backend=config.deploy.backend,
        state_dir=state_dir(config),
        spool_dir=config.resolve(config.deploy.spool_dir) if config.deploy.spool_dir is not None else None,
        containers=containers,
        ports=config.ports,
        mapping=MappingSpec(scheduler=config.scheduler, settings=config.mapper, static_file=static),
        profiling=ProfilingSpec(
            sizes=tuple(settings.network_sizes),
            samples=settings.network_samples,
            interval=settings.network_interval,
            exec_runs=settings.exec_runs,
            timeout=settings.timeout,
            links=tuple(links) if links is not None else None,
            store=settings.store,
            mongo_url=settings.mongo_url,
            profiler=config.profiler,
            exec_budget=settings.exec_budget,
            exec_parallel=settings.exec_parallel,
            cache=settings.cache,
        ),
        transfer=TransferSpec(
            method=config.transfer,
            user=config.username,
            port=config.ports.ssh_svc,
            key_file=config.resolve(config.ssh.key_file) if config.ssh.key_file else None,
            known_hosts=config.resolve(config.ssh.known_hosts) if config.ssh.known_hosts else None,
        ),
        runtime=RuntimeSpec(
            queue_size=config.other.task_queue_size,
            retries=config.other.ssh_retry_num,
            receiver_stats=config.receiver_stats,
            max_log=config.other.max_log,
            log_file_size=config.other.log_file_size,
            control=config.limits.control,
            task_timeout=config.limits.task_timeout,
            task_memory=config.limits.task_memory,
        ),
        ingress=workspace.ingress_tasks,
        pricing=(
            PricingSpec(scheme=config.pricing, aggregate=config.price_function, settings=config.price)
            if config.pricing != "nonpricing"
            else None
        ),
        testbed=testbed,
        limits=resolve_limits(workspace),
        warnings=config.warnings,
        umask=config.deploy.umask,
        env_dir=env_dir(config),
        wheels=wheels_dir(config),
    )
