"""`TRANSFER = scp` against a real SSH server (`tests.sshd`)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest

from jupiter.profiling.interface import TransferSettings
from jupiter.profiling.plugins import get_transfer
from jupiter.profiling.scp import ScpTransfer
from tests.sshd import USER, Keys, SshServer, known_hosts, ssh_server


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[tuple[SshServer, Keys]]:
    with ssh_server(tmp_path) as served:
        yield served


def _scp(server: SshServer, key_file: Path, hosts: Path) -> ScpTransfer:
    settings = TransferSettings(port=server.port, key_file=key_file, known_hosts=hosts, timeout=10)
    method = get_transfer("scp", settings)
    assert isinstance(method, ScpTransfer)
    return method


def test_a_file_arrives_over_one_kept_connection(sshd: tuple[SshServer, Keys], tmp_path: Path) -> None:
    server, keys = sshd
    source = tmp_path / "frame.bin"
    source.write_bytes(os.urandom(300_000))
    (tmp_path / "staging").mkdir()
    scp = _scp(server, keys.key_file, keys.known_hosts)
    try:
        scp.data_transfer("127.0.0.1", USER, source, str(tmp_path / "staging" / "a"))
        scp.data_transfer("127.0.0.1", USER, source, str(tmp_path / "staging" / "b"))
    finally:
        scp.close()
    assert (tmp_path / "staging" / "a").read_bytes() == source.read_bytes()
    assert (tmp_path / "staging" / "b").read_bytes() == source.read_bytes()
    assert len(server.connections) == 1


def test_an_unknown_or_changed_host_key_is_refused(sshd: tuple[SshServer, Keys], tmp_path: Path) -> None:
    server, keys = sshd
    source = tmp_path / "frame.bin"
    source.write_bytes(b"secret")
    where = f"{USER}@127.0.0.1:{server.port}"
    unknown = tmp_path / "other_hosts"
    unknown.write_text("")
    scp = _scp(server, keys.key_file, unknown)
    with pytest.raises(PermissionError) as caught:
        scp.data_transfer("127.0.0.1", USER, source, str(tmp_path / "copy"))
    assert str(caught.value) == (
        f"{where}: host key of [127.0.0.1]:{server.port} (ecdsa-sha2-nistp256) is not in {unknown}; "
        "add it there (e.g. with ssh-keyscan) after checking it"
    )
    changed = known_hosts(tmp_path / "changed_hosts", server.port, paramiko.ECDSAKey.generate())
    scp = _scp(server, keys.key_file, changed)
    with pytest.raises(PermissionError, match=rf"^{where}: host key \(ecdsa-sha2-nistp256\) differs from the one in"):
        scp.data_transfer("127.0.0.1", USER, source, str(tmp_path / "copy"))
    assert not (tmp_path / "copy").exists()


def test_a_key_the_node_does_not_know_is_refused(sshd: tuple[SshServer, Keys], tmp_path: Path) -> None:
    server, keys = sshd
    stranger = tmp_path / "id_stranger"
    paramiko.ECDSAKey.generate().write_private_key_file(str(stranger))
    source = tmp_path / "frame.bin"
    source.write_bytes(b"secret")
    scp = _scp(server, stranger, keys.known_hosts)
    with pytest.raises(PermissionError) as caught:
        scp.data_transfer("127.0.0.1", USER, source, str(tmp_path / "copy"))
    message = str(caught.value)
    assert message.startswith(f"{USER}@127.0.0.1:{server.port} refused the key {stranger} (")
    assert message.endswith("add its public key to that user's authorized_keys")
    assert "\n" not in message
    assert not (tmp_path / "copy").exists()
