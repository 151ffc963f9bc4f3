"""Pure decision logic of the declarative step kinds."""

from netops.steps import file, systemd
from netops.steps.base import Expect
from netops.steps.sysctl import comment_out, desired_file, parse
from netops.steps.sysctl_order import assignments, boot_order, boot_value
from netops.transport.base import Completed


def test_boot_order_masking_and_sysctl_conf_last() -> None:
    files = {
        "/usr/lib/sysctl.d/50-default.conf": "net.ipv4.ip_forward = 0\n",
        "/etc/sysctl.d/50-default.conf": "# masks the /usr/lib one\n",
        "/etc/sysctl.d/99-kubernetes.conf": "net.ipv4.ip_forward = 1\n",
        "/run/sysctl.d/10-early.conf": "net.ipv4.ip_forward=0\n",
        "/etc/sysctl.conf": "#net.ipv4.ip_forward=1\n",
    }
    assert boot_order(files) == ["/run/sysctl.d/10-early.conf", "/etc/sysctl.d/50-default.conf",
                                 "/etc/sysctl.d/99-kubernetes.conf", "/etc/sysctl.conf"]
    winner = boot_value(files, "net.ipv4.ip_forward")
    assert winner is not None and (winner.path, winner.value) == (
        "/etc/sysctl.d/99-kubernetes.conf", "1")


def test_the_measured_debian_trap_later_file_wins() -> None:
    """RUNBOOKS 1.2: 99-kubernetes says 1, 99-sysctl.conf (-> /etc/sysctl.conf) says 0."""
    files = {
        "/etc/sysctl.d/99-kubernetes.conf": "net.ipv4.ip_forward = 1\n",
        "/etc/sysctl.d/99-sysctl.conf": "net.ipv4.ip_forward = 0\n",
        "/etc/sysctl.conf": "net.ipv4.ip_forward = 0\n",
    }
    found = assignments(files, "net/ipv4/ip_forward")
    assert [a.value for a in found] == ["1", "0", "0"]
    assert boot_value(files, "net.ipv4.ip_forward").value == "0"  # type: ignore[union-attr]


def test_desired_persist_file() -> None:
    assert desired_file(None, "k.a", "1") == "# managed by netops\nk.a = 1\n"
    assert desired_file("x = 2\nk.a=0\ny = 3", "k.a", "1") == "x = 2\nk.a = 1\ny = 3\n"
    assert desired_file("x = 2\n", "k.a", "1") == "x = 2\nk.a = 1\n"


def test_probe_output_parsing() -> None:
    out = ("0\n==> netops-file rc 0\n==> netops-file /etc/sysctl.d/a.conf\nk = 1\n\n"
           "==> netops-file /etc/sysctl.conf\nno-newline\n")
    state = parse(out)
    assert state.runtime == "0"
    assert state.files == {"/etc/sysctl.d/a.conf": "k = 1\n", "/etc/sysctl.conf": "no-newline"}
    missing = parse("sysctl: cannot stat /proc/sys/x: No such file or directory\n"
                    "==> netops-file rc 1\n")
    assert missing.runtime is None and "cannot stat" in missing.runtime_error


def test_comment_out_escapes_the_key() -> None:
    assert comment_out("/etc/sysctl.conf", "net.ipv4.ip_forward") == (
        "sed -i.netops.bak 's/^\\([[:space:]]*net\\.ipv4\\.ip_forward[[:space:]]*=\\)"
        "/# netops: \\1/' /etc/sysctl.conf")


def test_file_lines_and_parse() -> None:
    assert file.desired("a\nb", None, ["b", "c"]) == "a\nb\nc\n"
    assert file.desired(None, None, ["x"]) == "x\n"
    assert file.desired("old", "new\n", None) == "new\n"
    assert file.parse("netops:absent\n").content is None
    st = file.parse("644\nhello\n")
    assert (st.mode, st.content) == ("0644", "hello\n")


