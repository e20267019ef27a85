/* The engine's stats document read into sbx_sandbox_usage_t (a pure
 * reader, fed bytes), and the CPU percentage between two samples. */
#include "tap.h"

#include "../../src/lib/usage.h"

static sbx_sandbox_usage_t
read_stats (const char *text)
{
  json_error_t jerr;
  json_t *doc = json_loads (text, JSON_DECODE_ANY, &jerr);
  sbx_sandbox_usage_t u;
  sbx_usage_from_stats (doc, &u);
  json_decref (doc);
  return u;
}

int
main (void)
{
  /* cgroup v1, as dockerd 28 sends it: the page cache left out. */
  sbx_sandbox_usage_t a = read_stats (
      "{\"pids_stats\":{\"current\":3},\"cpu_stats\":{\"cpu_usage\":{\"total_usage\":2000000000},"
      "\"system_cpu_usage\":100000000000,\"online_cpus\":2},\"memory_stats\":{\"usage\":10485760,"
      "\"stats\":{\"total_inactive_file\":4194304},\"limit\":1073741824}}");
  ok (a.memory_bytes == 6291456, "memory without the inactive page cache (v1): %lld",
      (long long) a.memory_bytes);
  ok (a.memory_limit_bytes == 1073741824 && a.pids == 3 && a.online_cpus == 2,
      "the limit, the processes, the CPUs");
  /* cgroup v2's name for the cache. */
  sbx_sandbox_usage_t b = read_stats (
      "{\"pids_stats\":{\"current\":5},\"cpu_stats\":{\"cpu_usage\":{\"total_usage\":3000000000},"
      "\"system_cpu_usage\":102000000000,\"online_cpus\":2},\"memory_stats\":{\"usage\":8388608,"
      "\"stats\":{\"inactive_file\":1048576},\"limit\":1073741824}}");
  ok (b.memory_bytes == 7340032, "memory without the inactive page cache (v2)");
  /* 1 s of CPU in 2 s of two CPUs' time: 100% of one CPU. */
  double pct = sbx_sandbox_cpu_percent (&a, &b);
  ok (pct > 99.99 && pct < 100.01, "CPU between two samples: %.2f%%", pct);
  ok (sbx_sandbox_cpu_percent (&a, &a) == -1, "a sample against itself says nothing");
  ok (sbx_sandbox_cpu_percent (&b, &a) == -1, "nor does one against an earlier one");

  /* Hostile or missing values read as unknown, never as numbers. */
  sbx_sandbox_usage_t h = read_stats ("{\"memory_stats\":{\"usage\":-5,\"limit\":\"1g\",\"stats\":"
                                      "{\"inactive_file\":99}},\"cpu_stats\":[],"
                                      "\"pids_stats\":null}");
  ok (h.memory_bytes == -1 && h.memory_limit_bytes == -1 && h.pids == -1,
      "negative, wrong-typed and null values are unknown");
  ok (h.cpu_ns == 0 && h.system_ns == 0 && h.online_cpus == 0, "no CPU counters");
  sbx_sandbox_usage_t c = read_stats ("{\"memory_stats\":{\"usage\":100,\"stats\":"
                                      "{\"inactive_file\":500}}}");
  ok (c.memory_bytes == 100, "a cache larger than the usage is not taken off");
  sbx_sandbox_usage_t n = read_stats ("[1,2]");
  ok (n.memory_bytes == -1 && n.pids == -1, "not an object: all unknown");
  sbx_sandbox_usage_t z = read_stats ("{\"cpu_stats\":{\"online_cpus\":1000000}}");
  ok (z.online_cpus == 0, "an absurd CPU count is unknown");
  return done_testing ();
}
