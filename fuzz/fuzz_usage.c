/* libFuzzer target for the stats reader (src/lib/usage.c), fed what an
 * engine, or a container that fools its cgroup's counters, may send.
 *
 * Any JSON reads without a crash into counts that are either unknown (-1)
 * or what the document said; the memory used is never above what the
 * document called usage; the CPU percentage of a sample against itself is
 * unknown, and against a later one is never negative. */
#include "check.h"
#include "../src/lib/usage.h"

#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput (const unsigned char *data, size_t size);

int
LLVMFuzzerTestOneInput (const unsigned char *data, size_t size)
{
  json_t *doc = json_loadb ((const char *) data, size, JSON_DECODE_ANY, NULL);
  sbx_sandbox_usage_t u;
  sbx_usage_from_stats (doc, &u);
  CHECK (u.memory_bytes >= -1 && u.memory_limit_bytes >= -1 && u.pids >= -1);
  json_t *usage = json_object_get (json_object_get (doc, "memory_stats"), "usage");
  if (u.memory_bytes >= 0)
    CHECK (json_is_integer (usage) && u.memory_bytes <= json_integer_value (usage));
  CHECK (sbx_sandbox_cpu_percent (&u, &u) == -1);
  sbx_sandbox_usage_t later = u;
  later.cpu_ns += 1000;
  later.system_ns += 4000;
  double pct = sbx_sandbox_cpu_percent (&u, &later);
  CHECK (pct == -1 || pct >= 0);
  json_decref (doc);
  return 0;
}