def test_systemd_plan_is_idempotent() -> None:
    running = systemd.UnitState("active", "enabled")
    assert systemd.plan("kubelet", running, state="started", enabled=True, masked=None,
                        daemon_reload=False) == ([], [])
    cmds, notes = systemd.plan("kubelet", systemd.UnitState("inactive", "disabled"),
                               state="started", enabled=True, masked=False,
                               daemon_reload=True)
    assert cmds == ["systemctl daemon-reload", "systemctl enable kubelet",
                    "systemctl start kubelet"]
    assert notes == ["disabled -> enabled", "inactive -> active"]
    cmds, _ = systemd.plan("docker", running, state="restarted", enabled=None, masked=None,
                           daemon_reload=False)
    assert cmds == ["systemctl restart docker"]
    cmds, _ = systemd.plan("x", systemd.UnitState("inactive", "masked"), state=None,
                           enabled=None, masked=False, daemon_reload=False)
    assert cmds == ["systemctl unmask x"]


def test_expect() -> None:
    done = Completed(0, "1\n", "", 0.0)
    assert Expect(stdout="1").mismatch(done) == ""
    assert "expected '0'" in Expect(stdout="0").mismatch(done)
    assert "rc 2" in Expect().mismatch(Completed(2, "", "boom", 0.0))
    assert Expect(rc=None, stdout_regex=r"^1$").mismatch(done) == ""
    assert Expect(stdout_contains="x").mismatch(done) != ""


def test_probe_output_names_symlink_targets() -> None:
    """Issue 18: Debian's 99-sysctl.conf -> ../sysctl.conf is one file seen twice."""
    out = ("1\n==> netops-file rc 0\n"
           "==> netops-file /etc/sysctl.d/99-sysctl.conf\t/etc/sysctl.conf\nk = 0\n\n"
           "==> netops-file /etc/sysctl.conf\t/etc/sysctl.conf\nk = 0\n")
    state = parse(out)
    assert state.files == {"/etc/sysctl.d/99-sysctl.conf": "k = 0\n", "/etc/sysctl.conf": "k = 0"}
    assert state.target("/etc/sysctl.d/99-sysctl.conf") == "/etc/sysctl.conf"
    assert state.target("/etc/sysctl.conf") == "/etc/sysctl.conf"


def test_file_probe_follows_symlinks() -> None:
    st = file.parse("netops:link /etc/sysctl.conf\n644\nk = 1\n")
    assert (st.real, st.mode, st.content) == ("/etc/sysctl.conf", "0644", "k = 1\n")
    assert file.parse("netops:link /etc/x\nnetops:absent\n").content is None


def test_a_dry_run_predicts_from_the_steps_before_it() -> None:
    """Two sysctl steps persisting to one file: the second previews the file as the first
    would have left it (not as a second new one-line file), and a runtime value the first
    would set is no longer a change."""
    from netops.engine.result import Status
    from netops.steps import sysctl
    from netops.steps.base import StepContext
    from netops.transport.base import Completed

    class Node:
        host = "n1"

        def run(self, cmd: object, *, timeout: float | None = None,
                stdin: bytes | None = None) -> Completed:
            return Completed(0, "0\n==> netops-file rc 0\n", "", 0.0)  # no sysctl files

    predicted: dict[str, str | None] = {}

    def ctx() -> StepContext:
        return StepContext(transport=Node(), dry_run=True, timeout=5,  # type: ignore[arg-type]
                           become=False, predicted=predicted)

    path = "/etc/sysctl.d/99-k8s.conf"
    first = sysctl.run(sysctl.Args(key="net.ipv4.ip_forward", value="1", persist=path), ctx())
    assert "+net.ipv4.ip_forward = 1" in first.diff and "runtime 0 -> 1" in first.note
    second = sysctl.run(sysctl.Args(key="net.bridge.bridge-nf-call-iptables", value="1",
                                    persist=path), ctx())
    assert second.diff.splitlines()[2:] == [
        "@@ -1,2 +1,3 @@", " # managed by netops", " net.ipv4.ip_forward = 1",
        "+net.bridge.bridge-nf-call-iptables = 1"], second.diff
    again = sysctl.run(sysctl.Args(key="net.ipv4.ip_forward", value="1", persist=path), ctx())
    assert again.status is Status.OK, again
