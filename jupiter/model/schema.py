"""The settings of `jupiter_config.ini`, written once: one row per key.

Each `Setting` names its section and key, the *kind* of its value (how the
text is read and checked), its default, an optional extra check, the
sentence the docs show, and the dotted attribute of `JupiterConfig` it fills
(`deploy.backend`, `price.interval`, `profiling.network_sizes`). Everything
else is derived from `SETTINGS`:

- the known keys, whose absence from a file is fine and whose misspelling
  warns: `KNOWN_KEYS`;
- the reader: `jupiter.model.config.parse_config` is one loop over the
  table, each value read by its kind's `parse`;
- the defaults of the config dataclasses, which call `default("deploy.backend")`
  instead of repeating a literal;
- the `jupiter_config.ini` table of docs/formats.md, `markdown_table()`.
  It is generated, never edited by hand:

      python -m jupiter.model.schema                          # print the table
      python -m jupiter.model.schema --write docs/formats.md  # replace it in place

  (between the `<!-- settings:begin -->` / `<!-- settings:end -->` markers).

What one row cannot say lives in small named functions: two in
`jupiter.model.config` that look at two keys or at the disk,
`_stale_longer_than_interval` ([PRICING] STALE > INTERVAL) and
`_spool_dir_is_a_folder` ([DEPLOY] SPOOL_DIR not under a file); row checks
here (`_queue_size`); and two declarative cases, `Choice.raw_aliases`
(PRICE_OPTION = 0 means sum, as the original's sample file has it) and the
`Ignored` kind ([AUTH] PASSWORD warns and is never used). A plug-in
(`TRANSFER`/`PROFILER = package.module:Factory`) is checked here for its
syntax only; importing it runs user code, which is
`jupiter.service.plugin_check`'s job.
"""

from __future__ import annotations

import math
import re
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from jupiter.mapping.registry import mapper_names

ListLookup = Callable[[str], Mapping[str, int]]
"""The integers of a `*_LIST` section of the file being read (the original's lists when it has none)."""


class SettingError(ValueError):
    """A value its kind refuses; the reader prefixes `file:line: KEY:`."""


# -- kinds: how the text of one value is read, checked and shown -------------------------------


class Kind(ABC):
    """How one value is parsed from the file's text, described and shown in the docs."""

    @abstractmethod
    def parse(self, raw: str, lists: ListLookup) -> Any:
        """The typed value of a non-empty `raw`; raises SettingError with a message that says how to fix it."""

    @abstractmethod
    def describe(self) -> str:
        """What the docs' value column says the key takes."""

    def show(self, value: Any) -> str:
        """A value as it would be written in the file (the docs' default column)."""
        return "" if value is None else str(value)


@dataclass(frozen=True)
class Flag(Kind):
    """0 or 1 (also true/false, yes/no, on/off)."""

    def parse(self, raw: str, lists: ListLookup) -> bool:
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise SettingError(f"expected 0 or 1, got {raw!r}")

    def describe(self) -> str:
        return "0 or 1"

    def show(self, value: Any) -> str:
        return "1" if value else "0"


@dataclass(frozen=True)
class Binary(Kind):
    """The integer 0 or 1, each with a meaning the error message repeats (RUNTIME)."""

    zero: str
    one: str

    def parse(self, raw: str, lists: ListLookup) -> bool:
        value = _whole_number(raw)
        if value not in (0, 1):
            raise SettingError(f"expected 0 ({self.zero}) or 1 ({self.one}), got {value}")
        return value == 1

    def describe(self) -> str:
        return f"0 ({self.zero}) or 1 ({self.one})"

    def show(self, value: Any) -> str:
        return "1" if value else "0"


