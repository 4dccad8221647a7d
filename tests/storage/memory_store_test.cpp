// The in-memory stores follow the same contracts as the durable ones (and
// detect the same caller errors): one scripted sequence, written once and
// templated on the store implementation, runs against both and must produce
// the same transcript. The file stores are additionally reopened at a few
// points of the script (a no-op for the memory stores), so the transcript
// also shows that what they report survives reopening.
#include "storage/memory_store.hpp"
#include "tests/storage/storage_fixture.hpp"

#include <doctest/doctest.h>

#include <sstream>

using namespace raft_actor;
using namespace raft_actor::test;

namespace {

/// The in-memory stores.
struct memory_stores {
  static constexpr const char* name = "memory";
  memory_log_store log;
  memory_stable_store stable;
  memory_snapshot_store snapshots;
  void reopen() {}
};

/// The durable stores in a data directory, reopened on demand.
struct file_stores {
  static constexpr const char* name = "file";
  temp_dir root;
  std::string path = root / "node";
  std::optional<data_dir> d;
  file_stores() { reopen(); }
  void reopen() {
    d.reset();
    d.emplace(data_dir::open(posix_file_system(), path, 1, 1));
  }
};

log_store& log_of(memory_stores& s) {
  return s.log;
}
stable_store& stable_of(memory_stores& s) {
  return s.stable;
}
snapshot_store& snapshots_of(memory_stores& s) {
  return s.snapshots;
}
log_store& log_of(file_stores& s) {
  return *s.d->log;
}
stable_store& stable_of(file_stores& s) {
  return *s.d->stable;
}
snapshot_store& snapshots_of(file_stores& s) {
  return *s.d->snapshots;
}

/// Records what each call returned or threw.
struct transcript {
  std::vector<std::string> lines;

