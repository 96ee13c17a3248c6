"""A real SSH server for tests: paramiko's server side in a thread on 127.0.0.1, SFTP uploads only.

Keys are generated per test (ECDSA, fast); the client's key is the only one
let in, and only as `USER`; there are no passwords.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import paramiko
from paramiko.common import AUTH_FAILED, AUTH_SUCCESSFUL, OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED, OPEN_SUCCEEDED
from paramiko.sftp import SFTP_OK

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

USER = "jupiter"


class _Upload(paramiko.SFTPHandle):
    """A file being written by the client."""

    def __init__(self, flags: int, descriptor: int) -> None:
        super().__init__(flags)
        self.file = os.fdopen(descriptor, "wb")

    def write(self, offset: int, data: ReadableBuffer) -> int:
        self.file.seek(offset)
        self.file.write(data)
        return SFTP_OK

    def close(self) -> None:
        self.file.close()
        super().close()


class _Sftp(paramiko.SFTPServerInterface):
    """Just enough SFTP for `put`: open a file for writing, stat it."""

    def open(self, path: str, flags: int, attr: paramiko.SFTPAttributes) -> paramiko.SFTPHandle | int:
        try:
            return _Upload(flags, os.open(path, flags, 0o600))
        except OSError as exc:
            return paramiko.SFTPServer.convert_errno(exc.errno or 0)

    def stat(self, path: str) -> paramiko.SFTPAttributes | int:
        try:
            return paramiko.SFTPAttributes.from_stat(os.stat(path))
        except OSError as exc:
            return paramiko.SFTPServer.convert_errno(exc.errno or 0)

    lstat = stat


class _KeyOnly(paramiko.ServerInterface):
    """Lets `USER` in with one public key; nothing else (no passwords)."""

    def __init__(self, authorized: paramiko.PKey) -> None:
        self.authorized = authorized

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        if username == USER and key.asbytes() == self.authorized.asbytes():
            return AUTH_SUCCESSFUL
        return AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        return OPEN_SUCCEEDED if kind == "session" else OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED


class SshServer:
    """An SSH server with SFTP on 127.0.0.1, serving the local file system."""

    def __init__(self, host_key: paramiko.PKey, authorized: paramiko.PKey) -> None:
        self.host_key = host_key
        self.authorized = authorized
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port: int = self.listener.getsockname()[1]
        self.connections: list[paramiko.Transport] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, name="test-sshd", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            transport = paramiko.Transport(connection)
            transport.add_server_key(self.host_key)
            transport.set_subsystem_handler("sftp", paramiko.SFTPServer, _Sftp)
            self.connections.append(transport)
            try:
                transport.start_server(server=_KeyOnly(self.authorized))
            except (paramiko.SSHException, EOFError, OSError):
                continue  # the client gave up (e.g. it did not trust our host key)

    def close(self) -> None:
        self.stopping.set()
        self.thread.join()
        self.listener.close()
        for transport in self.connections:
            transport.close()


@dataclass
class Keys:
    """Files a deployment would have: the agents' key and their known hosts."""

    key_file: Path
    known_hosts: Path


def known_hosts(path: Path, port: int, key: paramiko.PKey) -> Path:
    """A known hosts file naming `key` as 127.0.0.1's key on `port`."""
    hosts = paramiko.HostKeys()
    hosts.add(f"[127.0.0.1]:{port}", key.get_name(), key)
    hosts.save(str(path))
    return path


@contextlib.contextmanager
def ssh_server(folder: Path) -> Iterator[tuple[SshServer, Keys]]:
    """A running server whose client key (`id_ecdsa`) and known hosts (`known_hosts`) are in `folder`."""
    host_key = paramiko.ECDSAKey.generate()
    client_key = paramiko.ECDSAKey.generate()
    client_key.write_private_key_file(str(folder / "id_ecdsa"))
    server = SshServer(host_key, client_key)
    try:
        yield server, Keys(folder / "id_ecdsa", known_hosts(folder / "known_hosts", server.port, host_key))
    finally:
        server.close()
