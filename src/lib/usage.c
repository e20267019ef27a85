/* What a sandbox uses, from the engine's stats document, computed as
 * `docker stats` shows it. */
#include "usage.h"

#include "internal.h"

static const json_t *
at (const json_t *doc, const char *a, const char *b)
{
  const json_t *v = json_object_get (doc, a);
  return b ? json_object_get (v, b) : v;
}

/* A count the engine gave: a non-negative integer, else -1. */
static int64_t
count (const json_t *v)
{
  return json_is_integer (v) && json_integer_value (v) >= 0 ? (int64_t) json_integer_value (v) : -1;
}

void
sbx_usage_from_stats (const json_t *stats, sbx_sandbox_usage_t *u)
{
  *u = (sbx_sandbox_usage_t){ .memory_bytes = -1, .memory_limit_bytes = -1, .pids = -1 };
  const json_t *mem = json_object_get (stats, "memory_stats");
  int64_t usage = count (json_object_get (mem, "usage"));
  /* The page cache is the kernel's to drop: docker stats leaves it out
   * (inactive_file under cgroup v2, total_inactive_file under v1). */
  int64_t cache = count (at (mem, "stats", "inactive_file"));
  if (cache < 0)
    cache = count (at (mem, "stats", "total_inactive_file"));
  if (usage >= 0)
    u->memory_bytes = cache >= 0 && cache < usage ? usage - cache : usage;
  u->memory_limit_bytes = count (json_object_get (mem, "limit"));
  u->pids = count (at (stats, "pids_stats", "current"));
  const json_t *cpu = json_object_get (stats, "cpu_stats");
  int64_t total = count (at (cpu, "cpu_usage", "total_usage"));
  int64_t system = count (json_object_get (cpu, "system_cpu_usage"));
  int64_t online = count (json_object_get (cpu, "online_cpus"));
  u->cpu_ns = total > 0 ? (uint64_t) total : 0;
  u->system_ns = system > 0 ? (uint64_t) system : 0;
  u->online_cpus = online > 0 && online <= 65536 ? (unsigned) online : 0;
}

SBX_EXPORT double
sbx_sandbox_cpu_percent (const sbx_sandbox_usage_t *before, const sbx_sandbox_usage_t *after)
{
  if (after->cpu_ns < before->cpu_ns || after->system_ns <= before->system_ns
      || before->system_ns == 0 || after->online_cpus == 0)
    return -1;
  double cpu = (double) (after->cpu_ns - before->cpu_ns);
  double system = (double) (after->system_ns - before->system_ns);
  return cpu / system * after->online_cpus * 100.0;
}
