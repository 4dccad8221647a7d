#!/usr/bin/env python3
"""The raft-kv demo: a 3-node durable cluster on loopback doing real work.

Writes and reads keys, kills the leader, shows the new leader and that every
acknowledged write is intact, restarts the old leader and shows it catch up,
adds a fourth node as a learner and promotes it, then stops everything and
cleans up. Exits non-zero if anything goes wrong.

    kv_demo.py RAFT_KV_BINARY
"""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from raft_kv_cluster import Cluster, jrequest, request  # noqa: E402


def say(text):
    print(text, flush=True)


def check(condition, what):
    if not condition:
        raise RuntimeError(what)


def wait_for(what, predicate, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise RuntimeError("timed out waiting for " + what)


def main(binary):
    say("== raft-kv demo: a replicated key-value store, one node per process ==")
    c = Cluster(binary, 3, spares=1)
    try:
        say("Started nodes 1, 2 and 3 on 127.0.0.1 (durable data in %s)." % c.dir)
        for i in (1, 2, 3):
            say("  node %d: Raft port %d, HTTP http://127.0.0.1:%d"
                % (i, c.raft[i], c.http[i]))
        leader = c.leader()
        st = c.status(leader)
        say("Node %d was elected leader (term %d)." % (leader, st["term"]))

        say("\nWriting 100 keys, each through a different node (followers pass "
            "writes to the leader)...")
        for k in range(100):
            node = 1 + k % 3
            s, b = jrequest(c.http[node], "PUT", "/kv/user:%03d" % k,
                            "value-%d" % k)
            check(s == 200, "write of user:%03d failed: %s %s" % (k, s, b))
            if k % 25 == 24:
                say("  %d keys written (last at log index %d)"
                    % (k + 1, b["index"]))
        s, v = request(c.http[2], "GET", "/kv/user:042")
        check((s, v) == (200, b"value-42"), "read back user:042: %s" % s)
        say("Linearizable read of user:042 from node 2: %s" % v.decode())
        s, b = jrequest(c.http[3], "POST", "/cas/counter",
                        {"expected": None, "value": "1"})
        check(s == 200, "compare-and-swap failed: %s" % b)
        say("Compare-and-swap created counter=1 at log index %d." % b["index"])

        say("\nKilling the leader, node %d, with SIGKILL..." % leader)
        c.stop(leader, signal.SIGKILL)
        rest = [i for i in (1, 2, 3) if i != leader]
        new = c.leader(rest)
        say("Node %d took over as leader (term %d)."
            % (new, c.status(new)["term"]))
        for k in range(100):
            s, v = request(c.http[new], "GET", "/kv/user:%03d" % k)
            check((s, v) == (200, ("value-%d" % k).encode()),
                  "user:%03d is missing after the failover" % k)
        say("All 100 acknowledged keys are intact on the new leader.")
        s, _ = jrequest(c.http[new], "PUT", "/kv/written-while-down", "yes")
        check(s == 200, "write after failover failed")
        say("Wrote written-while-down=yes while node %d was down." % leader)

        say("\nRestarting node %d from its data directory..." % leader)
        c.start(leader)
        wait_for("node %d to catch up" % leader,
                 lambda: request(c.http[leader], "GET",
                                 "/kv/written-while-down?consistency=stale")
                 == (200, b"yes"))
        say("Node %d is back as a %s and has caught up (commit index %d)."
            % (leader, c.status(leader)["role"],
               c.status(leader)["commit_index"]))

        say("\nStarting node 4 empty and adding it as a learner...")
        c.start(4)
        s, b = jrequest(c.http[new], "POST", "/cluster/learners",
                        {"id": 4, "raft": "127.0.0.1:%d" % c.raft[4],
                         "http": "127.0.0.1:%d" % c.http[4]}, timeout=30)
        check(s == 200, "adding node 4 failed: %s" % b)
        say("Node 4 caught up as a learner; promoting it to voter...")
        s, b = jrequest(c.http[new], "POST", "/cluster/membership",
                        {"voters": [1, 2, 3, 4]}, timeout=30)
        check(s == 200, "promoting node 4 failed: %s" % b)
        wait_for("node 4 to see itself a voter",
                 lambda: (c.status(4) or {}).get("voters") == [1, 2, 3, 4])
        s, v = request(c.http[4], "GET", "/kv/user:099")
        check((s, v) == (200, b"value-99"), "node 4 cannot read user:099")
        say("Node 4 is a voter; the cluster is now %s, and node 4 reads "
            "user:099 = %s." % (c.status(4)["voters"], v.decode()))

        say("\nStopping every node (SIGTERM)...")
        for i in sorted(c.procs):
            rc = c.stop(i)
            check(rc == 0, "node %d exited with %s" % (i, rc))
        say("All nodes stopped cleanly. Demo finished: everything worked.")
        return 0
    except Exception as e:  # noqa: BLE001 - report any failure plainly
        say("\nDEMO FAILED: %s" % e)
        for i in sorted(c.procs):
            say("--- last lines of node %d's log ---\n%s" % (i, c.log(i)))
        return 1
    finally:
        c.close()
        say("Cleaned up %s." % c.dir)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: kv_demo.py RAFT_KV_BINARY")
    sys.exit(main(sys.argv[1]))
