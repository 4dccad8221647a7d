#include "examples/kvstore/kv_http.hpp"

#include <caf/all.hpp>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <spdlog/spdlog.h>

#include <cmath>
#include <optional>
#include <set>
#include <sstream>
#include <thread>
#include <variant>

namespace raft_actor::kv {

using json = nlohmann::json;

namespace {

/// Upper bounds of the latency histogram buckets, in seconds.
const std::vector<double> latency_bounds{0.0005, 0.001, 0.0025, 0.005, 0.01,
                                         0.025,  0.05,  0.1,    0.25,  0.5,
                                         1,      2.5,   5,      10};

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

void send_error(httplib::Response& res, int status, const std::string& code,
                const std::string& detail = {}) {
  json body{{"error", code}};
  if (!detail.empty())
    body["detail"] = detail;
  send_json(res, status, body);
}

/// What an HTTP client should hear for a framework error. `write`: the
/// request may change state, so an error that leaves the outcome open is a
/// 504 (a 503 promises it was certainly not applied).
void send_failure(httplib::Response& res, caf::actor_system& sys,
                  const caf::error& e, bool write) {
  auto detail = sys.render(e);
  if (e.category() == raft_error_category) {
    switch (static_cast<raft_error>(e.code())) {
      case raft_error::not_leader:
      case raft_error::not_initialized:
      case raft_error::unreachable:
        return send_error(res, 503, "no_leader", detail);
      case raft_error::overloaded:
        return send_error(res, 503, "overloaded", detail);
      case raft_error::leadership_transfer_in_progress:
        return send_error(res, 503, "leadership_transfer_in_progress", detail);
      case raft_error::unknown_outcome:
      case raft_error::timeout:
        return send_error(res, 504, "timeout", detail);
      case raft_error::payload_too_large:
        return send_error(res, 413, "payload_too_large", detail);
      case raft_error::invalid_argument:
      case raft_error::unknown_node:
      case raft_error::already_initialized:
        return send_error(res, 400,
                          to_string(static_cast<raft_error>(e.code())), detail);
      case raft_error::config_change_in_progress:
      case raft_error::learner_behind:
        return send_error(res, 409,
                          to_string(static_cast<raft_error>(e.code())), detail);
      case raft_error::storage_failed:
        return send_error(res, 500, "storage_failed", detail);
      case raft_error::shutting_down:
        // A write that was pending when the node stopped may have been
        // appended.
        return write ? send_error(res, 504, "timeout", detail)
                     : send_error(res, 503, "shutting_down", detail);
      default:
        break;
    }
  }
  if (e == caf::sec::request_timeout)
    return send_error(res, 504, "timeout", detail);
  if (e == caf::sec::request_receiver_down)
    return write ? send_error(res, 504, "timeout", detail)
                 : send_error(res, 503, "shutting_down", detail);
  send_error(res, 500, "internal", detail);
}

/// Parses a positive 64-bit number; nullopt if it is not one.
std::optional<uint64_t> parse_u64(const std::string& s) {
  if (s.empty() || s.size() > 20)
    return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9')
      return std::nullopt;
    auto d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10)
      return std::nullopt;
    v = v * 10 + d;
  }
  return v;
}

/// Parses a request body as JSON; discarded (as for a syntax error) when
/// it nests deeper than any request needs: a body of 16 MiB of "[" would
/// otherwise cost hundreds of megabytes as a tree.
json parse_body(const std::string& body) {
  constexpr int max_depth = 32;
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : body) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth)
        return json(json::value_t::discarded);
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return json::parse(body, nullptr, false);
}

const char* role_name(const node_metrics& m) {
  if (m.config.is_learner(m.id))
    return "learner";
  switch (m.role) {
    case node_role::leader:
      return "leader";
    case node_role::follower:
      return "follower";
    default:
      return "candidate";
  }
}

std::vector<node_id> ids_of(const member_map& m) {
  std::vector<node_id> out;
  for (const auto& kv : m)
    out.push_back(kv.first);
  return out;
}

} // namespace

// -- request_stats ------------------------------------------------------------

void request_stats::record(const std::string& op, int status, double seconds) {
  std::lock_guard<std::mutex> guard(mtx_);
  ++counts_[{op, status}];
  auto& h = latency_[op];
  if (h.buckets.empty())
    h.buckets.assign(latency_bounds.size(), 0);
  for (size_t i = 0; i < latency_bounds.size(); ++i)
    if (seconds <= latency_bounds[i])
      ++h.buckets[i];
  ++h.count;
  h.sum += seconds;
}

