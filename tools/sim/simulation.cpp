#include "tools/sim/simulation.hpp"

#include "libraft_actor/core/raft_core.hpp"

#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <queue>
#include <set>
#include <sstream>
#include <vector>

namespace raft_actor::sim {

namespace {

constexpr int64_t usec_per_ms = 1000;
constexpr uint64_t test_cluster_id = 0xc1;

/// splitmix64: deterministic on every platform, unlike std distributions.
struct rng {
  uint64_t state;

  uint64_t next() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  uint64_t below(uint64_t n) { return n == 0 ? 0 : next() % n; }
  int64_t range(int64_t lo, int64_t hi) { // inclusive
    return lo + static_cast<int64_t>(below(static_cast<uint64_t>(hi - lo + 1)));
  }
  bool chance(double p) {
    return static_cast<double>(next() >> 11) * 0x1.0p-53 < p;
  }
};

uint64_t mix(uint64_t h, uint64_t x) {
  h ^= x + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  return h * 0xff51afd7ed558ccdull;
}

uint64_t entry_hash(const log_entry& e) {
  uint64_t h = mix(e.id.term, e.id.index);
  h = mix(h, static_cast<uint64_t>(e.kind));
  h = mix(h, static_cast<uint64_t>(e.leader_time_ms));
  for (auto b : e.payload)
    h = mix(h, b);
  return h;
}

/// Marks a pending chunk write whose transfer a local snapshot discarded.
constexpr uint64_t discarded_chunk = ~uint64_t{0};

enum class ev_kind : uint8_t {
  deliver,
  timer,
  storage_done,
  apply_done,
  propose,
  fault_tick,
  liveness_tick,
  snapshot_done,
  unreachable
};

struct sim_event {
  int64_t at;
  uint64_t order;
  ev_kind kind;
  node_id node;
  uint64_t incarnation;
  uint64_t arg;
  raft_message msg;
};

struct later {
  bool operator()(const sim_event& a, const sim_event& b) const {
    return a.at != b.at ? a.at > b.at : a.order > b.order;
  }
};

struct sim_node {
  node_id id = 0;
  std::unique_ptr<raft_core> core;
  uint64_t incarnation = 0;
  // What survives a crash: term and vote, the log after durable_base, the
  // latest snapshot and a partly received one.
  hard_state durable_hs;
  log_id durable_base;
  std::vector<log_entry> durable_log;
  struct snapshot_file {
    uint64_t id = 0;
    log_id last;
    membership config;
    std::vector<uint8_t> bytes;
  };
  snapshot_file durable_snap;
  snapshot_file durable_partial;
  // Written but not synced (lost on a crash): the partial snapshot, and a
  // snapshot being built.
  snapshot_file partial;
  snapshot_file building;
  // Issued but not yet durable writes.
  std::deque<command> pending;
  int64_t storage_free_at = 0;
  // Timer.
  uint64_t timer_gen = 0;
  // Mirror of the in-memory log: prefix_hash[k] is the hash of the whole log
  // prefix up to index mirror_base + 1 + k; base_hash covers mirror_base.
  index_t mirror_base = 0;
  uint64_t base_hash = 0;
  std::vector<uint64_t> prefix_hash;
  index_t seen_commit = 0;
  // The state machine: how many entries it applied, and the prefix hash of
  // what it applied (what a snapshot of it holds).
  index_t applied = 0;
  uint64_t applied_hash = 0;
  term_t leader_term = 0;
  index_t leader_last = 0;
  int64_t down_since = 0;
  // Proposals this node accepted as leader: log id -> client payload id.
  std::map<std::pair<term_t, index_t>, uint64_t> accepted;
};

class simulation {
public:
  simulation(const sim_options& opts,
             std::function<void(const std::string&)> log)
      : opts_(opts), log_(std::move(log)), rng_{opts.seed} {}

  sim_result run();

private:
  // -- helpers ----------------------------------------------------------------

  std::string when() const {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "t=%.3fs", static_cast<double>(now_) / 1e6);
    return buf;
  }

  void say(const std::string& line) {
    if (opts_.narrate || opts_.trace)
      log_(when() + " " + line);
  }

  void fail(const std::string& why) {
    if (failed_)
      return;
    failed_ = true;
    result_.failure
      = when() + " seed " + std::to_string(opts_.seed) + ": " + why;
  }

  void schedule(sim_event ev) {
    ev.order = order_++;
    queue_.push(std::move(ev));
  }

  sim_node& node(node_id id) { return nodes_[id - 1]; }

  core_config make_config(node_id id) {
    core_config cfg;
    cfg.id = id;
    cfg.cluster_id = test_cluster_id;
    cfg.pre_vote = opts_.pre_vote;
    cfg.check_quorum = opts_.pre_vote;
    cfg.random_seed = rng_.next();
    cfg.max_entries_per_append = rng_.chance(0.5) ? 1 : 1 + rng_.below(16);
    cfg.max_inflight_appends = 1 + rng_.below(8);
    cfg.lease_reads = lease_reads_;
    cfg.max_learner_lag = 20;
    cfg.snapshot_interval = rng_.chance(0.6) ? 5 + rng_.below(40) : 0;
    cfg.snapshot_trailing_entries = rng_.below(10);
    cfg.snapshot_chunk_bytes = 16 + rng_.below(200);
    return cfg;
  }

  clock_reading reading() const {
    return {raft_duration(now_), 1'700'000'000'000 + now_ / usec_per_ms};
  }

