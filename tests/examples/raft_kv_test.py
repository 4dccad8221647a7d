#!/usr/bin/env python3
"""End-to-end tests of raft-kv: real processes on loopback, driven over HTTP.

Every endpoint and error code, forwarding from followers, a restart with
durable data, SIGKILL of the leader, exactly-once retries. Every process a
test starts is killed in tearDown, and its data directory removed.

    raft_kv_test.py RAFT_KV_BINARY [unittest args]
"""
import concurrent.futures
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "tools"))
from raft_kv_cluster import (Cluster, free_ports, jrequest,  # noqa: E402
                             request, wait_until_leader)

RAFT_KV = None


class RaftKvTest(unittest.TestCase):

    def setUp(self):
        self.c = None

    def tearDown(self):
        if self.c:
            self.c.close()

    def cluster(self, *args, **kwargs):
        self.c = Cluster(RAFT_KV, *args, **kwargs)
        return self.c

    def change(self, path, body, done, timeout=30):
        """Asks the current leader for an admin change until `done()` holds.

        A change can end in 503 or 504 when leadership moves meanwhile (a
        loaded machine, e.g. under ASan): then it may or may not have taken
        effect, so look, and ask again if it did not.
        """
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            leader = self.c.leader()
            s, b = jrequest(self.c.http[leader], "POST", path, body,
                            timeout=timeout)
            last = (s, b)
            if s == 200:
                return b
            self.assertIn(s, (503, 504), b)
            settle = time.time() + 2
            while time.time() < settle:
                if done():
                    return b
                time.sleep(0.1)
        self.fail("%s %s never took effect: %s" % (path, body, last))

    def test_data_endpoints_through_every_node(self):
        c = self.cluster(3)
        leader = c.leader()
        follower = next(i for i in (1, 2, 3) if i != leader)
        # A follower forwards writes to the leader; every node reads.
        s, b = jrequest(c.http[follower], "PUT", "/kv/greeting", "hello")
        self.assertEqual(s, 200, b)
        self.assertGreater(b["index"], 0)
        for i in (1, 2, 3):
            for mode in ("", "?consistency=lease", "?consistency=stale"):
                deadline = time.time() + 5
                while True:
                    s, v = request(c.http[i], "GET", "/kv/greeting" + mode)
                    if s == 200 or not mode.endswith("stale") \
                            or time.time() > deadline:
                        break
                    time.sleep(0.05)  # a stale read may lag
                self.assertEqual((s, v), (200, b"hello"), (i, mode))
        # Keys may hold any characters, values any bytes.
        s, _ = request(c.http[leader], "PUT", "/kv/a%2Fb%20c", b"\x00\xff")
        self.assertEqual(s, 200)
        self.assertEqual(request(c.http[follower], "GET", "/kv/a%2Fb%20c"),
                         (200, b"\x00\xff"))
        # Delete says whether the key existed.
        s, b = jrequest(c.http[follower], "DELETE", "/kv/greeting")
        self.assertEqual((s, b["existed"]), (200, True))
        s, b = jrequest(c.http[follower], "DELETE", "/kv/greeting")
        self.assertEqual((s, b["existed"]), (200, False))
        s, b = jrequest(c.http[leader], "GET", "/kv/greeting")
        self.assertEqual((s, b["error"]), (404, "not_found"))

    def test_compare_and_swap(self):
        c = self.cluster(3)
        port = c.http[c.leader()]
        s, b = jrequest(port, "POST", "/cas/k", {"expected": None, "value": "1"})
        self.assertEqual((s, b["ok"]), (200, True))
        s, b = jrequest(port, "POST", "/cas/k", {"expected": None, "value": "2"})
        self.assertEqual((s, b), (409, {"ok": False, "current": "1"}))
        s, b = jrequest(port, "POST", "/cas/k", {"expected": "1", "value": "2"})
        self.assertEqual((s, b["ok"]), (200, True))
        s, b = jrequest(port, "POST", "/cas/k", {"expected": "1", "value": "3"})
        self.assertEqual((s, b), (409, {"ok": False, "current": "2"}))
        s, b = jrequest(port, "POST", "/cas/absent",
                        {"expected": "x", "value": "3"})
        self.assertEqual((s, b), (409, {"ok": False, "current": None}))
        self.assertEqual(request(port, "GET", "/kv/k"), (200, b"2"))

    def test_bad_requests_are_json_errors(self):
        c = self.cluster(1)
        port = c.http[c.leader()]
        cases = [
            ("GET", "/kv/x?consistency=maybe", None, {}, 400),
            ("POST", "/cas/x", "not json", {}, 400),
            ("POST", "/cas/x", {"value": "v"}, {}, 400),
            ("POST", "/cas/x", {"expected": 1, "value": "v"}, {}, 400),
            ("POST", "/cas/x", "[" * 1000000, {}, 400),
            ("POST", "/cluster/membership", "{\"a\":" * 100000, {}, 400),
            ("PUT", "/kv/x", "v", {"Raft-Client-Id": "7"}, 400),
            ("PUT", "/kv/x", "v", {"Raft-Client-Id": "a",
                                   "Raft-Sequence": "1"}, 400),
            ("PUT", "/kv/" + "k" * 5000, "v", {}, 400),
            ("POST", "/cluster/membership", {"voters": []}, {}, 400),
            ("POST", "/cluster/membership", {"voters": [1, 1]}, {}, 400),
            ("POST", "/cluster/learners", {"id": 4}, {}, 400),
            ("POST", "/cluster/transfer-leader", {"to": "x"}, {}, 400),
            ("GET", "/nowhere", None, {}, 404),
            ("GET", "/kv/missing", None, {}, 404),
            ("PUT", "/kv/big", b"x" * (16 * 1024 * 1024 + 70000), {}, 413),
        ]
        for method, path, body, headers, want in cases:
            s, b = jrequest(port, method, path, body, headers)
            self.assertEqual(s, want, (method, path[:40], b))
            self.assertIn("error", b, (method, path[:40]))

    def test_exactly_once_retries_return_the_first_answer(self):
        c = self.cluster(3)
        port = c.http[c.leader()]
        h = {"Raft-Client-Id": "42", "Raft-Sequence": "1"}
        s1, b1 = jrequest(port, "PUT", "/kv/once", "first", h)
        s2, b2 = jrequest(port, "PUT", "/kv/once", "second", h)
        self.assertEqual((s1, s2), (200, 200))
        self.assertEqual(b1["index"], b2["index"])
        self.assertEqual(request(port, "GET", "/kv/once"), (200, b"first"))
        h["Raft-Sequence"] = "2"
        s3, b3 = jrequest(port, "PUT", "/kv/once", "third", h)
        self.assertEqual(s3, 200)
        self.assertGreater(b3["index"], b1["index"])
        self.assertEqual(request(port, "GET", "/kv/once"), (200, b"third"))

    def test_status_and_metrics(self):
        c = self.cluster(3)
        leader = c.leader()
        st = c.status(leader)
        for field in ("id", "role", "term", "leader_id", "commit_index",
                      "last_applied", "last_log_index", "snapshot_index",
                      "voters", "learners", "joint"):
            self.assertIn(field, st)
        self.assertEqual(st["role"], "leader")
        self.assertEqual(st["voters"], [1, 2, 3])
        self.assertEqual(st["leader_id"], leader)
        jrequest(c.http[leader], "PUT", "/kv/m", "1")
        s, text = request(c.http[leader], "GET", "/metrics")
        self.assertEqual(s, 200)
        text = text.decode()
        for metric in ("raft_term", "raft_commit_index", "raft_peer_lag",
                       'raft_role{role="leader"} 1', "raft_proposals_total",
                       "raft_elections_total", "raft_snapshots_built_total",
                       'raft_kv_request_seconds_bucket{op="put"',
                       'raft_kv_requests_total{op="put",code="200"} 1'):
            self.assertIn(metric, text)

    def test_cluster_administration(self):
        c = self.cluster(3, spares=1)
        leader = c.leader()
        follower = next(i for i in (1, 2, 3) if i != leader)
        for k in range(20):
            jrequest(c.http[leader], "PUT", "/kv/k%d" % k, str(k))
        # Snapshot on any node.
        s, b = jrequest(c.http[follower], "POST", "/cluster/snapshot")
        self.assertEqual(s, 200, b)
        self.assertGreater(b["snapshot_index"], 0)
        # Add node 4 as a learner through a follower, then promote it.
        c.start(4)
        s, b = jrequest(c.http[follower], "POST", "/cluster/learners",
                        {"id": 4, "raft": "127.0.0.1:%d" % c.raft[4],
                         "http": "127.0.0.1:%d" % c.http[4]})
        self.assertIn(s, (200, 503, 504), b)
        if s != 200:  # leadership moved meanwhile (a loaded machine)
            self.change("/cluster/learners",
                        {"id": 4, "raft": "127.0.0.1:%d" % c.raft[4],
                         "http": "127.0.0.1:%d" % c.http[4]},
                        lambda: 4 in (c.status(4) or {}).get("learners", []))
        self.assertEqual(c.status(4)["role"], "learner")
        s, b = jrequest(c.http[follower], "POST", "/cluster/membership",
                        {"voters": [1, 2, 3, 4]})
        self.assertIn(s, (200, 503, 504), b)
        if s != 200:
            self.change("/cluster/membership", {"voters": [1, 2, 3, 4]},
                        lambda: (c.status(4) or {}).get("voters")
                        == [1, 2, 3, 4])
        deadline = time.time() + 10
        while c.status(4)["voters"] != [1, 2, 3, 4] and time.time() < deadline:
            time.sleep(0.05)
        self.assertEqual(c.status(4)["voters"], [1, 2, 3, 4])
        self.assertEqual(request(c.http[4], "GET", "/kv/k7"), (200, b"7"))
        self.assertEqual(c.status(4)["http"]["4"], "127.0.0.1:%d" % c.http[4])
        # Hand leadership to node 4, asked at yet another node.
        s, b = jrequest(c.http[follower], "POST", "/cluster/transfer-leader",
                        {"to": 4})
        self.assertEqual((s, b.get("leader")), (200, 4), b)
        self.assertEqual(c.status(4)["role"], "leader")

    def test_restart_keeps_data_and_sigkill_of_the_leader_loses_nothing(self):
        c = self.cluster(3)
        leader = c.leader()
        acked = []
        for k in range(30):
            s, _ = jrequest(c.http[leader], "PUT", "/kv/d%d" % k, str(k))
            if s == 200:
                acked.append(k)
        self.assertEqual(len(acked), 30)
        c.stop(leader, signal.SIGKILL)
        rest = [i for i in (1, 2, 3) if i != leader]
        new = c.leader(rest)
        for k in acked:
            self.assertEqual(request(c.http[new], "GET", "/kv/d%d" % k),
                             (200, str(k).encode()))
        # The old leader comes back from its data directory and catches up.
        s, _ = jrequest(c.http[new], "PUT", "/kv/after", "yes")
        self.assertEqual(s, 200)
        c.start(leader)
        deadline = time.time() + 10
        while time.time() < deadline:
            s, v = request(c.http[leader], "GET",
                           "/kv/after?consistency=stale")
            if s == 200:
                break
            time.sleep(0.1)
        self.assertEqual((s, v), (200, b"yes"))
        # SIGTERM is a clean stop: exit 0, and the data is still there.
        self.assertEqual(c.stop(leader), 0)
        c.start(leader)
        deadline = time.time() + 10
        while time.time() < deadline:
            s, v = request(c.http[leader], "GET", "/kv/d29?consistency=stale")
            if s == 200:
                break
            time.sleep(0.1)
        self.assertEqual((s, v), (200, b"29"))

    def test_a_wiped_voter_rejoins_after_removal_as_a_learner(self):
        c = self.cluster(3)
        leader = c.leader()
        victim = next(i for i in (1, 2, 3) if i != leader)
        for k in range(10):
            s, _ = jrequest(c.http[leader], "PUT", "/kv/w%d" % k, str(k))
            self.assertEqual(s, 200)
        c.stop(victim, signal.SIGKILL)
        shutil.rmtree(os.path.join(c.dir, "node%d" % victim))
        rest = sorted(i for i in (1, 2, 3) if i != victim)

        def voters_are(want, at):
            return lambda: (c.status(at) or {}).get("voters") == want \
                and not c.status(at)["joint"]
        self.change("/cluster/membership", {"voters": rest},
                    voters_are(rest, rest[0]))
        c.start(victim)  # empty, without --init: it waits to be added
        self.change("/cluster/learners",
                    {"id": victim, "raft": "127.0.0.1:%d" % c.raft[victim],
                     "http": "127.0.0.1:%d" % c.http[victim]},
                    lambda: victim in (c.status(rest[0]) or {}).get(
                        "learners", []))
        self.change("/cluster/membership", {"voters": [1, 2, 3]},
                    voters_are([1, 2, 3], rest[0]))
        wait = time.time() + 10
        while time.time() < wait and request(
                c.http[victim], "GET", "/kv/w9?consistency=stale")[0] != 200:
            time.sleep(0.1)
        self.assertEqual(request(c.http[victim], "GET", "/kv/w9"), (200, b"9"))
        self.assertEqual(c.status(victim)["voters"], [1, 2, 3])

    def test_an_overloaded_node_answers_503_overloaded(self):
        c = self.cluster(1, extra=["--max-pending", "1"])
        port = c.http[c.leader()]

        def put(k):
            return jrequest(port, "PUT", "/kv/o%d" % k, "x" * 1000)

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            results = list(pool.map(put, range(200)))
        statuses = [s for s, _ in results]
        self.assertIn(200, statuses)
        self.assertIn(503, statuses)
        self.assertTrue(all(s in (200, 503) for s in statuses), statuses)
        for s, b in results:
            if s == 503:
                self.assertEqual(b["error"], "overloaded")

    def test_without_a_quorum_writes_fail_with_503_or_504(self):
        c = self.cluster(3)
        leader = c.leader()
        others = [i for i in (1, 2, 3) if i != leader]
        for i in others:
            c.stop(i, signal.SIGKILL)
        s, b = jrequest(c.http[leader], "PUT", "/kv/x", "1", timeout=30)
        self.assertIn(s, (503, 504), b)
        self.assertIn(b["error"], ("no_leader", "timeout"))
        # Once it has stepped down, it says there is no leader: certainly
        # not applied.
        deadline = time.time() + 10
        while time.time() < deadline and c.status(leader)["role"] == "leader":
            time.sleep(0.1)
        s, b = jrequest(c.http[leader], "PUT", "/kv/y", "1", timeout=30)
        self.assertEqual((s, b["error"]), (503, "no_leader"), b)

    def test_a_full_disk_answers_500_and_the_node_exits_non_zero(self):
        # RLIMIT_FSIZE makes writes past 1 MiB fail with EFBIG, as a full
        # disk would (SIGXFSZ ignored, which exec keeps).
        tmp = tempfile.mkdtemp(prefix="raft-kv-disk-")
        raft, http_port = free_ports(2)

        def limit():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))

        log = open(os.path.join(tmp, "log"), "wb")
        p = subprocess.Popen(
            [RAFT_KV, "--id", "1", "--raft", "127.0.0.1:%d" % raft, "--http",
             "127.0.0.1:%d" % http_port, "--data", os.path.join(tmp, "d"),
             "--no-tls", "--init", "1=127.0.0.1:%d/%d" % (raft, http_port)],
            preexec_fn=limit, stdout=log, stderr=log)
        log.close()
        try:
            wait_until_leader(http_port)
            statuses = []
            for i in range(40):
                s, b = jrequest(http_port, "PUT", "/kv/k%d" % i,
                                "x" * 100000)
                statuses.append(s)
                if s != 200:
                    break
            self.assertEqual(statuses[-1], 500, statuses)
            self.assertEqual(b["error"], "storage_failed")
            self.assertIn("File too large", b["detail"])
            self.assertEqual(p.wait(timeout=20), 3)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=20)
            shutil.rmtree(tmp, ignore_errors=True)

    def test_flags_and_config_file(self):
        tmp = tempfile.mkdtemp(prefix="raft-kv-flags-")
        try:
            def run(*args):
                p = subprocess.run([RAFT_KV] + list(args), capture_output=True,
                                   timeout=20)
                return p.returncode, (p.stdout + p.stderr).decode()
            rc, out = run("--help")
            self.assertEqual(rc, 0)
            self.assertIn("--election-timeout", out)
            rc, out = run("--id", "x")
            self.assertEqual(rc, 64)
            rc, out = run("--id", "1", "--raft", "127.0.0.1:1", "--http",
                          "127.0.0.1:0")
            self.assertEqual(rc, 64)  # TLS on without certificates
            self.assertIn("--no-tls", out)
            rc, out = run("--bogus")
            self.assertEqual(rc, 64)
            # A config file supplies flags; the command line wins.
            raft, http_port = free_ports(2)
            cfg = os.path.join(tmp, "kv.conf")
            with open(cfg, "w") as f:
                f.write("# test\nid = 9\nraft = 127.0.0.1:%d\nhttp = "
                        "127.0.0.1:1\nmemory\nno-tls = true\ninit = "
                        "9=127.0.0.1:%d/%d\n" % (raft, raft, http_port))
            p = subprocess.Popen([RAFT_KV, "--config", cfg, "--http",
                                  "127.0.0.1:%d" % http_port],
                                 stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
            try:
                st = wait_until_leader(http_port)
                self.assertEqual(st["id"], 9)
                self.assertEqual(st["role"], "leader")
            finally:
                p.kill()
                p.wait(timeout=20)
            with open(cfg, "w") as f:
                f.write("nonsense = 1\n")
            rc, out = run("--config", cfg)
            self.assertEqual(rc, 64)
            self.assertIn("unknown setting", out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: raft_kv_test.py RAFT_KV_BINARY [unittest args]")
    RAFT_KV = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
