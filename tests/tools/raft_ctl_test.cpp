// raft-ctl against real raft-node processes: status (text and JSON), a
// learner added, promoted and removed, a leadership transfer, a snapshot,
// watch (counted, interrupted, and losing its node), and the exit codes of
// its failures: 64 for the command line, 2 for an unreachable node, 1 for a
// node that says no.
//
// Every raft-ctl run is a child process bounded by a deadline and killed if
// it overruns; the cluster's processes go with the process_cluster object.
#include "tests/network/process_cluster.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <map>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

using namespace raft_actor;
using namespace raft_actor::test;
using namespace std::chrono_literals;

namespace {

// -- running raft-ctl ---------------------------------------------------------

/// How a raft-ctl run ended.
struct ctl_run {
  /// Exit status, or -1 if it died of a signal or was killed.
  int exit_code = -1;
  /// The signal that ended it, or 0.
  int signal = 0;
  /// True if it overran its deadline and was killed.
  bool timed_out = false;
  /// What it printed, separately: stdout is the command's output (JSON
  /// must parse on its own), stderr its complaints.
  std::string out;
  /// See out.
  std::string err;
};

/// One raft-ctl process with its stdout and stderr on pipes. Whatever
/// happens, the destructor kills and reaps it.
class ctl_child {
public:
  explicit ctl_child(const std::vector<std::string>& args) {
    int out[2];
    int err[2];
    // CLOEXEC: raft-node processes started meanwhile must not inherit the
    // write ends, or the pipes would never report end of file.
    if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0)
      throw std::runtime_error("pipe2 failed");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    std::vector<std::string> argv = {RAFT_CTL_BIN};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> raw;
    for (auto& a : argv)
      raw.push_back(a.data());
    raw.push_back(nullptr);
    auto rc = posix_spawn(&pid_, raw[0], &fa, nullptr, raw.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    ::close(out[1]);
    ::close(err[1]);
    out_fd_ = out[0];
    err_fd_ = err[0];
    if (rc != 0) {
      // The destructor does not run for a constructor that throws.
      ::close(out_fd_);
      ::close(err_fd_);
      pid_ = 0;
      throw std::runtime_error(std::string("posix_spawn: ")
                               + std::strerror(rc));
    }
  }

  ctl_child(const ctl_child&) = delete;
  ctl_child& operator=(const ctl_child&) = delete;

  ~ctl_child() {
    if (pid_ != 0) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
    for (int fd : {out_fd_, err_fd_})
      if (fd >= 0)
        ::close(fd);
  }

  /// Reads what has arrived, waiting at most `wait` for something.
  void pump(std::chrono::milliseconds wait) {
    pollfd fds[2];
    nfds_t n = 0;
    for (int fd : {out_fd_, err_fd_})
      if (fd >= 0)
        fds[n++] = pollfd{fd, POLLIN, 0};
    if (n == 0) {
      std::this_thread::sleep_for(wait);
      return;
    }
    if (::poll(fds, n, static_cast<int>(wait.count())) <= 0)
      return;
    for (nfds_t i = 0; i < n; ++i) {
      if (fds[i].revents == 0)
        continue;
      bool is_out = fds[i].fd == out_fd_;
      char buf[4096];
      auto got = ::read(fds[i].fd, buf, sizeof buf);
      if (got > 0) {
        (is_out ? run_.out : run_.err).append(buf, static_cast<size_t>(got));
      } else if (got == 0 || errno != EINTR) {
        ::close(fds[i].fd);
        (is_out ? out_fd_ : err_fd_) = -1;
      }
    }
  }

  /// Waits until stdout contains `text`; false after `timeout` or once the
  /// process has closed its output.
  bool wait_for_output(const std::string& text,
                       std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (run_.out.find(text) == std::string::npos) {
      if (std::chrono::steady_clock::now() >= deadline || out_fd_ < 0)
        return false;
      pump(20ms);
    }
    return true;
  }

  /// True once the process has exited (and been reaped).
  bool exited() {
    pump(0ms);
    return reap(false);
  }

  /// Sends `sig`.
  void signal(int sig) {
    if (pid_ != 0)
      ::kill(pid_, sig);
  }

