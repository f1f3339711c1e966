#!/usr/bin/python3
"""Fail-over time of a 3-server ensemble: from the leader's kill -9 (or
SIGSTOP) to the first write that succeeds, as a client sees it.

    tools/failover.py keeper|zookeeper kill|stop [TRIALS]

Each trial starts a fresh ensemble on this machine (keeper: tools/ensemble.sh;
ZooKeeper 3.8: ../shared/reference/zookeeper.sh ensemble, or ZK_SCRIPT),
connects a kazoo client to the two followers (retrying every 10 ms), writes
once, signals the leader, then writes until a write succeeds. It prints each
trial's time and the median, in milliseconds. The client and the servers
share the machine.
"""

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from kazoo.client import KazooClient
from kazoo.retry import KazooRetry

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ZK_SCRIPT = os.environ.get("ZK_SCRIPT", os.path.join(ROOT, "..", "shared", "reference", "zookeeper.sh"))


def srvr_mode(port):
    out = subprocess.run(["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/%d && printf srvr >&3 && timeout 2 cat <&3" % port],
                         capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.startswith("Mode: "):
            return line[6:]
    return ""


def start(kind, work):
    """Starts an ensemble; returns (client ports, pid files)."""
    if kind == "keeper":
        env = dict(os.environ, BASE="23800")
        subprocess.run([os.path.join(ROOT, "tools", "ensemble.sh"), "start", "3", work], check=True, env=env, stdout=subprocess.DEVNULL)
        return [23801, 23802, 23803], [os.path.join(work, "s%d" % i, "pid") for i in (1, 2, 3)]
    subprocess.run(["bash", ZK_SCRIPT, "ensemble", "23900", work], check=True, stdout=subprocess.DEVNULL)
    return [23900, 23901, 23902], [os.path.join(work, str(i), "zk.pid") for i in (1, 2, 3)]


def stop(kind, work, pids):
    for path in pids:
        if os.path.exists(path):
            pid = int(open(path).read())
            for sig in (signal.SIGCONT, signal.SIGKILL):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
    if kind == "keeper":
        subprocess.run([os.path.join(ROOT, "tools", "ensemble.sh"), "stop", work], stdout=subprocess.DEVNULL)
    else:
        subprocess.run(["bash", ZK_SCRIPT, "stop", "23900", work], stdout=subprocess.DEVNULL)


def trial(kind, how):
    work = tempfile.mkdtemp(prefix="keeper-failover-")
    ports, pids = start(kind, work)
    try:
        deadline = time.time() + 60
        while True:
            modes = [srvr_mode(p) for p in ports]
            if modes.count("leader") == 1 and modes.count("follower") == 2:
                break
            if time.time() > deadline:
                raise RuntimeError("no leader: %r" % modes)
            time.sleep(0.1)
        leader = modes.index("leader")
        hosts = ",".join("127.0.0.1:%d" % p for i, p in enumerate(ports) if i != leader)
        zk = KazooClient(hosts=hosts, timeout=10, connection_retry=KazooRetry(max_tries=-1, delay=0.01, max_delay=0.05))
        zk.start(timeout=30)
        zk.ensure_path("/failover")
        zk.create("/failover/before", b"x")
        pid = int(open(pids[leader]).read())
        t0 = time.monotonic()
        os.kill(pid, signal.SIGKILL if how == "kill" else signal.SIGSTOP)
        n = 0
        while True:
            try:
                zk.create("/failover/after-%d" % n, b"y")
                break
            except Exception:
                n += 1
                time.sleep(0.005)
        elapsed = (time.monotonic() - t0) * 1000
        zk.stop()
        zk.close()
        return elapsed
    finally:
        stop(kind, work, pids)
        subprocess.run(["rm", "-rf", work])


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ("keeper", "zookeeper") or sys.argv[2] not in ("kill", "stop"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    kind, how = sys.argv[1], sys.argv[2]
    trials = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    times = []
    for i in range(trials):
        ms = trial(kind, how)
        times.append(ms)
        print("%s %s trial %d: %.0f ms" % (kind, how, i + 1, ms), flush=True)
    print("%s %s: median %.0f ms over %d trials (min %.0f, max %.0f)" % (kind, how, statistics.median(times), trials, min(times), max(times)))


if __name__ == "__main__":
    main()
