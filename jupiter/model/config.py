"""`jupiter_config.ini`: typed settings of a deployment.

Old files of the original load unchanged: the `[CONFIG]` choices are integers
looked up in the file's own `*_LIST` sections (or the original's lists when a
file has none), and a choice may also be written by name
(`SCHEDULER = wave_random`). Settings the original did not have live in
sections of their own (`[DEPLOY]`, `[MAPPER]`). `[AUTH] PASSWORD` is read
and ignored: nothing in Jupiter needs a password.
"""

from __future__ import annotations

import configparser
import importlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from jupiter.errors import InputError
from jupiter.model.textfile import read_text

CONFIG_FILE_NAME = "jupiter_config.ini"

# Canonical names of each choice, and the spellings that mean them. The
# integers of the original are resolved through the file's *_LIST sections
# into one of these spellings first.
SCHEDULERS: tuple[str, ...] = (
    "heft",
    "wave_random",
    "wave_greedy",
    "heft_modified",
    "cpop",
    "peft",
    "best",
    "static",
    "minmin",
    "fastest_node",
)
PRICING_SCHEMES: Mapping[str, str] = {
    "nonpricing": "nonpricing",
    "push": "push",
    "push_multiplehome": "push",
    "event": "event",
    "driven_multiplehome": "event",
}
PRICE_FUNCTIONS: Mapping[str, str] = {"sum": "sum", "max": "max"}
TRANSFERS: Mapping[str, str] = {"http": "http", "scp": "scp"}
"""Built-in transfer methods; `TRANSFER` may also name a plug-in, `package.module:Factory`."""
_PLUGIN = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
PROFILERS: Mapping[str, str] = {"drupe": "drupe"}
BACKENDS: tuple[str, ...] = ("local", "docker", "kubernetes")

_DEFAULT_LISTS: Mapping[str, Mapping[str, int]] = {
    "SCHEDULER_LIST": {"HEFT": 0, "WAVE_RANDOM": 1, "WAVE_GREEDY": 2, "HEFT_MODIFIED": 3},
    "PRICING_LIST": {"NONPRICING": 0, "PUSH_MULTIPLEHOME": 1, "DRIVEN_MULTIPLEHOME": 2},
    "PRICING_FUNCTION_LIST": {"SUM": 1, "MAX": 2},
    "TRANSFER_LIST": {"SCP": 0, "HTTP": 1},
    "PROFILERS_LIST": {"DRUPE": 0},
}

_KNOWN_KEYS: Mapping[str, tuple[str, ...]] = {
    "CONFIG": (
        "STATIC_MAPPING",
        "SCHEDULER",
        "TRANSFER",
        "PROFILER",
        "RUNTIME",
        "PRICING",
        "PRICE_OPTION",
    ),
    "PORT": ("MONGO_SVC", "MONGO_DOCKER", "SSH_SVC", "SSH_DOCKER", "FLASK_SVC", "FLASK_DOCKER"),
    "AUTH": ("USERNAME", "PASSWORD", "KEY_FILE", "KNOWN_HOSTS"),
    "OTHER": ("MAX_LOG", "SSH_RETRY_NUM", "TASK_QUEUE_SIZE"),
    "DEPLOY": (
        "BACKEND",
        "APP",
        "HOME_CHILD",
        "STATE_DIR",
        "SPOOL_DIR",
        "MAPPING",
        "REGISTRY",
        "IMAGE_TAG",
        "BASE_IMAGE",
        "NAMESPACE",
        "PROFILER_NAMESPACE",
        "MAPPER_NAMESPACE",
        "CIRCE_NAMESPACE",
        "KUBECONFIG",
        "CONTEXT",
        "CPU_REQUEST",
        "MEMORY_REQUEST",
        "CPUS",
    ),
    "MAPPER": ("MAX_TASK_ALLOWED", "W_NET", "W_CPU", "W_MEM", "SEED", "WAVE_TIMEOUT"),
    "PROFILING": (
        "NETWORK_SIZES",
        "NETWORK_SAMPLES",
        "NETWORK_INTERVAL",
        "LINKS",
        "EXEC_RUNS",
        "TIMEOUT",
        "STORE",
        "MONGO_URL",
        "TESTBED",
    ),
    "PRICING": ("INTERVAL", "STALE", "MARGIN", "W_NETWORK", "W_EXECUTION", "W_QUEUE", "W_CPU", "W_MEMORY"),
}


