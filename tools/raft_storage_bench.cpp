// raft-storage-bench: measures the durable log's append throughput with
// fsync on, the way the storage worker uses it: append a batch of entries,
// then one sync() (group commit, one fdatasync per touched segment) per
// batch. For each batch size it reports entries/s, MB/s and the sync
// latency distribution; --json writes the same numbers for scripts.
//
// Each batch size gets a fresh log in a fresh directory (so every run starts
// at an empty first segment), and the directory is removed afterwards. Runs
// are bounded in time (--seconds) or count (--entries), and always in disk
// use (--max-mb).
#include "storage/file_store.hpp"
#include "storage/record_format.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <sys/vfs.h>

using namespace raft_actor;

namespace {

using clock_type = std::chrono::steady_clock;

constexpr int exit_usage = 64;

std::atomic<bool> interrupted{false};

extern "C" void on_signal(int) {
  interrupted = true;
}

void usage(FILE* to) {
  std::fputs(
    "usage: raft-storage-bench [--batches 1,16,256] [--payload BYTES]\n"
    "                          [--seconds S | --entries N] [--dir PARENT]\n"
    "                          [--max-mb MB] [--segment-mb MB] [--json FILE]\n"
    "Appends entries to the durable log (file_log_store) in batches, with\n"
    "one sync() (fdatasync) per batch, and reports throughput and sync\n"
    "latency per batch size.\n"
    "  --batches L     comma-separated batch sizes (default 1,16,256)\n"
    "  --payload B     payload bytes per entry (default 256)\n"
    "  --seconds S     run time per batch size (default 3)\n"
    "  --entries N     entries per batch size instead of a run time\n"
    "  --dir PARENT    where to create the temporary log directory\n"
    "                  (default /tmp); it is removed at the end\n"
    "  --max-mb MB     stop a run once the log holds this much (default 1024)\n"
    "  --segment-mb MB segment size of the log (default 64, the store's)\n"
    "  --json FILE     also write the results as JSON\n",
    to);
}

bool parse_u64(const char* s, uint64_t& out) {
  if (!s || *s < '0' || *s > '9')
    return false;
  char* end = nullptr;
  errno = 0;
  out = std::strtoull(s, &end, 10);
  return errno == 0 && end && *end == '\0';
}

bool parse_seconds(const char* s, double& out) {
  if (!s || !*s)
    return false;
  char* end = nullptr;
  errno = 0;
  out = std::strtod(s, &end);
  return errno == 0 && end && *end == '\0' && std::isfinite(out) && out > 0
         && out <= 3600;
}

bool parse_list(const std::string& s, std::vector<uint64_t>& out) {
  out.clear();
  size_t pos = 0;
  while (pos <= s.size()) {
    auto comma = s.find(',', pos);
    auto item = s.substr(pos, comma == std::string::npos ? std::string::npos
                                                         : comma - pos);
    uint64_t v = 0;
    if (!parse_u64(item.c_str(), v) || v == 0 || v > 65536)
      return false;
    out.push_back(v);
    if (comma == std::string::npos)
      break;
    pos = comma + 1;
  }
  return !out.empty();
}

/// Name of the file system holding `path` (statfs f_type), for the note of
/// what was measured: fsync on tmpfs costs nothing and means nothing.
std::string fs_type(const std::string& path) {
  struct statfs st;
  if (::statfs(path.c_str(), &st) != 0)
    return "unknown";
  switch (static_cast<unsigned long>(st.f_type)) {
    case 0xEF53:
      return "ext2/3/4";
    case 0x58465342:
      return "xfs";
    case 0x9123683E:
      return "btrfs";
    case 0x01021994:
      return "tmpfs (fsync is a no-op: numbers mean nothing for durability)";
    case 0x794C7630:
      return "overlayfs";
    case 0x2FC12FC1:
      return "zfs";
    case 0xF2F52010:
      return "f2fs";
    case 0x6969:
      return "nfs";
    case 0x65735546:
      return "fuse";
    case 0x858458F6:
      return "ramfs (fsync is a no-op)";
    default: {
      char buf[32];
      std::snprintf(buf, sizeof(buf), "f_type 0x%lx",
                    static_cast<unsigned long>(st.f_type));
      return buf;
    }
  }
}

struct result {
  uint64_t batch = 0;
  uint64_t entries = 0;
  uint64_t syncs = 0;
  double seconds = 0;
  double entries_per_sec = 0;
  double mb_per_sec = 0;
  double append_mean_us = 0;
  double sync_mean_us = 0;
  double sync_p50_us = 0;
  double sync_p99_us = 0;
  bool hit_disk_limit = false;
};

/// Nearest-rank percentile of sorted samples.
double percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty())
    return 0;
  auto rank
    = static_cast<size_t>(std::ceil(p * static_cast<double>(sorted.size())));
  return sorted[std::min(sorted.size() - 1, rank == 0 ? 0 : rank - 1)];
}