  /// Collects everything it prints until it exits; kills it if it is still
  /// running after `timeout`.
  ctl_run finish(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!reap(false) || out_fd_ >= 0 || err_fd_ >= 0) {
      if (std::chrono::steady_clock::now() >= deadline) {
        if (pid_ != 0) {
          ::kill(pid_, SIGKILL);
          run_.timed_out = true;
          reap(true);
        }
        break;
      }
      pump(20ms);
    }
    return run_;
  }

private:
  /// Reaps the process if it has exited (or, `block`, once it does).
  bool reap(bool block) {
    if (pid_ == 0)
      return true;
    int status = 0;
    auto r = ::waitpid(pid_, &status, block ? 0 : WNOHANG);
    if (r != pid_)
      return false;
    pid_ = 0;
    if (WIFEXITED(status))
      run_.exit_code = WEXITSTATUS(status);
    else if (WIFSIGNALED(status))
      run_.signal = WTERMSIG(status);
    return true;
  }

  pid_t pid_ = 0;
  int out_fd_ = -1;
  int err_fd_ = -1;
  ctl_run run_;
};

/// A run as a failing check shows it.
std::ostream& operator<<(std::ostream& os, const ctl_run& r) {
  return os << "raft-ctl exit " << r.exit_code << " signal " << r.signal
            << (r.timed_out ? " (killed: timed out)" : "") << "\nstdout:\n"
            << r.out << "stderr:\n"
            << r.err;
}

/// Runs raft-ctl to the end (killed after `timeout`).
ctl_run ctl(const std::vector<std::string>& args,
            std::chrono::milliseconds timeout = 20s) {
  ctl_child child{args};
  auto r = child.finish(timeout);
  CHECK_MESSAGE(!r.timed_out, r);
  return r;
}

/// `args` addressed to node `id` of `c` with TLS off.
std::vector<std::string> at(process_cluster& c, node_id id,
                            std::vector<std::string> args) {
  args.insert(args.begin(), {"--node", c.address(id), "--no-tls"});
  return args;
}

/// True if `part` occurs in `text`.
bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

/// Polls `pred` until it holds or `timeout` passes.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (pred())
      return true;
    if (std::chrono::steady_clock::now() >= deadline)
      return false;
    std::this_thread::sleep_for(100ms);
  }
}

// -- a small JSON reader ------------------------------------------------------

/// A parsed JSON value (integers only: raft-ctl prints no other numbers).
struct json {
  enum class kind { null, boolean, number, string, array, object };
  kind type = kind::null;
  bool flag = false;
  int64_t number = 0;
  std::string text;
  std::vector<json> items;
  std::map<std::string, json> fields;

  /// The field `key` of an object; throws if there is none.
  const json& operator[](const std::string& key) const {
    auto it = fields.find(key);
    if (type != kind::object || it == fields.end())
      throw std::runtime_error("no field " + key);
    return it->second;
  }
};

/// A strict reader: anything that is not one JSON value (with whitespace
/// around it) throws.
class json_reader {
public:
  explicit json_reader(const std::string& s) : s_(s) {}

