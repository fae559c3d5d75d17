"""Two home nodes behind two NATs and a bootstrap relay, in Linux network namespaces (root only).

    public   ww<S>p : bridge 10.77.0.0/24; the bootstrap node (relay_hop) on 10.77.0.1:4001
    router 1 ww<S>r1: 10.77.0.11 on the bridge, 192.168.1.1 inside, iptables MASQUERADE
    home 1   ww<S>h1: 192.168.1.2, default route via its router; a personal node on :4001
    router 2 ww<S>r2 / home 2 ww<S>h2: the same with .12 and 192.168.2.0/24

<S> is a suffix unique to the run (`--suffix`, default this process's pid). Each node is a real
`workwork node start` daemon with its data dir under a temporary directory. The script waits
until both home nodes found themselves private (AutoNAT) and hold a relay slot, until they are
connected to each other (the second one learns the first's relayed address by peer exchange),
publishes a profile on each and times its arrival at the other, waits for DCUtR, and prints a
JSON report: reachability, the home-to-home link (direct or relayed), direct and relayed
connections per node, time to first record. Everything is torn down at the end, also on
failure or Ctrl-C. Exit status 0 if records flowed both ways between the home nodes.

Usage: scripts/nat [--keep-logs DIR] [--punch-wait SECONDS] [--no-firewall]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WORKWORK = [str(ROOT / ".venv/bin/workwork")]
PASSPHRASE = "nat-namespaces-test"
PUBLIC_NET, RELAY_IP = "10.77.0", "10.77.0.1"
PORT = 4001


class Failed(Exception):
    """Raised when the namespace network cannot be built or a node misbehaves."""


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, capture_output=True, text=True, check=False, timeout=60)
    if check and done.returncode != 0:
        raise Failed(f"{' '.join(args)}: {done.stderr.strip() or done.stdout.strip()}")
    return done


class Lab:
    """The namespaces, links and node processes of one run; `close` undoes all of it."""

    def __init__(self, suffix: str, work: Path, *, firewall: bool = True) -> None:
        self.s = suffix
        self.firewall = firewall
        self.work = work
        self.namespaces: list[str] = []
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.ns = {
            "public": f"ww{suffix}p",
            "router1": f"ww{suffix}r1",
            "home1": f"ww{suffix}h1",
            "router2": f"ww{suffix}r2",
            "home2": f"ww{suffix}h2",
        }

    # The network.

    def netns(self, name: str) -> str:
        ns = self.ns[name]
        sh("ip", "netns", "add", ns)
        self.namespaces.append(ns)
        self.run(name, "ip", "link", "set", "lo", "up")
        return ns

    def run(self, name: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return sh("ip", "netns", "exec", self.ns[name], *args, check=check)

    def veth(self, a: str, a_if: str, b: str, b_if: str) -> None:
        tmp_a, tmp_b = f"ww{self.s}x", f"ww{self.s}y"
        sh("ip", "link", "add", tmp_a, "type", "veth", "peer", "name", tmp_b)
        sh("ip", "link", "set", tmp_a, "netns", self.ns[a])
        sh("ip", "link", "set", tmp_b, "netns", self.ns[b])
        self.run(a, "ip", "link", "set", tmp_a, "name", a_if)
        self.run(b, "ip", "link", "set", tmp_b, "name", b_if)
        self.run(a, "ip", "link", "set", a_if, "up")
        self.run(b, "ip", "link", "set", b_if, "up")

    def build(self) -> None:
        self.netns("public")
        self.run("public", "ip", "link", "add", "br0", "type", "bridge")
        self.run("public", "ip", "addr", "add", f"{RELAY_IP}/24", "dev", "br0")
        self.run("public", "ip", "link", "set", "br0", "up")
        for i in (1, 2):
            router, home = f"router{i}", f"home{i}"
            self.netns(router)
            self.netns(home)
            self.veth("public", f"wan{i}", router, "wan")
            self.run("public", "ip", "link", "set", f"wan{i}", "master", "br0")
            self.veth(router, "lan", home, "eth0")
            self.run(router, "ip", "addr", "add", f"{PUBLIC_NET}.1{i}/24", "dev", "wan")
            self.run(router, "ip", "addr", "add", f"192.168.{i}.1/24", "dev", "lan")
            self.run(router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
            self.run(
                router, "iptables", "-t", "nat", "-A", "POSTROUTING", "-o", "wan", "-j",
                "MASQUERADE",
            )  # fmt: skip
            # A home router's stateful firewall: nothing new comes in from outside; what answers
            # a connection from inside does. Unsolicited SYNs are dropped, not refused, as home
            # routers do (a refusal would end a hole punch whose SYN arrives first).
            for chain in ("INPUT", "FORWARD") if self.firewall else ():
                self.run(
                    router, "iptables", "-A", chain, "-i", "wan", "-m", "conntrack",
                    "--ctstate", "NEW,INVALID", "-j", "DROP",
                )  # fmt: skip
            self.run(home, "ip", "addr", "add", f"192.168.{i}.2/24", "dev", "eth0")
            self.run(home, "ip", "route", "add", "default", "via", f"192.168.{i}.1")

    # The nodes.

    def cli(self, name: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ip", "netns", "exec", self.ns[name], *WORKWORK, "--data-dir",
             str(self.work / name), *args],
            capture_output=True, text=True, timeout=timeout, check=False,
            env={**os.environ, "WORKWORK_PASSPHRASE": PASSPHRASE},
        )  # fmt: skip

    def json(self, name: str, *args: str) -> Any:
        done = self.cli(name, "--json", *args)
        if done.returncode != 0:
            return None
        return json.loads(done.stdout)

    def init(self, nodes: dict[str, tuple[str, ...]]) -> None:
        """Runs `workwork init` for each node (name -> its flags) at once: it takes seconds."""
        running = {}
        for name, flags in nodes.items():
            running[name] = subprocess.Popen(
                ["ip", "netns", "exec", self.ns[name], *WORKWORK, "--data-dir",
                 str(self.work / name), "init", *flags],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                env={**os.environ, "WORKWORK_PASSPHRASE": PASSPHRASE},
            )  # fmt: skip
        for name, proc in running.items():
            _, err = proc.communicate(timeout=120)
            if proc.returncode != 0:
                raise Failed(f"init of {name}: {err.decode(errors='replace')}")

    def start(self, name: str, settings: dict[str, Any]) -> None:
        """Starts the node's daemon with `settings` written into its config.toml."""
        config = self.work / name / "config.toml"
        text = config.read_text()
        for key, value in settings.items():
            lines = text.splitlines()
            at = next(n for n, line in enumerate(lines) if line.startswith(f"{key} ="))
            lines[at] = f"{key} = {json.dumps(value)}"
            text = "\n".join(lines) + "\n"
        config.write_text(text)
        log = (self.work / f"{name}.log").open("wb")
        self.procs[name] = subprocess.Popen(
            ["ip", "netns", "exec", self.ns[name], *WORKWORK, "--data-dir", str(self.work / name),
             "node", "start"],
            stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "WORKWORK_PASSPHRASE": PASSPHRASE},
        )  # fmt: skip

    def wait(self, what: str, check: Any, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise Failed(f"the {name} node exited ({proc.returncode}) waiting for {what}")
            found = check()
            if found:
                return found
            time.sleep(0.5)
        raise Failed(f"timed out after {timeout:.0f} s waiting for {what}")

    # Undoing.

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for ns in reversed(self.namespaces):
            # Deleting a namespace deletes the veths and the bridge in it.
            sh("ip", "netns", "del", ns, check=False)


def scenario(lab: Lab, punch_wait: float) -> dict[str, Any]:
    lab.build()
    lab.ns["relay"] = lab.ns["public"]
    listen = {"relay": RELAY_IP, "home1": "192.168.1.2", "home2": "192.168.2.2"}
    lab.init({name: ("--listen", f"/ip4/{ip}/tcp/{PORT}") for name, ip in listen.items()})
    lab.start("relay", {"role": "bootstrap", "relay_hop": True, "reachability": "public"})
    relay = lab.wait("the relay to answer", lambda: lab.json("relay", "status"), 90)
    boot = f"/ip4/{RELAY_IP}/tcp/{PORT}/p2p/{relay['peer_id']}"
    for i in (1, 2):
        lab.start(f"home{i}", {"bootstrap": [boot], "sync_interval": 5.0})
    homes = {
        i: lab.wait(f"home{i} to answer", lambda i=i: lab.json(f"home{i}", "status"), 90)
        for i in (1, 2)
    }
    started = time.monotonic()

    def slotted(i: int) -> Any:
        status = lab.json(f"home{i}", "status")
        nat = status and status.get("nat")
        return nat and nat["reachability"] == "private" and nat["reservations"] and status

    for i in (1, 2):
        lab.wait(f"home{i} to find itself private and reserve a slot", lambda i=i: slotted(i), 90)
    reserved_after = time.monotonic() - started

    def linked() -> Any:
        peers = lab.json("home2", "peers")
        return peers and homes[1]["peer_id"] in peers["connected"]

    lab.wait("the home nodes to connect (peer exchange, then the relay)", linked, 90)
    linked_after = time.monotonic() - started

    # A record from each home node, timed to its arrival at the other.
    arrivals = {}
    for src, dst in ((1, 2), (2, 1)):
        done = lab.cli(f"home{src}", "profile", "set", "--name", f"home {src}", "--skill", "nat")
        if done.returncode != 0:
            raise Failed(f"profile set on home{src}: {done.stderr}")
        sent = time.monotonic()
        key = homes[src]["public_key"]
        lab.wait(
            f"home{src}'s profile at home{dst}",
            lambda dst=dst, key=key: lab.json(f"home{dst}", "profile", "show", key),
            60,
        )
        arrivals[f"home{src}->home{dst}"] = round(time.monotonic() - sent, 2)

    # DCUtR upgrades a relayed link by itself (py-libp2p drives it every 2 s); give it time.
    def link() -> str:
        nat = lab.json("home2", "status")["nat"]
        return "relayed" if homes[1]["peer_id"] in nat["relayed_peers"] else "direct"

    deadline = time.monotonic() + punch_wait
    while link() == "relayed" and time.monotonic() < deadline:
        time.sleep(1.0)
    final = {name: lab.json(name, "status")["nat"] for name in ("relay", "home1", "home2")}
    # What a person sees: `workwork status` of a home node, its reachability and relay lines.
    shown = lab.cli("home1", "status").stdout.splitlines()
    status_lines = [
        " ".join(line.split())
        for line in shown
        if line.split() and line.split()[0] in ("reachability", "connections", "relay")
    ]
    return {
        "ok": True,
        "reachability": {name: nat["reachability"] for name, nat in final.items()},
        "home_link": link(),
        "connections": {name: nat["connections"] for name, nat in final.items()},
        "relay_slots_served": final["relay"]["relay_reservations_served"],
        "home1_status": status_lines,
        "seconds": {
            "answering_to_both_reserved": round(reserved_after, 1),
            "answering_to_home_link": round(linked_after, 1),
            "record_arrival": arrivals,
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suffix", default=str(os.getpid() % 100000))
    parser.add_argument("--keep-logs", type=Path, help="Copy the nodes' logs here at the end.")
    parser.add_argument("--punch-wait", type=float, default=20.0, help="Seconds to wait for DCUtR.")
    parser.add_argument(
        "--no-firewall",
        action="store_true",
        help="Routers answer unsolicited SYNs with a reset instead of dropping them (hole "
        "punching then fails and the home link stays relayed).",
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        print(json.dumps({"ok": False, "skipped": "needs root (network namespaces)"}))
        return 2
    for tool in ("ip", "iptables"):
        if shutil.which(tool) is None:
            print(json.dumps({"ok": False, "skipped": f"{tool} is not installed"}))
            return 2
    probe = f"ww{args.suffix}probe"
    if sh("ip", "netns", "add", probe, check=False).returncode != 0:
        print(json.dumps({"ok": False, "skipped": "network namespaces are not allowed here"}))
        return 2
    sh("ip", "netns", "del", probe, check=False)
    # SIGTERM (from a test's timeout, say) unwinds like Ctrl-C, through the teardown below.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    work = Path(tempfile.mkdtemp(prefix="ww-nat-"))
    lab = Lab(args.suffix, work, firewall=not args.no_firewall)
    try:
        report = scenario(lab, args.punch_wait)
        code = 0
    except (Failed, KeyboardInterrupt) as exc:
        report = {"ok": False, "error": str(exc) or type(exc).__name__}
        code = 1
    finally:
        lab.close()
        if args.keep_logs:
            args.keep_logs.mkdir(parents=True, exist_ok=True)
            for log in work.glob("*.log"):
                shutil.copy(log, args.keep_logs / log.name)
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(report, indent=2))
    return code


if __name__ == "__main__":
    sys.exit(main())