@dataclass(frozen=True)
class Ports:
    """`[PORT]`: service ports (`*_SVC`) and container target ports (`*_DOCKER`)."""

    mongo_svc: int = 6200
    mongo_docker: int = 27017
    ssh_svc: int = 5000
    ssh_docker: int = 22
    flask_svc: int = 6100
    flask_docker: int = 8888


@dataclass(frozen=True)
class Other:
    """`[OTHER]`: limits of the runtime."""

    max_log: int = 10
    """How many log files each agent keeps."""
    ssh_retry_num: int = 20
    """How often a transfer is retried before it counts as failed."""
    task_queue_size: int = -1
    """Frames a task may hold (waiting for inputs, queued or running) before senders are held back; -1 = unbounded."""


@dataclass(frozen=True)
class SshKeys:
    """`[AUTH]` KEY_FILE and KNOWN_HOSTS: how `TRANSFER = scp` logs in, and which nodes it trusts."""

    key_file: Path | None = None
    """Private key the agents log in with; None = the agents' user's default keys (~/.ssh/id_*)."""
    known_hosts: Path | None = None
    """Host keys the agents accept (others are refused); None = the agents' user's ~/.ssh/known_hosts."""


_K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti)?$")


@dataclass(frozen=True)
class ContainerSettings:
    """`[DEPLOY]` keys of the docker and kubernetes backends (images, namespaces, resources)."""

    registry: str = ""
    """Registry prefix of image names (`REGISTRY/jupiter-<app>:<tag>`); empty = local names only."""
    image_tag: str = ""
    """Tag of the app images; empty = Jupiter's version."""
    base_image: str = "python:3.11-slim-bookworm"
    """Image the agent images start from; needs `python3` with `venv` (Python 3.11)."""
    namespace: str = "jupiter"
    """Kubernetes namespace of every object, unless a per-stage one below is set."""
    profiler_namespace: str = ""
    mapper_namespace: str = ""
    circe_namespace: str = ""
    kubeconfig: Path | None = None
    """Kubeconfig file; unset = `KUBECONFIG`, `~/.kube/config`, or in-cluster config."""
    context: str = ""
    """Kubeconfig context; empty = the file's current context."""
    cpu_request: str = "100m"
    """CPU request of every pod (a Kubernetes quantity)."""
    memory_request: str = "128Mi"
    """Memory request of every pod (a Kubernetes quantity)."""
    cpus: Mapping[str, float] = field(default_factory=dict)
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

    backend: str = "local"
    """Where agents run: `local` (child processes), `docker` (containers here) or `kubernetes`."""
    app: Path | None = None
    """App folder; relative paths are taken from the config file's folder."""
    home_child: tuple[str, ...] = ()
    """Ingress tasks home feeds (`a:b`); empty = the DAG's entry tasks."""
    state_dir: Path = Path(".jupiter")
    """Folder for deployment state, agents' folders and logs."""
    spool_dir: Path | None = None
    """Local backend: where the files in transit between tasks live (each node's inbox and
    outputs); None = /dev/shm when it is a memory file system, else the deployment folder."""
    mapping: Path | None = None
    """Static mapping file (`task node` lines), used when STATIC_MAPPING = 1."""
    containers: ContainerSettings = field(default_factory=ContainerSettings)
    """Images and clusters (docker and kubernetes backends)."""


