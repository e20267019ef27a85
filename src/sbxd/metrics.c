/* Counters for /metrics, in Prometheus' text format: requests by route
 * and status, operations by name and outcome with a latency histogram,
 * and the sessions now. */
#include "sbxd.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define N_OPS SBXD_N_OPS
static const double buckets[] = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                  0.25,  0.5,    1,     2.5,  5,     10,   30 };
#define N_BUCKETS (sizeof buckets / sizeof *buckets)

static const char *const routes[] = { "sessions",   "session", "events",  "op",
                                      "workspaces", "mcp",     "service", "other" };
#define N_ROUTES (sizeof routes / sizeof *routes)

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct
{
  uint64_t ok, failed;
  uint64_t bucket[N_BUCKETS];
  double sum;
} op_stats[N_OPS];
static uint64_t requests[N_ROUTES][6]; /* by status class: 1xx .. 5xx */
static double request_seconds[N_ROUTES];

void
sbxd_metrics_op (const char *op, bool ok, double seconds)
{
  for (size_t i = 0; i < N_OPS; i++)
    if (strcmp (sbxd_op_name (i), op) == 0)
      {
        pthread_mutex_lock (&lock);
        if (ok)
          op_stats[i].ok++;
        else
          op_stats[i].failed++;
        for (size_t b = 0; b < N_BUCKETS; b++)
          if (seconds <= buckets[b])
            op_stats[i].bucket[b]++;
        op_stats[i].sum += seconds;
        pthread_mutex_unlock (&lock);
      }
}

void
sbxd_metrics_request (const char *route, int status, double seconds)
{
  size_t r = 0;
  while (r + 1 < N_ROUTES && strcmp (routes[r], route) != 0)
    r++;
  int cls = status / 100;
  pthread_mutex_lock (&lock);
  requests[r][cls >= 1 && cls <= 5 ? cls : 0]++;
  request_seconds[r] += seconds;
  pthread_mutex_unlock (&lock);
}

char *
sbxd_metrics_text (sbxd_registry_t *reg)
{
  char *buf = NULL;
  size_t len = 0;
  FILE *out = open_memstream (&buf, &len);
  if (out == NULL)
    return NULL;
  size_t resident, open;
  sbxd_registry_counts (reg, &resident, &open);
  fprintf (out,
           "# HELP sbxd_sessions Sessions by state.\n# TYPE sbxd_sessions gauge\n"
           "sbxd_sessions{state=\"running\"} %zu\nsbxd_sessions{state=\"hibernated\"} %zu\n",
           resident, open - resident);
  pthread_mutex_lock (&lock);
  fputs ("# HELP sbxd_requests_total HTTP requests by route and status class.\n"
         "# TYPE sbxd_requests_total counter\n",
         out);
  for (size_t r = 0; r < N_ROUTES; r++)
    for (int c = 1; c <= 5; c++)
      if (requests[r][c])
        fprintf (out, "sbxd_requests_total{route=\"%s\",code=\"%dxx\"} %llu\n", routes[r], c,
                 (unsigned long long) requests[r][c]);
  fputs ("# HELP sbxd_request_seconds_total Time spent answering, by route.\n"
         "# TYPE sbxd_request_seconds_total counter\n",
         out);
  for (size_t r = 0; r < N_ROUTES; r++)
    fprintf (out, "sbxd_request_seconds_total{route=\"%s\"} %.6f\n", routes[r], request_seconds[r]);
  fputs ("# HELP sbxd_operations_total Operations by name and outcome.\n"
         "# TYPE sbxd_operations_total counter\n",
         out);
  for (size_t i = 0; i < N_OPS; i++)
    fprintf (out,
             "sbxd_operations_total{op=\"%s\",outcome=\"ok\"} %llu\n"
             "sbxd_operations_total{op=\"%s\",outcome=\"failed\"} %llu\n",
             sbxd_op_name (i), (unsigned long long) op_stats[i].ok, sbxd_op_name (i),
             (unsigned long long) op_stats[i].failed);
  fputs ("# HELP sbxd_operation_seconds Operation latency.\n"
         "# TYPE sbxd_operation_seconds histogram\n",
         out);
  for (size_t i = 0; i < N_OPS; i++)
    {
      for (size_t b = 0; b < N_BUCKETS; b++)
        fprintf (out, "sbxd_operation_seconds_bucket{op=\"%s\",le=\"%g\"} %llu\n", sbxd_op_name (i),
                 buckets[b], (unsigned long long) op_stats[i].bucket[b]);
      fprintf (out,
               "sbxd_operation_seconds_bucket{op=\"%s\",le=\"+Inf\"} %llu\n"
               "sbxd_operation_seconds_sum{op=\"%s\"} %.6f\n"
               "sbxd_operation_seconds_count{op=\"%s\"} %llu\n",
               sbxd_op_name (i), (unsigned long long) (op_stats[i].ok + op_stats[i].failed),
               sbxd_op_name (i), op_stats[i].sum, sbxd_op_name (i),
               (unsigned long long) (op_stats[i].ok + op_stats[i].failed));
    }
  pthread_mutex_unlock (&lock);
  if (fclose (out) != 0)
    {
      free (buf);
      return NULL;
    }
  return buf;
}
