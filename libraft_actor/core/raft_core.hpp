// The deterministic, IO-free Raft protocol core: `step(now, event)` returns
// the ordered commands the runtime must carry out. No threads, clocks, files
// or sockets; time comes with every event and randomness from an injected
// generator, so a run is a pure function of its inputs.
//
// The implementation is split by concern:
//   raft_core.cpp    dispatch, terms and roles, durability gating, timers
//   election.cpp     pre-vote, RequestVote, check-quorum (§5.2, §5.4.1)
//   replication.cpp  AppendEntries both ways, commit and apply (§5.3, §5.4.2)
//   membership.cpp   joint consensus, learners (thesis §4)
//   transfer.cpp     leadership transfer (thesis §3.10)
//   read_index.cpp   linearizable reads without log writes (thesis §6.4)
//   invariants.cpp   self-checks run after every step
#pragma once

#include "libraft_actor/core/commands.hpp"
#include "libraft_actor/core/config.hpp"
#include "libraft_actor/core/events.hpp"
#include "libraft_actor/core/progress.hpp"
#include "libraft_actor/core/raft_log.hpp"

#include <deque>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace raft_actor {

/// The log id at which `initialize_cluster` writes the initial membership on
/// every founding member, so that all of them hold the identical entry.
constexpr log_id bootstrap_log_id{0, 1};

/// Thrown when a protocol invariant is broken: the node must stop. The
/// message holds a dump of the core's state.
class invariant_violation : public std::logic_error {
public:
  using std::logic_error::logic_error;
};

/// What a node recovered from stable storage when it starts.
struct recovered_state {
  /// Term and vote as last persisted.
  hard_state state;
  /// Position covered by the latest snapshot ((0,0) if none).
  log_id snapshot;
  /// The runtime's id of that snapshot.
  uint64_t snapshot_id = 0;
  /// Membership as of the snapshot (ignored without a snapshot).
  membership snapshot_config;
  /// Id of the entry just before the first durable entry: (0,0) for a log
  /// that was never compacted, the snapshot's last entry after a snapshot
  /// replaced the log, or an earlier entry when some were kept behind the
  /// snapshot for lagging followers. Storage records it with the log.
  log_id log_base;
  /// Durable log entries following log_base, in order.
  std::vector<log_entry> entries;
  /// Highest index already applied to the state machine (>= snapshot.index
  /// if the state machine was restored from the snapshot).
  index_t last_applied = 0;
};

/// One Raft node's protocol state machine (Figure 2 and thesis extensions).
class raft_core {
public:
  // -- construction ----------------------------------------------------------

  /// Creates a core from its configuration and what storage recovered.
  /// Throws std::invalid_argument on an invalid configuration or state.
  raft_core(core_config cfg, recovered_state recovered, clock_reading now);

  // -- the one entry point ---------------------------------------------------

  /// Feeds one event at time `now`; returns the commands to execute in order.
  std::vector<command> step(clock_reading now, event ev);

  // -- observers (read-only, for runtime, metrics and tests) -----------------

  /// This node's id.
  node_id id() const { return cfg_.id; }
  /// Current role.
  node_role role() const { return role_; }
  /// Current term (§5.1).
  term_t current_term() const { return hs_.current_term; }
  /// Candidate voted for in the current term, or 0.
  node_id voted_for() const { return hs_.voted_for; }
  /// Leader of the current term, if known.
  node_id leader_id() const { return leader_id_; }
  /// Highest index known committed.
  index_t commit_index() const { return commit_index_; }
  /// Highest index the state machine confirmed applied.
  index_t last_applied() const { return last_applied_; }
  /// Highest index known durable in the in-memory log.
  index_t durable_index() const { return durable_index_; }
  /// The log (including not yet durable entries).
  const raft_log& log() const { return log_; }
  /// The configuration in effect (latest in the log, committed or not).
  const membership& config() const { return config_; }
  /// Last entry covered by the latest snapshot ((0,0) if none).
  log_id snapshot_last_included() const { return snapshot_.last_included; }
  /// Per-peer progress (meaningful while leader).
  const std::map<node_id, progress>& peers() const { return progress_; }
  /// The configuration this core was built with.
  const core_config& configuration() const { return cfg_; }
  /// Deadline of the timer the runtime should have armed (0 if none).
  raft_duration next_deadline() const;

  /// Human-readable dump of the whole state (for invariant failures).
  std::string describe() const;

