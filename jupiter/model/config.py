"""`jupiter_config.ini`: typed settings of a deployment.

Old files of the original load unchanged: the `[CONFIG]` choices are integers
looked up in the file's own `*_LIST` sections (or the original's lists when a
file has none), and a choice may also be written by name
(`SCHEDULER = wave_random`). Settings the original did not have live in
sections of their own (`[DEPLOY]`, `[MAPPER]`, ...). `[AUTH] PASSWORD` is read
and ignored: nothing in Jupiter needs a password.

Every key, its kind, default and doc is one row of `jupiter.model.schema`;
this module holds the typed objects the rows fill (their defaults come from
the table, so they are written once) and the reader, one loop over the rows.
Plug-ins named by TRANSFER/PROFILER are only checked for their syntax here;
`jupiter.service.plugin_check` imports them.
"""

from __future__ import annotations

import configparser
import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

from jupiter.model import schema
from jupiter.model.errors import InputError
from jupiter.model.schema import (
    ORIGINAL_LISTS,
    PRICE_FUNCTIONS,
    PRICING_SCHEMES,
    PROFILERS,
    SCHEDULERS,
    TRANSFERS,
    Ignored,
    SettingError,
    default,
)
from jupiter.model.textfile import read_text

__all__ = [
    "BACKENDS",
    "CONFIG_FILE_NAME",
    "PRICE_FUNCTIONS",
    "PRICING_SCHEMES",
    "PROFILERS",
    "SCHEDULERS",
    "TRANSFERS",
    "ContainerSettings",
    "DeploySettings",
    "JupiterConfig",
    "MapperSettings",
    "Other",
    "Ports",
    "PricingSettings",
    "ProfilingSettings",
    "SshKeys",
    "parse_config",
]

CONFIG_FILE_NAME = "jupiter_config.ini"

BACKENDS: tuple[str, ...] = ("local", "docker", "kubernetes")
"""The backends Jupiter ships. The model only checks that BACKEND is a plain name; the
service layer checks it against the backends registry (`config.line_of("DEPLOY", "BACKEND")`)."""

# Field defaults below are `default("<dotted field>")`: the value is written
# once, in the row of jupiter.model.schema that fills the field.


@dataclass(frozen=True)
class Ports:
    """`[PORT]`: service ports (`*_SVC`) and container target ports (`*_DOCKER`)."""

    mongo_svc: int = default("ports.mongo_svc")
    mongo_docker: int = default("ports.mongo_docker")
    ssh_svc: int = default("ports.ssh_svc")
    ssh_docker: int = default("ports.ssh_docker")
    flask_svc: int = default("ports.flask_svc")
    flask_docker: int = default("ports.flask_docker")


@dataclass(frozen=True)
class Other:
    """`[OTHER]`: limits of the runtime."""

    max_log: int = default("other.max_log")
    """How many log files each agent keeps (`<node>.log` and its rotated `<node>.log.1` ...)."""
    log_file_size: int = default("other.log_file_size")
    """Bytes at which an agent's log is rotated (local: by the supervisor; docker: by the engine)."""
    ssh_retry_num: int = default("other.ssh_retry_num")
    """How often a transfer is retried before it counts as failed."""
    task_queue_size: int = default("other.task_queue_size")
    """Frames a task may hold (waiting for inputs, queued or running) before senders are held back; -1 = unbounded."""


@dataclass(frozen=True)
class ControlLimits:
    """`[LIMITS] CONTROL_*`: what an agent's control plane (HTTP) serves at once, and for how long."""

    connections: int = default("limits.control.connections")
    """Connections kept open at once; further ones wait in the listen queue."""
    threads: int = default("limits.control.threads")
    """Requests handled at once; idle connections hold no thread."""
    idle_timeout: float = default("limits.control.idle_timeout")
    """Seconds without a byte from a client (and no request running) before its connection is closed."""
    max_body: int = default("limits.control.max_body")
    """Largest request body in bytes; a body is read only once its token has been checked."""


