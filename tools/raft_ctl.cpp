// raft-ctl: the operator's admin CLI for any raft-actor cluster. It knows
// nothing of the state machine: it speaks only the framework's admin
// messages (libraft_actor/node.hpp) to one node over the network transport,
// so it works for every application built on raft-actor.
//
//   raft-ctl --node HOST:PORT [--no-tls | --cert F --key F --ca F]
//            [--timeout MS] COMMAND [ARGS]
//
// Flags may come before or after the command. We parse argv ourselves and
// never hand it to CAF: CAF's option parser stops at the first positional
// argument, so `raft-ctl status --node X` would lose --node.
//
// Exit codes follow raft-node: 0 success, 1 the request failed (the node
// answered with an error, or gave no answer in time), 2 the node could not
// be reached or the connection was lost, 64 usage error.
#include "actors/network.hpp"

#include <caf/all.hpp>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <exception>
#include <memory>
#include <optional>
#include <pthread.h>
#include <set>
#include <stdexcept>
#include <string>
#include <unistd.h>
#include <vector>

using namespace raft_actor;
using namespace std::chrono_literals;

namespace {

// -- exit codes and usage -----------------------------------------------------

constexpr int exit_ok = 0;
constexpr int exit_failed = 1;
constexpr int exit_unreachable = 2;
constexpr int exit_usage = 64;

/// Requests that change the cluster may wait for a replication round trip
/// or more (a learner catching up), so they get longer than a status query.
constexpr uint64_t default_change_timeout_ms = 10000;
/// See default_change_timeout_ms.
constexpr uint64_t default_query_timeout_ms = 5000;
/// Largest --timeout: a day. Bigger values would only overflow CAF's clock
/// arithmetic and help no one.
constexpr uint64_t max_timeout_ms = 86'400'000;
/// How long connecting (TCP and TLS handshake) may take.
constexpr auto connect_timeout = 5s;

constexpr const char* usage_text
  = "usage: raft-ctl --node HOST:PORT [--no-tls | --cert F --key F --ca F]\n"
    "                [--timeout MS] COMMAND [ARGS]\n"
    "commands:\n"
    "  status [--json]                    one node's view: id, role, term, "
    "leader,\n"
    "                                     commit/applied/last log/snapshot "
    "index,\n"
    "                                     voters, learners, joint config, and "
    "(on the\n"
    "                                     leader) each peer's match index and "
    "lag\n"
    "  watch [--count N]                  live metrics, redrawn on every "
    "update;\n"
    "                                     Ctrl-C ends, --count N ends after N "
    "updates\n"
    "  add-learner ID HOST:PORT [--wait]  add a learner (--wait: answer once "
    "it has\n"
    "                                     caught up)\n"
    "  remove ID                          remove a voter (joint consensus) or "
    "a learner\n"
    "  change-membership ID,ID,...        set the voters (joint consensus)\n"
    "  transfer-leader ID                 hand leadership to voter ID\n"
    "  snapshot                           take a snapshot now\n"
    "Flags may come before or after the command. Changes must go to the "
    "leader.\n"
    "--timeout bounds every request (default 5000 ms for status and watch, "
    "10000\n"
    "for changes); connecting may take 5 s.\n"
    "Exit codes: 0 success, 1 the request failed (error answer, or no answer "
    "in\n"
    "time), 2 node unreachable or connection lost, 64 usage error.\n";

/// A mistake in the command line: main prints it with the usage text and
/// exits 64. Thrown only before the actor system exists.
struct usage_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// -- the command line ---------------------------------------------------------

/// Everything the command line says.
struct options {
  /// "--help" or "-h": print the usage text and succeed.
  bool help = false;
  /// The node to talk to ("host:port").
  std::string node;
  /// TLS off (mutually exclusive with the three files).
  bool no_tls = false;
  /// Our certificate, its key and the cluster CA.
  std::string cert;
  /// See cert.
  std::string key;
  /// See cert.
  std::string ca;
  /// --timeout as given (milliseconds), if given.
  std::optional<uint64_t> timeout_ms;
  /// status --json.
  bool json = false;
  /// add-learner --wait.
  bool wait = false;
  /// watch --count N.
  std::optional<uint64_t> count;
  /// The command and its positional arguments.
  std::string command;
  /// See command.
  std::vector<std::string> args;
};

/// Parses a decimal number made of digits only (strtoull would accept
/// "-1", " 7" and "+7", and wrap on overflow).
bool parse_u64(const std::string& s, uint64_t& out) {
  if (s.empty())
    return false;
  uint64_t v = 0;
  for (char ch : s) {
    if (ch < '0' || ch > '9')
      return false;
    auto digit = static_cast<uint64_t>(ch - '0');
    if (v > (UINT64_MAX - digit) / 10)
      return false;
    v = v * 10 + digit;
  }
  out = v;
  return true;
}

/// A node id: a positive number (0 means "nobody" in the protocol).
node_id parse_id(const std::string& s) {
  uint64_t v = 0;
  if (!parse_u64(s, v) || v == no_node)
    throw usage_error("bad node id \"" + s + "\": ids are positive numbers");
  return v;
}

/// "host:port" with a usable port (split_address lets port 0 through: it
/// means "any port" when listening, never a place to connect to).
void check_address(const std::string& address, const std::string& what) {
  std::string host;
  uint16_t port = 0;
  if (!split_address(address, host, port) || port == 0)
    throw usage_error(what + " \"" + address + "\" is not HOST:PORT");
}

/// The voters of change-membership: "1,2,3".
std::set<node_id> parse_id_list(const std::string& text) {
  std::set<node_id> ids;
  size_t pos = 0;
  for (;;) {
    auto comma = text.find(',', pos);
    auto item = text.substr(pos, comma == std::string::npos ? std::string::npos
                                                            : comma - pos);
    if (item.empty())
      throw usage_error("change-membership wants ID,ID,... without empty "
                        "items, got \""
                        + text + "\"");
    auto id = parse_id(item);
    if (!ids.insert(id).second)
      throw usage_error("node " + item + " is listed twice");
    if (comma == std::string::npos)
      return ids;
    pos = comma + 1;
  }
}

/// Reads argv. Flags may appear anywhere; "--" ends them; "--flag=value"
/// works as well as "--flag value".
options parse(int argc, char** argv) {
  options o;
  std::vector<std::string> positional;
  bool flags_done = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    // "-5" is a (bad) number, not a flag: let the argument check name it.
    bool flag_like
      = a.size() >= 2 && a[0] == '-' && !(a[1] >= '0' && a[1] <= '9');
    if (flags_done || !flag_like) {
      positional.push_back(a);
      continue;
    }
    if (a == "--") {
      flags_done = true;
      continue;
    }
    if (a == "-h" || a == "--help") {
      o.help = true;
      continue;
    }
    if (a.rfind("--", 0) != 0)
      throw usage_error("unknown flag " + a);
    auto name = a.substr(2);
    std::optional<std::string> value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
    }
    bool* switch_flag = name == "no-tls" ? &o.no_tls
                        : name == "json" ? &o.json
                        : name == "wait" ? &o.wait
                                         : nullptr;
    if (switch_flag) {
      if (value)
        throw usage_error("--" + name + " takes no value");
      *switch_flag = true;
      continue;
    }
    if (name != "node" && name != "cert" && name != "key" && name != "ca"
        && name != "timeout" && name != "count")
      throw usage_error("unknown flag --" + name);
    if (!value) {
      if (i + 1 >= argc)
        throw usage_error("--" + name + " needs a value");
      value = argv[++i];
    }
    if (name == "node") {
      o.node = *value;
    } else if (name == "cert") {
      o.cert = *value;
    } else if (name == "key") {
      o.key = *value;
    } else if (name == "ca") {
      o.ca = *value;
    } else {
      uint64_t v = 0;
      if (!parse_u64(*value, v) || v == 0)
        throw usage_error("--" + name + " needs a positive number, got \""
                          + *value + "\"");
      if (name == "timeout") {
        if (v > max_timeout_ms)
          throw usage_error("--timeout is in milliseconds, at most "
                            + std::to_string(max_timeout_ms));
        o.timeout_ms = v;
      } else {
        o.count = v;
      }
    }
  }
  if (o.help)
    return o;
  if (positional.empty())
    throw usage_error("no command");
  o.command = positional.front();
  o.args.assign(positional.begin() + 1, positional.end());
  return o;
}