  void start(sim_node& n);
  void crash(sim_node& n);
  void step(sim_node& n, event ev);
  void handle(sim_node& n, command& c, std::vector<log_entry>& applied);
  void mirror_append(sim_node& n, const std::vector<log_entry>& entries);
  void send(sim_node& from, raft_message m);
  void on_storage_done(sim_node& n, uint64_t seq);
  void fault_tick();
  void heal_all();
  void liveness_tick();
  bool blocked(node_id a, node_id b) const { return cuts_.count({a, b}) > 0; }
  void check_final();
  void make_durable(sim_node& n, command& c);
  uint64_t hash_at(const sim_node& n, index_t i) const {
    return i == n.mirror_base ? n.base_hash
                              : n.prefix_hash[i - n.mirror_base - 1];
  }
  /// Every live node's term and last log entry, for failure reports.
  std::string describe_logs() const {
    std::string out;
    for (const auto& x : nodes_) {
      if (!x.core) {
        out += "node " + std::to_string(x.id) + " down; ";
        continue;
      }
      auto last = x.core->log().last_id();
      out += "node " + std::to_string(x.id) + " term "
             + std::to_string(x.core->current_term()) + " last ("
             + std::to_string(last.term) + "," + std::to_string(last.index)
             + ") commit " + std::to_string(x.core->commit_index()) + "; ";
    }
    return out;
  }

  index_t mirror_last(const sim_node& n) const {
    return n.mirror_base + n.prefix_hash.size();
  }
  void handle_snapshot_command(sim_node& n, command& c);
  void schedule_write(sim_node& n, uint64_t seq) {
    auto delay = rng_.chance(0.05) ? rng_.range(5, 40) * usec_per_ms
                                   : rng_.range(50, 2000);
    n.storage_free_at = std::max(n.storage_free_at, now_) + delay;
    schedule({n.storage_free_at,
              0,
              ev_kind::storage_done,
              n.id,
              n.incarnation,
              seq,
              {}});
  }
  void admin_tick();
  node_id current_leader() const;
  void issue_read();
  void on_read_ready(sim_node& n, const read_ready& r);

  // -- state -----------------------------------------------------------------

  sim_options opts_;
  std::function<void(const std::string&)> log_;
  rng rng_;
  int64_t now_ = 0;
  uint64_t order_ = 0;
  std::priority_queue<sim_event, std::vector<sim_event>, later> queue_;
  std::vector<sim_node> nodes_;
  std::set<std::pair<node_id, node_id>> cuts_;
  bool faults_ = true;
  bool failed_ = false;
  sim_result result_;
  uint64_t next_payload_ = 1;