def _whole_number(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise SettingError(f"expected a whole number, got {raw!r}") from None


@dataclass(frozen=True)
class Integer(Kind):
    """A whole number, optionally with a minimum."""

    minimum: int | None = None

    def parse(self, raw: str, lists: ListLookup) -> int:
        value = _whole_number(raw)
        if self.minimum is not None and value < self.minimum:
            raise SettingError(f"must be at least {self.minimum}, got {value}")
        return value

    def describe(self) -> str:
        return "whole number" if self.minimum is None else f"whole number ≥ {self.minimum}"


@dataclass(frozen=True)
class Number(Kind):
    """A finite number ≥ 0, or > 0 when `positive`, and at most `maximum` when given."""

    positive: bool = False
    unit: str = ""
    """What the number counts (`seconds`), for the docs and the message of a 0."""
    example: str = ""
    maximum: float | None = None

    def parse(self, raw: str, lists: ListLookup) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise SettingError(f"expected a number, got {raw!r}") from None
        if not math.isfinite(value):
            raise SettingError(f"expected a finite number, got {raw!r}")
        if value < 0:
            raise SettingError(f"must not be negative, got {raw}")
        if self.maximum is not None and value > self.maximum:
            raise SettingError(f"must be at most {self.maximum:g}, got {raw}")
        if self.positive and value == 0:
            unit = f" {self.unit}" if self.unit else ""
            example = f" (e.g. {self.example})" if self.example else ""
            raise SettingError(f"must be more than 0{unit}{example}")
        return value

    def describe(self) -> str:
        most = f", ≤ {self.maximum:g}" if self.maximum is not None else ""
        return f"{self.unit or 'number'} {'> 0' if self.positive else '≥ 0'}{most}"

    def show(self, value: Any) -> str:
        return f"{value:g}"


@dataclass(frozen=True)
class Port(Kind):
    """A TCP port number, 1 to 65535."""

    def parse(self, raw: str, lists: ListLookup) -> int:
        if not raw.isdigit() or not 1 <= int(raw) <= 65535:
            raise SettingError(f"expected a port number from 1 to 65535, got {raw!r}")
        return int(raw)

    def describe(self) -> str:
        return "port 1-65535"


@dataclass(frozen=True)
class Text(Kind):
    """A string, optionally lower-cased, stripped of a trailing character and matched against a pattern."""

    what: str = "text"
    pattern: str | None = None
    error: str = ""
    """Message when `pattern` does not match; `{value!r}` is the value."""
    lower: bool = False
    rstrip: str = ""

    def parse(self, raw: str, lists: ListLookup) -> str:
        value = raw.lower() if self.lower else raw
        value = value.rstrip(self.rstrip) if self.rstrip else value
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            raise SettingError(self.error.format(value=value))
        return value

    def describe(self) -> str:
        return self.what


@dataclass(frozen=True)
class FilePath(Kind):
    """A path; relative paths are taken from the config file's folder where they are used."""

    def parse(self, raw: str, lists: ListLookup) -> Path:
        return Path(raw)

    def describe(self) -> str:
        return "path"


@dataclass(frozen=True)
class Names(Kind):
    """Names separated by `sep` (HOME_CHILD's `a:b`)."""

    sep: str = ":"

    def parse(self, raw: str, lists: ListLookup) -> tuple[str, ...]:
        return tuple(part.strip() for part in raw.split(self.sep) if part.strip())

    def describe(self) -> str:
        return f"task names, `a{self.sep}b`"

    def show(self, value: Any) -> str:
        return self.sep.join(value)


_SIZE = re.compile(r"^(\d+)\s*([kmg]?)b?$", re.IGNORECASE)
_SIZE_UNITS: Mapping[str, int] = MappingProxyType({"": 1, "k": 1024, "m": 1024**2, "g": 1024**3})


@dataclass(frozen=True)
class Sizes(Kind):
    """Byte sizes separated by spaces or commas, with optional K/M/G suffixes (1K = 1024)."""

    def parse(self, raw: str, lists: ListLookup) -> tuple[int, ...]:
        sizes = []
        for part in re.split(r"[,\s]+", raw.strip()):
            match = _SIZE.match(part)
            if not match or int(match.group(1)) <= 0:
                raise SettingError(f"{part!r} is not a size; write bytes like 1024, 10K, 1M")
            sizes.append(int(match.group(1)) * _SIZE_UNITS[match.group(2).lower()])
        return tuple(sizes)

    def describe(self) -> str:
        return "sizes in bytes (`1K`, `1M` allowed)"

    def show(self, value: Any) -> str:
        def one(size: int) -> str:
            for suffix, unit in (("G", 1024**3), ("M", 1024**2), ("K", 1024)):
                if size % unit == 0:
                    return f"{size // unit}{suffix}"
            return str(size)

        return " ".join(one(size) for size in value)


@dataclass(frozen=True)
class Size(Kind):
    """One byte size with an optional K/M/G suffix (1K = 1024); 0 allowed when `zero` says what it means."""

    zero: str = ""
    """What 0 means (e.g. "automatic"); empty = 0 is refused."""

    def parse(self, raw: str, lists: ListLookup) -> int:
        match = _SIZE.match(raw.strip())
        if not match:
            raise SettingError(f"{raw!r} is not a size; write bytes like 65536, 64K, 16M, 1G")
        value = int(match.group(1)) * _SIZE_UNITS[match.group(2).lower()]
        if value == 0 and not self.zero:
            raise SettingError("must be more than 0 bytes")
        return value

    def describe(self) -> str:
        return "a size in bytes (`64K`, `16M`, `1G` allowed)" + (f"; 0 = {self.zero}" if self.zero else "")

    def show(self, value: Any) -> str:
        return Sizes().show((value,)) if value else "0"


@dataclass(frozen=True)
class Umask(Kind):
    """An octal umask, `077` or `0o022`."""

    def parse(self, raw: str, lists: ListLookup) -> int:
        text = raw.lower().removeprefix("0o")
        if not re.fullmatch(r"[0-7]{1,4}", text) or int(text, 8) > 0o777:
            raise SettingError(f"expected an octal umask like 077 (private) or 022 (readable by all), got {raw!r}")
        return int(text, 8)

    def describe(self) -> str:
        return "octal umask"

    def show(self, value: Any) -> str:
        return f"{int(value):03o}"


@dataclass(frozen=True)
class NodeCpus(Kind):
    """`node:cpus` pairs separated by commas or spaces, each cpus > 0."""

    def parse(self, raw: str, lists: ListLookup) -> Mapping[str, float]:
        cpus: dict[str, float] = {}
        for part in re.split(r"[,\s]+", raw):
            if not part:
                continue
            node, _, amount = part.partition(":")
            try:
                limit = float(amount)
            except ValueError:
                limit = -1.0
            if not node or limit <= 0:
                raise SettingError(f"expected `node:cpus` with cpus > 0 (e.g. node1:0.5), got {part!r}")
            cpus[node] = limit
        return cpus

    def describe(self) -> str:
        return "`node:cpus` list"

    def show(self, value: Any) -> str:
        return ", ".join(f"{node}:{cpus:g}" for node, cpus in value.items())


@dataclass(frozen=True)
class OneOf(Kind):
    """One of a few lower-case words."""

    values: tuple[str, ...]
    what: str

    def parse(self, raw: str, lists: ListLookup) -> str:
        value = raw.lower()
        if value not in self.values:
            raise SettingError(f"unknown {self.what} {value!r}; use {' or '.join(self.values)}")
        return value

    def describe(self) -> str:
        return " or ".join(f"`{value}`" for value in self.values)


@dataclass(frozen=True)
class Choice(Kind):
    """A `[CONFIG]` choice: an integer of the file's own `*_LIST` section, or a name.

    The original wrote every choice as an integer whose meaning its file's
    list section gives (`[SCHEDULER_LIST] HEFT = 0, ...`). The integer is
    turned into the list's name first, then every spelling goes through
    `names` (spelling -> canonical value).
    """

    list_section: str
    names: Mapping[str, str]
    raw_aliases: Mapping[str, str] = field(default_factory=dict)
    """Raw texts with a fixed meaning whatever the list says (PRICE_OPTION = 0 is sum)."""
    quiet: frozenset[str] = frozenset()
    """Spellings accepted for old files but left out of the hint of an error (newer lists' names)."""

    def parse(self, raw: str, lists: ListLookup) -> str:
        if raw in self.raw_aliases:
            return self.raw_aliases[raw]
        spelled = ", ".join(sorted(set(self.names) - self.quiet))
        name = raw
        if re.fullmatch(r"-?\d+", raw):
            number = int(raw)
            listing = lists(self.list_section)
            matches = [listed for listed, value in listing.items() if value == number]
            if not matches:
                known = ", ".join(f"{listed} = {value}" for listed, value in listing.items())
                raise SettingError(
                    f"{number} is not in [{self.list_section}] ({known}); use one of those numbers or a name: {spelled}"
                )
            name = matches[0]
            if name.lower() not in self.names:
                raise SettingError(
                    f"{number} means {name} in [{self.list_section}], which Jupiter does not have; "
                    f"use one of: {spelled}"
                )
        if name.lower() not in self.names:
            raise SettingError(f"unknown value {raw!r}; use one of: {spelled}")
        return self.names[name.lower()]

    def describe(self) -> str:
        canonical = sorted(set(self.names.values()))
        return f"{', '.join(f'`{name}`' for name in canonical)}, or a number of `[{self.list_section}]`"


_PLUGIN = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


@dataclass(frozen=True)
class Plugin(Kind):
    """A built-in choice, or a plug-in `package.module:Factory` (only its syntax is checked here)."""

    choice: Choice
    takes: str
    """What the factory is called with, for the message when it is missing."""

    def parse(self, raw: str, lists: ListLookup) -> str:
        if ":" not in raw:
            return self.choice.parse(raw, lists)
        if not _PLUGIN.match(raw):
            raise SettingError(f"{raw!r} is not a plug-in path; write `package.module:Factory`")
        return raw

    def describe(self) -> str:
        return f"{self.choice.describe()}, or a plug-in `package.module:Factory`"


@dataclass(frozen=True)
class Ignored(Kind):
    """A key of the original that is read and ignored, with a warning saying why."""

    reason: str

    def parse(self, raw: str, lists: ListLookup) -> None:
        return None

    def describe(self) -> str:
        return "ignored"


# -- the rows ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    """One key of `jupiter_config.ini`."""

    section: str
    key: str
    kind: Kind
    default: Any
    """Value when the key is missing or empty; the config dataclasses take their defaults from here."""
    check: Callable[[Any], str | None] | None = None
    """Extra check of a parsed value: None = fine, else the message."""
    doc: str = ""
    field: str | None = None
    """Dotted attribute of JupiterConfig this key fills; None only for `Ignored` keys."""
    shown_default: str | None = None
    """Docs' default text when the real default is worked out later (e.g. "Jupiter's version")."""

    def default_text(self) -> str:
        """The default as the docs show it."""
        return self.shown_default if self.shown_default is not None else self.kind.show(self.default)


def _queue_size(value: int) -> str | None:
    """TASK_QUEUE_SIZE: -1 means unbounded; 0 would hold every sender back forever."""
    if value == 0 or value < -1:
        return f"expected -1 (unbounded) or a size of at least 1, got {value}"
    return None


ORIGINAL_LISTS: Mapping[str, Mapping[str, int]] = MappingProxyType(
    {
        "SCHEDULER_LIST": MappingProxyType({"HEFT": 0, "WAVE_RANDOM": 1, "WAVE_GREEDY": 2, "HEFT_MODIFIED": 3}),
        "PRICING_LIST": MappingProxyType({"NONPRICING": 0, "PUSH_MULTIPLEHOME": 1, "DRIVEN_MULTIPLEHOME": 2}),
        "PRICING_FUNCTION_LIST": MappingProxyType({"SUM": 1, "MAX": 2}),
        "TRANSFER_LIST": MappingProxyType({"SCP": 0, "HTTP": 1}),
        "PROFILERS_LIST": MappingProxyType({"DRUPE": 0}),
    }
)
"""The original's v4 lists, used when a file has no list section of its own."""

# Names of the original's [SCHEDULER_LIST] whose algorithm has another name
# here, each with the registered mappers that compute it, best first. The
# original's HEFT_BALANCE (task_mapper/heft_mulhome/heft_balance) is HEFT
# with at most MAX_TASK_ALLOWED tasks per node, which is what heft_modified
# computes; a mapper registered as `heft_balance` takes over by itself.
_ORIGINAL_SCHEDULERS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {"heft_balance": ("heft_balance", "heft_modified")}
)