@dataclass(frozen=True)
class LimitsSettings:
    """`[LIMITS]`: what agents accept from peers and the room they keep (docs/security.md)."""

    max_header: int = default("limits.max_header")
    max_payload: int = default("limits.max_payload")
    """0 = automatic (16 times the largest sample input, at least 256 MiB), resolved with the app."""
    max_message: int = default("limits.max_message")
    idle_timeout: float = default("limits.idle_timeout")
    read_timeout: float = default("limits.read_timeout")
    max_connections: int = default("limits.max_connections")
    batch_bytes: int = default("limits.batch_bytes")
    spool_free: int = default("limits.spool_free")
    control: ControlLimits = field(default_factory=ControlLimits)
    task_timeout: float = default("limits.task_timeout")
    """`[RUNTIME] TASK_TIMEOUT`: seconds one frame may run unless scripts/config.json says otherwise; 0 = no limit."""
    task_memory: int = default("limits.task_memory")
    """`[RUNTIME] TASK_MEMORY`: bytes of data a task's worker may allocate (same); 0 = no limit."""


@dataclass(frozen=True)
class SshKeys:
    """`[AUTH]` KEY_FILE and KNOWN_HOSTS: how `TRANSFER = scp` logs in, and which nodes it trusts."""

    key_file: Path | None = field(default=default("ssh.key_file"))
    """Private key the agents log in with; None = the agents' user's default keys (~/.ssh/id_*)."""
    known_hosts: Path | None = field(default=default("ssh.known_hosts"))
    """Host keys the agents accept (others are refused); None = the agents' user's ~/.ssh/known_hosts."""


@dataclass(frozen=True)
class ContainerSettings:
    """`[DEPLOY]` keys of the docker and kubernetes backends (images, namespaces, resources)."""

    registry: str = default("deploy.containers.registry")
    """Registry prefix of image names (`REGISTRY/jupiter-<app>:<tag>`); empty = local names only."""
    image_tag: str = default("deploy.containers.image_tag")
    """Tag of the app images; empty = Jupiter's version."""
    base_image: str = default("deploy.containers.base_image")
    """Image the agent images start from; needs `python3` with `venv` (Python 3.11)."""
    namespace: str = default("deploy.containers.namespace")
    """Kubernetes namespace of every object, unless a per-stage one below is set."""
    profiler_namespace: str = default("deploy.containers.profiler_namespace")
    mapper_namespace: str = default("deploy.containers.mapper_namespace")
    circe_namespace: str = default("deploy.containers.circe_namespace")
    kubeconfig: Path | None = field(default=default("deploy.containers.kubeconfig"))
    """Kubeconfig file; unset = `KUBECONFIG`, `~/.kube/config`, or in-cluster config."""
    context: str = default("deploy.containers.context")
    """Kubeconfig context; empty = the file's current context."""
    cpu_request: str = default("deploy.containers.cpu_request")
    """CPU request of every pod (a Kubernetes quantity)."""
    memory_request: str = default("deploy.containers.memory_request")
    """Memory request of every pod (a Kubernetes quantity)."""
    memory_limit: str = default("deploy.containers.memory_limit")
    """Memory limit of every agent pod (a Kubernetes quantity); empty = none."""
    rbac_group: str = default("deploy.containers.rbac_group")
    """Group the Role `jupiter render` shows (what the CLI needs in the namespaces) is bound to."""
    cpus: Mapping[str, float] = field(default_factory=lambda: default("deploy.containers.cpus"))
    """Per-node CPU limit (`node1:0.5, node2:2`): node speed on the docker backend, limits on kubernetes."""

    def namespace_of(self, stage: str) -> str:
        """Namespace of a deploy stage: `profiler`, `mapper` or `circe`."""
        specific = {
            "profiler": self.profiler_namespace,
            "mapper": self.mapper_namespace,
            "circe": self.circe_namespace,
        }[stage]
        return specific or self.namespace


@dataclass(frozen=True)
class DeploySettings:
    """`[DEPLOY]`: where and what to run (new in this rebuild)."""

    backend: str = default("deploy.backend")
    """Where agents run: a backend's registered name (`local`, `docker`, `kubernetes`)."""
    app: Path | None = field(default=default("deploy.app"))
    """App folder; relative paths are taken from the config file's folder."""
    home_child: tuple[str, ...] = default("deploy.home_child")
    """Ingress tasks home feeds (`a:b`); empty = the DAG's entry tasks."""
    state_dir: Path = field(default=default("deploy.state_dir"))
    """Folder for deployment state, agents' folders and logs."""
    spool_dir: Path | None = field(default=default("deploy.spool_dir"))
    """Local backend: where the files in transit between tasks live (each node's inbox and
    outputs); None = /dev/shm when it is a memory file system, else the deployment folder."""
    umask: int = default("deploy.umask")
    """Umask of everything a deployment writes (0o077: folders 0700, files 0600)."""
    env_dir: Path | None = field(default=default("deploy.env_dir"))
    """Local backend: cache of per-app environments; None = $XDG_CACHE_HOME/jupiter/envs or ~/.cache/jupiter/envs."""
    wheels: Path | None = field(default=default("deploy.wheels"))
    """Folder of wheels requirements.txt is installed from offline; None = pip's index."""
    mapping: Path | None = field(default=default("deploy.mapping"))
    """Static mapping file (`task node` lines), used when STATIC_MAPPING = 1."""
    containers: ContainerSettings = field(default_factory=ContainerSettings)
    """Images and clusters (docker and kubernetes backends)."""