@dataclass(frozen=True)
class MapperSettings:
    """`[MAPPER]`: parameters of the task mappers (new in this rebuild)."""

    max_task_allowed: int = 0
    """heft_modified: at most this many tasks per node; 0 = ceil(tasks / compute nodes)."""
    w_net: float = 1.0
    """WAVE greedy: weight of the link delay (seconds)."""
    w_cpu: float = 1.0
    """WAVE greedy: weight of the CPU utilisation (%)."""
    w_mem: float = 1.0
    """WAVE greedy: weight of the memory utilisation (%)."""
    seed: int = 0
    """Seed of the randomised mappers (wave_random)."""
    wave_timeout: float = 30.0
    """Distributed WAVE: seconds to wait for every task to be appointed."""


@dataclass(frozen=True)
class ProfilingSettings:
    """`[PROFILING]`: the profilers run before mapping (new in this rebuild)."""

    network_sizes: tuple[int, ...] = (1024, 10 * 1024, 100 * 1024, 1024 * 1024)
    """Sizes in bytes of the network profiler's test files."""
    network_samples: int = 3
    """Transfers per size and link."""
    network_interval: float = 0.0
    """Seconds between re-profiles while a deployment runs; 0 = profile once (never during `run`)."""
    links: Path | None = None
    """Link list file (`src dst` lines, as the original's link_list.txt); None = every ordered pair."""
    exec_runs: int = 2
    """Chained runs of the execution profiler per node (cycling over sample_input/)."""
    timeout: float = 600.0
    """Seconds each profiling phase may take."""
    store: str = "sqlite"
    """Where profiles and statistics live at home: sqlite or mongodb."""
    mongo_url: str = "mongodb://127.0.0.1:27017/"
    """MongoDB server of STORE = mongodb."""
    testbed: Path | None = None
    """Testbed file emulating node speeds and links (local backend)."""


@dataclass(frozen=True)
class PricingSettings:
    """`[PRICING]`: pricing CIRCE's price reports and weights (new in this rebuild; see jupiter.pricing)."""

    interval: float = 0.2
    """Seconds between a compute node's price reports (and, in push mode, controllers' choices)."""
    stale: float = 1.0
    """A node whose last report is older than this is not chosen; home declares it dead."""
    margin: float = 0.25
    """The mapper's node keeps a task unless another node's price is lower by more than this fraction."""
    w_network: float = 1.0
    w_execution: float = 1.0
    w_queue: float = 1.0
    w_cpu: float = 1.0
    w_memory: float = 1.0


