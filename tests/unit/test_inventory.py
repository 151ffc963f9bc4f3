"""Loading inventories: the model, variable precedence, INI values, and errors with positions.

(Equality with `ansible-inventory --list` is checked in tests/contract/test_ansible_inventory.py;
these tests need no Ansible.)
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from netops.errors import LoadError, UserError
from netops.inventory import Host, load_inventory
from netops.inventory.model import Unsafe

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "inventories"


def write(tmp_path: Path, files: dict[str, str]) -> Path:
    """Write files under tmp_path; returns the first one (the inventory)."""
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path / next(iter(files))


def load_error(tmp_path: Path, name: str, text: str) -> LoadError:
    with pytest.raises(LoadError) as e:
        load_inventory(write(tmp_path, {name: text}))
    return e.value


# -- the model ------------------------------------------------------------------------------------
def test_host_is_built_from_keywords_and_hashable() -> None:
    h = Host(name="box", address="127.0.0.1", port=2222, user="root", key_file="/k",
             become=False, groups=("all",), vars={"x": 1})
    assert h.vars["x"] == 1
    assert hash(h) == hash(replace(h, vars={}))  # vars do not take part in the hash
    assert Host(name="a", address="a").groups == ("all",)


def test_root_inventory_is_the_chick_cluster() -> None:
    inv = load_inventory(ROOT / "inventory.yaml")
    assert [h.name for h in inv.hosts.values()] == [f"chick{i}" for i in range(1, 19)]
    assert [h.name for h in inv.select("control_plane")] == ["chick1", "chick2", "chick3"]
    assert inv.select("etcd") == inv.select("control_plane")
    assert len(inv.select("workers")) == 15
    chick1 = inv.host("chick1")
    assert chick1.groups == ("all", "control_plane", "etcd")
    assert (chick1.address, chick1.port, chick1.user, chick1.become) == ("chick1", None, "root",
                                                                         False)
    assert inv.group_names()[:2] == ("all", "ungrouped")
    assert inv.source == ROOT / "inventory.yaml"


def test_connection_fields_come_from_merged_vars() -> None:
    inv = load_inventory(FIXTURES / "kubespray" / "hosts.yaml")
    node1, node2 = inv.host("node1"), inv.host("node2")
    assert (node1.address, node1.port, node1.become) == ("10.10.1.3", 2201, True)
    assert node1.key_file == str(Path("~/.ssh/node1_ed25519").expanduser())
    assert (node2.address, node2.port, node2.key_file, node2.become) == ("10.10.1.4", None,
                                                                         None, False)
    # group_vars/all/*.yml (sorted, merged), group_vars/k8s_cluster via children, host_vars
    assert node2.vars["bin_dir"] == "/usr/local/bin"
    assert node2.vars["docker_daemon_graph"] == "/var/lib/docker"
    assert node2.vars["kube_proxy_mode"] == "ipvs" and node1.vars["kube_proxy_mode"] == "iptables"
    assert node2.vars["kube_script_dir"] == "{{ bin_dir }}/kubernetes-scripts"  # not templated
    assert inv.host("node3").groups == ("all", "etcd", "k8s_cluster", "kube_node")
    assert inv.group_hosts("k8s_cluster") == tuple(inv.hosts.values())


def test_ini_values_are_typed_like_ansible() -> None:
    inv = load_inventory(FIXTURES / "ini" / "hosts.ini")
    bastion = inv.host("bastion")
    assert bastion.port == 2222 and bastion.vars["ansible_port"] == 2222
    assert bastion.vars["ansible_become"] == "yes" and bastion.become is True
    worker = inv.host("workera").vars
    assert worker["rack"] == "r 1" and worker["weight"] == 1.5
    assert worker["labels"] == ["gpu", "ssd"] and worker["enabled"] is True
    assert worker["maybe"] is None
    assert worker["debug"] == "no" and worker["max_pods"] == 110  # [g:vars] go through literal_eval
    assert worker["extra"] == {"a": [1, 2]} and worker["quoted"] == "a string"
    assert [h.name for h in inv.select("workers")][-3:] == ["node0", "node5", "node10"]
    assert inv.host("node5").port == 2200
    # same depth, but workers has ansible_group_priority=3: its vars beat control_plane's
    assert inv.host("cp01.lab.example").vars["role"] == "worker"
    assert inv.host("cp02.lab.example").vars["role"] == "control-plane"
    assert inv.host("cp02.lab.example").user == "admin"  # host vars beat every group
    assert inv.host("straggler").user == "root"
    assert inv.groups["workers"].priority == 3
    assert "ansible_group_priority" not in inv.groups["workers"].vars


PRECEDENCE = {
    "inventory.yaml": """