/// What each command needs from the command line: its arguments, the flags
/// that only it takes, and a node to talk to.
void check(const options& o) {
  static const std::set<std::string> commands = {
    "status",   "watch",          "add-learner", "remove", "change-membership",
    "snapshot", "transfer-leader"};
  if (!commands.count(o.command))
    throw usage_error("unknown command \"" + o.command + "\"");
  auto want_args = [&](size_t n, const char* shape) {
    if (o.args.size() != n)
      throw usage_error(o.command + " takes " + shape
                        + (o.args.size() > n ? ", got more" : ", got fewer"));
  };
  if (o.command == "status" || o.command == "watch"
      || o.command == "snapshot") {
    want_args(0, "no arguments");
  } else if (o.command == "add-learner") {
    want_args(2, "ID HOST:PORT");
    parse_id(o.args[0]);
    check_address(o.args[1], "learner address");
  } else if (o.command == "change-membership") {
    want_args(1, "one list ID,ID,...");
    parse_id_list(o.args[0]);
  } else {
    want_args(1, "one node ID");
    parse_id(o.args[0]);
  }
  if (o.json && o.command != "status")
    throw usage_error("--json is for status only");
  if (o.wait && o.command != "add-learner")
    throw usage_error("--wait is for add-learner only");
  if (o.count && o.command != "watch")
    throw usage_error("--count is for watch only");
  if (o.node.empty())
    throw usage_error("--node HOST:PORT is required");
  check_address(o.node, "--node");
  bool any_tls_file = !o.cert.empty() || !o.key.empty() || !o.ca.empty();
  if (o.no_tls && any_tls_file)
    throw usage_error("--no-tls excludes --cert, --key and --ca");
  if (!o.no_tls && (o.cert.empty() || o.key.empty() || o.ca.empty()))
    throw usage_error("TLS needs --cert F --key F --ca F (or --no-tls)");
}