  /// The one value of the document.
  json document() {
    auto v = value();
    skip_space();
    if (i_ != s_.size())
      fail("trailing characters");
    return v;
  }

private:
  [[noreturn]] void fail(const std::string& why) {
    throw std::runtime_error("invalid JSON at offset " + std::to_string(i_)
                             + ": " + why);
  }
  void skip_space() {
    while (
      i_ < s_.size()
      && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\r' || s_[i_] == '\t'))
      ++i_;
  }
  bool take(char ch) {
    skip_space();
    if (i_ < s_.size() && s_[i_] == ch) {
      ++i_;
      return true;
    }
    return false;
  }
  void expect(char ch) {
    if (!take(ch))
      fail(std::string("expected '") + ch + "'");
  }
  bool word(const char* w) {
    auto n = std::strlen(w);
    if (s_.compare(i_, n, w) != 0)
      return false;
    i_ += n;
    return true;
  }
  json value() {
    skip_space();
    if (i_ >= s_.size())
      fail("unexpected end");
    json v;
    char ch = s_[i_];
    if (ch == '{') {
      ++i_;
      v.type = json::kind::object;
      if (take('}'))
        return v;
      do {
        skip_space();
        auto key = string();
        expect(':');
        if (!v.fields.emplace(key, value()).second)
          fail("duplicate key " + key);
      } while (take(','));
      expect('}');
    } else if (ch == '[') {
      ++i_;
      v.type = json::kind::array;
      if (take(']'))
        return v;
      do
        v.items.push_back(value());
      while (take(','));
      expect(']');
    } else if (ch == '"') {
      v.type = json::kind::string;
      v.text = string();
    } else if (word("true")) {
      v.type = json::kind::boolean;
      v.flag = true;
    } else if (word("false")) {
      v.type = json::kind::boolean;
    } else if (word("null")) {
      v.type = json::kind::null;
    } else if (ch == '-' || (ch >= '0' && ch <= '9')) {
      v.type = json::kind::number;
      bool negative = ch == '-';
      if (negative)
        ++i_;
      auto start = i_;
      while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9')
        v.number = v.number * 10 + (s_[i_++] - '0');
      if (i_ == start || (s_[start] == '0' && i_ - start > 1))
        fail("bad number");
      if (negative)
        v.number = -v.number;
    } else {
      fail("unexpected character");
    }
    return v;
  }
  std::string string() {
    if (i_ >= s_.size() || s_[i_] != '"')
      fail("expected a string");
    ++i_;
    std::string out;
    for (;;) {
      if (i_ >= s_.size())
        fail("unterminated string");
      auto ch = static_cast<unsigned char>(s_[i_++]);
      if (ch == '"')
        return out;
      if (ch < 0x20)
        fail("raw control character in a string");
      if (ch != '\\') {
        out += static_cast<char>(ch);
        continue;
      }
      if (i_ >= s_.size())
        fail("unterminated escape");
      char e = s_[i_++];
      switch (e) {
        case '"':
        case '\\':
        case '/':
          out += e;
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          if (i_ + 4 > s_.size())
            fail("short \\u escape");
          unsigned cp = 0;
          for (int k = 0; k < 4; ++k) {
            char h = s_[i_++];
            cp <<= 4;
            if (h >= '0' && h <= '9')
              cp |= static_cast<unsigned>(h - '0');
            else if (h >= 'a' && h <= 'f')
              cp |= static_cast<unsigned>(h - 'a' + 10);
            else if (h >= 'A' && h <= 'F')
              cp |= static_cast<unsigned>(h - 'A' + 10);
            else
              fail("bad \\u escape");
          }
          // UTF-8 (the BMP is enough for what raft-ctl escapes).
          if (cp < 0x80) {
            out += static_cast<char>(cp);
          } else if (cp < 0x800) {
            out += static_cast<char>(0xC0 | (cp >> 6));
            out += static_cast<char>(0x80 | (cp & 0x3F));
          } else {
            out += static_cast<char>(0xE0 | (cp >> 12));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
          }
          break;
        }
        default:
          fail("bad escape");
      }
    }
  }

  const std::string& s_;
  size_t i_ = 0;
};

/// Parses `text` as exactly one JSON value; throws if it is not.
json parse_json(const std::string& text) {
  return json_reader{text}.document();
}

/// Ids of a "voters"/"learners" array.
std::vector<int64_t> ids_of(const json& members) {
  std::vector<int64_t> out;
  for (const auto& m : members.items)
    out.push_back(m["id"].number);
  return out;
}

/// `status --json` of node `id`, parsed, if it answers.
std::optional<json> json_status(process_cluster& c, node_id id) {
  auto r = ctl(at(c, id, {"status", "--json"}));
  if (r.exit_code != 0)
    return std::nullopt;
  try {
    return parse_json(r.out);
  } catch (const std::runtime_error& e) {
    FAIL_CHECK("status --json printed no JSON: " << e.what() << "\n" << r.out);
    return std::nullopt;
  }
}

/// How a change went over its attempts.
struct change_run {
  /// The last attempt.
  ctl_run last;
  /// An earlier attempt ended in unknown_outcome (an election cut it
  /// short): it may have taken effect, and a retry may find it done.
  bool uncertain = false;
};

/// Runs a change at the leader of `among`, again while another change or
/// a transfer is still finishing, leadership is moving, or (on a loaded
/// machine) an election cut the change short or a round did not finish in
/// time.
change_run change_at_leader(process_cluster& c, const std::set<node_id>& among,
                            const std::vector<std::string>& args) {
  auto deadline = std::chrono::steady_clock::now() + 10s;
  change_run run;
  for (;;) {
    auto leader = c.find_leader(among, 3s);
    if (leader == no_node) {
      // Elections that keep failing on a loaded machine: wait them out.
      REQUIRE(std::chrono::steady_clock::now() < deadline);
      continue;
    }
    run.last = ctl(at(c, leader, args));
    const auto& r = run.last;
    bool transient = r.exit_code == 1
                     && (contains(r.err, "config_change_in_progress")
                         || contains(r.err, "leadership_transfer_in_progress")
                         || contains(r.err, "not_leader")
                         || contains(r.err, "raft_error::timeout")
                         || contains(r.err, "unknown_outcome"));
    if (!transient || std::chrono::steady_clock::now() >= deadline)
      return run;
    if (contains(r.err, "unknown_outcome"))
      run.uncertain = true;
    std::this_thread::sleep_for(100ms);
  }
}