  /// Runs the invariant checks now; throws invariant_violation.
  void check_invariants() const;

private:
  // -- raft_core.cpp: plumbing -----------------------------------------------

  void dispatch(event& ev);
  void emit(command c) { out_->push_back(std::move(c)); }
  void report(severity level, std::string text);
  uint64_t next_random();
  raft_duration random_election_timeout();
  void reset_election_deadline();
  void update_timer();
  bool validate_header(const raft_message& m);

  // Terms and roles.
  void become_follower(term_t term, node_id leader);
  void become_pre_candidate();
  void become_candidate();
  void become_leader();
  void set_hard_state(hard_state hs);
  void announce_role();
  bool is_voter() const { return config_.is_voter(cfg_.id); }

  // Durability gating (thesis §3.8).
  uint64_t persist_hard_state();
  void persist_truncate(index_t from);
  void persist_append(std::vector<log_entry> entries);
  void send(raft_message m);
  void on_writes_persisted(uint64_t seq);
  void on_entries_applied(index_t index);
  rpc_header header_to(node_id to) const;

  // Membership.
  void refresh_config();
  /// Latest configuration entry at or before `upto` (its index, or 0 and
  /// the configuration at the log's base).
  index_t find_config(index_t upto, membership& out) const;
  void set_config(const membership& m);

  // Client and admin requests.
  void handle_proposal(client_proposal& p);
  void handle_initialize(initialize_cluster& req);
  void append_as_leader(entry_kind kind, std::vector<uint8_t> payload);

  // -- election.cpp ----------------------------------------------------------

  void on_election_timeout();
  void campaign(bool pre_vote);
  bool in_leader_lease() const;
  void handle_request_vote(const request_vote_request& req);
  void handle_request_vote_response(const request_vote_response& resp);
  void count_vote(node_id from, bool granted);
  void check_quorum_round();

  // -- replication.cpp -------------------------------------------------------

  bool validate_append(const append_entries_request& req, std::string& why);
  bool accept_leader_message(term_t term, node_id from);
  void handle_append_entries(const append_entries_request& req);
  void handle_append_entries_response(const append_entries_response& resp);
  void send_append(node_id to, progress& pr, bool allow_empty);
  void send_heartbeats();
  void broadcast_append();
  void expire_stale_inflight();
  void maybe_commit();
  void maybe_apply();

  // -- membership.cpp --------------------------------------------------------

  void handle_add_learner(add_learner& req);
  void handle_remove_learner(remove_learner& req);
  void handle_change_membership(change_membership& req);
  bool config_change_allowed(uint64_t request_id);
  void propose_config(const membership& m, uint64_t request_id, node_id learner,
                      bool wait_caught_up);
  void advance_config_change();
  void handle_unsafe_force_sole_voter(unsafe_force_sole_voter& req);

  // -- transfer.cpp ----------------------------------------------------------

  void handle_transfer_leadership(transfer_leadership& req);
  void handle_timeout_now(const timeout_now_request& req);
  void maybe_send_timeout_now();
  void check_transfer(node_id new_leader);
  void check_transfer_deadline();

  // -- read_index.cpp --------------------------------------------------------

  /// A read waiting for leadership confirmation or for the state machine.
  struct pending_read {
    uint64_t request_id = 0;
    index_t read_index = 0;
    uint64_t round = 0;
    /// Non-zero for a follower's read_index_request: answer it instead.
    node_id remote = no_node;
    uint64_t remote_read_id = 0;
  };
  /// A read a follower forwarded to its leader.
  struct follower_read {
    uint64_t request_id = 0;
    raft_duration deadline{0};
  };

  void handle_read_request(read_request& req);
  void handle_read_index_request(const read_index_request& req);
  void handle_read_index_response(const read_index_response& resp);
  void leader_read(pending_read r, bool lease);
  bool current_term_committed() const;
  void on_round_acked(node_id from, uint64_t round);
  void update_confirmed_round();
  void request_read_round();
  void finish_confirmed_reads();
  void release_applied_reads();
  void fail_reads(raft_error e, const std::string& why);
  void fail_follower_reads(raft_error e, const std::string& why);
  void expire_follower_reads();
  void on_leadership_lost();

  // -- snapshot.cpp ----------------------------------------------------------

  membership config_at(index_t index) const;
  void maybe_build_snapshot();
  void on_snapshot_built(const snapshot_built& ev);
  void handle_trigger_snapshot(const trigger_snapshot& req);
  void answer_snapshot_triggers();
  void on_peer_unreachable(node_id peer);
  void start_snapshot_transfer(node_id to, progress& pr);
  void send_snapshot_chunk_to(node_id to, progress& pr);
  void resend_stale_snapshot_chunks();
  void handle_install_snapshot(const install_snapshot_request& req);
  void handle_install_snapshot_response(const install_snapshot_response& resp);