def scheduler_names(registered: Sequence[str]) -> Mapping[str, str]:
    """Every accepted SCHEDULER spelling -> a registered mapper: the registry's names plus the original's aliases."""
    names = {name: name for name in registered}
    for alias, candidates in _ORIGINAL_SCHEDULERS.items():
        target = next((candidate for candidate in candidates if candidate in names), None)
        if alias not in names and target is not None:
            names[alias] = target
    return MappingProxyType(names)


SCHEDULERS: Mapping[str, str] = scheduler_names(mapper_names())
"""SCHEDULER's spellings, from the mapper registry (`jupiter.mapping.registry`), never a copy of it."""
_SCHEDULER_ALIASES = frozenset(set(SCHEDULERS) - set(mapper_names()))

PRICING_SCHEMES: Mapping[str, str] = MappingProxyType(
    {
        "nonpricing": "nonpricing",
        "push": "push",
        "event": "event",
        # v4's documented list, and the newest original config's own list.
        "push_multiplehome": "push",
        "driven_multiplehome": "event",
        "push_pricing": "push",
        "event_pricing": "event",
    }
)
_PRICING_QUIET = frozenset({"push_pricing", "event_pricing"})
PRICE_FUNCTIONS: Mapping[str, str] = MappingProxyType({"sum": "sum", "max": "max"})
TRANSFERS: Mapping[str, str] = MappingProxyType({"http": "http", "scp": "scp"})
PROFILERS: Mapping[str, str] = MappingProxyType({"drupe": "drupe"})