@dataclass(frozen=True)
class JupiterConfig:
    """Everything `jupiter_config.ini` says, typed and validated."""

    static_mapping: bool = False
    scheduler: str = "best"
    transfer: str = "http"
    profiler: str = "drupe"
    receiver_stats: bool = True
    """RUNTIME = 1: receivers log transfers too; 0: senders only."""
    pricing: str = "nonpricing"
    price_function: str = "sum"
    price: PricingSettings = field(default_factory=PricingSettings)
    ports: Ports = field(default_factory=Ports)
    other: Other = field(default_factory=Other)
    username: str = "jupiter"
    ssh: SshKeys = field(default_factory=SshKeys)
    deploy: DeploySettings = field(default_factory=DeploySettings)
    mapper: MapperSettings = field(default_factory=MapperSettings)
    profiling: ProfilingSettings = field(default_factory=ProfilingSettings)
    path: Path | None = None
    warnings: tuple[str, ...] = ()

    @property
    def base_dir(self) -> Path:
        """Folder relative paths in the file are taken from."""
        return self.path.parent if self.path is not None else Path.cwd()

    def resolve(self, value: Path) -> Path:
        """A path from the file, made absolute against the file's folder."""
        return value if value.is_absolute() else self.base_dir / value


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

    def error(self, section: str, key: str, message: str) -> InputError:
        return InputError(self.path, self.line(section, key), f"{key}: {message}")

    def raw(self, section: str, key: str) -> str | None:
        if not self.parser.has_option(section, key):
            return None
        return self.parser.get(section, key).strip()

    def integer(self, section: str, key: str, default: int, minimum: int | None = None) -> int:
        raw = self.raw(section, key)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise self.error(section, key, f"expected a whole number, got {raw!r}") from None
        if minimum is not None and value < minimum:
            raise self.error(section, key, f"must be at least {minimum}, got {value}")
        return value

    def number(self, section: str, key: str, default: float) -> float:
        raw = self.raw(section, key)
        if raw is None or raw == "":
            return default
        try:
            value = float(raw)
        except ValueError:
            raise self.error(section, key, f"expected a number, got {raw!r}") from None
        if value < 0:
            raise self.error(section, key, f"must not be negative, got {raw}")
        return value

    def port(self, key: str, default: int) -> int:
        raw = self.raw("PORT", key)
        if raw is None or raw == "":
            return default
        if not raw.isdigit() or not 1 <= int(raw) <= 65535:
            raise self.error("PORT", key, f"expected a port number from 1 to 65535, got {raw!r}")
        return int(raw)

    def flag(self, section: str, key: str, default: bool) -> bool:
        raw = self.raw(section, key)
        if raw is None or raw == "":
            return default
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise self.error(section, key, f"expected 0 or 1, got {raw!r}")

    def choice(
        self,
        key: str,
        list_section: str,
        names: Mapping[str, str],
        default: str,
    ) -> str:
        """Resolve a `[CONFIG]` choice written as an integer of `list_section` or by name."""
        raw = self.raw("CONFIG", key)
        if raw is None or raw == "":
            return default
        listing = self._listing(list_section)
        spelled = ", ".join(sorted(set(names)))
        if re.fullmatch(r"-?\d+", raw):
            number = int(raw)
            matches = [name for name, value in listing.items() if value == number]
            if not matches:
                known = ", ".join(f"{name} = {value}" for name, value in listing.items())
                raise self.error(
                    "CONFIG",
                    key,
                    f"{number} is not in [{list_section}] ({known}); use one of those numbers or a name: {spelled}",
                )
            raw = matches[0]
        name = raw.lower()
        if name not in names:
            raise self.error("CONFIG", key, f"unknown value {raw!r}; use one of: {spelled}")
        return names[name]

    def _listing(self, list_section: str) -> dict[str, int]:
        if not self.parser.has_section(list_section):
            return dict(_DEFAULT_LISTS[list_section])
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
        if section not in _KNOWN_KEYS:
            warnings.append(f"{reader.path}:{reader.line(section)}: unknown section [{section}] is ignored")
            continue
        for key in reader.parser.options(section):
            if key not in _KNOWN_KEYS[section]:
                known = ", ".join(_KNOWN_KEYS[section])
                warnings.append(
                    f"{reader.path}:{reader.line(section, key)}: unknown key {key} in "
                    f"[{section}] is ignored (known: {known})"
                )
    return warnings