// -- rendering ----------------------------------------------------------------

/// `s` for a terminal: strings come from the node, and a hostile one must
/// not be able to send escape sequences to the operator's screen.
std::string printable(const std::string& s) {
  std::string out;
  for (unsigned char ch : s)
    out += ch >= 0x20 && ch < 0x7f ? static_cast<char>(ch) : '?';
  return out;
}

/// Length of the valid UTF-8 sequence at s[i], or 0 if there is none
/// (overlong forms, surrogates and code points beyond U+10FFFF included).
size_t utf8_sequence(const std::string& s, size_t i) {
  auto at = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  auto lead = at(i);
  size_t n = lead >= 0xC2 && lead <= 0xDF   ? 2
             : lead >= 0xE0 && lead <= 0xEF ? 3
             : lead >= 0xF0 && lead <= 0xF4 ? 4
                                            : 0;
  if (n == 0 || i + n > s.size())
    return 0;
  for (size_t k = 1; k < n; ++k)
    if ((at(i + k) & 0xC0) != 0x80)
      return 0;
  auto second = at(i + 1);
  if ((lead == 0xE0 && second < 0xA0) || (lead == 0xED && second >= 0xA0)
      || (lead == 0xF0 && second < 0x90) || (lead == 0xF4 && second >= 0x90))
    return 0;
  return n;
}

/// `s` as a JSON string literal. Bytes that are not valid UTF-8 become
/// U+FFFD: the output must stay valid JSON whatever the node sends.
std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size();) {
    auto ch = static_cast<unsigned char>(s[i]);
    if (ch >= 0x80) {
      if (auto n = utf8_sequence(s, i); n > 0) {
        out.append(s, i, n);
        i += n;
      } else {
        out += "\\ufffd";
        ++i;
      }
      continue;
    }
    switch (ch) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (ch < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", ch);
          out += buf;
        } else {
          out += static_cast<char>(ch);
        }
    }
    ++i;
  }
  return out + "\"";
}