@dataclass(frozen=True)
class MapperSettings:
    """`[MAPPER]`: parameters of the task mappers (new in this rebuild)."""

    max_task_allowed: int = default("mapper.max_task_allowed")
    """heft_modified: at most this many tasks per node; 0 = ceil(tasks / compute nodes)."""
    w_net: float = default("mapper.w_net")
    """WAVE greedy: weight of the link delay (seconds)."""
    w_cpu: float = default("mapper.w_cpu")
    """WAVE greedy: weight of the CPU utilisation (%)."""
    w_mem: float = default("mapper.w_mem")
    """WAVE greedy: weight of the memory utilisation (%)."""
    seed: int = default("mapper.seed")
    """Seed of the randomised mappers (wave_random)."""
    wave_timeout: float = default("mapper.wave_timeout")
    """Distributed WAVE: seconds to wait for every task to be appointed."""
    stream_rate: float = default("mapper.stream_rate")
    """stream: the arrival rate (frames/s) to map for; 0 = as fast as it goes."""
    stream_cap: float = default("mapper.stream_cap")
    """stream: the utilisation every node stays under."""


@dataclass(frozen=True)
class ProfilingSettings:
    """`[PROFILING]`: the profilers run before mapping (new in this rebuild)."""

    network_sizes: tuple[int, ...] = default("profiling.network_sizes")
    """Sizes in bytes of the network profiler's test files."""
    network_samples: int = default("profiling.network_samples")
    """Transfers per size and link."""
    network_interval: float = default("profiling.network_interval")
    """Seconds between re-profiles while a deployment runs; 0 = profile once (never during `run`)."""
    links: Path | None = field(default=default("profiling.links"))
    """Link list file (`src dst` lines, as the original's link_list.txt); None = every ordered pair."""
    exec_runs: int = default("profiling.exec_runs")
    """Chained runs of the execution profiler per node (cycling over sample_input/)."""
    exec_budget: float = default("profiling.exec_budget")
    """Seconds of runs per task and node after which the execution profiler runs it no more."""
    exec_parallel: str = default("profiling.exec_parallel")
    """`auto`, `yes` or `no`: whether compute nodes run the execution profiler side by side."""
    cache: bool = default("profiling.cache")
    """Whether a deployment reuses the cached profile of the same app, nodes, testbed and settings."""
    timeout: float = default("profiling.timeout")
    """Seconds one profiling request may take."""
    store: str = default("profiling.store")
    """Where profiles and statistics live at home: sqlite or mongodb."""
    mongo_url: str = default("profiling.mongo_url")
    """MongoDB server of STORE = mongodb."""
    testbed: Path | None = field(default=default("profiling.testbed"))
    """Testbed file emulating node speeds and links (local backend)."""


@dataclass(frozen=True)
class PricingSettings:
    """`[PRICING]`: pricing CIRCE's price reports and weights (new; see jupiter.mapping.price_function)."""

    interval: float = default("price.interval")
    """Seconds between a compute node's price reports (and, in push mode, controllers' choices)."""
    stale: float = default("price.stale")
    """A node whose last report is older than this is not chosen; home declares it dead."""
    margin: float = default("price.margin")
    """The mapper's node keeps a task unless another node's price is lower by more than this fraction."""
    w_network: float = default("price.w_network")
    w_execution: float = default("price.w_execution")
    w_queue: float = default("price.w_queue")
    w_cpu: float = default("price.w_cpu")
    w_memory: float = default("price.w_memory")


