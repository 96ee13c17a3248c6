"""The integration interface of the original: plug in another profiler or transfer method.

Jupiter v4 decoupled its monitoring tool and its file transfer behind three
functions: `get_network_data()` (quadratic parameters of every link),
`get_resource_data()` (CPU and memory of every node) and
`data_transfer(...)`. Here they are small protocols, and `get_profiler`
finds an implementation by name (a built-in, or `package.module:Factory`;
`jupiter.profiling.plugins`):

```python
# mymonitor.py
class MyMonitor:
    def __init__(self, store): ...
    def get_network_data(self): return {("n1", "n2"): LinkCost(a=0, b=8e-8, c=0.01)}
    def get_resource_data(self): return {"n1": Resources(cpu=10.0, memory=40.0)}

# jupiter.profiling.plugins.get_profiler("mymonitor:MyMonitor", store) -> MyMonitor(store)
```

The default, `drupe`, reads what Jupiter's own profilers measured from the
profile store. A `DataTransfer` moves a file to a node;
`jupiter.profiling.plugins.get_transfer` finds the one `[CONFIG] TRANSFER`
names (`scp`, or `package.module:Factory` of a class or function taking
`TransferSettings`). With the default, `http`, the agents carry files in
their own data-plane messages and no `DataTransfer` is used; with another
method they copy each file with it first (`jupiter.runtime.staging`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from jupiter.mapping import LinkCost, Resources
from jupiter.store import ProfileStore


class NetworkData(Protocol):
    """Network monitoring: one quadratic transfer model per ordered link."""

    def get_network_data(self) -> dict[tuple[str, str], LinkCost]:
        """(src, dst) -> transfer time model `a·s² + b·s + c` (seconds, bytes)."""
        ...


class ResourceData(Protocol):
    """Resource monitoring: CPU and memory use per node (percent)."""

    def get_resource_data(self) -> dict[str, Resources]:
        """node -> CPU % and memory % in use."""
        ...


class Profiler(NetworkData, ResourceData, Protocol):
    """Both halves, as DRUPE provides them."""


class DataTransfer(Protocol):
    """A file transfer method: copy `source` to `destination` on the node at `host`."""

    def data_transfer(self, host: str, user: str, source: Path, destination: str) -> None:
        """Transfer one file (`destination` is an absolute path on that node).

        Raise OSError when it cannot be delivered now (it is tried again), and
        PermissionError when trying again cannot help (a refused key, an
        unknown host key).
        """
        ...


@dataclass(frozen=True)
class TransferSettings:
    """What a transfer method is built with: the `[PORT]` and `[AUTH]` settings of the deployment."""

    port: int = 5000
    """`[PORT] SSH_SVC`: the port the method connects to on every node."""
    key_file: Path | None = None
    """`[AUTH] KEY_FILE`: private key to log in with; None = the user's default keys."""
    known_hosts: Path | None = None
    """`[AUTH] KNOWN_HOSTS`: host keys accepted; None = the user's `~/.ssh/known_hosts`."""
    timeout: float = 30.0
    """Seconds to connect, authenticate or copy before giving up on one attempt."""


class DrupeProfiler:
    """The default profiler: what Jupiter's DRUPE-style profilers stored."""

    def __init__(self, store: ProfileStore) -> None:
        self.store = store

    def get_network_data(self) -> dict[tuple[str, str], LinkCost]:
        return {key: LinkCost(r["a"], r["b"], r["c"]) for key, r in self.store.get_network_data().items()}

    def get_resource_data(self) -> dict[str, Resources]:
        return {node: Resources(cpu=r["cpu"], memory=r["memory"]) for node, r in self.store.get_resource_data().items()}