def _container_settings(reader: _Reader) -> ContainerSettings:
    names = {}
    for key in ("NAMESPACE", "PROFILER_NAMESPACE", "MAPPER_NAMESPACE", "CIRCE_NAMESPACE"):
        value = reader.raw("DEPLOY", key) or ""
        if value and not _K8S_NAME.match(value):
            raise reader.error(
                "DEPLOY", key, f"{value!r} is not a Kubernetes name; use lower-case letters, digits and '-'"
            )
        names[key] = value
    quantities = {}
    for key, default in (("CPU_REQUEST", "100m"), ("MEMORY_REQUEST", "128Mi")):
        value = reader.raw("DEPLOY", key) or default
        if not _QUANTITY.match(value):
            raise reader.error("DEPLOY", key, f"{value!r} is not a Kubernetes quantity (e.g. 250m, 0.5, 256Mi)")
        quantities[key] = value
    cpus: dict[str, float] = {}
    for part in re.split(r"[,\s]+", reader.raw("DEPLOY", "CPUS") or ""):
        if not part:
            continue
        node, _, amount = part.partition(":")
        try:
            limit = float(amount)
        except ValueError:
            limit = -1.0
        if not node or limit <= 0:
            raise reader.error("DEPLOY", "CPUS", f"expected `node:cpus` with cpus > 0 (e.g. node1:0.5), got {part!r}")
        cpus[node] = limit
    tag = reader.raw("DEPLOY", "IMAGE_TAG") or ""
    if tag and not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", tag):
        raise reader.error("DEPLOY", "IMAGE_TAG", f"{tag!r} is not a valid image tag")
    kubeconfig = reader.raw("DEPLOY", "KUBECONFIG")
    return ContainerSettings(
        registry=(reader.raw("DEPLOY", "REGISTRY") or "").rstrip("/"),
        image_tag=tag,
        base_image=reader.raw("DEPLOY", "BASE_IMAGE") or "python:3.11-slim-bookworm",
        namespace=names["NAMESPACE"] or "jupiter",
        profiler_namespace=names["PROFILER_NAMESPACE"],
        mapper_namespace=names["MAPPER_NAMESPACE"],
        circe_namespace=names["CIRCE_NAMESPACE"],
        kubeconfig=Path(kubeconfig) if kubeconfig else None,
        context=reader.raw("DEPLOY", "CONTEXT") or "",
        cpu_request=quantities["CPU_REQUEST"],
        memory_request=quantities["MEMORY_REQUEST"],
        cpus=cpus,
    )


def _spool_dir(reader: _Reader, base: Path) -> Path | None:
    """`[DEPLOY] SPOOL_DIR`, refused when it names a file or lies under one (it is made at deploy)."""
    raw = reader.raw("DEPLOY", "SPOOL_DIR")
    if not raw:
        return None
    folder = Path(raw)
    target = folder if folder.is_absolute() else base / folder
    existing = next((candidate for candidate in (target, *target.parents) if candidate.exists()), None)
    if existing is not None and not existing.is_dir():
        raise reader.error(
            "DEPLOY",
            "SPOOL_DIR",
            f"{existing} is not a folder; name a folder (made at deploy if missing), or leave SPOOL_DIR empty",
        )
    return folder