@dataclass(frozen=True)
class JupiterConfig:
    """Everything `jupiter_config.ini` says, typed and validated."""

    static_mapping: bool = default("static_mapping")
    scheduler: str = default("scheduler")
    """A registered mapper's name (`jupiter.mapping.registry`)."""
    transfer: str = default("transfer")
    """`http`, `scp`, or a plug-in `package.module:Factory` (imported by jupiter.service.plugin_check)."""
    profiler: str = default("profiler")
    """`drupe`, or a plug-in `package.module:Factory`."""
    receiver_stats: bool = default("receiver_stats")
    """RUNTIME = 1: receivers log transfers too; 0: senders only."""
    pricing: str = default("pricing")
    price_function: str = default("price_function")
    price: PricingSettings = field(default_factory=PricingSettings)
    ports: Ports = field(default_factory=Ports)
    other: Other = field(default_factory=Other)
    limits: LimitsSettings = field(default_factory=LimitsSettings)
    username: str = default("username")
    ssh: SshKeys = field(default_factory=SshKeys)
    deploy: DeploySettings = field(default_factory=DeploySettings)
    mapper: MapperSettings = field(default_factory=MapperSettings)
    profiling: ProfilingSettings = field(default_factory=ProfilingSettings)
    path: Path | None = None
    warnings: tuple[str, ...] = ()
    lines: Mapping[tuple[str, str], int] = field(default_factory=dict, compare=False, repr=False)
    """(section, KEY) -> line of the file, and (section, "") -> line of its header; see `line_of`."""

    @property
    def base_dir(self) -> Path:
        """Folder relative paths in the file are taken from."""
        return self.path.parent if self.path is not None else Path.cwd()

    def resolve(self, value: Path) -> Path:
        """A path from the file, made absolute against the file's folder."""
        return value if value.is_absolute() else self.base_dir / value

    def line_of(self, section: str, key: str = "") -> int | None:
        """Line of `[section] key` in the file (of the section header when key is empty); None if absent.

        For messages found after parsing, e.g. a BACKEND no backend is registered under:
        `InputError(config.path, config.line_of("DEPLOY", "BACKEND"), ...)`.
        """
        return self.lines.get((section, key.upper()))


META_FIELDS: frozenset[str] = frozenset({"path", "warnings", "lines"})
"""JupiterConfig's fields that describe the file rather than a setting of it."""


class _Reader:
    """Typed access to a parsed file, with the line number of every key for messages."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.parser = configparser.ConfigParser(interpolation=None, strict=True)
        self.parser.optionxform = str.upper  # type: ignore[assignment,method-assign]
        try:
            self.parser.read_string(text, source=str(path))
        except configparser.MissingSectionHeaderError as exc:
            raise InputError(
                path, exc.lineno, "a key comes before any section; start the file with `[CONFIG]`"
            ) from None
        except configparser.DuplicateSectionError as exc:
            raise InputError(path, exc.lineno, f"section [{exc.section}] appears twice; merge the two") from None
        except configparser.DuplicateOptionError as exc:
            raise InputError(path, exc.lineno, f"{exc.option} is set twice in [{exc.section}]; keep one") from None
        except configparser.ParsingError as exc:
            lineno = exc.errors[0][0] if exc.errors else None
            bad = text.splitlines()[lineno - 1].strip() if lineno else ""
            raise InputError(path, lineno, f"cannot parse {bad!r}; expected `KEY = value`") from None
        self.lines = self._key_lines(text)

    @staticmethod
    def _key_lines(text: str) -> dict[tuple[str, str], int]:
        lines: dict[tuple[str, str], int] = {}
        section = ""
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            header = re.match(r"^\[(.+)\]$", line)
            if header:
                section = header.group(1).strip()
                lines[(section, "")] = number
            elif line and line[0] not in "#;":
                key = re.split(r"[=:]", line, maxsplit=1)[0].strip().upper()
                lines[(section, key)] = number
        return lines

    def line(self, section: str, key: str = "") -> int | None:
        return self.lines.get((section, key))

    def where(self, section: str, key: str = "") -> str:
        """`file:line` of a key, for warnings."""
        line = self.line(section, key)
        return f"{self.path}:{line}" if line is not None else str(self.path)

    def error(self, section: str, key: str, message: str) -> InputError:
        return InputError(self.path, self.line(section, key), f"{key}: {message}")

    def raw(self, section: str, key: str) -> str | None:
        if not self.parser.has_option(section, key):
            return None
        return self.parser.get(section, key).strip()

    def listing(self, list_section: str) -> Mapping[str, int]:
        """The integers of a `*_LIST` section, the original's list when the file has none."""
        if not self.parser.has_section(list_section):
            return ORIGINAL_LISTS[list_section]
        listing: dict[str, int] = {}
        for name, value in self.parser.items(list_section):
            try:
                listing[name] = int(value)
            except ValueError:
                raise self.error(list_section, name, f"expected a whole number, got {value!r}") from None
        return listing