/// A number in decimal.
std::string num(uint64_t v) {
  return std::to_string(v);
}

/// [{"id":1,"address":"h:p"},...]
std::string json_members(const member_map& members) {
  std::string out = "[";
  for (const auto& [id, address] : members) {
    if (out.size() > 1)
      out += ",";
    out += "{\"id\":" + num(id) + ",\"address\":" + json_string(address) + "}";
  }
  return out + "]";
}

/// {"2":15,...} (JSON object keys are strings).
std::string json_per_peer(const std::map<node_id, index_t>& values) {
  std::string out = "{";
  for (const auto& [id, v] : values) {
    if (out.size() > 1)
      out += ",";
    out += "\"" + num(id) + "\":" + num(v);
  }
  return out + "}";
}

/// status --json: one object on one line.
std::string json_status(const node_metrics& m) {
  return "{\"id\":" + num(m.id) + ",\"role\":" + json_string(to_string(m.role))
         + ",\"term\":" + num(m.term) + ",\"leader\":" + num(m.leader)
         + ",\"commit_index\":" + num(m.commit_index) + ",\"last_applied\":"
         + num(m.last_applied) + ",\"last_log_index\":" + num(m.last_log_index)
         + ",\"snapshot_index\":" + num(m.snapshot_index)
         + ",\"voters\":" + json_members(m.config.voters)
         + ",\"learners\":" + json_members(m.config.learners)
         + ",\"joint\":" + (m.config.joint ? "true" : "false")
         + ",\"old_voters\":" + json_members(m.config.old_voters)
         + ",\"match_index\":" + json_per_peer(m.match_index)
         + ",\"lag\":" + json_per_peer(m.lag) + "}\n";
}

/// The address of `id` in the configuration, if it is a member.
std::string address_of(const membership& c, node_id id) {
  for (const auto* members : {&c.voters, &c.old_voters, &c.learners})
    if (auto it = members->find(id); it != members->end())
      return it->second;
  return {};
}

/// Rows of two or more columns, padded so that every column lines up.
std::string table(const std::vector<std::vector<std::string>>& rows,
                  const std::string& indent) {
  std::vector<size_t> widths;
  for (const auto& row : rows)
    for (size_t i = 0; i < row.size(); ++i) {
      if (widths.size() <= i)
        widths.push_back(0);
      widths[i] = std::max(widths[i], row[i].size());
    }
  std::string out;
  for (const auto& row : rows) {
    std::string line = indent;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size())
        line += std::string(widths[i] - row[i].size() + 2, ' ');
    }
    out += line + "\n";
  }
  return out;
}

/// One labelled line of the status block.
std::string field(const std::string& label, const std::string& value) {
  constexpr size_t label_width = 16;
  return label + std::string(label_width - label.size(), ' ') + value + "\n";
}

/// Members as aligned "id  address" lines, the first after `label`.
std::string member_lines(const std::string& label, const member_map& m) {
  if (m.empty())
    return field(label, "none");
  std::vector<std::vector<std::string>> rows;
  for (const auto& [id, address] : m)
    rows.push_back({num(id), printable(address)});
  auto lines = table(rows, std::string(16, ' '));
  return label + lines.substr(label.size());
}

