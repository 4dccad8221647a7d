"""Start and drive raft-kv processes on loopback (for tools/demo and the
end-to-end tests). Python standard library only.

Every process a Cluster starts is killed by close(), and its data
directory removed.
"""
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time


def free_ports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def request(port, method, path, body=None, headers=None, timeout=15):
    """One HTTP request; returns (status, body bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        if body is None and method in ("POST", "PUT"):
            body = b""
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def jrequest(port, method, path, body=None, headers=None, timeout=15):
    status, data = request(port, method, path, body, headers, timeout)
    try:
        return status, json.loads(data)
    except ValueError:
        return status, data


def wait_until_leader(port, timeout=10):
    """Polls /status on `port` until the node says it leads; returns the
    last status seen (None if it never answered)."""
    deadline = time.time() + timeout
    st = None
    while time.time() < deadline:
        try:
            s, body = jrequest(port, "GET", "/status", timeout=2)
            if s == 200:
                st = body
                if st["role"] == "leader":
                    break
        except OSError:
            pass
        time.sleep(0.05)
    return st


class Cluster:
    """raft-kv processes with ids 1..n (and spares), durable by default."""

    def __init__(self, binary, n, spares=0, extra=()):
        self.binary = binary
        self.dir = tempfile.mkdtemp(prefix="raft-kv-")
        ports = free_ports(2 * (n + spares))
        self.raft = {i + 1: ports[2 * i] for i in range(n + spares)}
        self.http = {i + 1: ports[2 * i + 1] for i in range(n + spares)}
        self.n = n
        self.extra = list(extra)
        self.procs = {}
        self.init = ",".join(
            "%d=127.0.0.1:%d/%d" % (i, self.raft[i], self.http[i])
            for i in range(1, n + 1))
        for i in range(1, n + 1):
            self.start(i, init=True)

    def start(self, i, init=False):
        args = [self.binary, "--id", str(i),
                "--raft", "127.0.0.1:%d" % self.raft[i],
                "--http", "127.0.0.1:%d" % self.http[i],
                "--data", os.path.join(self.dir, "node%d" % i),
                "--no-tls", "--election-timeout", "300-600"] + self.extra
        if init:
            args += ["--init", self.init]
        log = open(os.path.join(self.dir, "node%d.log" % i), "ab")
        self.procs[i] = subprocess.Popen(args, stdout=log, stderr=log)
        log.close()
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.http[i]), 0.2).close()
                return
            except OSError:
                if self.procs[i].poll() is not None:
                    raise AssertionError("raft-kv %d exited with %d: %s" % (
                        i, self.procs[i].returncode, self.log(i)))
                time.sleep(0.05)
        raise AssertionError("raft-kv %d does not listen" % i)

    def log(self, i):
        with open(os.path.join(self.dir, "node%d.log" % i), "rb") as f:
            return f.read().decode(errors="replace")[-3000:]

    def stop(self, i, sig=signal.SIGTERM, wait=True):
        p = self.procs.pop(i)
        p.send_signal(sig)
        if wait:
            return p.wait(timeout=20)
        return None

    def status(self, i):
        try:
            s, b = jrequest(self.http[i], "GET", "/status", timeout=3)
            return b if s == 200 else None
        except OSError:
            return None

    def leader(self, among=None, timeout=15):
        among = among or list(self.procs)
        deadline = time.time() + timeout
        while time.time() < deadline:
            for i in among:
                st = self.status(i)
                if st and st["role"] == "leader":
                    return i
            time.sleep(0.05)
        raise AssertionError("no leader among %s" % among)

    def close(self):
        for p in self.procs.values():
            p.kill()
        for p in self.procs.values():
            p.wait(timeout=20)
        self.procs = {}
        shutil.rmtree(self.dir, ignore_errors=True)