_K8S_NAME = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
_K8S_NAME_ERROR = "{value!r} is not a Kubernetes name; use lower-case letters, digits and '-'"
_QUANTITY = r"[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti)?"
_QUANTITY_ERROR = "{value!r} is not a Kubernetes quantity (e.g. 250m, 0.5, 256Mi)"
_SECONDS = Number(unit="seconds")
_WEIGHT = Number()


def _namespace(key: str, stage: str) -> Setting:
    return Setting(
        "DEPLOY",
        key,
        Text("Kubernetes name", _K8S_NAME, _K8S_NAME_ERROR),
        "",
        doc=f"Kubernetes namespace of the {stage} stage",
        field=f"deploy.containers.{key.lower()}",
        shown_default="NAMESPACE",
    )


def _port(key: str, default: int, doc: str) -> Setting:
    return Setting("PORT", key, Port(), default, doc=doc, field=f"ports.{key.lower()}")


SETTINGS: tuple[Setting, ...] = (
    # [CONFIG]: the original's choices.
    Setting(
        "CONFIG",
        "STATIC_MAPPING",
        Flag(),
        False,
        doc="1 = take the mapping from a file (`[DEPLOY] MAPPING`), no profiling or mapping",
        field="static_mapping",
    ),
    Setting(
        "CONFIG",
        "SCHEDULER",
        Choice("SCHEDULER_LIST", SCHEDULERS, quiet=_SCHEDULER_ALIASES),
        "best",
        doc="the mapper ([mapping.md](mapping.md)); the original's `HEFT_BALANCE` is an alias",
        field="scheduler",
    ),
    Setting(
        "CONFIG",
        "TRANSFER",
        Plugin(Choice("TRANSFER_LIST", TRANSFERS), takes="TransferSettings"),
        "http",
        doc="how files move between nodes: Jupiter's data plane, key-based SCP, or a plug-in "
        "([profiling.md](profiling.md#plugging-in-another-transfer-method))",
        field="transfer",
    ),
    Setting(
        "CONFIG",
        "PROFILER",
        Plugin(Choice("PROFILERS_LIST", PROFILERS), takes="the profile store"),
        "drupe",
        doc="network and resource profiler; a plug-in's `get_network_data()`/`get_resource_data()` "
        "feed the mapper ([profiling.md](profiling.md))",
        field="profiler",
    ),
    Setting(
        "CONFIG",
        "RUNTIME",
        Binary("senders only", "senders and receivers"),
        True,
        doc="who logs transfer statistics",
        field="receiver_stats",
    ),
    Setting(
        "CONFIG",
        "PRICING",
        Choice("PRICING_LIST", PRICING_SCHEMES, quiet=_PRICING_QUIET),
        "nonpricing",
        doc="CIRCE dispatcher: fixed mapping, or pricing ([pricing.md](pricing.md)); also the original's names "
        "`PUSH_MULTIPLEHOME` `DRIVEN_MULTIPLEHOME` `PUSH_PRICING` `EVENT_PRICING`",
        field="pricing",
    ),
    Setting(
        "CONFIG",
        "PRICE_OPTION",
        Choice("PRICING_FUNCTION_LIST", PRICE_FUNCTIONS, raw_aliases=MappingProxyType({"0": "sum"})),
        "sum",
        doc="how a node's price terms combine; 0 = sum (the original's sample file says 0)",
        field="price_function",
    ),
    # [PORT]
    _port("MONGO_SVC", 6200, "MongoDB service port"),
    _port("MONGO_DOCKER", 27017, "MongoDB container port"),
    _port("SSH_SVC", 5000, "SSH service port (`TRANSFER = scp`)"),
    _port("SSH_DOCKER", 22, "SSH container port"),
    _port("FLASK_SVC", 6100, "agents' service port"),
    _port("FLASK_DOCKER", 8888, "agents' container port"),
    # [AUTH]
    Setting("AUTH", "USERNAME", Text(), "jupiter", doc="user of key-based SCP transfers", field="username"),
    Setting(
        "AUTH",
        "PASSWORD",
        Ignored("Jupiter never uses passwords (transfers use a per-deployment token, SCP uses keys); delete the line"),
        None,
        doc="read and ignored, with a warning: nothing needs a password",
    ),
    Setting(
        "AUTH",
        "KEY_FILE",
        FilePath(),
        None,
        doc="private key SCP logs in with (no passphrase), relative to the config file",
        field="ssh.key_file",
        shown_default="the user's ~/.ssh/id_*",
    ),
    Setting(
        "AUTH",
        "KNOWN_HOSTS",
        FilePath(),
        None,
        doc="host keys SCP accepts; any other host key is refused",
        field="ssh.known_hosts",
        shown_default="the user's ~/.ssh/known_hosts",
    ),
    # [OTHER]
    Setting("OTHER", "MAX_LOG", Integer(minimum=1), 10, doc="log files kept per agent", field="other.max_log"),
    Setting(
        "OTHER",
        "LOG_FILE_SIZE",
        Size(),
        10 * 1024**2,
        doc="an agent's log is rotated at this size, MAX_LOG files kept (local: `logs/<node>.log` into "
        "`<node>.log.1` ...; docker: the engine's log files)",
        field="other.log_file_size",
    ),
    Setting(
        "OTHER",
        "SSH_RETRY_NUM",
        Integer(minimum=0),
        20,
        doc="attempts per transfer before it counts as failed",
        field="other.ssh_retry_num",
    ),
    Setting(
        "OTHER",
        "TASK_QUEUE_SIZE",
        Integer(),
        -1,
        check=_queue_size,
        doc="frames a task may hold before senders are held back; -1 = unbounded",
        field="other.task_queue_size",
    ),
    # [LIMITS]: new in this rebuild (docs/security.md).
    Setting(
        "LIMITS",
        "MAX_HEADER",
        Size(),
        64 * 1024,
        doc="largest data-plane message header an agent reads",
        field="limits.max_header",
    ),
    Setting(
        "LIMITS",
        "MAX_PAYLOAD",
        Size(zero="automatic: 16 times the largest sample input, at least 256M"),
        0,
        doc="largest file an agent takes (streamed to disk, never held in memory)",
        field="limits.max_payload",
    ),
    Setting(
        "LIMITS",
        "MAX_MESSAGE",
        Size(),
        16 * 1024**2,
        doc="largest payload an agent reads into memory (statistics events, pricing messages)",
        field="limits.max_message",
    ),
    Setting(
        "LIMITS",
        "IDLE_TIMEOUT",
        Number(positive=True, unit="seconds", example="120"),
        120.0,
        doc="a data-plane connection idle this long is closed (senders reconnect)",
        field="limits.idle_timeout",
    ),
    Setting(
        "LIMITS",
        "READ_TIMEOUT",
        Number(positive=True, unit="seconds", example="30"),
        30.0,
        doc="a peer that stops sending in the middle of a message for this long loses the connection",
        field="limits.read_timeout",
    ),
    Setting(
        "LIMITS",
        "MAX_CONNECTIONS",
        Integer(minimum=1),
        256,
        doc="data-plane connections an agent serves at once; more are closed at once",
        field="limits.max_connections",
    ),
    Setting(
        "LIMITS",
        "BATCH_BYTES",
        Size(),
        8 * 1024**2,
        doc="payload bytes a sender puts in one batch message (a bigger file travels alone)",
        field="limits.batch_bytes",
    ),
    Setting(
        "LIMITS",
        "SPOOL_FREE",
        Size(zero="no watermark"),
        64 * 1024**2,
        doc="free space below which an agent takes no new frames into its spool (senders keep them and retry)",
        field="limits.spool_free",
    ),
    # [LIMITS]: bounds on what peers can make an agent spend (docs/security.md).
    Setting(
        "LIMITS",
        "CONTROL_CONNECTIONS",
        Integer(minimum=1),
        100,
        doc="connections an agent's control plane keeps open at once; more wait to be accepted "
        "(at most a quarter of the agent's file descriptor limit)",
        field="limits.control.connections",
    ),
    Setting(
        "LIMITS",
        "CONTROL_THREADS",
        Integer(minimum=1),
        8,
        doc="control-plane requests an agent handles at once (idle connections use no thread)",
        field="limits.control.threads",
    ),
    Setting(
        "LIMITS",
        "CONTROL_IDLE_TIMEOUT",
        Number(positive=True, unit="seconds", example="30"),
        30.0,
        doc="seconds a control-plane connection may stay idle (or send a request this slowly) before it is closed",
        field="limits.control.idle_timeout",
    ),
    Setting(
        "LIMITS",
        "CONTROL_MAX_BODY",
        Size(),
        1024**3,
        doc="largest control-plane request body (`jupiter submit` uploads); a body is read only after "
        "the token is checked",
        field="limits.control.max_body",
    ),
    # [DEPLOY]: new in this rebuild.
    Setting(
        "DEPLOY",
        "BACKEND",
        Text(
            "backend name",
            r"[a-z][a-z0-9_]*",
            "{value!r} is not a backend name; use lower-case letters, digits and '_' (e.g. local, docker, kubernetes)",
            lower=True,
        ),
        "local",
        doc="where agents run: `local`, `docker`, `kubernetes` ([containers.md](containers.md)), "
        "or another registered backend",
        field="deploy.backend",
    ),
    Setting("DEPLOY", "APP", FilePath(), None, doc="app folder, relative to the config file", field="deploy.app"),
    Setting(
        "DEPLOY",
        "HOME_CHILD",
        Names(":"),
        (),
        doc="ingress tasks home feeds; empty = the DAG's entry tasks",
        field="deploy.home_child",
    ),
    Setting(
        "DEPLOY",
        "STATE_DIR",
        FilePath(),
        Path(".jupiter"),
        doc="deployment state, agents' folders and logs",
        field="deploy.state_dir",
    ),
    Setting(
        "DEPLOY",
        "SPOOL_DIR",
        FilePath(),
        None,
        doc="local backend: files in transit between tasks (each node's inbox and outputs not yet delivered), "
        "in a folder per deployment removed by teardown; must not lie under a file",
        field="deploy.spool_dir",
        shown_default="/dev/shm when it is a tmpfs, else the deployment folder",  # noqa: S108 - docs text
    ),
    Setting(
        "DEPLOY",
        "UMASK",
        Umask(),
        0o077,
        doc="umask of everything a deployment writes (its folder, logs, spool, home's outputs): 077 = "
        "folders 0700 and files 0600; 022 lets others read them",
        field="deploy.umask",
    ),
    Setting(
        "DEPLOY",
        "ENV_DIR",
        FilePath(),
        None,
        doc="local backend: cache of per-app environments, each holding an app's requirements.txt installed "
        "(one per requirements content)",
        field="deploy.env_dir",
        shown_default="$XDG_CACHE_HOME/jupiter/envs, else ~/.cache/jupiter/envs",
    ),
    Setting(
        "DEPLOY",
        "WHEELS",
        FilePath(),
        None,
        doc="folder of wheels to install requirements.txt from, offline (`pip --no-index --find-links`); "
        "empty = pip's index",
        field="deploy.wheels",
    ),
    Setting(
        "DEPLOY",
        "MAPPING",
        FilePath(),
        None,
        doc="static mapping file (`task node` lines), used when STATIC_MAPPING = 1",
        field="deploy.mapping",
    ),
    Setting(
        "DEPLOY",
        "REGISTRY",
        Text("registry prefix", rstrip="/"),
        "",
        doc="registry prefix of image names (`REGISTRY/jupiter-<app>:<tag>`); empty = local names only",
        field="deploy.containers.registry",
    ),
    Setting(
        "DEPLOY",
        "IMAGE_TAG",
        Text("image tag", r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", "{value!r} is not a valid image tag"),
        "",
        doc="tag of the app images",
        field="deploy.containers.image_tag",
        shown_default="Jupiter's version",
    ),
    Setting(
        "DEPLOY",
        "BASE_IMAGE",
        Text("image name"),
        "python:3.11-slim-bookworm",
        doc="image the agent images start from (python3 with venv, 3.11)",
        field="deploy.containers.base_image",
    ),
    Setting(
        "DEPLOY",
        "NAMESPACE",
        Text("Kubernetes name", _K8S_NAME, _K8S_NAME_ERROR),
        "jupiter",
        doc="Kubernetes namespace of every object, unless a per-stage one is set",
        field="deploy.containers.namespace",
    ),
    _namespace("PROFILER_NAMESPACE", "profiler"),
    _namespace("MAPPER_NAMESPACE", "mapper"),
    _namespace("CIRCE_NAMESPACE", "CIRCE"),
    Setting(
        "DEPLOY",
        "KUBECONFIG",
        FilePath(),
        None,
        doc="kubeconfig file",
        field="deploy.containers.kubeconfig",
        shown_default="KUBECONFIG, ~/.kube/config, in-cluster",
    ),
    Setting(
        "DEPLOY",
        "CONTEXT",
        Text("kubeconfig context"),
        "",
        doc="kubeconfig context",
        field="deploy.containers.context",
        shown_default="the file's current context",
    ),
    Setting(
        "DEPLOY",
        "CPU_REQUEST",
        Text("Kubernetes quantity", _QUANTITY, _QUANTITY_ERROR),
        "100m",
        doc="CPU request of every pod",
        field="deploy.containers.cpu_request",
    ),
    Setting(
        "DEPLOY",
        "MEMORY_REQUEST",
        Text("Kubernetes quantity", _QUANTITY, _QUANTITY_ERROR),
        "128Mi",
        doc="memory request of every pod",
        field="deploy.containers.memory_request",
    ),
    Setting(
        "DEPLOY",
        "MEMORY_LIMIT",
        Text("Kubernetes quantity", _QUANTITY, _QUANTITY_ERROR),
        "",
        doc="kubernetes: memory limit of every agent pod (e.g. 2Gi); empty = none",
        field="deploy.containers.memory_limit",
        shown_default="none",
    ),
    Setting(
        "DEPLOY",
        "RBAC_GROUP",
        Text("group name"),
        "jupiter-users",
        doc="kubernetes: the group `jupiter render`'s Role and RoleBinding grant what the CLI needs "
        "(for an administrator to apply; deploy never applies them)",
        field="deploy.containers.rbac_group",
    ),
    Setting(
        "DEPLOY",
        "CPUS",
        NodeCpus(),
        MappingProxyType({}),
        doc="per-node CPU limits, `node1:0.5, node2:2` (docker: node speed; kubernetes: limits)",
        field="deploy.containers.cpus",
        shown_default="none",
    ),
    # [RUNTIME]: limits of every task (scripts/config.json may override them per app and per task).
    Setting(
        "RUNTIME",
        "TASK_TIMEOUT",
        _SECONDS,
        0.0,
        doc="seconds one frame of a task may run; its worker is then stopped, the frame fails and later frames "
        "go on; 0 = no limit (per task: `task_timeout` in scripts/config.json)",
        field="limits.task_timeout",
    ),
    Setting(
        "RUNTIME",
        "TASK_MEMORY",
        Size(zero="no limit"),
        0,
        doc="data a task's worker may allocate (RLIMIT_DATA); beyond it the frame fails with MemoryError and the "
        "worker restarts (per task: `task_memory` in scripts/config.json)",
        field="limits.task_memory",
    ),
    # [MAPPER]
    Setting(
        "MAPPER",
        "MAX_TASK_ALLOWED",
        Integer(minimum=0),
        0,
        doc="heft_modified's cap of tasks per node; 0 = ceil(tasks / compute nodes)",
        field="mapper.max_task_allowed",
    ),
    Setting("MAPPER", "W_NET", _WEIGHT, 1.0, doc="wave_greedy's weight of link delay (s)", field="mapper.w_net"),
    Setting("MAPPER", "W_CPU", _WEIGHT, 1.0, doc="wave_greedy's weight of CPU %", field="mapper.w_cpu"),
    Setting("MAPPER", "W_MEM", _WEIGHT, 1.0, doc="wave_greedy's weight of memory %", field="mapper.w_mem"),
    Setting("MAPPER", "SEED", Integer(), 0, doc="seed of wave_random", field="mapper.seed"),
    Setting(
        "MAPPER",
        "STREAM_RATE",
        Number(unit="frames/s", example="2"),
        0.0,
        doc="the `stream` mapper's arrival rate to map for ([streams.md](streams.md)); 0 = as fast as it goes",
        field="mapper.stream_rate",
    ),
    Setting(
        "MAPPER",
        "STREAM_CAP",
        Number(positive=True, maximum=1.0, example="0.9"),
        0.9,
        doc="the `stream` mapper keeps every node's utilisation (rate x its work per frame) under this",
        field="mapper.stream_cap",
    ),
    Setting(
        "MAPPER",
        "WAVE_TIMEOUT",
        _SECONDS,
        30.0,
        doc="distributed WAVE: seconds to wait for every task's node",
        field="mapper.wave_timeout",
    ),
    # [PROFILING]
    Setting(
        "PROFILING",
        "NETWORK_SIZES",
        Sizes(),
        (1024, 10 * 1024, 100 * 1024, 1024 * 1024),
        doc="network profiler's test file sizes",
        field="profiling.network_sizes",
    ),
    Setting(
        "PROFILING",
        "NETWORK_SAMPLES",
        Integer(minimum=1),
        3,
        doc="transfers per size and link",
        field="profiling.network_samples",
    ),
    Setting(
        "PROFILING",
        "NETWORK_INTERVAL",
        _SECONDS,
        0.0,
        doc="seconds between re-profiles of a running deployment; 0 = once (never during `run`)",
        field="profiling.network_interval",
    ),
    Setting(
        "PROFILING",
        "LINKS",
        FilePath(),
        None,
        doc="link list (`src dst` lines, the original's link_list.txt); empty = every ordered pair",
        field="profiling.links",
    ),
    Setting(
        "PROFILING",
        "EXEC_RUNS",
        Integer(minimum=1),
        2,
        doc="execution profiler's chained runs per node (cycling over sample_input/)",
        field="profiling.exec_runs",
    ),
    Setting(
        "PROFILING",
        "EXEC_BUDGET",
        Number(positive=True, unit="seconds", example="10"),
        10.0,
        doc="execution profiler's time per task and node: no new run once a task's runs took this long "
        "(a task slower than this is measured by one call)",
        field="profiling.exec_budget",
    ),
    Setting(
        "PROFILING",
        "EXEC_PARALLEL",
        OneOf(("auto", "yes", "no"), "choice"),
        "auto",
        doc="whether the compute nodes run the execution profiler side by side; `auto`: yes where they are "
        "machines or containers of their own (docker, kubernetes), no on the local backend, whose emulated "
        "nodes share this machine's CPUs",
        field="profiling.exec_parallel",
    ),
    Setting(
        "PROFILING",
        "CACHE",
        Flag(),
        True,
        doc="reuse the profile of an earlier deployment of the same app content, nodes, testbed, backend and "
        "profiling settings (kept in STATE_DIR/profiles/); `--reprofile` measures again",
        field="profiling.cache",
    ),
    Setting(
        "PROFILING",
        "TIMEOUT",
        _SECONDS,
        600.0,
        doc="seconds one profiling request may take: an agent's network profile, one task's execution "
        "profile on one node",
        field="profiling.timeout",
    ),
    Setting(
        "PROFILING",
        "STORE",
        OneOf(("sqlite", "mongodb"), "store"),
        "sqlite",
        doc="where profiles and statistics live at home",
        field="profiling.store",
    ),
    Setting(
        "PROFILING",
        "MONGO_URL",
        Text("URL"),
        "mongodb://127.0.0.1:27017/",
        doc="MongoDB server of `STORE = mongodb`",
        field="profiling.mongo_url",
    ),
    Setting(
        "PROFILING",
        "TESTBED",
        FilePath(),
        None,
        doc="testbed file emulating node speeds and links on the local backend ([profiling.md](profiling.md))",
        field="profiling.testbed",
    ),
    # [PRICING]
    Setting(
        "PRICING",
        "INTERVAL",
        Number(positive=True, unit="seconds", example="0.2"),
        0.2,
        doc="seconds between compute nodes' price reports (push: also controllers' choices)",
        field="price.interval",
    ),
    Setting(
        "PRICING",
        "STALE",
        _SECONDS,
        1.0,
        doc="a price older than this is not used; home declares a silent node dead after it; "
        "must be longer than INTERVAL",
        field="price.stale",
    ),
    Setting(
        "PRICING",
        "MARGIN",
        Number(unit="fraction"),
        0.25,
        doc="the mapper's node keeps a task unless another node is cheaper by more than this fraction",
        field="price.margin",
    ),
    Setting("PRICING", "W_NETWORK", _WEIGHT, 1.0, doc="weight of the network delay term", field="price.w_network"),
    Setting("PRICING", "W_EXECUTION", _WEIGHT, 1.0, doc="weight of the execution time term", field="price.w_execution"),
    Setting("PRICING", "W_QUEUE", _WEIGHT, 1.0, doc="weight of the queue backlog term", field="price.w_queue"),
    Setting("PRICING", "W_CPU", _WEIGHT, 1.0, doc="weight of the CPU term", field="price.w_cpu"),
    Setting("PRICING", "W_MEMORY", _WEIGHT, 1.0, doc="weight of the memory term", field="price.w_memory"),
)
"""Every key of `jupiter_config.ini`, in the order of the file and of the docs."""


def _known_keys() -> Mapping[str, tuple[str, ...]]:
    sections: dict[str, list[str]] = {}
    for setting in SETTINGS:
        sections.setdefault(setting.section, []).append(setting.key)
    return MappingProxyType({section: tuple(keys) for section, keys in sections.items()})


KNOWN_KEYS: Mapping[str, tuple[str, ...]] = _known_keys()
"""Section -> its keys, in table order; other keys and sections warn."""

ORIGINAL_ONLY: frozenset[tuple[str, str]] = frozenset(
    {
        ("CONFIG", "DCOMP"),
        ("CONFIG", "SIM"),
        ("PORT", "FLASK_CIRCE"),
        ("PORT", "FLASK_DEPLOY"),
        ("OTHER", "NUM_NODES"),
        ("OTHER", "NUM_STRESS"),
        ("OTHER", "BOKEH_SERVER"),
        ("OTHER", "BOKEH_PORT"),
        ("OTHER", "BOKEH"),
    }
)
"""Keys of the original's files that no part of this rebuild uses; they warn as such, not as typos."""

_BY_FIELD: Mapping[str, Setting] = MappingProxyType(
    {setting.field: setting for setting in SETTINGS if setting.field is not None}
)


def default(field_path: str) -> Any:
    """Default of the JupiterConfig attribute `field_path` (`deploy.backend`); KeyError for a field no key fills."""
    return _BY_FIELD[field_path].default


def setting_of(section: str, key: str) -> Setting:
    """The row of `[section] key`; KeyError when there is none."""
    for setting in SETTINGS:
        if (setting.section, setting.key) == (section, key):
            return setting
    raise KeyError((section, key))


BEGIN_MARKER = "<!-- settings:begin -->"
END_MARKER = "<!-- settings:end -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown_table() -> str:
    """The `jupiter_config.ini` table of docs/formats.md (without the markers), one row per key."""
    rows = [
        "| section | key | value | meaning | default |",
        "|---|---|---|---|---|",
    ]
    previous = ""
    for setting in SETTINGS:
        section = f"`[{setting.section}]`" if setting.section != previous else ""
        previous = setting.section
        default_text = setting.default_text()
        cells = (
            section,
            f"`{setting.key}`",
            _cell(setting.kind.describe()),
            _cell(setting.doc),
            _cell(default_text),
        )
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"


def replace_table(document: str) -> str:
    """`document` with the text between the settings markers replaced by `markdown_table()`."""
    begin = document.index(BEGIN_MARKER) + len(BEGIN_MARKER)
    end = document.index(END_MARKER)
    return document[:begin] + "\n" + markdown_table() + document[end:]


def main(argv: Sequence[str]) -> int:
    """`python -m jupiter.model.schema [--write DOC]`: print the docs table, or rewrite it inside DOC."""
    if not argv:
        sys.stdout.write(markdown_table())
        return 0
    if len(argv) == 2 and argv[0] == "--write":
        document = Path(argv[1])
        try:
            text = document.read_text(encoding="utf-8")
            updated = replace_table(text)
        except (OSError, ValueError) as exc:
            sys.stderr.write(f"error: {document}: {exc} (it needs the lines {BEGIN_MARKER} and {END_MARKER})\n")
            return 2
        if updated != text:
            document.write_text(updated, encoding="utf-8")
        return 0
    sys.stderr.write("usage: python -m jupiter.model.schema [--write docs/formats.md]\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