/// status (text): one node's view, aligned for reading.
std::string text_status(const node_metrics& m) {
  std::string out;
  out += field("id", num(m.id));
  out += field("role", to_string(m.role));
  out += field("term", num(m.term));
  out += field("leader", m.leader == no_node ? std::string("none (unknown)")
                         : m.leader == m.id  ? num(m.leader) + " (this node)"
                                             : num(m.leader));
  out += field("commit index", num(m.commit_index));
  out += field("last applied", num(m.last_applied));
  out += field("last log index", num(m.last_log_index));
  out += field("snapshot index", num(m.snapshot_index));
  out += member_lines("voters", m.config.voters);
  out += member_lines("learners", m.config.learners);
  if (m.config.joint) {
    // In C(old,new) the `voters` are the new half; decisions need a
    // majority of each half (thesis §4.3).
    out += field("joint", "yes: leaving the old voters for the voters above; "
                          "decisions need a majority of both");
    out += member_lines("old voters", m.config.old_voters);
  } else {
    out += field("joint", "no");
  }
  std::set<node_id> peers;
  for (const auto& kv : m.match_index)
    peers.insert(kv.first);
  for (const auto& kv : m.lag)
    peers.insert(kv.first);
  if (peers.empty()) {
    out += field("peers", m.role == node_role::leader
                            ? "none"
                            : "(only the leader tracks its peers)");
    return out;
  }
  std::vector<std::vector<std::string>> rows
    = {{"peer", "kind", "match index", "lag"}};
  for (auto id : peers) {
    auto match = m.match_index.find(id);
    auto lag = m.lag.find(id);
    rows.push_back({num(id),
                    m.config.is_voter(id)         ? "voter"
                    : m.config.learners.count(id) ? "learner"
                                                  : "leaving",
                    match == m.match_index.end() ? "-" : num(match->second),
                    lag == m.lag.end() ? "-" : num(lag->second)});
  }
  out += "peers\n" + table(rows, "  ");
  return out;
}

/// "1,2,3" or "-".
std::string id_list(const member_map& m) {
  std::string out;
  for (const auto& kv : m)
    out += (out.empty() ? "" : ",") + num(kv.first);
  return out.empty() ? "-" : out;
}

/// Local wall-clock time "HH:MM:SS.mmm", to tell updates apart.
std::string clock_now() {
  auto now = std::chrono::system_clock::now();
  auto t = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
              now.time_since_epoch())
              .count()
            % 1000;
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%02d:%02d:%02d.%03d", tm.tm_hour, tm.tm_min,
                tm.tm_sec, static_cast<int>(ms));
  return buf;
}

/// watch without a terminal: one line of key=value pairs per update.
std::string watch_line(const node_metrics& m) {
  std::string lag;
  for (const auto& [id, v] : m.lag)
    lag += (lag.empty() ? "" : ",") + num(id) + ":" + num(v);
  return clock_now() + " id=" + num(m.id) + " role=" + to_string(m.role)
         + " term=" + num(m.term) + " leader=" + num(m.leader)
         + " commit=" + num(m.commit_index) + " applied=" + num(m.last_applied)
         + " last_log=" + num(m.last_log_index) + " snapshot="
         + num(m.snapshot_index) + " voters=" + id_list(m.config.voters)
         + " learners=" + id_list(m.config.learners) + " joint="
         + (m.config.joint ? "old:" + id_list(m.config.old_voters)
                           : std::string("no"))
         + " lag=" + (lag.empty() ? "-" : lag) + "\n";
}

/// Writes `s` to stdout now; false if stdout is gone (a closed pipe).
bool emit(const std::string& s) {
  return std::fwrite(s.data(), 1, s.size(), stdout) == s.size()
         && std::fflush(stdout) == 0;
}

// -- talking to the node ------------------------------------------------------

/// One connection to the node and the requests made over it. Failures are
/// printed here, and `rc` says how the program should end.
class session {
public:
  session(caf::actor_system& sys, node_client_actor gw, std::string address)
      : sys_(sys), gw_(std::move(gw)), address_(std::move(address)),
        self_(sys) {
    // To tell "the node said no" (exit 1) from "the connection broke"
    // (exit 2): the proxy behind `gw_` stops when the connection is lost.
    self_->monitor(gw_);
  }

  /// Sends `req`, waits at most `timeout`; the answer, or nothing after
  /// printing why (and setting rc).
  template <class Result, class Request>
  std::optional<Result> ask(Request req, std::chrono::milliseconds timeout) {
    std::optional<Result> out;
    caf::error err;
    self_->request(gw_, timeout, std::move(req))
      .receive([&](Result& r) { out = std::move(r); },
               [&](caf::error& e) { err = std::move(e); });
    if (!out)
      fail(err, timeout);
    return out;
  }