def parse_config(path: Path) -> JupiterConfig:
    """Parse and validate `jupiter_config.ini`; raises InputError naming file:line."""
    text = read_text(path, "config file")
    if not text.strip():
        raise InputError(path, None, "config file is empty; run `jupiter init DIR` for a commented example")
    reader = _Reader(path, text)
    warnings = _unknown_keys(reader)

    price_raw = reader.raw("CONFIG", "PRICE_OPTION")
    # The original's sample file says PRICE_OPTION = 0 although its list
    # starts at SUM = 1; 0 has always meant the default, SUM.
    price_function = (
        "sum" if price_raw == "0" else reader.choice("PRICE_OPTION", "PRICING_FUNCTION_LIST", PRICE_FUNCTIONS, "sum")
    )
    runtime = reader.integer("CONFIG", "RUNTIME", 1)
    if runtime not in (0, 1):
        raise reader.error(
            "CONFIG", "RUNTIME", f"expected 0 (senders only) or 1 (senders and receivers), got {runtime}"
        )
    password = reader.raw("AUTH", "PASSWORD")
    if password:
        warnings.append(
            f"{path}:{reader.line('AUTH', 'PASSWORD')}: [AUTH] PASSWORD is ignored: Jupiter never "
            "uses passwords (transfers use a per-deployment token, SCP uses keys); delete the line"
        )
    queue = reader.integer("OTHER", "TASK_QUEUE_SIZE", -1)
    if queue == 0 or queue < -1:
        raise reader.error("OTHER", "TASK_QUEUE_SIZE", f"expected -1 (unbounded) or a size of at least 1, got {queue}")

    backend = (reader.raw("DEPLOY", "BACKEND") or "local").lower()
    if backend not in BACKENDS:
        raise reader.error(
            "DEPLOY", "BACKEND", f"backend {backend!r} is not available; use one of: {', '.join(BACKENDS)}"
        )
    app_raw = reader.raw("DEPLOY", "APP")
    home_child_raw = reader.raw("DEPLOY", "HOME_CHILD") or ""
    deploy = DeploySettings(
        backend=backend,
        app=Path(app_raw) if app_raw else None,
        home_child=tuple(part.strip() for part in home_child_raw.split(":") if part.strip()),
        state_dir=Path(reader.raw("DEPLOY", "STATE_DIR") or ".jupiter"),
        spool_dir=_spool_dir(reader, path.parent),
        mapping=Path(mapping_raw) if (mapping_raw := reader.raw("DEPLOY", "MAPPING")) else None,
        containers=_container_settings(reader),
    )
    mapper = MapperSettings(
        max_task_allowed=reader.integer("MAPPER", "MAX_TASK_ALLOWED", 0, minimum=0),
        w_net=reader.number("MAPPER", "W_NET", 1.0),
        w_cpu=reader.number("MAPPER", "W_CPU", 1.0),
        w_mem=reader.number("MAPPER", "W_MEM", 1.0),
        seed=reader.integer("MAPPER", "SEED", 0),
        wave_timeout=reader.number("MAPPER", "WAVE_TIMEOUT", 30.0),
    )
    return JupiterConfig(
        static_mapping=reader.flag("CONFIG", "STATIC_MAPPING", False),
        scheduler=reader.choice("SCHEDULER", "SCHEDULER_LIST", {name: name for name in SCHEDULERS}, "best"),
        transfer=_transfer(reader),
        profiler=_profiler(reader),
        receiver_stats=runtime == 1,
        pricing=reader.choice("PRICING", "PRICING_LIST", PRICING_SCHEMES, "nonpricing"),
        price_function=price_function,
        price=_pricing(reader),
        ports=Ports(
            mongo_svc=reader.port("MONGO_SVC", 6200),
            mongo_docker=reader.port("MONGO_DOCKER", 27017),
            ssh_svc=reader.port("SSH_SVC", 5000),
            ssh_docker=reader.port("SSH_DOCKER", 22),
            flask_svc=reader.port("FLASK_SVC", 6100),
            flask_docker=reader.port("FLASK_DOCKER", 8888),
        ),
        other=Other(
            max_log=reader.integer("OTHER", "MAX_LOG", 10, minimum=1),
            ssh_retry_num=reader.integer("OTHER", "SSH_RETRY_NUM", 20, minimum=0),
            task_queue_size=queue,
        ),
        username=reader.raw("AUTH", "USERNAME") or "jupiter",
        ssh=SshKeys(
            key_file=Path(key_file) if (key_file := reader.raw("AUTH", "KEY_FILE")) else None,
            known_hosts=Path(known_hosts) if (known_hosts := reader.raw("AUTH", "KNOWN_HOSTS")) else None,
        ),
        deploy=deploy,
        mapper=mapper,
        profiling=_profiling(reader),
        path=path,
        warnings=tuple(warnings),
    )


def _transfer(reader: _Reader) -> str:
    """`TRANSFER`: a built-in method, or a plug-in `package.module:Factory`, imported here to check it."""
    return _plugin(reader, "TRANSFER", "TRANSFER_LIST", TRANSFERS, "http", "TransferSettings")


def _profiler(reader: _Reader) -> str:
    """`PROFILER`: `drupe`, or a plug-in `package.module:Factory` (the integration interface), checked here."""
    return _plugin(reader, "PROFILER", "PROFILERS_LIST", PROFILERS, "drupe", "the profile store")