struct run_options {
  uint64_t payload = 256;
  double seconds = 3;
  uint64_t entries = 0; // 0: run for `seconds`
  uint64_t max_bytes = 1024ull << 20;
  file_log_options log;
};

result run_one(const std::string& dir, uint64_t batch_size,
               const run_options& o) {
  result r;
  r.batch = batch_size;
  auto record_bytes
    = disk::record_header_size + disk::record_body_fixed + o.payload;
  std::vector<log_entry> batch(batch_size);
  std::mt19937_64 rng(batch_size);
  for (auto& e : batch) {
    e.kind = entry_kind::normal;
    e.payload.resize(o.payload);
    for (auto& b : e.payload)
      b = static_cast<uint8_t>(rng());
  }
  std::vector<double> sync_us;
  double append_us = 0;
  uint64_t bytes = 0;
  {
    file_log_store log(posix_file_system(), dir, o.log);
    index_t next = 1;
    auto start = clock_type::now();
    auto deadline = start
                    + std::chrono::duration_cast<clock_type::duration>(
                      std::chrono::duration<double>(o.seconds));
    for (;;) {
      if (bytes + batch_size * record_bytes > o.max_bytes) {
        r.hit_disk_limit = true;
        break;
      }
      auto now = clock_type::now();
      for (auto& e : batch) {
        e.id = {1, next++};
        e.leader_time_ms = static_cast<int64_t>(next);
      }
      log.append(batch);
      auto t0 = clock_type::now();
      log.sync();
      auto t1 = clock_type::now();
      append_us += std::chrono::duration<double, std::micro>(t0 - now).count();
      sync_us.push_back(
        std::chrono::duration<double, std::micro>(t1 - t0).count());
      r.entries += batch_size;
      bytes += batch_size * record_bytes;
      if (interrupted)
        break;
      if (o.entries > 0 ? r.entries >= o.entries : t1 >= deadline)
        break;
    }
    r.seconds
      = std::chrono::duration<double>(clock_type::now() - start).count();
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  r.syncs = sync_us.size();
  r.entries_per_sec = static_cast<double>(r.entries) / r.seconds;
  r.mb_per_sec = static_cast<double>(bytes) / r.seconds / 1e6;
  double total = 0;
  for (auto x : sync_us)
    total += x;
  r.sync_mean_us = sync_us.empty() ? 0 : total / sync_us.size();
  r.append_mean_us = sync_us.empty() ? 0 : append_us / sync_us.size();
  std::sort(sync_us.begin(), sync_us.end());
  r.sync_p50_us = percentile(sync_us, 0.50);
  r.sync_p99_us = percentile(sync_us, 0.99);
  return r;
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\')
      out += '\\';
    if (static_cast<unsigned char>(c) < 0x20)
      continue;
    out += c;
  }
  return out;
}

bool write_json(const std::string& path, const run_options& o,
                const std::string& fs, const std::vector<result>& results) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (!f)
    return false;
  std::fprintf(f, "{\"payload\":%llu,\"filesystem\":\"%s\",\"results\":[",
               static_cast<unsigned long long>(o.payload),
               json_escape(fs).c_str());
  for (size_t i = 0; i < results.size(); ++i) {
    const auto& r = results[i];
    std::fprintf(f,
                 "%s{\"batch\":%llu,\"entries_per_sec\":%.1f,"
                 "\"mb_per_sec\":%.3f,\"sync_p50_us\":%.1f,"
                 "\"sync_p99_us\":%.1f,\"sync_mean_us\":%.1f,"
                 "\"append_mean_us\":%.1f,\"entries\":%llu,\"seconds\":%.3f}",
                 i == 0 ? "" : ",", static_cast<unsigned long long>(r.batch),
                 r.entries_per_sec, r.mb_per_sec, r.sync_p50_us, r.sync_p99_us,
                 r.sync_mean_us, r.append_mean_us,
                 static_cast<unsigned long long>(r.entries), r.seconds);
  }
  std::fprintf(f, "]}\n");
  return std::fclose(f) == 0;
}

} // namespace