  /// The node's handle.
  const node_client_actor& node() const { return gw_; }

  /// How the program ends.
  int rc = exit_ok;

private:
  /// Prints why a request failed and sets rc.
  void fail(const caf::error& e, std::chrono::milliseconds timeout) {
    if (e == caf::sec::request_timeout) {
      std::fprintf(stderr,
                   "raft-ctl: no answer from %s within %lld ms (a change may "
                   "still take effect; check with status)\n",
                   address_.c_str(), static_cast<long long>(timeout.count()));
      rc = exit_failed;
      return;
    }
    if (auto why = lost(e)) {
      std::fprintf(stderr, "raft-ctl: %s\n", sys_.render(e).c_str());
      std::fprintf(stderr, "raft-ctl: %s\n", why->c_str());
      rc = exit_unreachable;
      return;
    }
    std::fprintf(stderr, "raft-ctl: %s\n", sys_.render(e).c_str());
    rc = exit_failed;
    if (e.category() == raft_error_category
        && e.code() == static_cast<uint8_t>(raft_error::not_leader))
      hint_leader();
  }

  /// Why the connection is gone, if the error came from losing it. The
  /// proxy fails waiting requests (unknown_outcome) and then stops, and a
  /// request to a stopped proxy bounces; overloaded is what it answers
  /// while the connection is going down.
  std::optional<std::string> lost(const caf::error& e) {
    bool maybe
      = e == caf::sec::request_receiver_down
        || (e.category() == raft_error_category
            && (e.code() == static_cast<uint8_t>(raft_error::unknown_outcome)
                || e.code() == static_cast<uint8_t>(raft_error::overloaded)));
    if (!maybe)
      return std::nullopt;
    std::optional<std::string> why;
    self_->receive(
      [&](caf::down_msg& d) {
        why = d.reason ? sys_.render(d.reason)
                       : "lost the connection to " + address_;
      },
      caf::after(300ms) >> [] {});
    return why;
  }

  /// After not_leader: the node's metrics name the leader it knows, if
  /// any, so the operator knows where to go.
  void hint_leader() {
    std::optional<node_metrics> m;
    self_->request(gw_, 2s, admin_get_metrics{})
      .receive([&](node_metrics& x) { m = std::move(x); }, [](caf::error&) {});
    if (!m)
      return;
    if (m->leader == no_node) {
      std::fprintf(stderr,
                   "raft-ctl: not the leader; node %llu knows no leader right "
                   "now (an election may be under way)\n",
                   static_cast<unsigned long long>(m->id));
      return;
    }
    if (m->leader == m->id) {
      // It won an election between the refusal and our question.
      std::fprintf(stderr,
                   "raft-ctl: not the leader then, but node %llu leads now; "
                   "try again\n",
                   static_cast<unsigned long long>(m->id));
      return;
    }
    auto address = printable(address_of(m->config, m->leader));
    std::fprintf(stderr, "raft-ctl: not the leader; try node %llu%s%s\n",
                 static_cast<unsigned long long>(m->leader),
                 address.empty() ? "" : " at ", address.c_str());
  }

  caf::actor_system& sys_;
  node_client_actor gw_;
  std::string address_;
  caf::scoped_actor self_;
};

// -- watch --------------------------------------------------------------------

/// How a watch ended; set once (first writer wins), then SIGTERM wakes the
/// main thread's sigwait.
struct watch_outcome {
  /// Exit code, -1 while watching.
  std::atomic<int> code{-1};

  /// Ends the watch with `rc`; false if it had ended already.
  bool end(int rc) {
    int running = -1;
    if (!code.compare_exchange_strong(running, rc))
      return false;
    ::kill(::getpid(), SIGTERM);
    return true;
  }
};