std::string request_stats::render() const {
  std::lock_guard<std::mutex> guard(mtx_);
  std::ostringstream os;
  os << "# HELP raft_kv_requests_total HTTP requests by operation and "
        "status.\n# TYPE raft_kv_requests_total counter\n";
  for (const auto& [key, n] : counts_)
    os << "raft_kv_requests_total{op=\"" << key.first << "\",code=\""
       << key.second << "\"} " << n << "\n";
  os << "# HELP raft_kv_request_seconds HTTP request latency by "
        "operation.\n# TYPE raft_kv_request_seconds histogram\n";
  for (const auto& [op, h] : latency_) {
    for (size_t i = 0; i < latency_bounds.size(); ++i)
      os << "raft_kv_request_seconds_bucket{op=\"" << op << "\",le=\""
         << latency_bounds[i] << "\"} " << h.buckets[i] << "\n";
    os << "raft_kv_request_seconds_bucket{op=\"" << op << "\",le=\"+Inf\"} "
       << h.count << "\n";
    os << "raft_kv_request_seconds_sum{op=\"" << op << "\"} " << h.sum << "\n";
    os << "raft_kv_request_seconds_count{op=\"" << op << "\"} " << h.count
       << "\n";
  }
  return os.str();
}

// -- kv_service ---------------------------------------------------------------

struct kv_service::impl {
  caf::actor_system& sys;
  node_actor node;
  service_config cfg;
  request_stats stats;
  /// Connections to other nodes (for admin changes asked at a follower).
  std::mutex peers_mtx;
  std::map<std::string, node_client_actor> peers;

  impl(caf::actor_system& s, node_actor n, service_config c)
      : sys(s), node(std::move(n)), cfg(std::move(c)) {}

  /// Asks `to` and waits: the answer or the error.
  template <class Result, class Request>
  std::variant<Result, caf::error> ask(const node_client_actor& to,
                                       Request req) {
    std::variant<Result, caf::error> out{caf::error{caf::sec::request_timeout}};
    caf::scoped_actor self{sys};
    self->request(to, cfg.timeout, std::move(req))
      .receive([&](Result& r) { out = std::move(r); },
               [&](caf::error& e) { out = std::move(e); });
    return out;
  }

