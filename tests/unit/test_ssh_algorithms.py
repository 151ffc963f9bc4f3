"""The SSH transport's algorithm order: paramiko's key exchange order by default (ML-KEM hybrid
first), ssh_config's KexAlgorithms honoured, with OpenSSH's alias for curve25519."""

from __future__ import annotations

import paramiko

from netops.transport.ssh import _Transport, _with_algorithms


def test_default_keeps_the_post_quantum_exchange_first() -> None:
    assert _Transport._preferred_kex == paramiko.Transport._preferred_kex  # type: ignore[attr-defined]
    assert _Transport._preferred_ciphers[0] == "aes128-gcm@openssh.com"  # type: ignore[attr-defined]


def test_ssh_config_kex_with_the_rfc_name_of_curve25519() -> None:
    t = _with_algorithms(("curve25519-sha256", "nosuch-kex"), ())
    assert t._preferred_kex == ("curve25519-sha256@libssh.org",)  # type: ignore[attr-defined]