def _unknown_keys(reader: _Reader) -> list[str]:
    warnings: list[str] = []
    for section in reader.parser.sections():
        if section.endswith("_LIST"):
            continue
        if section not in schema.KNOWN_KEYS:
            warnings.append(f"{reader.where(section)}: unknown section [{section}] is ignored")
            continue
        known = schema.KNOWN_KEYS[section]
        for key in reader.parser.options(section):
            if key in known:
                continue
            if (section, key) in schema.ORIGINAL_ONLY:
                warnings.append(
                    f"{reader.where(section, key)}: {key} in [{section}] is a setting of the original "
                    "Jupiter that nothing here uses; it is ignored"
                )
            else:
                warnings.append(
                    f"{reader.where(section, key)}: unknown key {key} in [{section}] is ignored "
                    f"(known: {', '.join(known)})"
                )
    return warnings


def _read_settings(reader: _Reader) -> tuple[dict[str, Any], list[str]]:
    """Every row of the schema read from the file: (dotted field -> value, warnings)."""
    values: dict[str, Any] = {}
    warnings: list[str] = []
    for setting in schema.SETTINGS:
        raw = reader.raw(setting.section, setting.key)
        if isinstance(setting.kind, Ignored):
            if raw:
                warnings.append(
                    f"{reader.where(setting.section, setting.key)}: [{setting.section}] {setting.key} "
                    f"is ignored: {setting.kind.reason}"
                )
            continue
        if setting.field is None:
            raise TypeError(f"schema row [{setting.section}] {setting.key} fills no field and is not Ignored")
        if raw is None or raw == "":
            values[setting.field] = setting.default
            continue
        try:
            value = setting.kind.parse(raw, reader.listing)
            problem = setting.check(value) if setting.check is not None else None
        except SettingError as exc:
            raise reader.error(setting.section, setting.key, str(exc)) from None
        if problem is not None:
            raise reader.error(setting.section, setting.key, problem)
        values[setting.field] = value
    return values, warnings


def _stale_longer_than_interval(reader: _Reader, values: Mapping[str, Any]) -> None:
    """[PRICING] STALE > INTERVAL: a price must live longer than the gap between two reports."""
    interval, stale = values["price.interval"], values["price.stale"]
    if stale <= interval:
        raise reader.error(
            "PRICING", "STALE", f"must be longer than INTERVAL ({interval:g} s), or every price goes stale; e.g. 1.0"
        )


def _spool_dir_is_a_folder(reader: _Reader, values: Mapping[str, Any]) -> None:
    """[DEPLOY] SPOOL_DIR must not name a file or lie under one (the folder is made at deploy)."""
    folder: Path | None = values["deploy.spool_dir"]
    if folder is None:
        return
    target = folder if folder.is_absolute() else reader.path.parent / folder
    existing = next((candidate for candidate in (target, *target.parents) if candidate.exists()), None)
    if existing is not None and not existing.is_dir():
        raise reader.error(
            "DEPLOY",
            "SPOOL_DIR",
            f"{existing} is not a folder; name a folder (made at deploy if missing), or leave SPOOL_DIR empty",
        )


_CROSS_CHECKS: tuple[Callable[[_Reader, Mapping[str, Any]], None], ...] = (
    _stale_longer_than_interval,
    _spool_dir_is_a_folder,
)
"""Checks no single row of the schema can express (see its module docstring)."""


def _build(cls: type[Any], prefix: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments of `cls` from dotted `values`, building nested settings objects."""
    hints = get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for item in dataclasses.fields(cls):
        name = f"{prefix}{item.name}"
        if name in values:
            kwargs[item.name] = values[name]
        elif dataclasses.is_dataclass(hints[item.name]):
            nested: type[Any] = hints[item.name]
            kwargs[item.name] = nested(**_build(nested, f"{name}.", values))
    return kwargs


def parse_config(path: Path) -> JupiterConfig:
    """Parse and validate `jupiter_config.ini`; raises InputError naming file:line."""
    text = read_text(
        path, "config file", "make a working folder with `jupiter init`, or point to the file with --config FILE"
    )
    if not text.strip():
        raise InputError(path, None, "config file is empty; run `jupiter init DIR` for a commented example")
    reader = _Reader(path, text)
    warnings = _unknown_keys(reader)
    values, read_warnings = _read_settings(reader)
    for check in _CROSS_CHECKS:
        check(reader, values)
    return JupiterConfig(
        **_build(JupiterConfig, "", values),
        path=path,
        warnings=tuple(warnings + read_warnings),
        lines=reader.lines,
    )
