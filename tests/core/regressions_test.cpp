// Regressions of the pure core that belong to no single rule file.
#include "tests/core/core_fixture.hpp"

using namespace raft_actor;
using namespace raft_actor::test;

TEST_CASE("§5.3 every entry is eventually sent exactly once and in order "
          "when proposals outrun the pipeline window (regression \"entries "
          "dropped from a replication buffer never sent\")") {
  auto cfg = make_config(1);
  cfg.max_entries_per_append = 1;
  cfg.max_inflight_appends = 2;
  auto h = make_settled_leader(1, voters_of({1, 2, 3}), {1, no_node}, {}, cfg);
  std::vector<index_t> sent_indexes;
  index_t chain = 2; // prev_log of the next request must be the last sent
  auto collect = [&] {
    for (const auto& req : sent_to<append_entries_request>(h.last, 2)) {
      if (req.entries.empty())
        continue;
      CHECK(req.prev_log.index == chain);
      for (const auto& e : req.entries)
        sent_indexes.push_back(e.id.index);
      chain = req.entries.back().id.index;
    }
  };
  for (uint64_t i = 1; i <= 6; ++i) {
    h.propose(i);
    collect();
  }
  CHECK(sent_indexes == std::vector<index_t>{3, 4});
  SUBCASE("acks one by one") {
    for (size_t acked = 0; acked < 6; ++acked) {
      REQUIRE(acked < sent_indexes.size());
      h.deliver(append_ack(2, 1, 2, sent_indexes[acked]));
      collect();
    }
  }
  SUBCASE("cumulative acks") {
    while (h.core.peers().at(2).match_index < 8) {
      REQUIRE_FALSE(sent_indexes.empty());
      h.deliver(append_ack(2, 1, 2, sent_indexes.back()));
      collect();
    }
  }
  CHECK(sent_indexes == std::vector<index_t>{3, 4, 5, 6, 7, 8});
  CHECK(h.core.peers().at(2).match_index == 8);
  CHECK(h.core.peers().at(2).inflight.empty());
}