/// The listener's state.
struct watcher_state {
  /// Updates printed so far.
  uint64_t seen = 0;
  /// Updates to print before ending (0: until a signal).
  uint64_t limit = 0;
  /// Redraw the screen (stdout is a terminal) or print a line per update.
  bool tty = false;
  /// The node's address, for the header and for messages.
  std::string address;
  /// Shared with main.
  std::shared_ptr<watch_outcome> outcome;
  static inline const char* name = "raft_ctl_watcher";
};

/// Prints every node_metrics it gets; ends the watch after `limit` updates
/// or when the connection to the node is lost.
metrics_listener_actor::behavior_type
watcher(metrics_listener_actor::stateful_pointer<watcher_state> self,
        node_client_actor node, watcher_state init) {
  self->state = std::move(init);
  // The proxy behind `node` stops when the connection is lost; nothing else
  // would tell us, and the updates would just stop coming.
  self->monitor(node);
  self->set_down_handler([self](caf::down_msg& d) {
    auto& st = self->state;
    auto why = d.reason ? self->system().render(d.reason)
                        : "lost the connection to " + st.address;
    if (st.outcome->end(exit_unreachable))
      std::fprintf(stderr, "raft-ctl: %s\n", why.c_str());
  });
  return {
    [self](node_metrics& m) {
      auto& st = self->state;
      if (st.outcome->code.load() >= 0)
        return; // ending: print nothing more than --count asked for
      ++st.seen;
      std::string out;
      if (st.tty) {
        // Home and clear, then the whole status block.
        out = "\x1b[H\x1b[2J" + std::string("raft-ctl watch ") + st.address
              + "  update " + num(st.seen) + "  " + clock_now()
              + "  (Ctrl-C ends)\n\n" + text_status(m);
      } else {
        out = watch_line(m);
      }
      if (!emit(out)) {
        // Reading end gone (`raft-ctl watch | head`): stop quietly.
        st.outcome->end(exit_failed);
        return;
      }
      if (st.limit != 0 && st.seen >= st.limit)
        st.outcome->end(exit_ok);
    },
  };
}

// -- commands -----------------------------------------------------------------

/// watch: subscribes a listener, then waits for a signal (from outside,
/// or from the listener when it is done or the connection is lost).
int run_watch(caf::actor_system& sys, session& s, const options& o,
              const sigset_t& signals, std::chrono::milliseconds timeout) {
  auto outcome = std::make_shared<watch_outcome>();
  watcher_state init;
  init.limit = o.count.value_or(0);
  init.tty = ::isatty(STDOUT_FILENO) == 1;
  init.address = o.node;
  init.outcome = outcome;
  auto listener = sys.spawn(watcher, s.node(), std::move(init));
  if (!s.ask<admin_done>(admin_subscribe_metrics{listener}, timeout)) {
    outcome->end(s.rc);
    caf::anon_send_exit(listener, caf::exit_reason::user_shutdown);
    return s.rc;
  }
  int sig = 0;
  sigwait(&signals, &sig);
  outcome->end(exit_ok); // a signal from outside: a normal end
  int rc = outcome->code.load();
  if (rc != exit_unreachable) {
    // Tell the node at once instead of leaving it to notice the listener
    // is gone; failing here changes nothing about how the watch went.
    caf::scoped_actor self{sys};
    self
      ->request(s.node(), std::min<std::chrono::milliseconds>(timeout, 2s),
                admin_unsubscribe_metrics{listener})
      .receive([](admin_done) {}, [](caf::error&) {});
  }
  caf::anon_send_exit(listener, caf::exit_reason::user_shutdown);
  return rc;
}