/// A port on 127.0.0.1 where nothing listens.
std::string dead_address() {
  return "127.0.0.1:" + std::to_string(free_ports(1).front());
}

} // namespace

// -- the command line ---------------------------------------------------------

TEST_CASE("raft-ctl: command-line mistakes exit 64 with the usage text, "
          "before any connection") {
  // Nothing listens here: a run that got past its checks would exit 2.
  auto node = dead_address();
  struct bad_line {
    std::vector<std::string> args;
    std::string complaint;
  };
  std::vector<bad_line> lines = {
    {{"--node", node, "--no-tls", "frobnicate"}, "unknown command"},
    {{"--node", node, "--no-tls"}, "no command"},
    {{"--node", node, "--no-tls", "remove", "abc"}, "bad node id"},
    {{"remove", "0", "--node", node, "--no-tls"}, "bad node id"},
    {{"--node", node, "--no-tls", "transfer-leader", "-3"}, "bad node id"},
    {{"--node", node, "--no-tls", "transfer-leader", "99999999999999999999"},
     "bad node id"},
    {{"--node", node, "--no-tls", "add-learner", "x", "127.0.0.1:5"},
     "bad node id"},
    {{"--node", node, "--no-tls", "add-learner", "4", "nowhere"},
     "not HOST:PORT"},
    {{"--node", node, "--no-tls", "add-learner", "4"}, "takes ID HOST:PORT"},
    {{"--node", node, "--no-tls", "change-membership", "1,,2"},
     "without empty items"},
    {{"--node", node, "--no-tls", "change-membership", "1,two"}, "bad node id"},
    {{"--node", node, "--no-tls", "remove"}, "takes one node ID"},
    {{"--node", node, "--no-tls", "snapshot", "now"}, "takes no arguments"},
    {{"--node", node, "--no-tls", "--timeout", "soon", "status"},
     "--timeout needs a positive number"},
    {{"--node", node, "--no-tls", "watch", "--count", "0"},
     "--count needs a positive number"},
    {{"--node", node, "--no-tls", "snapshot", "--json"}, "status only"},
    {{"--node", node, "--no-tls", "status", "--bogus"}, "unknown flag"},
    {{"--no-tls", "status"}, "--node HOST:PORT is required"},
    {{"--node", node, "status"}, "TLS needs --cert F --key F --ca F"},
    {{"--node", node, "--no-tls", "--cert", "c.pem", "status"},
     "--no-tls excludes"},
  };
  for (const auto& line : lines) {
    std::string shown;
    for (const auto& a : line.args)
      shown += a + " ";
    CAPTURE(shown);
    auto r = ctl(line.args);
    CHECK_MESSAGE(r.exit_code == 64, r);
    CHECK(contains(r.err, line.complaint));
    CHECK(contains(r.err, "usage: raft-ctl --node HOST:PORT"));
    CHECK(r.out.empty());
  }
  auto help = ctl({"--help"});
  CHECK_MESSAGE(help.exit_code == 0, help);
  CHECK(contains(help.out, "change-membership ID,ID,..."));
}

TEST_CASE("raft-ctl: a node that cannot be reached exits 2") {
  auto r = ctl({"status", "--node", dead_address(), "--no-tls"});
  CHECK_MESSAGE(r.exit_code == 2, r);
  CHECK(contains(r.err, "cannot reach 127.0.0.1:"));
  CHECK(r.out.empty());
}

// -- a live cluster -----------------------------------------------------------