def _plugin(reader: _Reader, key: str, listing: str, builtins: Mapping[str, str], default: str, takes: str) -> str:
    """A built-in choice of `[CONFIG] key`, or a plug-in `package.module:Factory`, imported to check it."""
    raw = reader.raw("CONFIG", key) or ""
    if ":" not in raw:
        return reader.choice(key, listing, builtins, default)
    if not _PLUGIN.match(raw):
        raise reader.error("CONFIG", key, f"{raw!r} is not a plug-in path; write `package.module:Factory`")
    module_name, _, attribute = raw.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - a plug-in's import may fail in any way; it is reported
        raise reader.error(
            "CONFIG",
            key,
            f"cannot import {module_name} ({type(exc).__name__}: {exc}); install it, or add its folder to "
            "PYTHONPATH, where `jupiter` and the agents run",
        ) from None
    if not callable(getattr(module, attribute, None)):
        raise reader.error("CONFIG", key, f"{module_name} has no class or function {attribute} (taking {takes})")
    return raw


def _pricing(reader: _Reader) -> PricingSettings:
    interval = reader.number("PRICING", "INTERVAL", PricingSettings.interval)
    if interval <= 0:
        raise reader.error("PRICING", "INTERVAL", "must be more than 0 seconds (e.g. 0.2)")
    stale = reader.number("PRICING", "STALE", PricingSettings.stale)
    if stale <= interval:
        raise reader.error(
            "PRICING", "STALE", f"must be longer than INTERVAL ({interval:g} s), or every price goes stale; e.g. 1.0"
        )
    return PricingSettings(
        interval=interval,
        stale=stale,
        margin=reader.number("PRICING", "MARGIN", PricingSettings.margin),
        w_network=reader.number("PRICING", "W_NETWORK", 1.0),
        w_execution=reader.number("PRICING", "W_EXECUTION", 1.0),
        w_queue=reader.number("PRICING", "W_QUEUE", 1.0),
        w_cpu=reader.number("PRICING", "W_CPU", 1.0),
        w_memory=reader.number("PRICING", "W_MEMORY", 1.0),
    )


_SIZE = re.compile(r"^(\d+)\s*([kmg]?)b?$", re.IGNORECASE)


def _profiling(reader: _Reader) -> ProfilingSettings:
    sizes_raw = reader.raw("PROFILING", "NETWORK_SIZES")
    sizes = ProfilingSettings.network_sizes
    if sizes_raw:
        parsed = []
        for part in re.split(r"[,\s]+", sizes_raw.strip()):
            match = _SIZE.match(part)
            if not match or int(match.group(1)) <= 0:
                raise reader.error(
                    "PROFILING", "NETWORK_SIZES", f"{part!r} is not a size; write bytes like 1024, 10K, 1M"
                )
            parsed.append(int(match.group(1)) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[match.group(2).lower()])
        sizes = tuple(parsed)
    store = (reader.raw("PROFILING", "STORE") or "sqlite").lower()
    if store not in ("sqlite", "mongodb"):
        raise reader.error("PROFILING", "STORE", f"unknown store {store!r}; use sqlite or mongodb")
    links = reader.raw("PROFILING", "LINKS")
    testbed = reader.raw("PROFILING", "TESTBED")
    return ProfilingSettings(
        network_sizes=sizes,
        network_samples=reader.integer("PROFILING", "NETWORK_SAMPLES", 3, minimum=1),
        network_interval=reader.number("PROFILING", "NETWORK_INTERVAL", 0.0),
        links=Path(links) if links else None,
        exec_runs=reader.integer("PROFILING", "EXEC_RUNS", 2, minimum=1),
        timeout=reader.number("PROFILING", "TIMEOUT", 600.0),
        store=store,
        mongo_url=reader.raw("PROFILING", "MONGO_URL") or ProfilingSettings.mongo_url,
        testbed=Path(testbed) if testbed else None,
    )