all:
  vars: {a: all, b: all, c: all, d: all, e: all, f: {x: 1, y: 1}}
  children:
    parent:
      vars: {a: parent, b: parent, f: {x: 2}}
      children:
        child:
          vars: {a: child}
          hosts:
            h1: {e: host}
    zed:
      vars: {b: zed, c: zed, ansible_group_priority: 0}
      hosts: {h1: }
    alpha:
      vars: {c: alpha}
      hosts: {h1: }
""",
    "group_vars/all.yml": "d: all-file\nb: all-file\n",
    "group_vars/parent/10-first.yml": "g: first\n",
    "group_vars/parent/20-second.yaml": "g: second\n",
    "group_vars/parent/ignored.txt": "g: never\n",
    "host_vars/h1": "e: host-file\n",
}


def test_variable_precedence_matches_ansible(tmp_path: Path) -> None:
    h1 = load_inventory(write(tmp_path, PRECEDENCE)).host("h1")
    # deeper group wins over its parent
    assert h1.vars["a"] == "child"
    # group_vars/all beats every group's inventory vars (Ansible's VARIABLE_PRECEDENCE)
    assert h1.vars["b"] == "all-file"
    # same depth: lower ansible_group_priority first, then name; so alpha beats zed (prio 0)
    assert h1.vars["c"] == "alpha"
    assert h1.vars["d"] == "all-file"
    assert h1.vars["e"] == "host-file"  # host_vars file over the inventory's host vars
    assert h1.vars["f"] == {"x": 2}  # dicts are replaced, not merged
    assert h1.vars["g"] == "second"  # a group_vars/NAME/ directory: files sorted and merged
    assert h1.groups == ("all", "zed", "alpha", "parent", "child")


def test_group_vars_directory_hides_file_of_same_name(tmp_path: Path) -> None:
    inv = write(tmp_path, {"inv.yml": "all:\n  hosts:\n    h:\n",
                           "group_vars/all/main.yml": "x: dir\n",
                           "group_vars/all.yml": "x: file\ny: file\n"})
    assert dict(load_inventory(inv).host("h").vars) == {"x": "dir"}


def test_ungrouped_and_empty_groups_in_list(tmp_path: Path) -> None:
    doc = load_inventory(write(tmp_path, {"inv.yaml": """
all:
  hosts: {a: , b: {x: 1}}
  children:
    g: {hosts: {b: }}
    empty:
"""})).to_ansible_list()
    assert doc["all"] == {"children": ["ungrouped", "g", "empty"]}
    assert doc["ungrouped"] == {"hosts": ["a"]} and "empty" not in doc
    assert doc["_meta"] == {"hostvars": {"b": {"x": 1}}, "profile": "inventory_legacy"}


def test_yaml_values_print_like_ansible(tmp_path: Path) -> None:
    inv = load_inventory(write(tmp_path, {"inv.yaml": """
all:
  hosts:
    h:
      when: 2024-01-02
      raw: !unsafe '{{ not templated }}'
      1: numeric key
