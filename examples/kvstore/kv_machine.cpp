#include "examples/kvstore/kv_machine.hpp"

namespace raft_actor::kv {

kv_response kv_machine::apply_command(kv_state& s, const kv_command& c,
                                      const log_entry&) {
  kv_response r;
  switch (c.kind) {
    case op::put:
      r.existed = !s.data.insert_or_assign(c.key, c.value).second;
      break;
    case op::del:
      r.existed = s.data.erase(c.key) > 0;
      break;
    case op::cas: {
      auto it = s.data.find(c.key);
      bool matches = c.expect_present
                       ? it != s.data.end() && it->second == c.expected
                       : it == s.data.end();
      r.existed = it != s.data.end();
      if (matches) {
        s.data[c.key] = c.value;
      } else {
        r.ok = false;
        r.has_current = it != s.data.end();
        if (r.has_current)
          r.current = it->second;
      }
      break;
    }
    case op::set_http:
      s.http[c.node] = c.value;
      break;
  }
  return r;
}

kv_answer kv_machine::answer(const kv_state& s, const kv_query& q) const {
  kv_answer a;
  if (q.http) {
    a.http = s.http;
    return a;
  }
  auto it = s.data.find(q.key);
  if (it != s.data.end()) {
    a.found = true;
    a.value = it->second;
  }
  return a;
}

} // namespace raft_actor::kv