int main(int argc, char** argv) {
  run_options o;
  std::vector<uint64_t> batches{1, 16, 256};
  std::string parent = "/tmp";
  std::string json;
  bool seconds_given = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
    auto bad = [&](const char* what) {
      std::fprintf(stderr, "raft-storage-bench: %s needs %s\n", a.c_str(),
                   what);
      usage(stderr);
      std::exit(exit_usage);
    };
    uint64_t n = 0;
    if (a == "--help" || a == "-h") {
      usage(stdout);
      return 0;
    } else if (a == "--batches") {
      if (!v || !parse_list(v, batches))
        bad("a comma-separated list of sizes 1..65536");
      ++i;
    } else if (a == "--payload") {
      if (!parse_u64(v, n) || n > (64u << 20))
        bad("a byte count up to 64 MiB");
      o.payload = n;
      ++i;
    } else if (a == "--seconds") {
      if (!parse_seconds(v, o.seconds))
        bad("a positive number of seconds up to 3600");
      seconds_given = true;
      ++i;
    } else if (a == "--entries") {
      if (!parse_u64(v, n) || n == 0)
        bad("a positive number");
      o.entries = n;
      ++i;
    } else if (a == "--dir") {
      if (!v || !*v)
        bad("a directory");
      parent = v;
      ++i;
    } else if (a == "--max-mb") {
      if (!parse_u64(v, n) || n == 0 || n > (1u << 20))
        bad("a positive number of MiB");
      o.max_bytes = n << 20;
      ++i;
    } else if (a == "--segment-mb") {
      if (!parse_u64(v, n) || n == 0 || n > 4095)
        bad("a number of MiB in 1..4095");
      o.log.segment_bytes = n << 20;
      ++i;
    } else if (a == "--json") {
      if (!v || !*v)
        bad("a file name");
      json = v;
      ++i;
    } else {
      std::fprintf(stderr, "raft-storage-bench: unknown argument '%s'\n",
                   a.c_str());
      usage(stderr);
      return exit_usage;
    }
  }
  if (o.entries > 0 && seconds_given) {
    std::fprintf(stderr,
                 "raft-storage-bench: give --seconds or --entries, not both\n");
    return exit_usage;
  }

  std::string tmpl = parent + "/raft-storage-bench-XXXXXX";
  if (!::mkdtemp(tmpl.data())) {
    std::fprintf(stderr,
                 "raft-storage-bench: cannot create a directory in %s: %s\n",
                 parent.c_str(), std::strerror(errno));
    return 2;
  }
  const std::string root = tmpl;
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  auto fs = fs_type(root);
  auto record_bytes
    = disk::record_header_size + disk::record_body_fixed + o.payload;
  std::printf("raft-storage-bench: file_log_store append + one sync() "
              "(fdatasync) per batch, %llu-byte payloads (%llu-byte records), "
              "%llu MiB segments, ",
              static_cast<unsigned long long>(o.payload),
              static_cast<unsigned long long>(record_bytes),
              static_cast<unsigned long long>(o.log.segment_bytes >> 20));
  if (o.entries > 0)
    std::printf("%llu entries", static_cast<unsigned long long>(o.entries));
  else
    std::printf("%g s", o.seconds);
  std::printf(" per batch size, in %s (%s)\n", root.c_str(), fs.c_str());
  std::printf("%7s %12s %9s %8s %10s %12s %10s %10s\n", "batch", "entries/s",
              "MB/s", "syncs", "append us", "sync mean us", "p50 us", "p99 us");
  std::fflush(stdout);

  std::vector<result> results;
  int rc = 0;
  try {
    for (auto b : batches) {
      if (interrupted)
        break;
      auto r = run_one(root + "/batch-" + std::to_string(b), b, o);
      std::printf("%7llu %12.0f %9.2f %8llu %10.1f %12.1f %10.1f %10.1f%s\n",
                  static_cast<unsigned long long>(r.batch), r.entries_per_sec,
                  r.mb_per_sec, static_cast<unsigned long long>(r.syncs),
                  r.append_mean_us, r.sync_mean_us, r.sync_p50_us,
                  r.sync_p99_us,
                  r.hit_disk_limit ? "  (stopped at --max-mb)" : "");
      std::fflush(stdout);
      results.push_back(r);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "raft-storage-bench: %s\n", e.what());
    rc = 2;
  }
  std::error_code ec;
  std::filesystem::remove_all(root, ec);
  if (ec)
    std::fprintf(stderr, "raft-storage-bench: could not remove %s: %s\n",
                 root.c_str(), ec.message().c_str());
  if (interrupted) {
    std::fprintf(stderr, "raft-storage-bench: interrupted\n");
    rc = 130;
  }
  std::puts("MB/s counts log bytes written (records with their 37-byte "
            "framing); append us is encoding time per batch, sync us the "
            "write + fdatasync.");
  if (!json.empty() && !write_json(json, o, fs, results)) {
    std::fprintf(stderr, "raft-storage-bench: cannot write %s: %s\n",
                 json.c_str(), std::strerror(errno));
    rc = rc ? rc : 2;
  }
  return rc;
}
