"""`[CONFIG] TRANSFER = scp`: copy files over SSH with a key, the host's key checked.

The original copied files with `sshpass` and a root password; here the
agents log in as `[AUTH] USERNAME` with the private key `[AUTH] KEY_FILE`
on port `[PORT] SSH_SVC`, and accept a node only if its host key is in
`[AUTH] KNOWN_HOSTS` (unknown keys are refused, never added). Files go up
with SFTP, which every OpenSSH server offers. One SSH connection per node
and user is kept open and shared by the sending threads.

This is the only module that talks to paramiko.
"""

from __future__ import annotations

import threading
from pathlib import Path

import paramiko

from jupiter.profiling.interface import TransferSettings


class _RefuseUnknownHosts(paramiko.MissingHostKeyPolicy):
    """Never trust a host key on first use: it must already be in the known hosts file."""

    def __init__(self, known_hosts: Path | None) -> None:
        self.known_hosts = known_hosts or Path("~/.ssh/known_hosts")

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        raise PermissionError(
            f"host key of {hostname} ({key.get_name()}) is not in {self.known_hosts}; "
            f"add it there (e.g. with ssh-keyscan) after checking it"
        )


class ScpTransfer:
    """The built-in SCP method (SFTP put), as a `jupiter.profiling.interface.DataTransfer`."""

    def __init__(self, settings: TransferSettings) -> None:
        self.settings = settings
        self._clients: dict[tuple[str, str], paramiko.SSHClient] = {}
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()

    def data_transfer(self, host: str, user: str, source: Path, destination: str) -> None:
        """Copy `source` to the absolute path `destination` on `host`, logged in as `user`."""
        client = self._client(host, user)
        try:
            with client.open_sftp() as sftp:
                sftp.put(str(source), destination)
        except (paramiko.SSHException, EOFError, OSError) as exc:
            # The connection may be broken: the next attempt opens a new one.
            self._drop(host, user)
            raise OSError(f"copying {source.name} to {user}@{host}:{destination} failed: {exc}") from None

    def close(self) -> None:
        """Close every open connection."""
        with self._guard:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()

    def _drop(self, host: str, user: str) -> None:
        with self._guard:
            client = self._clients.pop((host, user), None)
        if client is not None:
            client.close()

    def _client(self, host: str, user: str) -> paramiko.SSHClient:
        key = (host, user)
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:  # one connection attempt per node at a time; other nodes are not held up
            client = self._clients.get(key)
            transport = client.get_transport() if client is not None else None
            if client is not None and transport is not None and transport.is_active():
                return client
            client = self._connect(host, user)
            with self._guard:
                self._clients[key] = client
            return client

    def _key(self) -> paramiko.PKey | None:
        """The `[AUTH] KEY_FILE` key (None: paramiko tries the user's default keys)."""
        path = self.settings.key_file
        if path is None:
            return None
        try:
            return paramiko.PKey.from_path(path)
        except paramiko.PasswordRequiredException:
            raise PermissionError(f"key file {path} is encrypted; agents need a key without a passphrase") from None
        except (paramiko.SSHException, OSError, ValueError) as exc:
            raise PermissionError(f"cannot load key file {path} ({exc}); [AUTH] KEY_FILE names a private key") from None

    def _connect(self, host: str, user: str) -> paramiko.SSHClient:
        settings = self.settings
        where = f"{user}@{host}:{settings.port}"
        client = paramiko.SSHClient()
        try:
            try:
                client.load_system_host_keys(str(settings.known_hosts) if settings.known_hosts else None)
            except OSError as exc:
                raise PermissionError(f"cannot read known hosts file {settings.known_hosts}: {exc.strerror}") from None
            client.set_missing_host_key_policy(_RefuseUnknownHosts(settings.known_hosts))
            client.connect(
                host,
                port=settings.port,
                username=user,
                pkey=self._key(),
                look_for_keys=settings.key_file is None,
                allow_agent=False,
                timeout=settings.timeout,
                banner_timeout=settings.timeout,
                auth_timeout=settings.timeout,
                channel_timeout=settings.timeout,
            )
        except PermissionError as exc:
            client.close()
            raise PermissionError(f"{where}: {exc}") from None
        except paramiko.BadHostKeyException as exc:
            client.close()
            raise PermissionError(
                f"{where}: host key ({exc.key.get_name()}) differs from the one in "
                f"{settings.known_hosts or '~/.ssh/known_hosts'}; if the node was reinstalled, replace that line"
            ) from None
        except paramiko.AuthenticationException as exc:
            client.close()
            identity = settings.key_file or "the default keys in ~/.ssh"
            raise PermissionError(
                f"{where} refused the key {identity} ({exc}); add its public key to that user's authorized_keys"
            ) from None
        except (paramiko.SSHException, EOFError, OSError) as exc:
            client.close()
            raise OSError(f"cannot reach {where} over SSH: {exc}") from None
        return client