  template <class F>
  void call(const std::string& what, F&& f) {
    std::ostringstream out;
    out << what << " -> ";
    try {
      f(out);
    } catch (const std::invalid_argument&) {
      out << "invalid_argument";
    } catch (const storage_error&) {
      out << "storage_error";
    }
    lines.push_back(out.str());
  }
};

std::string show(log_id id) {
  return std::to_string(id.term) + "/" + std::to_string(id.index);
}

std::string show(const std::vector<log_entry>& es) {
  std::string out = "[";
  for (const auto& e : es)
    out += show(e.id) + ":" + std::to_string(e.payload.size()) + ":"
           + std::to_string(e.payload.empty() ? 0 : e.payload[0]) + " ";
  return out + "]";
}

std::string show(const std::vector<uint8_t>& b) {
  std::string out = "<";
  for (auto x : b)
    out += std::to_string(x) + " ";
  return out + ">";
}

std::string show(const std::optional<snapshot_meta>& m) {
  if (!m)
    return "none";
  return "{" + std::to_string(m->id) + " " + show(m->last_included) + " size "
         + std::to_string(m->size) + " crc " + std::to_string(m->data_crc)
         + " voters " + std::to_string(m->config.voters.size()) + " state "
         + show(m->framework_state) + "}";
}

snapshot_meta meta(log_id last) {
  snapshot_meta m;
  m.last_included = last;
  m.config.voters = {{1, "a"}, {2, "b"}};
  m.framework_state = {static_cast<uint8_t>(last.index)};
  return m;
}

/// The log part of the script.
template <class Stores>
void log_script(Stores& s, transcript& t) {
  auto state = [&](const char* what) {
    t.call(what, [&](std::ostream& o) {
      auto& log = log_of(s);
      o << "base " << show(log.base()) << " last " << show(log.last_id());
      if (log.last_id().index > log.base().index)
        o << " " << show(log.read(log.base().index + 1, log.last_id().index));
    });
  };
  auto do_ = [&](const std::string& what, auto f) {
    t.call(what, [&](std::ostream& o) {
      f(log_of(s));
      o << "ok";
    });
  };
  state("empty");
  t.call("read(1,0)",
         [&](std::ostream& o) { o << show(log_of(s).read(1, 0)); });
  do_("append 1..5", [](log_store& l) { l.append(make_entries(1, 1, 5)); });
  state("appended");
  do_("append 7 (gap)", [](log_store& l) { l.append(make_entries(1, 7, 7)); });
  do_("append 5 (again)",
      [](log_store& l) { l.append(make_entries(1, 5, 5)); });
  do_("sync", [](log_store& l) { l.sync(); });
  s.reopen();
  state("reopened");
  do_("truncate_from 4", [](log_store& l) { l.truncate_from(4); });
  state("truncated");
  do_("truncate_from 10 (beyond)", [](log_store& l) { l.truncate_from(10); });
  do_("append 4..8", [](log_store& l) { l.append(make_entries(2, 4, 8)); });
  do_("sync", [](log_store& l) { l.sync(); });
  t.call("read(2,6)",
         [&](std::ostream& o) { o << show(log_of(s).read(2, 6)); });
  t.call("read(0,2)",
         [&](std::ostream& o) { o << show(log_of(s).read(0, 2)); });
  t.call("read(7,9)",
         [&](std::ostream& o) { o << show(log_of(s).read(7, 9)); });
  do_("purge_to 2/5", [](log_store& l) { l.purge_to({2, 5}); });
  do_("sync", [](log_store& l) { l.sync(); });
  s.reopen();
  state("purged");
  t.call("read(5,5)",
         [&](std::ostream& o) { o << show(log_of(s).read(5, 5)); });
  do_("purge_to 9/7 (wrong term)", [](log_store& l) { l.purge_to({9, 7}); });
  do_("purge_to 2/9 (not held)", [](log_store& l) { l.purge_to({2, 9}); });
  do_("purge_to 1/3 (already)", [](log_store& l) { l.purge_to({1, 3}); });
  do_("truncate_from 5 (compacted)", [](log_store& l) { l.truncate_from(5); });
  do_("truncate_from 6 (all)", [](log_store& l) { l.truncate_from(6); });
  state("emptied");
  t.call("read(6,5)",
         [&](std::ostream& o) { o << show(log_of(s).read(6, 5)); });
  do_("append 6..7", [](log_store& l) { l.append(make_entries(3, 6, 7)); });
  do_("purge_to 3/7 (everything)", [](log_store& l) { l.purge_to({3, 7}); });
  state("purged all");
  do_("append 8", [](log_store& l) { l.append(make_entries(3, 8, 8)); });
  do_("sync", [](log_store& l) { l.sync(); });
  s.reopen();
  state("after purging all");
  do_("reset 4/20", [](log_store& l) { l.reset({4, 20}); });
  state("reset");
  do_("append 20 (before the base)",
      [](log_store& l) { l.append(make_entries(4, 20, 20)); });
  do_("append 21..23", [](log_store& l) { l.append(make_entries(4, 21, 23)); });
  do_("sync", [](log_store& l) { l.sync(); });
  s.reopen();
  state("final");
}

/// The stable store part of the script.
template <class Stores>
void stable_script(Stores& s, transcript& t) {
  auto load = [&](const char* what) {
    t.call(what, [&](std::ostream& o) {
      auto h = stable_of(s).load();
      o << h.current_term << "/" << h.voted_for;
    });
  };
  load("initial");
  t.call("save 3/2", [&](std::ostream& o) {
    stable_of(s).save({3, 2});
    o << "ok";
  });
  load("saved");
  s.reopen();
  load("reopened");
  t.call("save 4/0", [&](std::ostream& o) {
    stable_of(s).save({4, 0});
    o << "ok";
  });
  s.reopen();
  load("reopened again");
}

/// The snapshot store part of the script.
template <class Stores>
void snapshot_script(Stores& s, transcript& t) {
  auto latest = [&](const char* what) {
    t.call(what, [&](std::ostream& o) { o << show(snapshots_of(s).latest()); });
  };
  auto do_ = [&](const std::string& what, auto f) {
    t.call(what, [&](std::ostream& o) { f(snapshots_of(s), o); });
  };
  auto write = [&](uint64_t id, uint64_t off, std::vector<uint8_t> data) {
    do_("write " + std::to_string(id) + "@" + std::to_string(off),
        [=](snapshot_store& ss, std::ostream& o) {
          ss.write(id, off, data);
          o << "partial " << ss.partial_size(id);
        });
  };
  auto finish = [&](uint64_t id, log_id last) {
    do_("finish " + std::to_string(id),
        [=](snapshot_store& ss, std::ostream& o) {
          o << show(ss.finish(id, meta(last)));
        });
  };
  auto read = [&](uint64_t id, uint64_t off, size_t max) {
    do_("read " + std::to_string(id) + "@" + std::to_string(off) + "+"
          + std::to_string(max),
        [=](snapshot_store& ss, std::ostream& o) {
          o << show(ss.read(id, off, max));
        });
  };
  auto begin = [&](uint64_t id) {
    do_("begin " + std::to_string(id),
        [=](snapshot_store& ss, std::ostream& o) {
          ss.begin(id);
          o << "partial " << ss.partial_size(id);
        });
  };
  auto partial = [&](uint64_t id) {
    do_("partial_size " + std::to_string(id),
        [=](snapshot_store& ss, std::ostream& o) { o << ss.partial_size(id); });
  };

  latest("none yet");
  partial(1);
  write(1, 0, {1}); // not begun
  finish(1, {1, 1});
  read(1, 0, 1);
  begin(1);
  write(1, 0, {1, 2, 3});
  write(1, 5, {9}); // not at the end
  write(2, 3, {9}); // another id
  write(1, 3, {4});
  partial(1);
  partial(2);
  s.reopen();
  partial(1); // resumable
  write(1, 4, {5});
  finish(1, {2, 5});
  finish(1, {2, 5}); // no longer being written
  partial(1);
  latest("first");
  read(1, 0, 2);
  read(1, 2, 10);
  read(1, 5, 10);
  read(1, 6, 1);
  read(2, 0, 1);
  begin(2);
  write(2, 0, {7, 7});
  begin(3); // discards 2
  partial(2);
  write(2, 2, {7});
  write(3, 0, {8});
  finish(3, {1, 2}); // older than the latest: not kept
  latest("older not kept");
  read(3, 0, 1);
  read(1, 0, 10);
  begin(4);
  write(4, 0, {6, 6, 6});
  write(4, 3, {});
  finish(4, {4, 20});
  s.reopen();
  latest("newer");
  read(4, 0, 10);
  read(1, 0, 1);
  // Reusing the latest snapshot's id is refused by both stores, and the
  // latest snapshot stays intact (regression: the file store used to
  // delete its data).
  begin(4);
  write(4, 0, {5, 5});
  finish(4, {4, 25});
  s.reopen();
  latest("id reused");
  read(4, 0, 10);
}

/// Runs the whole script on one implementation.
template <class Stores>
std::vector<std::string> run_script() {
  Stores s;
  transcript t;
  log_script(s, t);
  stable_script(s, t);
  snapshot_script(s, t);
  return t.lines;
}

void compare(const std::vector<std::string>& mem,
             const std::vector<std::string>& file) {
  REQUIRE(mem.size() == file.size());
  for (size_t i = 0; i < mem.size(); ++i) {
    CAPTURE(i);
    CHECK(mem[i] == file[i]);
  }
}

} // namespace