  // -- state -----------------------------------------------------------------

  core_config cfg_;
  uint64_t rng_state_;
  clock_reading now_;
  std::vector<command>* out_ = nullptr;

  /// Term and vote as the core sees them (durable once hard_state_seq_ is).
  hard_state hs_;
  node_role role_ = node_role::follower;
  node_id leader_id_ = no_node;
  raft_log log_;
  membership config_;
  /// Index of the log entry that holds config_ (the log's base index if the
  /// configuration comes from the snapshot).
  index_t config_index_ = 0;
  /// The configuration as of the log's base (from the snapshot).
  membership snapshot_config_;

  /// Invariant: last_applied_ <= applying_ <= commit_index_ <= last index.
  index_t commit_index_ = 0;
  index_t applying_ = 0;
  index_t last_applied_ = 0;

  // Durability tracking. Writes are numbered 1, 2, ... and complete in order.
  uint64_t last_write_seq_ = 0;
  uint64_t durable_seq_ = 0;
  /// Entries [1, durable_index_] of the current in-memory log are durable.
  index_t durable_index_ = 0;
  /// Pending log writes: the log's last index once each completes, clamped
  /// by later truncations.
  struct pending_write {
    uint64_t seq;
    index_t last_after;
  };
  std::deque<pending_write> pending_log_writes_;
  /// Messages held back until write `seq` is durable.
  struct deferred_message {
    uint64_t seq;
    raft_message message;
  };
  std::deque<deferred_message> deferred_;

  // Election state.
  raft_duration election_deadline_{0};
  /// Last time a valid leader of the current term was heard from.
  raft_duration last_leader_contact_{0};
  bool heard_leader_ = false;
  std::map<node_id, bool> votes_;
  uint64_t campaign_seq_ = 0;
  bool transfer_campaign_ = false;

  // Leader state.
  std::map<node_id, progress> progress_;
  raft_duration heartbeat_deadline_{0};
  raft_duration check_quorum_deadline_{0};
  uint64_t round_ = 0;

  // Membership change in flight (leader only).
  struct pending_config_change {
    uint64_t request_id = 0;
    /// Answer once the configuration at this index commits...
    index_t wait_index = 0;
    /// ...and, if set, once this learner's match reaches the commit index.
    node_id learner = no_node;
    bool wait_caught_up = false;
    bool committed = false;
  };
  std::optional<pending_config_change> pending_config_;

  // Leadership transfer (thesis §3.10).
  struct transfer_state {
    uint64_t request_id = 0;
    node_id target = no_node;
    raft_duration deadline{0};
    bool timeout_now_sent = false;
  };
  std::optional<transfer_state> transfer_;

  // Reads (thesis §6.4).
  std::vector<pending_read> reads_awaiting_commit_;
  std::deque<pending_read> reads_awaiting_round_;
  std::deque<pending_read> reads_awaiting_apply_;
  std::map<uint64_t, follower_read> follower_reads_;
  uint64_t next_read_id_ = 1;
  uint64_t confirmed_round_ = 0;
  bool round_wanted_ = false;
  std::deque<std::pair<uint64_t, raft_duration>> round_sent_at_;
  raft_duration lease_until_{0};
  raft_duration vote_blackout_until_{0};

  // Snapshots (§7).
  struct snapshot_meta {
    uint64_t id = 0;
    log_id last_included;
    membership config;
  };
  /// The latest complete snapshot. Invariant: last_included <= commit.
  snapshot_meta snapshot_;
  bool snapshot_building_ = false;
  log_id snapshot_requested_;
  /// Operator requests for a snapshot (trigger_snapshot): token and the
  /// applied index the snapshot must reach to answer it.
  std::vector<std::pair<uint64_t, index_t>> snapshot_triggers_;
  /// A snapshot being received in chunks.
  struct incoming_snapshot {
    uint64_t id = 0;
    log_id last_included;
    membership config;
    uint64_t next_offset = 0;
  };
  std::optional<incoming_snapshot> incoming_;

  raft_duration armed_deadline_{-1};
  node_role announced_role_ = node_role::follower;
  term_t announced_term_ = 0;
  node_id announced_leader_ = no_node;
};

} // namespace raft_actor