  /// Asks this process's node. While no leader is known (an election is
  /// under way, or this node has not heard from the new leader yet) the
  /// node answers not_leader, which promises the request was not applied:
  /// then ask again, for a few seconds, so that every node accepts every
  /// request.
  template <class Result, class Request>
  std::variant<Result, caf::error> ask_local(Request req) {
    auto deadline = std::chrono::steady_clock::now()
                    + std::min<std::chrono::milliseconds>(
                      cfg.timeout, std::chrono::seconds(3));
    for (;;) {
      auto r = ask<Result>(caf::actor_cast<node_client_actor>(node), req);
      auto e = std::get_if<caf::error>(&r);
      if (!e || e->category() != raft_error_category
          || static_cast<raft_error>(e->code()) != raft_error::not_leader
          || std::chrono::steady_clock::now() >= deadline)
        return r;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  /// The leader's handle (this node's if it leads), or why there is none.
  std::variant<node_client_actor, caf::error> leader() {
    auto m = ask_local<node_metrics>(admin_get_metrics{});
    if (auto e = std::get_if<caf::error>(&m))
      return *e;
    auto& metrics = std::get<node_metrics>(m);
    if (metrics.role == node_role::leader)
      return caf::actor_cast<node_client_actor>(node);
    if (metrics.leader == no_node)
      return make_error(raft_error::not_leader, "no leader is known");
    std::string address;
    if (auto it = metrics.config.voters.find(metrics.leader);
        it != metrics.config.voters.end())
      address = it->second;
    else if (auto it2 = metrics.config.learners.find(metrics.leader);
             it2 != metrics.config.learners.end())
      address = it2->second;
    if (address.empty())
      return make_error(raft_error::not_leader,
                        "the leader's address is unknown");
    std::lock_guard<std::mutex> guard(peers_mtx);
    if (auto it = peers.find(address); it != peers.end())
      return it->second;
    auto h = connect_to_node(sys, address, cfg.net);
    if (!h)
      return make_error(raft_error::not_leader, "cannot reach the leader at "
                                                  + address + ": "
                                                  + sys.render(h.error()));
    peers[address] = *h;
    return *h;
  }

  /// Sends an admin change to the leader.
  template <class Request>
  std::variant<admin_done, caf::error> admin(Request req) {
    auto l = leader();
    if (auto e = std::get_if<caf::error>(&l))
      return *e;
    auto to = std::get<node_client_actor>(l);
    auto r = ask<admin_done>(to, std::move(req));
    if (auto e = std::get_if<caf::error>(&r);
        e && *e == caf::sec::request_receiver_down) {
      // The connection to that leader is gone: forget it.
      std::lock_guard<std::mutex> guard(peers_mtx);
      for (auto it = peers.begin(); it != peers.end(); ++it)
        if (it->second == to) {
          peers.erase(it);
          break;
        }
    }
    return r;
  }

  /// Writes a command; answers with the log index and the response, or
  /// the error (already sent to `res`).
  std::optional<std::pair<index_t, kv_response>>
  write(const httplib::Request& req, httplib::Response& res,
        const kv_command& c) {
    client_write w;
    w.payload = kv_machine::encode_command(c);
    auto cid = req.get_header_value("Raft-Client-Id");
    auto seq = req.get_header_value("Raft-Sequence");
    if (!cid.empty() || !seq.empty()) {
      auto a = parse_u64(cid);
      auto b = parse_u64(seq);
      if (!a || !b || *a == 0 || *b == 0) {
        send_error(res, 400, "bad_request",
                   "Raft-Client-Id and Raft-Sequence must both be given, as "
                   "positive integers");
        return std::nullopt;
      }
      w.client_id = *a;
      w.sequence = *b;
    }
    auto r = ask_local<write_result>(std::move(w));
    if (auto e = std::get_if<caf::error>(&r)) {
      send_failure(res, sys, *e, true);
      return std::nullopt;
    }
    auto& wr = std::get<write_result>(r);
    try {
      return std::pair{wr.index, kv_machine::decode_response(wr.response)};
    } catch (const std::exception& ex) {
      send_error(res, 500, "internal",
                 std::string("undecodable answer: ") + ex.what());
      return std::nullopt;
    }
  }

  /// Reads with the consistency the query string asks for.
  std::optional<kv_answer> read(const httplib::Request& req,
                                httplib::Response& res, kv_query q) {
    client_read r;
    auto mode = req.has_param("consistency")
                  ? req.get_param_value("consistency")
                  : std::string{"linearizable"};
    if (mode == "linearizable")
      r.mode = consistency::linearizable;
    else if (mode == "lease")
      r.mode = consistency::lease;
    else if (mode == "stale")
      r.mode = consistency::stale;
    else {
      send_error(res, 400, "bad_request",
                 "consistency must be linearizable, lease or stale");
      return std::nullopt;
    }
    r.query = kv_machine::encode_query(q);
    auto a = ask_local<read_result>(std::move(r));
    if (auto e = std::get_if<caf::error>(&a)) {
      send_failure(res, sys, *e, false);
      return std::nullopt;
    }
    try {
      return kv_machine::decode_answer(std::get<read_result>(a).answer);
    } catch (const std::exception& ex) {
      send_error(res, 500, "internal",
                 std::string("undecodable answer: ") + ex.what());
      return std::nullopt;
    }
  }

  /// The key in the path, checked.
  std::optional<std::string> key_of(const httplib::Request& req,
                                    httplib::Response& res) {
    auto key = req.matches.size() > 1 ? req.matches[1].str() : std::string{};
    if (key.empty() || key.size() > max_key_bytes) {
      send_error(res, 400, "bad_request",
                 "keys are 1 to " + std::to_string(max_key_bytes) + " bytes");
      return std::nullopt;
    }
    return key;
  }
};

kv_service::kv_service(caf::actor_system& sys, node_actor node,
                       service_config cfg)
    : impl_(std::make_unique<impl>(sys, std::move(node), std::move(cfg))) {}

kv_service::~kv_service() = default;

bool kv_service::register_http() {
  auto& d = *impl_;
  kv_query q;
  q.http = true;
  client_read r{kv_machine::encode_query(q), consistency::stale};
  auto a = d.ask_local<read_result>(std::move(r));
  if (auto ans = std::get_if<read_result>(&a)) {
    try {
      auto table = kv_machine::decode_answer(ans->answer).http;
      if (auto it = table.find(d.cfg.id);
          it != table.end() && it->second == d.cfg.http)
        return true;
    } catch (const std::exception&) {
      return false;
    }
  }
  kv_command c;
  c.kind = op::set_http;
  c.node = d.cfg.id;
  c.value = d.cfg.http;
  auto w = d.ask_local<write_result>(
    client_write{kv_machine::encode_command(c), 0, 0});
  return std::holds_alternative<write_result>(w);
}

void kv_service::attach(httplib::Server& server) {
  auto* d = impl_.get();
  auto* failed = &failed_;
  // Wraps a handler: answers 500 once the node failed, and records the
  // request's status and latency under `op`.
  auto wrap = [d, failed](std::string op, auto fn) {
    return [d, failed, op, fn](const httplib::Request& req,
                               httplib::Response& res) {
      auto start = std::chrono::steady_clock::now();
      if (*failed)
        send_error(res, 500, "storage_failed",
                   "the node stopped after a storage failure");
      else
        fn(req, res);
      d->stats.record(
        op, res.status,
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count());
    };
  };

  server.Put(R"(/kv/(.+))", wrap("put", [d](const httplib::Request& req,
                                            httplib::Response& res) {
               auto key = d->key_of(req, res);
               if (!key)
                 return;
               kv_command c;
               c.kind = op::put;
               c.key = *key;
               c.value = req.body;
               if (auto r = d->write(req, res, c))
                 send_json(res, 200, {{"index", r->first}});
             }));

  server.Get(R"(/kv/(.+))", wrap("get", [d](const httplib::Request& req,
                                            httplib::Response& res) {
               auto key = d->key_of(req, res);
               if (!key)
                 return;
               kv_query q;
               q.key = *key;
               auto a = d->read(req, res, q);
               if (!a)
                 return;
               if (!a->found)
                 return send_error(res, 404, "not_found");
               res.status = 200;
               res.set_content(a->value, "application/octet-stream");
             }));

  server.Delete(
    R"(/kv/(.+))",
    wrap("delete", [d](const httplib::Request& req, httplib::Response& res) {
      auto key = d->key_of(req, res);
      if (!key)
        return;
      kv_command c;
      c.kind = op::del;
      c.key = *key;
      if (auto r = d->write(req, res, c))
        send_json(res, 200,
                  {{"index", r->first}, {"existed", r->second.existed}});
    }));

  server.Post(
    R"(/cas/(.+))",
    wrap("cas", [d](const httplib::Request& req, httplib::Response& res) {
      auto key = d->key_of(req, res);
      if (!key)
        return;
      auto body = parse_body(req.body);
      if (body.is_discarded() || !body.is_object() || !body.contains("expected")
          || !body.contains("value") || !body["value"].is_string()
          || !(body["expected"].is_null() || body["expected"].is_string()))
        return send_error(res, 400, "bad_request",
                          "the body must be {\"expected\": string "
                          "or null, \"value\": string}");
      kv_command c;
      c.kind = op::cas;
      c.key = *key;
      c.value = body["value"].get<std::string>();
      c.expect_present = body["expected"].is_string();
      if (c.expect_present)
        c.expected = body["expected"].get<std::string>();
      auto r = d->write(req, res, c);
      if (!r)
        return;
      if (r->second.ok)
        return send_json(res, 200, {{"ok", true}, {"index", r->first}});
      send_json(res, 409,
                {{"ok", false},
                 {"current", r->second.has_current ? json(r->second.current)
                                                   : json(nullptr)}});
    }));

  server.Get(
    "/status",
    wrap("status", [d](const httplib::Request&, httplib::Response& res) {
      auto m = d->ask_local<node_metrics>(admin_get_metrics{});
      if (auto e = std::get_if<caf::error>(&m))
        return send_failure(res, d->sys, *e, false);
      auto& x = std::get<node_metrics>(m);
      json body{{"id", x.id},
                {"role", role_name(x)},
                {"term", x.term},
                {"leader_id", x.leader},
                {"commit_index", x.commit_index},
                {"last_applied", x.last_applied},
                {"last_log_index", x.last_log_index},
                {"snapshot_index", x.snapshot_index},
                {"voters", ids_of(x.config.voters)},
                {"learners", ids_of(x.config.learners)},
                {"joint", x.config.joint}};
      // Where each node's HTTP API is, as far as this node has
      // applied (convenient for finding the leader's).
      kv_query q;
      q.http = true;
      client_read r{kv_machine::encode_query(q), consistency::stale};
      auto a = d->ask_local<read_result>(std::move(r));
      json http = json::object();
      if (auto ans = std::get_if<read_result>(&a)) {
        try {
          for (auto& [id, addr] : kv_machine::decode_answer(ans->answer).http)
            http[std::to_string(id)] = addr;
        } catch (const std::exception&) {
        }
      }
      body["http"] = http;
      send_json(res, 200, body);
    }));

  server.Get(
    "/metrics",
    wrap("metrics", [d](const httplib::Request&, httplib::Response& res) {
      auto m = d->ask_local<node_metrics>(admin_get_metrics{});
      if (auto e = std::get_if<caf::error>(&m))
        return send_failure(res, d->sys, *e, false);
      auto& x = std::get<node_metrics>(m);
      std::ostringstream os;
      auto gauge = [&](const char* name, const char* help, uint64_t v) {
        os << "# HELP " << name << " " << help << "\n# TYPE " << name
           << " gauge\n"
           << name << " " << v << "\n";
      };
      auto counter = [&](const char* name, const char* help, uint64_t v) {
        os << "# HELP " << name << " " << help << "\n# TYPE " << name
           << " counter\n"
           << name << " " << v << "\n";
      };
      gauge("raft_term", "Current term.", x.term);
      gauge("raft_leader_id", "Known leader (0: none).", x.leader);
      gauge("raft_commit_index", "Commit index.", x.commit_index);
      gauge("raft_last_applied", "Last applied index.", x.last_applied);
      gauge("raft_last_log_index", "Last log index.", x.last_log_index);
      gauge("raft_snapshot_index", "Last index in a snapshot.",
            x.snapshot_index);
      os << "# HELP raft_role 1 for this node's role.\n"
            "# TYPE raft_role gauge\n";
      for (const char* r : {"leader", "follower", "candidate", "learner"})
        os << "raft_role{role=\"" << r << "\"} "
           << (std::string(r) == role_name(x) ? 1 : 0) << "\n";
      os << "# HELP raft_peer_lag Entries a peer lacks (leader "
            "only).\n# TYPE raft_peer_lag gauge\n";
      for (auto& [peer, lag] : x.lag)
        os << "raft_peer_lag{peer=\"" << peer << "\"} " << lag << "\n";
      counter("raft_proposals_total", "Client writes proposed as leader.",
              x.counters.proposals);
      counter("raft_commits_total", "Entries committed (the commit index).",
              x.commit_index);
      counter("raft_elections_total", "Elections started.",
              x.counters.elections);
      counter("raft_leaderships_total", "Times this node led.",
              x.counters.leaderships);
      counter("raft_snapshots_built_total", "Snapshots built.",
              x.counters.snapshots_built);
      counter("raft_snapshots_installed_total",
              "Snapshots installed from a leader.",
              x.counters.snapshots_installed);
      os << d->stats.render();
      res.status = 200;
      res.set_content(os.str(), "text/plain; version=0.0.4");
    }));

  // -- cluster administration -------------------------------------------------

  auto parse_object = [](const httplib::Request& req,
                         httplib::Response& res) -> std::optional<json> {
    auto body = parse_body(req.body);
    if (body.is_discarded() || !body.is_object()) {
      send_error(res, 400, "bad_request", "the body must be a JSON object");
      return std::nullopt;
    }
    return body;
  };
  auto positive_id = [](const json& v) -> std::optional<node_id> {
    if (!v.is_number_unsigned() || v.get<uint64_t>() == 0)
      return std::nullopt;
    return v.get<uint64_t>();
  };

  server.Post(
    "/cluster/learners",
    wrap("add_learner", [d, parse_object, positive_id](
                          const httplib::Request& req, httplib::Response& res) {
      auto body = parse_object(req, res);
      if (!body)
        return;
      auto id
        = body->contains("id") ? positive_id((*body)["id"]) : std::nullopt;
      std::string host;
      uint16_t port = 0;
      if (!id || !body->contains("raft") || !(*body)["raft"].is_string()
          || !split_address((*body)["raft"].get<std::string>(), host, port)
          || (body->contains("http")
              && (!(*body)["http"].is_string()
                  || !split_address((*body)["http"].get<std::string>(), host,
                                    port))))
        return send_error(res, 400, "bad_request",
                          "the body must be {\"id\": N, \"raft\": "
                          "\"host:port\", \"http\": \"host:port\"}");
      auto r = d->admin(
        admin_add_learner{*id, (*body)["raft"].get<std::string>(), true});
      if (auto e = std::get_if<caf::error>(&r))
        return send_failure(res, d->sys, *e, true);
      if (body->contains("http")) {
        kv_command c;
        c.kind = op::set_http;
        c.node = *id;
        c.value = (*body)["http"].get<std::string>();
        d->ask_local<write_result>(
          client_write{kv_machine::encode_command(c), 0, 0});
      }
      send_json(res, 200, {{"ok", true}});
    }));

  server.Post(
    "/cluster/membership",
    wrap("membership", [d, parse_object, positive_id](
                         const httplib::Request& req, httplib::Response& res) {
      auto body = parse_object(req, res);
      if (!body)
        return;
      std::set<node_id> voters;
      bool ok = body->contains("voters") && (*body)["voters"].is_array()
                && !(*body)["voters"].empty();
      if (ok)
        for (auto& v : (*body)["voters"]) {
          auto id = positive_id(v);
          ok = ok && id && voters.insert(*id).second;
        }
      if (!ok)
        return send_error(res, 400, "bad_request",
                          "the body must be {\"voters\": [N, ...]} "
                          "with distinct positive ids");
      auto r = d->admin(admin_change_membership{voters});
      if (auto e = std::get_if<caf::error>(&r))
        return send_failure(res, d->sys, *e, true);
      send_json(res, 200, {{"ok", true}});
    }));

  server.Post(
    "/cluster/transfer-leader",
    wrap("transfer_leader",
         [d, parse_object, positive_id](const httplib::Request& req,
                                        httplib::Response& res) {
           auto body = parse_object(req, res);
           if (!body)
             return;
           auto to
             = body->contains("to") ? positive_id((*body)["to"]) : std::nullopt;
           if (!to)
             return send_error(res, 400, "bad_request",
                               "the body must be {\"to\": N}");
           auto r = d->admin(admin_transfer_leadership{*to});
           if (auto e = std::get_if<caf::error>(&r))
             return send_failure(res, d->sys, *e, true);
           // Done once the target leads: this node hears of it with the
           // new leader's first heartbeat.
           auto deadline = std::chrono::steady_clock::now() + d->cfg.timeout;
           while (std::chrono::steady_clock::now() < deadline) {
             auto m = d->ask_local<node_metrics>(admin_get_metrics{});
             if (auto x = std::get_if<node_metrics>(&m); x && x->leader == *to)
               return send_json(res, 200, {{"ok", true}, {"leader", *to}});
             std::this_thread::sleep_for(std::chrono::milliseconds(20));
           }
           send_error(res, 504, "timeout",
                      "node " + std::to_string(*to)
                        + " did not report itself leader in time");
         }));

  server.Post(
    "/cluster/snapshot",
    wrap("snapshot", [d](const httplib::Request&, httplib::Response& res) {
      auto r = d->ask_local<admin_done>(admin_trigger_snapshot{});
      if (auto e = std::get_if<caf::error>(&r))
        return send_failure(res, d->sys, *e, false);
      auto m = d->ask_local<node_metrics>(admin_get_metrics{});
      json body{{"ok", true}};
      if (auto x = std::get_if<node_metrics>(&m))
        body["snapshot_index"] = x->snapshot_index;
      send_json(res, 200, body);
    }));

  // Everything else, and httplib's own refusals (e.g. 413), answer JSON.
  server.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty())
      return;
    switch (res.status) {
      case 404:
        return send_error(res, 404, "not_found");
      case 413:
        return send_error(res, 413, "payload_too_large",
                          "values are at most "
                            + std::to_string(max_value_bytes) + " bytes");
      case 400:
        return send_error(res, 400, "bad_request");
      default:
        return send_error(res, res.status,
                          "http_" + std::to_string(res.status));
    }
  });
  server.set_exception_handler(
    [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
      std::string what = "unknown exception";
      try {
        std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        what = e.what();
      } catch (...) {
      }
      send_error(res, 500, "internal", what);
    });
}

} // namespace raft_actor::kv
