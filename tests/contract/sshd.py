"""A throw-away OpenSSH server on loopback, for transport tests that need no lab."""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SSHD = "/usr/sbin/sshd"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def keygen(path: Path) -> str:
    """Create an ed25519 key pair at `path`; return the public key line."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
                   check=True)
    return path.with_suffix(".pub").read_text().strip() if path.suffix else \
        Path(f"{path}.pub").read_text().strip()


@dataclass
class Sshd:
    """A running sshd plus the client-side files that trust it."""

    root: Path
    port: int
    client_key: Path
    known_hosts: Path
    ssh_config: Path
    proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def create(cls, root: Path, alias: str = "box") -> Sshd:
        root.mkdir(parents=True, exist_ok=True)
        host_key = root / "host_ed25519"
        host_pub = keygen(host_key)
        client_key = root / "client_ed25519"
        client_pub = keygen(client_key)
        (root / "authorized_keys").write_text(client_pub + "\n")
        root.chmod(0o755)
        port = free_port()
        known = root / "known_hosts"
        key_part = " ".join(host_pub.split()[:2])
        known.write_text(f"[127.0.0.1]:{port},[{alias}]:{port} {key_part}\n")
        cfg = root / "ssh_config"
        cfg.write_text(
            f"Host {alias}\n  HostName 127.0.0.1\n  Port {port}\n  User root\n"
            f"  IdentityFile {client_key}\n  UserKnownHostsFile {known}\n"
            "  StrictHostKeyChecking yes\n"
        )
        (root / "sshd_config").write_text(
            f"Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\n"
            f"AuthorizedKeysFile {root}/authorized_keys\nPermitRootLogin prohibit-password\n"
            "PasswordAuthentication no\nUsePAM no\nUseDNS no\nStrictModes no\n"
            f"PidFile {root}/sshd.pid\nMaxStartups 100:30:100\n"
        )
        return cls(root, port, client_key, known, cfg)

    def start(self) -> None:
        # sshd insists on /run/sshd; give it a private /run instead of touching the host's.
        # A clean /root too: the controller's ~/.bashrc (pyenv & co.) must not run per command.
        home = self.root / "home"
        home.mkdir(exist_ok=True)
        script = (f"mount -t tmpfs netops-test /run && mkdir -m 755 /run/sshd && "
                  f"mount --bind {home} /root && "
                  f"exec {SSHD} -D -e -f {self.root / 'sshd_config'}")
        with open(self.root / "sshd.log", "ab") as log:
            self.proc = subprocess.Popen(
                ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script],
                stderr=log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"sshd did not start: {(self.root / 'sshd.log').read_text()}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None