/// Runs the checked command over the connection `s`; the exit code.
int run_command(caf::actor_system& sys, session& s, const options& o,
                const sigset_t& signals) {
  auto timeout = std::chrono::milliseconds(o.timeout_ms.value_or(
    o.command == "status" || o.command == "watch" ? default_query_timeout_ms
                                                  : default_change_timeout_ms));
  auto done = [&](const std::string& text) {
    if (!emit(text + "\n"))
      return exit_failed;
    return exit_ok;
  };
  if (o.command == "status") {
    auto m = s.ask<node_metrics>(admin_get_metrics{}, timeout);
    if (!m)
      return s.rc;
    return emit(o.json ? json_status(*m) : text_status(*m)) ? exit_ok
                                                            : exit_failed;
  }
  if (o.command == "watch")
    return run_watch(sys, s, o, signals, timeout);
  if (o.command == "add-learner") {
    auto id = parse_id(o.args[0]);
    if (!s.ask<admin_done>(admin_add_learner{id, o.args[1], o.wait}, timeout))
      return s.rc;
    return done("node " + num(id) + " is a learner at " + o.args[1]
                + (o.wait ? " and has caught up" : ""));
  }
  if (o.command == "remove") {
    auto id = parse_id(o.args[0]);
    if (!s.ask<admin_done>(admin_remove_node{id}, timeout))
      return s.rc;
    return done("node " + num(id) + " removed");
  }
  if (o.command == "change-membership") {
    auto voters = parse_id_list(o.args[0]);
    if (!s.ask<admin_done>(admin_change_membership{voters}, timeout))
      return s.rc;
    std::string list;
    for (auto id : voters)
      list += (list.empty() ? "" : ",") + num(id);
    return done("voters are now " + list);
  }
  if (o.command == "transfer-leader") {
    auto id = parse_id(o.args[0]);
    if (!s.ask<admin_done>(admin_transfer_leadership{id}, timeout))
      return s.rc;
    return done("node " + num(id) + " leads now");
  }
  // snapshot
  if (!s.ask<admin_done>(admin_trigger_snapshot{}, timeout))
    return s.rc;
  // Say what it covers; the snapshot itself succeeded whatever this says.
  caf::scoped_actor self{sys};
  std::string covers;
  self->request(s.node(), timeout, admin_get_metrics{})
    .receive(
      [&](node_metrics& m) {
        covers = " (covers the log up to index " + num(m.snapshot_index) + ")";
      },
      [](caf::error&) {});
  return done("snapshot taken" + covers);
}

/// Connects to the node and runs the command; the exit code.
int run(const options& o) {
  network_config net;
  net.tls = !o.no_tls;
  net.certificate = o.cert;
  net.private_key = o.key;
  net.ca_file = o.ca;
  // watch ends on SIGINT/SIGTERM through sigwait: block them before the
  // actor system starts its threads, so that every thread inherits the mask
  // and the signal reaches no one else.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  if (o.command == "watch")
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  caf::actor_system_config cfg;
  try {
    configure_network(cfg, net);
  } catch (const std::exception& e) {
    // Unreadable or mismatched TLS files: the command line's fault.
    std::fprintf(stderr, "raft-ctl: %s\n", e.what());
    return exit_usage;
  }
  caf::actor_system sys{cfg};
  auto gw = connect_to_node(sys, o.node, net, connect_timeout);
  if (!gw) {
    std::fprintf(stderr, "raft-ctl: cannot reach %s: %s\n", o.node.c_str(),
                 sys.render(gw.error()).c_str());
    return exit_unreachable;
  }
  session s{sys, *gw, o.node};
  return run_command(sys, s, o, signals);
}

} // namespace

int main(int argc, char** argv) {
  // A closed pipe on stdout is an ordinary write error here, not a death.
  std::signal(SIGPIPE, SIG_IGN);
  try {
    // The library logs through spdlog (stdout by default): keep its
    // warnings off stdout, which belongs to the command's output.
    auto logger = spdlog::stderr_logger_mt("raft-ctl");
    logger->set_level(spdlog::level::warn);
    spdlog::set_default_logger(logger);
    options o;
    try {
      o = parse(argc, argv);
      if (o.help) {
        std::fputs(usage_text, stdout);
        return exit_ok;
      }
      check(o);
    } catch (const usage_error& e) {
      std::fprintf(stderr, "raft-ctl: %s\n%s", e.what(), usage_text);
      return exit_usage;
    }
    return run(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "raft-ctl: %s\n", e.what());
    return exit_failed;
  } catch (...) {
    std::fprintf(stderr, "raft-ctl: unexpected failure\n");
    return exit_failed;
  }
}
