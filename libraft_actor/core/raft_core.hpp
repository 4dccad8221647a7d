// The deterministic, IO-free Raft protocol core: `step(now, event)` returns
// the ordered commands the runtime must carry out. No threads, clocks, files
// or sockets; time comes with every event and randomness from an injected
// generator, so a run is a pure function of its inputs.
//
// The implementation is split by concern:
//   raft_core.cpp    dispatch, terms and roles, durability gating, timers
//   election.cpp     pre-vote, RequestVote, check-quorum (§5.2, §5.4.1)
//   replication.cpp  AppendEntries both ways, commit and apply (§5.3, §5.4.2)
//   invariants.cpp   self-checks run after every step
#pragma once

#include "libraft_actor/core/commands.hpp"
#include "libraft_actor/core/config.hpp"
#include "libraft_actor/core/events.hpp"
#include "libraft_actor/core/progress.hpp"
#include "libraft_actor/core/raft_log.hpp"

#include <deque>
#include <map>
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
  /// Membership as of the snapshot (ignored without a snapshot).
  membership snapshot_config;
  /// Durable log entries following the snapshot, in order.
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
  void handle_append_entries(const append_entries_request& req);
  void handle_append_entries_response(const append_entries_response& resp);
  void send_append(node_id to, progress& pr, bool allow_empty);
  void send_heartbeats();
  void broadcast_append();
  void expire_stale_inflight();
  void maybe_commit();
  void maybe_apply();

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
  /// Index of the log entry that holds config_ (0 = snapshot or none).
  index_t config_index_ = 0;
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

  raft_duration armed_deadline_{-1};
  node_role announced_role_ = node_role::follower;
  term_t announced_term_ = 0;
  node_id announced_leader_ = no_node;
};

} // namespace raft_actor