TEST_CASE("raft-ctl: administers a live cluster of raft-node processes") {
  // Election timeouts longer than the harness's 150-300 ms (raft-node takes
  // the last --election-timeout): fewer stray elections on a loaded machine.
  process_cluster c(3, {}, {"--election-timeout", "400-800"}, 1);
  const std::set<node_id> founders = {1, 2, 3};
  // One committed write: the leader has committed entries of its term, so
  // the indices below are past the bootstrap.
  REQUIRE_MESSAGE(c.write(1, founders, 10s), c.last_error);
  auto leader = c.find_leader(founders, 5s);
  REQUIRE(leader != no_node);
  node_id follower = leader % 3 + 1;

  // status, text: one node's view, aligned labels.
  auto text = ctl({"status", "--node", c.address(leader), "--no-tls"});
  CHECK_MESSAGE(text.exit_code == 0, text);
  CHECK(contains(text.out, "id              " + std::to_string(leader) + "\n"));
  CHECK(contains(text.out, "role            leader\n"));
  CHECK(contains(text.out, "voters          1  " + c.address(1) + "\n"));
  CHECK(contains(text.out, "joint           no\n"));
  CHECK(contains(text.out, "peer  kind   match index  lag"));

  // status --json: one object, with the fields a script needs.
  auto js = json_status(c, leader);
  REQUIRE(js);
  CHECK((*js)["id"].number == static_cast<int64_t>(leader));
  CHECK((*js)["role"].text == "leader");
  CHECK((*js)["leader"].number == static_cast<int64_t>(leader));
  CHECK(ids_of((*js)["voters"]) == std::vector<int64_t>{1, 2, 3});
  CHECK((*js)["voters"].items[1]["address"].text == c.address(2));
  CHECK((*js)["learners"].items.empty());
  CHECK((*js)["joint"].type == json::kind::boolean);
  CHECK_FALSE((*js)["joint"].flag);
  CHECK((*js)["commit_index"].number > 0);
  CHECK((*js)["match_index"].fields.size() == 2);
  CHECK((*js)["lag"].fields.count(std::to_string(follower)) == 1);
  auto fjs = json_status(c, follower);
  REQUIRE(fjs);
  CHECK((*fjs)["role"].text == "follower");
  CHECK((*fjs)["leader"].number == static_cast<int64_t>(leader));
  CHECK((*fjs)["match_index"].fields.empty());

  // Addresses come from the node: the JSON stays valid and says exactly
  // what was stored whatever the bytes, and text output keeps control
  // characters off the terminal.
  const std::string weird = "we\"ird\\h\tost\x01\xc3\xa9\xff:9";
  auto added = change_at_leader(c, founders, {"add-learner", "5", weird});
  CHECK_MESSAGE(added.last.exit_code == 0, added.last);
  auto wjs = json_status(c, c.find_leader(founders, 3s));
  REQUIRE(wjs);
  REQUIRE((*wjs)["learners"].items.size() == 1);
  CHECK((*wjs)["learners"].items[0]["address"].text
        == "we\"ird\\h\tost\x01\xc3\xa9\xef\xbf\xbd:9");
  auto wtext = ctl(at(c, c.find_leader(founders, 3s), {"status"}));
  CHECK(contains(wtext.out, "5  we\"ird\\h?ost????:9\n"));
  auto gone = change_at_leader(c, founders, {"remove", "5"});
  CHECK_MESSAGE(
    (gone.last.exit_code == 0
     || (gone.uncertain && contains(gone.last.err, "unknown_node"))),
    gone.last);

  // add-learner 4 --wait, then promote it.
  c.start(4);
  auto learner = change_at_leader(
    c, founders,
    {"add-learner", "4", c.address(4), "--wait", "--timeout", "15000"});
  CHECK_MESSAGE(learner.last.exit_code == 0, learner.last);
  CHECK(contains(learner.last.out, "node 4 is a learner at " + c.address(4)
                                     + " and has caught up"));
  auto promoted
    = change_at_leader(c, founders, {"change-membership", "1,2,3,4"});
  CHECK_MESSAGE(promoted.last.exit_code == 0, promoted.last);
  CHECK(contains(promoted.last.out, "voters are now 1,2,3,4"));
  const std::set<node_id> all = {1, 2, 3, 4};
  CHECK(eventually(
    [&] {
      auto s = json_status(c, c.find_leader(all, 3s));
      return s && ids_of((*s)["voters"]) == std::vector<int64_t>{1, 2, 3, 4}
             && (*s)["learners"].items.empty() && !(*s)["joint"].flag;
    },
    5s));

  // transfer-leader to a founder that follows.
  leader = c.find_leader(all, 3s);
  REQUIRE(leader != no_node);
  node_id target = leader == 1 ? 2 : 1;
  auto moved
    = change_at_leader(c, all, {"transfer-leader", std::to_string(target)});
  CHECK_MESSAGE(moved.last.exit_code == 0, moved.last);
  CHECK(
    contains(moved.last.out, "node " + std::to_string(target) + " leads now"));
  CHECK(eventually(
    [&] {
      auto s = json_status(c, target);
      return s && (*s)["role"].text == "leader";
    },
    5s));
  auto old_leader = leader;
  leader = target;

  // A change sent to a follower: exit 1, the error, and where to go.
  // (Again from a fresh follower if an election made it lead meanwhile or
  // left it without a leader.)
  ctl_run refused;
  auto refuse_until = std::chrono::steady_clock::now() + 10s;
  for (;;) {
    auto now_leading = c.find_leader(all, 3s);
    REQUIRE(now_leading != no_node);
    node_id follows = now_leading == 1 ? 2 : 1;
    refused = ctl(at(c, follows, {"change-membership", "1,2,3,4"}));
    if (contains(refused.err, "not the leader; try node ")
        || std::chrono::steady_clock::now() >= refuse_until)
      break;
    std::this_thread::sleep_for(100ms);
  }
  CHECK_MESSAGE(refused.exit_code == 1, refused);
  CHECK(contains(refused.err, "raft_error::not_leader"));
  auto hint = refused.err.find("not the leader; try node ");
  REQUIRE_MESSAGE(hint != std::string::npos, refused);
  auto hinted = std::strtoull(refused.err.c_str() + hint + 25, nullptr, 10);
  CHECK(all.count(hinted) == 1);
  CHECK_MESSAGE(contains(refused.err, "try node " + std::to_string(hinted)
                                        + " at " + c.address(hinted) + "\n"),
                refused);

  // snapshot: taken, and status shows it.
  for (uint64_t v = 2; v <= 4; ++v)
    REQUIRE(c.write(v, all, 5s));
  auto snap = ctl(at(c, leader, {"snapshot"}));
  CHECK_MESSAGE(snap.exit_code == 0, snap);
  CHECK(contains(snap.out, "snapshot taken"));
  auto sjs = json_status(c, leader);
  REQUIRE(sjs);
  CHECK((*sjs)["snapshot_index"].number > 0);

  // watch --count 3: three updates, then exit 0. Updates come while
  // indices move, so keep writing until it is done.
  {
    ctl_child w{at(c, old_leader, {"watch", "--count", "3"})};
    uint64_t v = 100;
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!w.exited() && std::chrono::steady_clock::now() < deadline)
      c.write(v++, all, 2s);
    auto r = w.finish(5s);
    INFO("watch stdout:\n" << r.out << "stderr:\n" << r.err);
    CHECK_FALSE(r.timed_out);
    CHECK(r.exit_code == 0);
    CHECK(std::count(r.out.begin(), r.out.end(), '\n') == 3);
    CHECK(contains(r.out, " role="));
    CHECK(contains(r.out, " voters=1,2,3,4 "));
  }

  // watch ends cleanly on SIGINT.
  {
    ctl_child w{at(c, leader, {"watch"})};
    REQUIRE(w.wait_for_output("\n", 10s));
    w.signal(SIGINT);
    auto r = w.finish(10s);
    INFO("watch stdout:\n" << r.out << "stderr:\n" << r.err);
    CHECK_FALSE(r.timed_out);
    CHECK(r.signal == 0);
    CHECK(r.exit_code == 0);
  }

  // remove 4: a voter leaves by joint consensus.
  auto removed = change_at_leader(c, all, {"remove", "4"});
  CHECK_MESSAGE(
    (removed.last.exit_code == 0
     || (removed.uncertain && contains(removed.last.err, "unknown_node"))),
    removed.last);
  if (!removed.uncertain)
    CHECK(contains(removed.last.out, "node 4 removed"));
  CHECK(eventually(
    [&] {
      auto s = json_status(c, c.find_leader(founders, 3s));
      return s && ids_of((*s)["voters"]) == std::vector<int64_t>{1, 2, 3}
             && (*s)["learners"].items.empty() && !(*s)["joint"].flag;
    },
    5s));

  // watch losing its node: it says why and exits 2. (Node 4 still runs,
  // outside the cluster now.)
  {
    ctl_child w{at(c, 4, {"watch"})};
    REQUIRE(w.wait_for_output("\n", 10s));
    c.signal(4, SIGKILL);
    auto r = w.finish(10s);
    INFO("watch stdout:\n" << r.out << "stderr:\n" << r.err);
    CHECK_FALSE(r.timed_out);
    CHECK(r.exit_code == 2);
    CHECK(contains(r.err, "lost the connection to " + c.address(4)));
  }
}