"""}))
    hv = inv.host("h").vars
    assert hv["when"] == "2024-01-02" and isinstance(hv["raw"], Unsafe) and hv["1"]
    listed = inv.to_ansible_list()["_meta"]["hostvars"]["h"]
    assert listed["raw"] == {"__ansible_unsafe": "{{ not templated }}"}
    json.dumps(listed)


def test_format_detection(tmp_path: Path) -> None:
    assert load_inventory(FIXTURES / "detect" / "hosts").host("beta").vars["x"] == 1
    assert load_inventory(FIXTURES / "detect" / "inventory").host("gamma")
    plain = write(tmp_path, {"hosts": "web1\nweb2 ansible_port=22\n"})
    assert [h.name for h in load_inventory(plain).select(None)] == ["web1", "web2"]


# -- errors ---------------------------------------------------------------------------------------
def test_missing_file_says_how_to_pass_one(tmp_path: Path) -> None:
    with pytest.raises(UserError) as e:
        load_inventory(tmp_path / "nope.yaml")
    assert "nope.yaml does not exist" in str(e.value)
    assert "-i/--inventory" in e.value.hint and "NETOPS_INVENTORY" in e.value.hint


def test_yaml_syntax_error_has_line_and_column(tmp_path: Path) -> None:
    e = load_error(tmp_path, "inventory.yaml", "all:\n  hosts:\n    a: {x: [1, 2}\n")
    assert e.span is not None and (e.span.line, e.span.col) == (3, 17)
    assert str(e).startswith(f"{tmp_path / 'inventory.yaml'}:3:17: invalid YAML")


def test_hosts_list_names_position_and_expected_shape(tmp_path: Path) -> None:
    e = load_error(tmp_path, "inventory.yaml",
                   "all:\n  children:\n    workers:\n      hosts:\n        - chick4\n")
    assert e.span is not None and (e.span.line, e.span.col) == (5, 9)
    assert ("group 'workers': 'hosts' must be a mapping of host names to variables, got a list"
            in e.message)
    assert "without a leading '- '" in e.hint


@pytest.mark.parametrize(("text", "where", "words"), [
    ("all:\n  children:\n    workers: chick4\n", (3, 14),
     "group 'workers' must be a mapping with hosts, children or vars, got the string"),
    ("all:\n  children:\n    workers:\n      host:\n        chick4:\n", (4, 7),
     "unexpected key 'host'"),
    ("all:\n  hosts:\n    node[01:3]:\n", (3, 5), "same width"),
    ("all:\n  hosts:\n    node[5:1]:\n", (3, 5), "is empty"),
    ("all:\n  hosts:\n    a:\n    b:\n    a:\n", (5, 5), "duplicate key 'a' (first at line 3)"),
    ("all:\n  vars:\n    x: {k: 1, k: 2}\n", (3, 15), "duplicate key 'k'"),
    ("plugin: aws_ec2\nregions: [us-east-1]\n", (1, 1), "dynamic inventory plugins"),
    ("", (1, 1), "the inventory is empty"),
    ("all:\n  hosts:\n    10:\n", (3, 5), "a host name must be a non-empty string"),
    ("all:\n  hosts:\n    a: 10.0.0.1\n", (3, 8), "its variables must be a mapping"),
    ("all:\n  children:\n    a:\n      children:\n        a:\n", (5, 9), "creates a loop"),
    ("all:\n  vars:\n    pw: !vault |\n      $ANSIBLE_VAULT;1.1\n", (3, 9), "!vault"),
    ("all:\n  children:\n    g: {vars: {ansible_group_priority: high}}\n", (3, 16),
     "ansible_group_priority must be a whole number"),
])
def test_shape_errors_point_at_the_problem(tmp_path: Path, text: str, where: tuple[int, int],
                                           words: str) -> None:
    e = load_error(tmp_path, "inventory.yaml", text)
    assert e.span is not None and (e.span.line, e.span.col) == where, str(e)
    assert words in e.message


def test_unknown_key_suggests_the_right_one(tmp_path: Path) -> None:
    e = load_error(tmp_path, "inv.yml", "all:\n  chidren:\n    g:\n")
    assert e.hint == "did you mean 'children'?"


@pytest.mark.parametrize(("text", "line", "words"), [
    ("[g:nope]\na\n", 1, "unknown type 'nope'"),
    ("[p:children]\nmissing\n", 2, "names group 'missing', which is never defined"),
    ("[g]\na b\n", 2, "expected key=value"),
    ("[g:vars]\nx=1\n", 1, "[g:vars] is for a group that is never defined"),
    ("[g]\nhost'\n", 2, "No closing quotation"),
    ("[g ]\n", 1, "invalid section"),
    ("[a:children]\nb\n[b:children]\na\n", 4, "creates a loop"),
])
def test_ini_errors_name_the_line(tmp_path: Path, text: str, line: int, words: str) -> None:
    e = load_error(tmp_path, "hosts.ini", text)
    assert e.span is not None and e.span.line == line, str(e)
    assert words in e.message


def test_bad_port_names_the_host(tmp_path: Path) -> None:
    e = load_error(tmp_path, "inv.yaml", "all:\n  hosts:\n    a: {ansible_port: ssh}\n")
    assert "host 'a': ansible_port must be a number, got 'ssh'" in e.message


def test_vars_file_errors(tmp_path: Path) -> None:
    inv = write(tmp_path, {"inv.yaml": "all:\n  hosts:\n    h:\n",
                           "host_vars/h.yml": "- not\n- a mapping\n"})
    with pytest.raises(LoadError, match="must be a mapping"):
        load_inventory(inv)
    (tmp_path / "host_vars/h.yml").write_text("a: 1\na: 2\n")
    with pytest.raises(LoadError, match="duplicate key 'a'") as e:
        load_inventory(inv)
    assert e.value.span is not None and e.value.span.path == tmp_path / "host_vars/h.yml"


def test_toml_is_refused(tmp_path: Path) -> None:
    e = load_error(tmp_path, "inv.toml", "[all]\n")
    assert "TOML" in e.message


# -- hostile files: a LoadError at the place, never a traceback -----------------------------------
BOMB_VARS = "".join(f"    {k}: &{k} [{','.join([f'*{p}' if p else '1'] * 9)}]\n"
                    for k, p in zip("abcdefghi", ["", *"abcdefgh"], strict=True))


@pytest.mark.parametrize(("name", "text", "where", "words"), [
    ("inv.yaml", "all:\n  vars:\n" + BOMB_VARS, (8, 8), "alias bomb"),
    ("inv.yaml", "all: &a\n  children:\n    x: *a\n", (1, 6), "would contain itself"),
    ("inv.yaml", "all:\n  vars:\n    x: !!python/name:os.system\n", (3, 8), "unknown tag"),
    ("inv.yaml", "all:\n  vars:\n    x: !unsafe [1]\n", (3, 8), "!unsafe marks a string"),
    ("inv.yaml", "all:\n  vars:\n    when: !!timestamp soon\n", (3, 11),
     "'soon' is not a valid !!timestamp"),
    ("inv.yaml", "all:\n  hosts:\n    h:\n      d: [1, 2024-13-45]\n", (4, 14),
     "bad value '2024-13-45'"),
    ("inv.yaml", "all:\n  hosts:\n    h[1:99999999999]:\n", (3, 5), "more than 100000 hosts"),
    ("hosts.ini", "h[1:1000][1:1000]\n", (1, 1), "more than 100000 hosts"),
    ("inv.yaml", "all:\n  vars:\n    x: " + "[" * 120 + "]" * 120 + "\n", (3, 105),
     "nested deeper than 100"),
    ("hosts.ini", "[all]\nh1 a=\x07\n", (2, 6), "control character U+0007"),
])
def test_hostile_inventories_fail_at_the_place(tmp_path: Path, name: str, text: str,
                                               where: tuple[int, int], words: str) -> None:
    e = load_error(tmp_path, name, text)
    assert e.span is not None and (e.span.line, e.span.col) == where, str(e)
    assert words in str(e)


@pytest.mark.parametrize(("data", "words"), [
    (b"all:\n  hosts:\n    caf\xe9:\n", "not valid UTF-8: byte 0xe9 at byte offset 21"),
    ("all:\n".encode("utf-16"), "UTF-16 encoded"),
    ("all:\n".encode("utf-16-le"), "UTF-16 encoded without a byte order mark"),
    (b"all:\n\x00", "NUL byte at byte offset 5"),
    (b"\xef\xbb\xbfall:\n  hosts:\n    h1:\n", None),  # a UTF-8 byte order mark is fine
])
def test_encodings(tmp_path: Path, data: bytes, words: str | None) -> None:
    for name in ("inv.yaml", "hosts"):
        (tmp_path / name).write_bytes(data)
        if words is None:
            assert list(load_inventory(tmp_path / name).hosts) == ["h1"]
            continue
        with pytest.raises(LoadError, match=words):
            load_inventory(tmp_path / name)


def test_hostile_vars_files(tmp_path: Path) -> None:
    inv = write(tmp_path, {"inv.yaml": "all:\n  hosts:\n    h:\n",
                           "host_vars/h.json": "[" * 5000 + "]" * 5000})
    with pytest.raises(LoadError, match="nested deeper than 100 levels"):
        load_inventory(inv)
    (tmp_path / "host_vars/h.json").write_bytes(b"a: \xff\n")
    with pytest.raises(LoadError, match="byte offset 3") as e:
        load_inventory(inv)
    assert e.value.span is not None and e.value.span.path == tmp_path / "host_vars/h.json"


def test_odd_connection_values_do_not_crash(tmp_path: Path) -> None:
    e = load_error(tmp_path, "inv.yaml", "all:\n  hosts:\n    h: {ansible_port: .inf}\n")
    assert "ansible_port must be a number" in e.message
    inv = load_inventory(write(tmp_path, {"inv.yaml": "all:\n  hosts:\n    h:\n      "
                                                      "ansible_ssh_private_key_file: ~nobody-"
                                                      "such/k\n"}))
    assert inv.hosts["h"].key_file == "~nobody-such/k"


def test_odd_host_entries(tmp_path: Path) -> None:
    e = load_error(tmp_path, "inv.yaml", "all:\n  hosts:\n    h: !!set {a, b}\n")
    assert "its variables must be a mapping, got a set" in e.message
    inv = write(tmp_path, {"inv.yaml": f"all:\n  hosts:\n    {'x' * 300}:\n",
                           "host_vars/other.yml": "a: 1\n"})
    assert list(load_inventory(inv).hosts) == ["x" * 300]  # no file can have its name