  // Global knowledge for the safety checks.
  std::map<term_t, node_id> leaders_; // election safety
  std::map<std::pair<index_t, term_t>, uint64_t> log_registry_; // log matching
  std::vector<uint64_t> committed_; // committed_[i-1]: prefix hash at i
  /// commit_term_[i-1]: the term in which index i was first seen committed
  /// (non-decreasing in i: a commit covers everything before it).
  std::vector<term_t> commit_term_;
  std::map<uint64_t, log_id> acked_; // payload id -> where it committed
  uint64_t liveness_acked_ = 0;
  std::set<uint64_t> liveness_payloads_;
  bool lease_reads_ = false;
  /// Highest log index of any write acknowledged so far.
  index_t acked_max_index_ = 0;
  /// Reads in flight: request id -> (node, index every answer must cover).
  std::map<uint64_t, std::pair<node_id, index_t>> reads_;
  /// Admin requests in flight: request id -> what it was.
  std::map<uint64_t, std::string> admin_;
  uint64_t next_snapshot_id_ = 1;
};

/// A simulated state machine snapshot: its index, term and prefix hash, then
/// filler so that transfers take several chunks.
std::vector<uint8_t> encode_snapshot(log_id last, uint64_t hash,
                                     size_t filler) {
  std::vector<uint8_t> out;
  for (uint64_t x : {last.index, last.term, hash})
    for (int i = 0; i < 8; ++i)
      out.push_back(static_cast<uint8_t>(x >> (8 * i)));
  for (size_t i = 0; i < filler; ++i)
    out.push_back(static_cast<uint8_t>(i * 31 + last.index));
  return out;
}

bool decode_snapshot(const std::vector<uint8_t>& in, log_id& last,
                     uint64_t& hash) {
  if (in.size() < 24)
    return false;
  uint64_t xs[3] = {0, 0, 0};
  for (int k = 0; k < 3; ++k)
    for (int i = 0; i < 8; ++i)
      xs[k] |= static_cast<uint64_t>(in[static_cast<size_t>(k * 8 + i)])
               << (8 * i);
  last = {xs[1], xs[0]};
  hash = xs[2];
  return true;
}

// -- node lifecycle -----------------------------------------------------------

void simulation::start(sim_node& n) {
  recovered_state rec;
  rec.state = n.durable_hs;
  rec.snapshot = n.durable_snap.last;
  rec.snapshot_id = n.durable_snap.id;
  rec.snapshot_config = n.durable_snap.config;
  rec.log_base = n.durable_base;
  rec.entries = n.durable_log;
  rec.last_applied = n.durable_snap.last.index; // restored from the snapshot
  try {
    n.core = std::make_unique<raft_core>(make_config(n.id), std::move(rec),
                                         reading());
  } catch (const std::exception& e) {
    fail("node " + std::to_string(n.id) + " failed to restart: " + e.what());
    return;
  }
  n.prefix_hash.clear();
  n.mirror_base = n.durable_base.index;
  if (n.mirror_base > committed_.size())
    return fail("node " + std::to_string(n.id)
                + " holds a log base beyond anything committed");
  n.base_hash = n.mirror_base == 0 ? 0 : committed_[n.mirror_base - 1];
  n.seen_commit = n.durable_snap.last.index;
  n.applied = n.durable_snap.last.index;
  n.applied_hash = 0;
  n.partial = n.durable_partial;
  n.building = {};
  if (n.applied > 0) {
    log_id last;
    if (!decode_snapshot(n.durable_snap.bytes, last, n.applied_hash)
        || last != n.durable_snap.last)
      return fail("node " + std::to_string(n.id) + " has a corrupt snapshot");
  }
  n.leader_term = 0;
  n.leader_last = 0;
  mirror_append(n, n.durable_log);
  auto d = n.core->next_deadline();
  ++n.timer_gen;
  if (d.count() > 0)
    schedule(
      {d.count(), 0, ev_kind::timer, n.id, n.incarnation, n.timer_gen, {}});
}

void simulation::crash(sim_node& n) {
  // Unsynced writes may or may not have reached the disk: keep a random
  // prefix of them (never a later write without the earlier ones).
  auto keep = rng_.below(n.pending.size() + 1);
  while (keep-- > 0 && !failed_) {
    make_durable(n, n.pending.front());
    n.pending.pop_front();
  }
  n.pending.clear();
  if (opts_.lying_disk && !n.durable_log.empty()) {
    auto lose = std::min<size_t>(n.durable_log.size(), 1 + rng_.below(3));
    n.durable_log.resize(n.durable_log.size() - lose);
  }
  n.core.reset();
  ++n.incarnation;
  n.storage_free_at = now_;
  n.accepted.clear();
  n.down_since = now_;
  ++result_.crashes;
  say("node " + std::to_string(n.id) + " crashed");
}

// -- stepping -----------------------------------------------------------------

void simulation::step(sim_node& n, event ev) {
  if (!n.core || failed_)
    return;
  ++result_.steps;
  std::vector<command> cmds;
  try {
    cmds = n.core->step(reading(), std::move(ev));
  } catch (const std::exception& e) {
    fail(std::string("node threw: ") + e.what());
    return;
  }
  std::vector<log_entry> applied;
  bool truncated = false;
  for (auto& c : cmds) {
    truncated |= std::holds_alternative<truncate_log>(c);
    handle(n, c, applied);
    if (failed_)
      return;
  }
  auto& core = *n.core;
  // Leader Append-Only (§5.3): a leader never deletes or overwrites entries.
  if (core.role() == node_role::leader) {
    if (n.leader_term == core.current_term()) {
      if (truncated || core.log().last_index() < n.leader_last)
        return fail("leader append-only broken on node "
                    + std::to_string(n.id));
    }
    n.leader_term = core.current_term();
    n.leader_last = core.log().last_index();
  } else {
    n.leader_term = 0;
  }
  // The mirror must track the core's log exactly.
  if (mirror_last(n) != core.log().last_index())
    return fail("simulation mirror out of sync on node "
                + std::to_string(n.id));
  // Commits: record globally; any two nodes must agree (State Machine Safety).
  for (auto i = std::max(n.seen_commit + 1, n.mirror_base);
       i <= core.commit_index(); ++i) {
    if (i == 0)
      continue;
    auto h = hash_at(n, i);
    if (i <= committed_.size()) {
      if (committed_[i - 1] != h)
        return fail("node " + std::to_string(n.id)
                    + " committed a different entry at index "
                    + std::to_string(i));
    } else {
      committed_.push_back(h);
      commit_term_.push_back(core.current_term());
    }
  }
  n.seen_commit = std::max(n.seen_commit, core.commit_index());
  for (const auto& e : applied) {
    auto i = e.id.index;
    if (i != n.applied + 1)
      return fail("node " + std::to_string(n.id) + " applied index "
                  + std::to_string(i) + " out of order");
    if (i > committed_.size() || i <= n.mirror_base
        || committed_[i - 1] != hash_at(n, i))
      return fail("node " + std::to_string(n.id)
                  + " applied an uncommitted or different entry at index "
                  + std::to_string(i));
    n.applied = i;
    n.applied_hash = committed_[i - 1];
    auto acc = n.accepted.find({e.id.term, e.id.index});
    if (acc != n.accepted.end()) {
      // The client gets its answer now: the write is acknowledged.
      acked_[acc->second] = e.id;
      acked_max_index_ = std::max(acked_max_index_, e.id.index);
      if (liveness_payloads_.count(acc->second))
        ++liveness_acked_;
      n.accepted.erase(acc);
    }
  }
  if (!applied.empty())
    schedule({now_,
              0,
              ev_kind::apply_done,
              n.id,
              n.incarnation,
              applied.back().id.index,
              {}});
}

void simulation::mirror_append(sim_node& n,
                               const std::vector<log_entry>& entries) {
  for (const auto& e : entries) {
    if (e.id.index != mirror_last(n) + 1)
      return fail("node " + std::to_string(n.id) + " appended index "
                  + std::to_string(e.id.index) + " out of order");
    uint64_t prev = n.prefix_hash.empty() ? n.base_hash : n.prefix_hash.back();
    auto h = mix(prev, entry_hash(e));
    n.prefix_hash.push_back(h);
    // Log Matching (§5.3): same index and term => identical prefixes.
    auto [it, fresh]
      = log_registry_.emplace(std::make_pair(e.id.index, e.id.term), h);
    if (!fresh && it->second != h)
      return fail("log matching broken: node " + std::to_string(n.id)
                  + " holds a different log up to index "
                  + std::to_string(e.id.index) + " term "
                  + std::to_string(e.id.term));
  }
}

void simulation::handle(sim_node& n, command& c,
                        std::vector<log_entry>& applied) {
  if (auto* hs = std::get_if<save_hard_state>(&c)) {
    auto seq = hs->seq;
    n.pending.push_back(std::move(c));
    schedule_write(n, seq);
  } else if (auto* t = std::get_if<truncate_log>(&c)) {
    if (t->from <= n.mirror_base || t->from > mirror_last(n) + 1)
      return fail("bad truncate_log command");
    n.prefix_hash.resize(t->from - 1 - n.mirror_base);
    auto seq = t->seq;
    n.pending.push_back(std::move(c));
    schedule_write(n, seq);
  } else if (auto* a = std::get_if<append_log>(&c)) {
    mirror_append(n, a->entries);
    auto seq = a->seq;
    n.pending.push_back(std::move(c));
    schedule_write(n, seq);
  } else if (std::holds_alternative<build_snapshot>(c)
             || std::holds_alternative<purge_log>(c)
             || std::holds_alternative<send_snapshot_chunk>(c)
             || std::holds_alternative<write_snapshot_chunk>(c)
             || std::holds_alternative<install_snapshot>(c)) {
    handle_snapshot_command(n, c);
  } else if (auto* s = std::get_if<send_message>(&c)) {
    send(n, std::move(s->message));
  } else if (auto* ap = std::get_if<apply_entries>(&c)) {
    for (auto& e : ap->entries)
      applied.push_back(std::move(e));
  } else if (auto* rr = std::get_if<read_ready>(&c)) {
    on_read_ready(n, *rr);
  } else if (auto* ok = std::get_if<request_succeeded>(&c)) {
    auto it = admin_.find(ok->request_id);
    if (it != admin_.end()) {
      say("node " + std::to_string(n.id) + ": " + it->second + " done");
      if (it->second.rfind("transfer", 0) == 0)
        ++result_.transfers;
      else if (it->second.rfind("snapshot", 0) == 0)
        ++result_.triggered_snapshots;
      else
        ++result_.config_changes;
      admin_.erase(it);
    }
  } else if (auto* bad = std::get_if<request_failed>(&c)) {
    reads_.erase(bad->request_id);
    auto it = admin_.find(bad->request_id);
    if (it != admin_.end()) {
      if (opts_.narrate || opts_.trace)
        say("node " + std::to_string(n.id) + ": " + it->second
            + " failed: " + to_string(bad->error) + " (" + bad->detail + ")");
      admin_.erase(it);
    }
  } else if (auto* pa = std::get_if<proposal_accepted>(&c)) {
    n.accepted[{pa->id.term, pa->id.index}] = pa->request_id;
  } else if (auto* st = std::get_if<set_timer>(&c)) {
    ++n.timer_gen;
    if (st->deadline.count() > 0)
      schedule({st->deadline.count(),
                0,
                ev_kind::timer,
                n.id,
                n.incarnation,
                n.timer_gen,
                {}});
  } else if (auto* rc = std::get_if<role_changed>(&c)) {
    if (rc->role == node_role::leader) {
      auto [it, fresh] = leaders_.emplace(rc->term, n.id);
      if (!fresh && it->second != n.id)
        return fail("election safety broken: nodes "
                    + std::to_string(it->second) + " and "
                    + std::to_string(n.id) + " both lead term "
                    + std::to_string(rc->term));
      ++result_.elections;
      // Leader Completeness (§5.4): every entry committed in a term before
      // this one is in its log. (Not later commits: a delayed vote response
      // can make a leader of an old term after a newer leader committed.)
      auto c_last = committed_.size();
      while (c_last > 0 && commit_term_[c_last - 1] >= rc->term)
        --c_last;
      // (Entries below its log's base are in its snapshot, which was
      // checked against the committed prefix when it was installed.)
      if (c_last > 0
          && (mirror_last(n) < c_last
              || (c_last >= n.mirror_base
                  && hash_at(n, c_last) != committed_[c_last - 1])))
        return fail(
          "leader completeness broken: new leader " + std::to_string(n.id)
          + " of term " + std::to_string(rc->term)
          + " lacks committed entries up to index " + std::to_string(c_last)
          + " (its log ends at " + std::to_string(mirror_last(n)) + ", base "
          + std::to_string(n.mirror_base) + "; " + describe_logs() + ")");
      say("node " + std::to_string(n.id) + " became leader of term "
          + std::to_string(rc->term));
    }
  } else if (auto* d = std::get_if<diagnostic>(&c)) {
    if (d->level == severity::error)
      return fail("node " + std::to_string(n.id)
                  + " reported an error: " + d->text);
    if (opts_.trace)
      say("node " + std::to_string(n.id) + ": " + d->text);
  }
}

void simulation::send(sim_node& from, raft_message m) {
  ++result_.messages;
  auto to = header_of(m).to;
  if (to == 0 || to > nodes_.size())
    return fail("message to unknown node " + std::to_string(to));
  if (opts_.trace) {
    std::string detail;
    if (auto* v = std::get_if<request_vote_request>(&m))
      detail = " last (" + std::to_string(v->last_log.term) + ","
               + std::to_string(v->last_log.index) + ")";
    else if (auto* r = std::get_if<request_vote_response>(&m))
      detail = r->vote_granted ? " granted" : " denied";
    else if (auto* a = std::get_if<append_entries_request>(&m))
      detail = " prev (" + std::to_string(a->prev_log.term) + ","
               + std::to_string(a->prev_log.index) + ") +"
               + std::to_string(a->entries.size()) + " commit "
               + std::to_string(a->leader_commit);
    else if (auto* ar = std::get_if<append_entries_response>(&m))
      detail = ar->success ? " match " + std::to_string(ar->match_index)
                           : " rejected";
    say("send " + std::string(message_name(m)) + " " + std::to_string(from.id)
        + "->" + std::to_string(to) + " term " + std::to_string(term_of(m))
        + detail);
  }
  int copies = 1;
  if (faults_) {
    if (rng_.chance(opts_.drop_rate)) {
      ++result_.dropped;
      // Sometimes the sender's transport notices (a refused connection):
      // the runtime then reports the peer unreachable.
      if (rng_.chance(0.3))
        schedule({now_ + rng_.range(100, 2000),
                  0,
                  ev_kind::unreachable,
                  from.id,
                  from.incarnation,
                  to,
                  {}});
      return;
    }
    if (rng_.chance(opts_.duplicate_rate))
      copies = 2;
  }
  for (int i = 0; i < copies; ++i) {
    // Mostly quick, sometimes slow: slow messages overtake nothing but are
    // overtaken, which reorders the stream.
    int64_t delay = faults_ && rng_.chance(0.05)
                      ? rng_.range(20, 200) * usec_per_ms
                      : rng_.range(100, 3000);
    schedule({now_ + delay, 0, ev_kind::deliver, to, 0, from.id, m});
  }
}

void simulation::make_durable(sim_node& n, command& c) {
  auto base = n.durable_base.index;
  if (auto* hs = std::get_if<save_hard_state>(&c)) {
    n.durable_hs = hs->state;
  } else if (auto* t = std::get_if<truncate_log>(&c)) {
    if (t->from <= base)
      return fail("truncate_log into the compacted log");
    n.durable_log.resize(
      std::min<size_t>(n.durable_log.size(), t->from - 1 - base));
  } else if (auto* a = std::get_if<append_log>(&c)) {
    for (auto& e : a->entries) {
      if (e.id.index != base + n.durable_log.size() + 1)
        return fail("append_log does not follow the durable log");
      n.durable_log.push_back(e);
    }
  } else if (auto* p = std::get_if<purge_log>(&c)) {
    if (p->up_to <= base)
      return; // already compacted (e.g. by an installed snapshot)
    auto k = std::min<size_t>(n.durable_log.size(), p->up_to - base);
    if (k == 0 || n.durable_log[k - 1].id.index != p->up_to)
      return fail("purge_log beyond the durable log");
    n.durable_base = n.durable_log[k - 1].id;
    n.durable_log.erase(n.durable_log.begin(),
                        n.durable_log.begin() + static_cast<std::ptrdiff_t>(k));
  } else if (auto* w = std::get_if<write_snapshot_chunk>(&c)) {
    if (w->snapshot_id == discarded_chunk)
      return; // its transfer was discarded by a local snapshot build
    auto& f = n.durable_partial;
    if (w->offset == 0)
      f = {w->snapshot_id, {}, {}, {}};
    if (f.id != w->snapshot_id || f.bytes.size() != w->offset)
      return fail("write_snapshot_chunk out of order");
    f.bytes.insert(f.bytes.end(), w->data.begin(), w->data.end());
  } else if (auto* in = std::get_if<install_snapshot>(&c)) {
    auto& f = n.durable_partial;
    if (f.id != in->snapshot_id)
      return fail("install_snapshot of a snapshot never written");
    n.durable_snap
      = {in->snapshot_id, in->last_included, in->config, std::move(f.bytes)};
    f = {};
    auto last = in->last_included;
    if (in->keep_log_suffix && last.index > base) {
      auto k = std::min<size_t>(n.durable_log.size(), last.index - base);
      n.durable_log.erase(n.durable_log.begin(),
                          n.durable_log.begin()
                            + static_cast<std::ptrdiff_t>(k));
      n.durable_base = last;
    } else if (!in->keep_log_suffix) {
      n.durable_log.clear();
      n.durable_base = last;
    }
  }
}

void simulation::handle_snapshot_command(sim_node& n, command& c) {
  if (auto* b = std::get_if<build_snapshot>(&c)) {
    // The state machine must be exactly at the requested entry.
    if (n.applied != b->last_included.index)
      return fail(
        "build_snapshot at index " + std::to_string(b->last_included.index)
        + " while the state machine is at " + std::to_string(n.applied));
    // The store has one slot for a snapshot in the making: this build
    // discards a partly received one. Chunk writes issued before it still
    // reach the store first (the storage worker keeps order) and are then
    // discarded with it: mark them so they land nowhere.
    n.partial = {};
    n.durable_partial = {};
    for (auto& p : n.pending)
      if (auto* w = std::get_if<write_snapshot_chunk>(&p))
        w->snapshot_id = discarded_chunk;
    n.building
      = {next_snapshot_id_++, b->last_included, b->config,
         encode_snapshot(b->last_included, n.applied_hash, rng_.below(600))};
    schedule({now_ + rng_.range(1, 20) * usec_per_ms,
              0,
              ev_kind::snapshot_done,
              n.id,
              n.incarnation,
              n.building.id,
              {}});
  } else if (auto* sc = std::get_if<send_snapshot_chunk>(&c)) {
    auto req = sc->request;
    const auto& f = n.durable_snap;
    if (f.id != req.snapshot_id || f.last != req.last_included)
      return fail("node " + std::to_string(n.id)
                  + " was asked to send a snapshot it does not have");
    if (req.offset > f.bytes.size()) {
      req.offset = f.bytes.size(); // a follower asked past the end
    }
    auto len = std::min<size_t>(sc->max_bytes, f.bytes.size() - req.offset);
    req.data.assign(f.bytes.begin() + static_cast<std::ptrdiff_t>(req.offset),
                    f.bytes.begin()
                      + static_cast<std::ptrdiff_t>(req.offset + len));
    req.done = req.offset + len == f.bytes.size();
    send(n, req);
  } else if (auto* w = std::get_if<write_snapshot_chunk>(&c)) {
    if (n.building.id != 0)
      return fail("node " + std::to_string(n.id)
                  + " wrote a received snapshot chunk while its own snapshot "
                    "was being stored (the store has one slot)");
    if (w->offset == 0)
      n.partial = {w->snapshot_id, {}, {}, {}};
    if (n.partial.id != w->snapshot_id || n.partial.bytes.size() != w->offset)
      return fail("write_snapshot_chunk out of order on node "
                  + std::to_string(n.id));
    n.partial.bytes.insert(n.partial.bytes.end(), w->data.begin(),
                           w->data.end());
    auto seq = w->seq;
    n.pending.push_back(std::move(c));
    schedule_write(n, seq);
  } else if (auto* in = std::get_if<install_snapshot>(&c)) {
    // Restore the state machine from the received snapshot now.
    log_id last;
    uint64_t hash = 0;
    if (n.partial.id != in->snapshot_id
        || !decode_snapshot(n.partial.bytes, last, hash)
        || last != in->last_included)
      return fail("install_snapshot of an incomplete or foreign snapshot on "
                  "node "
                  + std::to_string(n.id));
    if (last.index > committed_.size() || committed_[last.index - 1] != hash)
      return fail("node " + std::to_string(n.id)
                  + " installed a snapshot that disagrees with the "
                    "committed log at index "
                  + std::to_string(last.index));
    n.applied = last.index;
    n.applied_hash = hash;
    if (!in->keep_log_suffix) {
      n.mirror_base = last.index;
      n.base_hash = hash;
      n.prefix_hash.clear();
    } else if (hash_at(n, last.index) != hash) {
      return fail("kept a log suffix that does not match the snapshot");
    }
    schedule(
      {now_, 0, ev_kind::apply_done, n.id, n.incarnation, last.index, {}});
    auto seq = in->seq;
    n.pending.push_back(std::move(c));
    schedule_write(n, seq);
  } else if (auto* p = std::get_if<purge_log>(&c)) {
    auto seq = p->seq;
    n.pending.push_back(std::move(c));
    schedule_write(n, seq);
  }
}

void simulation::on_storage_done(sim_node& n, uint64_t seq) {
  while (!n.pending.empty() && !failed_) {
    auto& c = n.pending.front();
    if (write_sequence(c) > seq)
      break;
    make_durable(n, c);
    n.pending.pop_front();
  }
  step(n, writes_persisted{seq});
}

// -- faults -------------------------------------------------------------------

void simulation::fault_tick() {
  auto n_nodes = nodes_.size();
  // Leaders crash more often than others: that is where the hard cases are
  // (Figure 8 needs a leader to fail right after replicating to a few).
  for (auto& n : nodes_)
    if (n.core && n.core->role() == node_role::leader && rng_.chance(0.05))
      crash(n);
  for (auto& n : nodes_) {
    if (n.core && rng_.chance(0.015))
      crash(n);
    else if (!n.core && now_ - n.down_since > 300 * usec_per_ms
             && rng_.chance(0.3)) {
      say("node " + std::to_string(n.id) + " restarts");
      start(n);
    }
  }
  if (cuts_.empty() && rng_.chance(0.06)) {
    // Cut a random group off from the rest, sometimes in one direction only.
    std::set<node_id> group;
    auto size = 1 + rng_.below(n_nodes / 2 + 1);
    while (group.size() < size)
      group.insert(1 + rng_.below(n_nodes));
    bool one_way = rng_.chance(0.3);
    for (node_id a = 1; a <= n_nodes; ++a)
      for (node_id b = 1; b <= n_nodes; ++b)
        if (group.count(a) && !group.count(b)) {
          cuts_.insert({a, b});
          if (!one_way)
            cuts_.insert({b, a});
        }
    std::string members;
    for (auto g : group)
      members += std::to_string(g) + " ";
    say(std::string("partition: nodes ") + members + "cut off"
        + (one_way ? " (outgoing only)" : ""));
    ++result_.partitions;
  } else if (!cuts_.empty() && rng_.chance(0.15)) {
    cuts_.clear();
    say("partition healed");
  }
}

void simulation::heal_all() {
  faults_ = false;
  cuts_.clear();
  for (auto& n : nodes_)
    if (!n.core) {
      say("node " + std::to_string(n.id) + " restarts");
      start(n);
    }
  say("faults stop; the cluster must recover");
}

node_id simulation::current_leader() const {
  node_id leader = 0;
  term_t best = 0;
  for (const auto& n : nodes_)
    if (n.core && n.core->role() == node_role::leader
        && n.core->current_term() >= best) {
      best = n.core->current_term();
      leader = n.id;
    }
  return leader;
}

void simulation::liveness_tick() {
  // Propose to the leader of the highest term until enough writes landed.
  auto leader = current_leader();
  if (leader != 0 && liveness_payloads_.size() < 50) {
    auto id = next_payload_++;
    liveness_payloads_.insert(id);
    step(node(leader),
         client_proposal{
           id, {static_cast<uint8_t>(id), static_cast<uint8_t>(id >> 8)}});
  }
  if (opts_.reads && rng_.chance(0.3))
    issue_read();
}

void simulation::admin_tick() {
  auto leader = current_leader();
  if (leader == 0)
    return;
  auto& l = node(leader);
  const auto& cfg = l.core->config();
  auto id = next_payload_++;
  auto pick
    = [&](const std::vector<node_id>& xs) { return xs[rng_.below(xs.size())]; };
  std::vector<node_id> voters, learners, outsiders;
  for (const auto& n : nodes_) {
    if (cfg.voters.count(n.id))
      voters.push_back(n.id);
    else if (cfg.learners.count(n.id))
      learners.push_back(n.id);
    else
      outsiders.push_back(n.id);
  }
  switch (rng_.below(6)) {
    case 5: { // an operator asks some live node for a snapshot
      auto& n = node(1 + rng_.below(nodes_.size()));
      if (!n.core)
        return;
      admin_[id] = "snapshot on node " + std::to_string(n.id);
      step(n, trigger_snapshot{id});
      return;
    }
    case 0: { // add a learner
      if (outsiders.empty())
        return;
      auto who = pick(outsiders);
      bool wait = rng_.chance(0.5);
      admin_[id] = "add learner " + std::to_string(who);
      step(l, add_learner{id, who, "sim:" + std::to_string(who), wait});
      return;
    }
    case 1:
    case 2: { // change voters: promote, demote, or both at once (joint)
      std::set<node_id> next(voters.begin(), voters.end());
      if (!learners.empty() && rng_.chance(0.6))
        next.insert(pick(learners));
      if (voters.size() > 2 && rng_.chance(0.6))
        next.erase(pick(voters));
      std::string text = "change voters to {";
      for (auto v : next)
        text += std::to_string(v) + " ";
      admin_[id] = text + "}";
      step(l, change_membership{id, next});
      return;
    }
    case 3: { // remove a learner
      if (learners.empty())
        return;
      auto who = pick(learners);
      admin_[id] = "remove learner " + std::to_string(who);
      step(l, remove_learner{id, who});
      return;
    }
    default: { // hand leadership to another voter
      auto who = pick(voters);
      admin_[id] = "transfer leadership to " + std::to_string(who);
      step(l, transfer_leadership{id, who});
      return;
    }
  }
}

void simulation::issue_read() {
  // Reads go to the leader mostly, and to followers (via the leader).
  node_id target = 1 + rng_.below(nodes_.size());
  if (rng_.chance(0.6) && current_leader() != 0)
    target = current_leader();
  auto& n = node(target);
  if (!n.core)
    return;
  auto id = next_payload_++;
  // Every write acknowledged before the read was issued must be visible.
  reads_[id] = {target, acked_max_index_};
  auto mode = rng_.chance(0.5) ? read_mode::lease : read_mode::linearizable;
  step(n, read_request{id, mode});
}

void simulation::on_read_ready(sim_node& n, const read_ready& r) {
  auto it = reads_.find(r.request_id);
  if (it == reads_.end())
    return fail("read_ready for an unknown read on node "
                + std::to_string(n.id));
  auto required = it->second.second;
  if (it->second.first != n.id)
    return fail("read answered by the wrong node");
  reads_.erase(it);
  // The state machine here has applied n.applied entries when the read runs.
  if (r.read_index > n.applied)
    return fail("node " + std::to_string(n.id) + " served a read at index "
                + std::to_string(r.read_index) + " before applying it");
  if (n.applied < required)
    return fail("stale read on node " + std::to_string(n.id) + ": it saw "
                + std::to_string(n.applied) + " entries, but a write at index "
                + std::to_string(required)
                + " was acknowledged before the read was issued");
  ++result_.reads;
}

void simulation::check_final() {
  // Acknowledged writes are never lost: each is in the log of every member
  // of the final configuration.
  auto leader = current_leader();
  if (leader == 0)
    return fail("no leader at the end");
  const auto& cfg = node(leader).core->config();
  for (const auto& [payload, id] : acked_) {
    for (auto& n : nodes_) {
      if (!cfg.contains(n.id))
        continue;
      const auto& log = n.core->log();
      if (id.index <= log.base_id().index)
        continue; // compacted into a snapshot, checked when installed
      if (log.last_index() < id.index || log.at(id.index).id != id)
        return fail("acknowledged write " + std::to_string(payload)
                    + " at index " + std::to_string(id.index)
                    + " is missing on node " + std::to_string(n.id));
    }
  }
}

sim_result simulation::run() {
  auto total = static_cast<size_t>(opts_.nodes + std::max(0, opts_.spares));
  nodes_.resize(total);
  lease_reads_ = opts_.pre_vote && rng_.chance(0.5);
  membership m;
  for (size_t i = 0; i < total; ++i)
    nodes_[i].id = static_cast<node_id>(i + 1);
  for (int i = 0; i < opts_.nodes; ++i)
    m.voters[static_cast<node_id>(i + 1)] = "sim:" + std::to_string(i + 1);
  for (auto& n : nodes_)
    start(n);
  // Cluster formation: initialize on a random non-empty subset of members.
  auto first = 1 + rng_.below(static_cast<uint64_t>(opts_.nodes));
  for (auto& n : nodes_)
    if (m.voters.count(n.id) && (n.id == first || rng_.chance(0.5)))
      step(n, initialize_cluster{0, m});

  auto fault_end = opts_.fault_ms * usec_per_ms;
  auto deadline = fault_end + opts_.liveness_ms * usec_per_ms;
  for (int64_t t = 100 * usec_per_ms; t < fault_end; t += 100 * usec_per_ms)
    schedule({t, 0, ev_kind::fault_tick, 0, 0, 0, {}});
  if (opts_.proposals_per_sec > 0) {
    int64_t gap = 1'000'000 / opts_.proposals_per_sec;
    for (int64_t t = gap; t < fault_end; t += rng_.range(1, 2 * gap))
      schedule({t, 0, ev_kind::propose, 0, 0, 0, {}});
  }
  schedule({fault_end, 0, ev_kind::fault_tick, 0, 1, 0, {}});
  for (int64_t t = fault_end; t < deadline; t += 50 * usec_per_ms)
    schedule({t, 0, ev_kind::liveness_tick, 0, 0, 0, {}});

  bool recovered = false;
  while (!queue_.empty() && !failed_) {
    auto ev = queue_.top();
    queue_.pop();
    if (ev.at > deadline)
      break;
    now_ = ev.at;
    switch (ev.kind) {
      case ev_kind::deliver: {
        auto& n = node(ev.node);
        if (!n.core || (faults_ && blocked(ev.arg, ev.node))) {
          ++result_.dropped;
          break;
        }
        if (opts_.trace)
          say("deliver " + std::string(message_name(ev.msg)) + " "
              + std::to_string(ev.arg) + "->" + std::to_string(ev.node));
        step(n, message_received{std::move(ev.msg)});
        break;
      }
      case ev_kind::unreachable: {
        auto& n = node(ev.node);
        if (n.core && n.incarnation == ev.incarnation)
          step(n, peer_unreachable{static_cast<node_id>(ev.arg)});
        break;
      }
      case ev_kind::timer: {
        auto& n = node(ev.node);
        if (n.incarnation == ev.incarnation && n.timer_gen == ev.arg)
          step(n, timer_fired{});
        break;
      }
      case ev_kind::storage_done: {
        auto& n = node(ev.node);
        if (n.core && n.incarnation == ev.incarnation)
          on_storage_done(n, ev.arg);
        break;
      }
      case ev_kind::apply_done: {
        auto& n = node(ev.node);
        if (n.core && n.incarnation == ev.incarnation)
          step(n, entries_applied{ev.arg});
        break;
      }
      case ev_kind::propose: {
        if (opts_.reads && rng_.chance(0.3)) {
          issue_read();
          break;
        }
        // Clients mostly find the leader, sometimes ask a random node.
        node_id target = 1 + rng_.below(nodes_.size());
        if (rng_.chance(0.8) && current_leader() != 0)
          target = current_leader();
        auto id = next_payload_++;
        std::vector<uint8_t> payload(1 + rng_.below(64),
                                     static_cast<uint8_t>(id));
        step(node(target), client_proposal{id, std::move(payload)});
        break;
      }
      case ev_kind::fault_tick:
        if (ev.incarnation == 1) {
          heal_all();
        } else {
          fault_tick();
          if (opts_.admin && rng_.chance(0.12))
            admin_tick();
        }
        break;
      case ev_kind::liveness_tick:
        liveness_tick();
        break;
      case ev_kind::snapshot_done: {
        auto& n = node(ev.node);
        if (n.core && n.incarnation == ev.incarnation
            && n.building.id == ev.arg) {
          // A snapshot installed from the leader meanwhile may be newer:
          // the store keeps whichever covers more.
          auto built = std::move(n.building);
          n.building = {};
          ++result_.snapshots;
          if (built.last.index > n.durable_snap.last.index)
            n.durable_snap = built;
          step(n, snapshot_built{built.id, built.last});
        }
        break;
      }
    }
    // Done once faults stopped, enough new writes were acknowledged and every
    // member of the leader's configuration applied all it committed.
    if (!faults_ && liveness_acked_ >= 5) {
      auto leader = current_leader();
      if (leader == 0)
        continue;
      auto& l = node(leader);
      auto top = l.core->commit_index();
      bool all = top > 0 && !l.core->config().joint;
      // Every proposal the leader accepted in its term has been answered.
      for (const auto& kv : l.accepted)
        all = all && kv.first.first != l.core->current_term();
      for (auto& n : nodes_)
        if (l.core->config().contains(n.id))
          all = all && n.core->last_applied() >= top
                && n.core->commit_index() == top;
      if (all) {
        recovered = true;
        break;
      }
    }
  }
  if (!failed_ && !recovered)
    fail("no recovery within " + std::to_string(opts_.liveness_ms)
         + " ms after faults stopped (" + std::to_string(liveness_acked_)
         + " of 5 writes acknowledged)");
  if (!failed_)
    check_final();
  result_.ok = !failed_;
  result_.acknowledged = acked_.size();
  result_.committed = committed_.size();
  if (!failed_)
    say("recovered: " + std::to_string(result_.committed)
        + " entries committed, " + std::to_string(result_.acknowledged)
        + " writes acknowledged, " + std::to_string(result_.reads)
        + " reads checked");
  return result_;
}

} // namespace

sim_result run_simulation(const sim_options& opts,
                          const std::function<void(const std::string&)>& log) {
  auto sink = log ? log : [](const std::string& line) {
    std::fputs(line.c_str(), stdout);
    std::fputc('\n', stdout);
  };
  try {
    simulation s(opts, sink);
    return s.run();
  } catch (const std::exception& e) {
    sim_result r;
    r.failure
      = "seed " + std::to_string(opts.seed) + ": simulation threw: " + e.what();
    return r;
  }
}

} // namespace raft_actor::sim
