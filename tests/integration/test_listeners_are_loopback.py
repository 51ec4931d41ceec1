"""The local Ray the project starts listens on loopback only, but for what the docs name.

The processes are the test process and everything it started (found by parent pid, not
by name); their listening TCP sockets come from /proc (IPv4 and IPv6). A non-loopback
listener passes only when the table in docs/reliability.md's "Listeners: loopback only"
section names its process and address, with the Ray limitation that keeps it there.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from dataclasses import dataclass
from itertools import takewhile
from pathlib import Path

import pytest

from controller.transports.ray_dashboard import ray_auth_token
from tests.conftest import RayServeCluster

DOC = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"
SECTION = "## Listeners: loopback only"
TABLE_HEADER = "| process | binds | why it remains | what would close it |"
TCP_LISTEN = "0A"
REPLICA_CALL = "/ray.serve.ASGIService/HandleRequest"

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")


@dataclass(frozen=True)
class Listener:
    """One listening TCP socket of one process."""

    pid: int
    process: str
    address: str
    port: int


@dataclass(frozen=True)
class Allowed:
    """A non-loopback listener the docs name: process title prefix, bound address, reasons."""

    process: str
    address: str
    reason: str
    closed_by: str

    def covers(self, listener: Listener) -> bool:
        """Whether this entry names the listener."""
        return listener.process.startswith(self.process) and listener.address == self.address


def _cells(row: str) -> list[str]:
    return [cell.strip().strip("`").strip() for cell in row.strip().strip("|").split("|")]


def allowed_listeners(doc: Path = DOC) -> list[Allowed]:
    """The rows of the remaining-listeners table in the docs' loopback section."""
    lines = doc.read_text().splitlines()
    section = lines[lines.index(SECTION) :]
    below_header = section[section.index(TABLE_HEADER) + 2 :]
    rows = takewhile(lambda line: line.startswith("|"), below_header)
    return [Allowed(*_cells(row)) for row in rows]


def _parents() -> dict[int, int]:
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # The command name in parentheses may hold spaces; the fields after it do not.
            ppid = stat.read_text().rsplit(")", 1)[1].split()[1]
        except (OSError, IndexError):
            continue
        parents[int(stat.parent.name)] = int(ppid)
    return parents


def process_tree(root: int) -> set[int]:
    """`root` and every process descended from it."""
    children: dict[int, list[int]] = {}
    for pid, ppid in _parents().items():
        children.setdefault(ppid, []).append(pid)
    seen, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid not in seen:
            seen.add(pid)
            todo += children.get(pid, [])
    return seen


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(int(target[8:-1]))
    except OSError:
        pass
    return inodes


def _address(hex_ip: str) -> str:
    raw = bytes.fromhex(hex_ip)
    if len(raw) == 4:
        return str(ipaddress.IPv4Address(raw[::-1]))
    # /proc prints an IPv6 address as four 32-bit words in host (little-endian) order.
    ip = ipaddress.IPv6Address(b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4)))
    return f"::ffff:{ip.ipv4_mapped}" if ip.ipv4_mapped else str(ip)


def listening_sockets() -> dict[int, tuple[str, int]]:
    """Inode -> (address, port) of every listening TCP socket, IPv4 and IPv6."""
    found = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == TCP_LISTEN:
                hex_ip, hex_port = fields[1].split(":")
                found[int(fields[9])] = (_address(hex_ip), int(hex_port, 16))
    return found


def _title(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except OSError:
        return "?"
    # Ray actors and workers rename themselves (ray::...); other processes are named by
    # their program, or by their script when the program is Python.
    if argv[0].startswith("ray"):
        return argv[0].split(" (")[0]
    if Path(argv[0]).name.startswith("python"):
        argv = [a for a in argv[1:] if a and not a.startswith("-")] or argv
    return Path(argv[0]).name


def listeners_of(pids: set[int]) -> list[Listener]:
    """The listening TCP sockets the given processes hold."""
    sockets = listening_sockets()
    return sorted(
        (
            Listener(pid, _title(pid), *sockets[inode])
            for pid in pids
            for inode in _socket_inodes(pid)
            if inode in sockets
        ),
        key=lambda lsn: (lsn.process, lsn.port),
    )


def is_loopback(address: str) -> bool:
    """Whether a bound address is reachable from this host only (IPv4-mapped included)."""
    ip = ipaddress.ip_address(address)
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)


def _show(listeners: list[Listener]) -> str:
    return "\n".join(
        f"{lsn.address:>18} {lsn.port:>6} {lsn.pid:>8} {lsn.process[:60]}" for lsn in listeners
    )


def test_each_remaining_listener_names_its_ray_limitation_and_what_closes_it() -> None:
    allowed = allowed_listeners()
    assert allowed, f"no remaining-listener table in {DOC.name} under {SECTION!r}"
    for entry in allowed:
        assert not is_loopback(entry.address), entry
        assert "Ray limitation" in entry.reason, entry
        assert entry.closed_by, entry


@pytest.mark.integration
def test_the_local_ray_listens_on_loopback_except_where_the_docs_say_why(
    fleet: RayServeCluster,
) -> None:
    listeners = listeners_of(process_tree(os.getpid()))
    print(f"\n{'address':>18} {'port':>6} {'pid':>8} process\n{_show(listeners)}")
    assert any(lsn.process.startswith("ray::ServeReplica") for lsn in listeners), (
        "no Serve replica in the process tree: the test would prove nothing"
    )
    allowed = allowed_listeners()
    exposed = [lsn for lsn in listeners if not is_loopback(lsn.address)]
    unexplained = [lsn for lsn in exposed if not any(a.covers(lsn) for a in allowed)]
    assert not unexplained, f"listeners beyond loopback, not in {DOC.name}:\n{_show(unexplained)}"
    stale = [a for a in allowed if not any(a.covers(lsn) for lsn in exposed)]
    assert not stale, f"{DOC.name} names listeners that no longer exist: {stale}"


def _replica_call_status(port: int, token: str | None) -> str:
    import grpc

    metadata = [("authorization", f"Bearer {token}")] if token else None
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            channel.unary_unary(REPLICA_CALL)(b"", timeout=10, metadata=metadata)
        except grpc.RpcError as err:
            return str(err.code().name)
    return "OK"


@pytest.mark.integration
def test_a_replica_port_beyond_loopback_refuses_a_call_without_the_token(
    fleet: RayServeCluster,
) -> None:
    listeners = listeners_of(process_tree(os.getpid()))
    exposed = [
        lsn
        for lsn in listeners
        if lsn.process.startswith("ray::ServeReplica") and not is_loopback(lsn.address)
    ]
    if not exposed:
        pytest.skip("no Serve replica listens beyond loopback")
    for lsn in exposed:
        assert _replica_call_status(lsn.port, None) == "UNAUTHENTICATED", lsn
        assert _replica_call_status(lsn.port, ray_auth_token()) != "UNAUTHENTICATED", lsn