TEST_CASE("memory and file stores produce the same transcript") {
  auto mem = run_script<memory_stores>();
  auto file = run_script<file_stores>();
  compare(mem, file);
  if (std::getenv("SHOW_TRANSCRIPT"))
    for (const auto& l : mem)
      MESSAGE(l);
  // The script is not vacuous: it exercises errors and real data.
  auto count = [&](const std::string& part) {
    return std::count_if(mem.begin(), mem.end(), [&](const std::string& l) {
      return contains(l, part);
    });
  };
  CHECK(count("invalid_argument") >= 15);
  CHECK(count("storage_error") == 0);
  CHECK(count("<6 6 6 >") == 2); // read again after the refused id reuse
  CHECK(mem.size() > 60);
}

TEST_CASE("memory stores: the transcript is what the contract says") {
  // Spot checks against the contract itself, so that both stores being
  // wrong in the same way is caught too.
  auto mem = run_script<memory_stores>();
  auto find = [&](const std::string& prefix) -> std::string {
    for (const auto& l : mem)
      if (l.rfind(prefix + " -> ", 0) == 0)
        return l.substr(prefix.size() + 4);
    return "<missing " + prefix + ">";
  };
  CHECK(find("empty") == "base 0/0 last 0/0");
  CHECK(find("append 7 (gap)") == "invalid_argument");
  CHECK(find("append 5 (again)") == "invalid_argument");
  CHECK(contains(find("truncated"), "last 1/3"));
  CHECK(find("truncate_from 5 (compacted)") == "invalid_argument");
  CHECK(find("purge_to 9/7 (wrong term)") == "invalid_argument");
  CHECK(find("purge_to 1/3 (already)") == "ok");
  CHECK(contains(find("purged"), "base 2/5 last 2/8"));
  CHECK(find("read(5,5)") == "invalid_argument");
  CHECK(find("read(6,5)") == "[]");
  CHECK(find("purged all") == "base 3/7 last 3/7");
  CHECK(contains(find("final"), "base 4/20 last 4/23"));
  CHECK(find("append 20 (before the base)") == "invalid_argument");
  CHECK(find("reopened again") == "4/0");
  CHECK(find("write 1@0") == "invalid_argument");
  CHECK(find("write 1@5") == "invalid_argument");
  CHECK(find("write 1@4") == "partial 5");
  CHECK(contains(find("first"), "{1 2/5 size 5"));
  CHECK(find("read 1@2+10") == "<3 4 5 >");
  CHECK(find("read 1@5+10") == "<>");
  CHECK(find("read 1@6+1") == "invalid_argument");
  CHECK(contains(find("older not kept"), "{1 2/5"));
  CHECK(find("read 3@0+1") == "invalid_argument");
  CHECK(contains(find("newer"), "{4 4/20 size 3"));
}

// A rejected append must leave the log as it was. Regression: both stores
// used to check entries while applying them, so a batch that went wrong
// half-way was half applied (and the memory store never rejected a term
// going backwards).
template <class Stores>
void rejected_append_changes_nothing() {
  {
    Stores s;
    auto& log = log_of(s);
    log.append(make_entries(2, 1, 3));
    auto gap = make_entries(2, 4, 4);
    gap.push_back(make_entry(2, 6, 1));
    CHECK_THROWS_AS(log.append(gap), std::invalid_argument);
    CHECK(log.last_id().index == 3);
  }
  {
    Stores s;
    auto& log = log_of(s);
    log.append(make_entries(2, 1, 3));
    auto backwards = make_entries(2, 4, 4);
    backwards.push_back(make_entry(1, 5, 1));
    CHECK_THROWS_AS(log.append(backwards), std::invalid_argument);
    CHECK(log.last_id().index == 3);
  }
}

TEST_CASE("regression: a rejected append changes nothing (memory)") {
  rejected_append_changes_nothing<memory_stores>();
}

TEST_CASE("regression: a rejected append changes nothing (file)") {
  rejected_append_changes_nothing<file_stores>();
}
