/* sbx-bench: the sbx side of `make bench` (bench/bench.py runs it).
 *
 * Uses only the public API (sbx.h). Measures, with CLOCK_MONOTONIC, in ms:
 *   floor     the host's floor: `sh -c true` spawned (posix_spawn) and waited
 *             for, one before each exec below, so that both see the same load
 *   exec      sbx_exec("true") on a started sandbox
 *   cli_exec  `sbx exec ID -- true` as a new process each time (posix_spawn)
 *   cli_help  `sbx --help` as a new process (what starting the CLI costs)
 *   floor_cli the floor again, by turns with cli_exec and cli_help
 *   file_1k   sbx_write + sbx_read_bytes of 1 KiB (content checked)
 *   file_1m   the same with 1 MiB
 *   grep      sbx_grep over a corpus made once by --tree-cmd
 *   cold      sbx_sandbox_new + first sbx_exec("true") (the lazy start);
 *             the removal is not timed
 *   session_cold  sbx_manager_create_session + get_session + first exec, no
 *             pool, with a workspace (by turns with cold); the end not timed
 *   claim     the same from a warm pool of 2: the claim is create_session +
 *             get_session; pool_first adds the first exec. Each run waits
 *             for the pool to refill first (not timed)
 *   density   --density N sandboxes started (4 at a time) and left idle:
 *             the host's used memory (MemTotal - MemAvailable) before and
 *             after, then they are removed
 * and prints one JSON line on stdout:
 *   {"image":..., "sandbox_id":..., "start_ms":..., "exec":[...], ...,
 *    "grep_matches":N, "errors":{"op":"message",...}}
 * With --hold it then keeps its sandbox until stdin reaches EOF (so that the
 * caller can read the agent's memory from /proc), and removes it. SIGINT or
 * SIGTERM stops the measurements early; the sandboxes are still removed.
 * Progress goes to stderr. Exit status 0 unless nothing could be measured. */
#include <sbx.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static volatile sig_atomic_t stop_requested;

static void
on_signal (int sig)
{
  (void) sig;
  stop_requested = 1;
}

static double
now_ms (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void progress (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));

static void
progress (const char *fmt, ...)
{
  char when[16];
  time_t t = time (NULL);
  struct tm tm;
  localtime_r (&t, &tm);
  strftime (when, sizeof when, "%H:%M:%S", &tm);
  fprintf (stderr, "[sbx-bench %s] ", when);
  va_list ap;
  va_start (ap, fmt);
  vfprintf (stderr, fmt, ap);
  va_end (ap);
  fputc ('\n', stderr);
}

/* ------------------------------------------------------------ samples */

typedef struct samples
{
  const char *key;
  double *v;
  size_t n;
} samples_t;

static int
cmp_double (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return (x > y) - (x < y);
}

static double
quantile (const samples_t *s, double q)
{
  if (s->n == 0)
    return 0;
  double *c = malloc (s->n * sizeof *c);
  if (c == NULL)
    return 0;
  memcpy (c, s->v, s->n * sizeof *c);
  qsort (c, s->n, sizeof *c, cmp_double);
  double pos = (s->n - 1) * q;
  size_t lo = (size_t) pos, hi = lo + 1 < s->n ? lo + 1 : lo;
  double r = c[lo] + (c[hi] - c[lo]) * (pos - lo);
  free (c);
  return r;
}

static void
report (const samples_t *s, const char *what)
{
  if (s->n)
    progress ("  %-34s p50 %8.3f ms  p90 %8.3f ms  (n=%zu)", what, quantile (s, 0.5),
              quantile (s, 0.9), s->n);
}

/* ------------------------------------------------------------- errors */

#define MAX_ERRORS 16
static struct
{
  const char *op;
  char *msg;
} errors[MAX_ERRORS];
static size_t n_errors;

static void record_error (const char *op, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

static void
record_error (const char *op, const char *fmt, ...)
{
  va_list ap;
  char *msg = NULL;
  va_start (ap, fmt);
  if (vasprintf (&msg, fmt, ap) < 0)
    msg = NULL;
  va_end (ap);
  progress ("%s failed: %s", op, msg ? msg : "(no memory)");
  if (n_errors < MAX_ERRORS && msg)
    {
      errors[n_errors].op = op;
      errors[n_errors++].msg = msg;
    }
  else
    free (msg);
}

/* Records ERR (consumed) for OP; returns -1. */
static int
fail_sbx (const char *op, const char *what, int code, sbx_error_t *err)
{
  record_error (op, "%s: %s (%s)", what, err ? sbx_error_message (err) : "no error message",
                sbx_errc_name (code < 0 ? -code : code));
  sbx_error_free (err);
  return -1;
}

/* -------------------------------------------------------------- config */

static struct
{
  const char *image;
  const char *cli;
  const char *tree_cmd;
  const char *pattern;
  const char *grep_path;
  int runs_exec, runs_cli_exec, runs_file_1k, runs_file_1m, runs_cold, runs_grep, runs_session;
  int warm_exec, warm_file, warm_cold, warm_grep;
  int density;
  int hold;
} cfg = {
  .runs_exec = 300,
  .runs_cli_exec = 50,
  .runs_file_1k = 100,
  .runs_file_1m = 30,
  .runs_cold = 10,
  .runs_grep = 20,
  .runs_session = 10,
  .warm_exec = 20,
  .warm_file = 3,
  .warm_cold = 1,
  .warm_grep = 2,
};

static sbx_options_t *
make_options (void)
{
  sbx_options_t *o = sbx_options_new ();
  sbx_error_t *err = NULL;
  if (o == NULL)
    return NULL;
  if ((cfg.image && sbx_options_set_image (o, cfg.image, &err) < 0)
      || sbx_options_set_network (o, "none", &err) < 0)
    {
      fprintf (stderr, "sbx-bench: %s\n", sbx_error_message (err));
      sbx_error_free (err);
      sbx_options_free (o);
      return NULL;
    }
  return o;
}

/* --------------------------------------------------------- operations */

static int
exec_true (sbx_sandbox_t *sb, const char *op)
{
  sbx_exec_result_t res = { 0 };
  sbx_error_t *err = NULL;
  int r = sbx_exec (sb, "true", NULL, &res, &err);
  if (r < 0)
    return fail_sbx (op, "sbx_exec(\"true\")", r, err);
  int code = res.exit_code;
  sbx_exec_result_free (&res);
  if (code != 0)
    {
      record_error (op, "`true` exited %d", code);
      return -1;
    }
  return 0;
}

/* Runs ARGV (stdout to /dev/null) and waits: 0 when it exited 0. */
static int
spawn_wait (char *const argv[], const char *op)
{
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init (&fa);
  posix_spawn_file_actions_addopen (&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  pid_t pid;
  int r = posix_spawn (&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy (&fa);
  if (r != 0)
    {
      record_error (op, "cannot run %s: %s", argv[0], strerror (r));
      return -1;
    }
  int status;
  while (waitpid (pid, &status, 0) < 0)
    if (errno != EINTR)
      {
        record_error (op, "waitpid: %s", strerror (errno));
        return -1;
      }
  if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
    {
      record_error (op, "`%s %s` failed (status 0x%x)", argv[0], argv[1], status);
      return -1;
    }
  return 0;
}

static int
cli_exec_true (const char *id, const char *op)
{
  char *argv[] = { (char *) cfg.cli, (char *) "exec", (char *) id,
                   (char *) "--",    (char *) "true", NULL };
  return spawn_wait (argv, op);
}

static int
cli_help (const char *op)
{
  char *argv[] = { (char *) cfg.cli, (char *) "--help", NULL };
  return spawn_wait (argv, op);
}

static int
floor_true (const char *op)
{
  char *argv[] = { (char *) "/bin/sh", (char *) "-c", (char *) "true", NULL };
  return spawn_wait (argv, op);
}

static int
write_read (sbx_sandbox_t *sb, const char *path, const unsigned char *data, size_t len,
            const char *op)
{
  sbx_error_t *err = NULL;
  int r = sbx_write (sb, path, data, len, &err);
  if (r < 0)
    return fail_sbx (op, "sbx_write", r, err);
  void *got = NULL;
  size_t got_len = 0;
  r = sbx_read_bytes (sb, path, &got, &got_len, &err);
  if (r < 0)
    return fail_sbx (op, "sbx_read_bytes", r, err);
  int same = got_len == len && memcmp (got, data, len) == 0;
  free (got);
  if (!same)
    {
      record_error (op, "read back %zu bytes that differ from the %zu written", got_len, len);
      return -1;
    }
  return 0;
}

static int
grep_once (sbx_sandbox_t *sb, size_t *matches, const char *op)
{
  sbx_grep_opts_t go = { 0 };
  go.path = cfg.grep_path;
  sbx_grep_result_t res = { 0 };
  sbx_error_t *err = NULL;
  int r = sbx_grep (sb, cfg.pattern, &go, &res, &err);
  if (r < 0)
    return fail_sbx (op, "sbx_grep", r, err);
  *matches = res.count;
  bool truncated = res.truncated;
  sbx_grep_result_free (&res);
  if (truncated)
    {
      record_error (op, "sbx_grep truncated its result at %zu matches", *matches);
      return -1;
    }
  return 0;
}

/* Builds the grep corpus with one exec of --tree-cmd (bench.py runs the same
 * command through docker exec for the docker containers). */
static int
make_tree (sbx_sandbox_t *sb)
{
  if (cfg.tree_cmd == NULL)
    {
      record_error ("grep", "no corpus: --tree-cmd is needed");
      return -1;
    }
  sbx_exec_opts_t eo;
  sbx_exec_opts_init (&eo);
  eo.timeout = 300;
  sbx_exec_result_t res = { 0 };
  sbx_error_t *err = NULL;
  int r = sbx_exec (sb, cfg.tree_cmd, &eo, &res, &err);
  if (r < 0)
    return fail_sbx ("grep", "creating the corpus", r, err);
  int code = res.exit_code;
  if (code != 0)
    record_error ("grep", "creating the corpus exited %d: %.500s", code,
                  res.output ? res.output : "");
  sbx_exec_result_free (&res);
  return code == 0 ? 0 : -1;
}

/* One cold start: new handle, first exec (lazy start) timed; removal not. */
static int
cold_once (double *ms)
{
  sbx_options_t *o = make_options ();
  if (o == NULL)
    return -1;
  sbx_sandbox_t *sb = NULL;
  sbx_error_t *err = NULL;
  double t0 = now_ms ();
  int r = sbx_sandbox_new (o, &sb, &err);
  sbx_options_free (o);
  if (r < 0)
    return fail_sbx ("cold", "sbx_sandbox_new", r, err);
  r = exec_true (sb, "cold");
  *ms = now_ms () - t0;
  if (sbx_sandbox_id (sb))
    {
      int rr = sbx_sandbox_remove (sb, &err);
      if (rr < 0)
        fail_sbx ("cold", "sbx_sandbox_remove", rr, err), err = NULL;
    }
  sbx_sandbox_free (sb);
  return r;
}

/* ------------------------------------------------------------ sessions */

static char ws_root[] = "/tmp/sbx-bench-ws-XXXXXX";

static char *
manager_name (const char *kind)
{
  static char name[64];
  snprintf (name, sizeof name, "bench-%s-%d", kind, (int) getpid ());
  return name;
}

/* Frees M and removes its state on the host. */
static void
bench_manager_done (sbx_manager_t *m, const char *kind)
{
  sbx_error_t *err = NULL;
  sbx_manager_free (m); /* removes the warm sandboxes */
  int r = m ? sbx_manager_delete (manager_name (kind), &err) : 0;
  if (r < 0)
    fail_sbx (kind, "sbx_manager_delete", r, err);
}

static sbx_manager_t *
bench_manager (const char *kind, size_t pool)
{
  const char *name = manager_name (kind);
  sbx_options_t *o = make_options ();
  sbx_manager_config_t c
      = { .name = name, .sandbox = o, .workspace_root = ws_root, .pool_size = pool };
  sbx_manager_t *m = NULL;
  sbx_error_t *err = NULL;
  int r = o ? sbx_manager_new (&c, &m, &err) : -SBX_E_NOMEM;
  sbx_options_free (o);
  if (r < 0)
    fail_sbx (kind, "sbx_manager_new", r, err);
  return m;
}

/* One session made and used: *CLAIM_MS until its sandbox's handle is had,
 * *FIRST_MS until its first exec returned. Ended (and purged) untimed. */
static int
session_once (sbx_manager_t *m, const char *op, int i, double *claim_ms, double *first_ms)
{
  char user[32];
  snprintf (user, sizeof user, "u%d", i);
  char *id = NULL;
  sbx_sandbox_t *sb = NULL;
  sbx_error_t *err = NULL;
  double t0 = now_ms ();
  int r = sbx_manager_create_session (m, user, &id, &err);
  if (r == 0)
    r = sbx_manager_get_session (m, id, &sb, &err);
  if (r < 0)
    fail_sbx (op, "sbx_manager_create_session", r, err), err = NULL;
  *claim_ms = now_ms () - t0;
  if (r == 0)
    r = exec_true (sb, op);
  *first_ms = now_ms () - t0;
  sbx_sandbox_free (sb);
  if (id && (r = sbx_manager_end_session (m, id, true, &err)) < 0)
    fail_sbx (op, "sbx_manager_end_session", r, err);
  free (id);
  return r;
}

static int
pool_wait (sbx_manager_t *m, size_t n)
{
  for (double end = now_ms () + 120e3; now_ms () < end && !stop_requested; usleep (2000))
    if (sbx_manager_pool_ready (m) >= n)
      return 0;
  record_error ("claim", "the pool did not refill within 120 s");
  return -1;
}

/* Cold starts, plain and as sessions, by turns; then claims from a pool. */
static void
bench_sessions (samples_t *cold, samples_t *scold, samples_t *claim, samples_t *pfirst)
{
  int runs = cfg.runs_cold > cfg.runs_session ? cfg.runs_cold : cfg.runs_session;
  cold->v = calloc ((size_t) runs + 1, sizeof (double));
  scold->v = calloc ((size_t) runs + 1, sizeof (double));
  claim->v = calloc ((size_t) runs + 1, sizeof (double));
  pfirst->v = calloc ((size_t) runs + 1, sizeof (double));
  if (!cold->v || !scold->v || !claim->v || !pfirst->v || mkdtemp (ws_root) == NULL)
    return;
  sbx_manager_t *m = bench_manager ("cold", 0);
  progress ("cold: sbx_sandbox_new + first exec x %d, session create + first exec x %d, by turns",
            cfg.runs_cold, cfg.runs_session);
  for (int i = 0; m && i < cfg.warm_cold + runs && !stop_requested; i++)
    {
      double ms, claim_ms;
      if (i < cfg.warm_cold + cfg.runs_cold)
        {
          if (cold_once (&ms) < 0)
            break;
          if (i >= cfg.warm_cold)
            cold->v[cold->n++] = ms;
        }
      if (i < cfg.warm_cold + cfg.runs_session)
        {
          if (session_once (m, "session_cold", i, &claim_ms, &ms) < 0)
            break;
          if (i >= cfg.warm_cold)
            scold->v[scold->n++] = ms;
        }
    }
  report (cold, "cold create -> first exec");
  report (scold, "cold session create -> first exec");
  bench_manager_done (m, "cold");

  m = cfg.runs_session > 0 ? bench_manager ("pool", 2) : NULL;
  progress ("pool: session claim + first exec x %d (pool of 2, refilled between runs)",
            cfg.runs_session);
  for (int i = 0; m && i < 1 + cfg.runs_session && !stop_requested; i++)
    {
      double claim_ms, ms;
      if (pool_wait (m, 2) < 0 || session_once (m, "claim", i, &claim_ms, &ms) < 0)
        break;
      if (i >= 1)
        claim->v[claim->n++] = claim_ms, pfirst->v[pfirst->n++] = ms;
    }
  report (claim, "session claim from the pool");
  report (pfirst, "session claim -> first exec");
  bench_manager_done (m, "pool");
  rmdir (ws_root);
}

/* ------------------------------------------------------------- density */

/* The host's used memory in KiB: MemTotal - MemAvailable. */
static long
used_kib (long *total)
{
  FILE *f = fopen ("/proc/meminfo", "re");
  char line[256];
  long t = -1, avail = -1, v;
  while (f && fgets (line, sizeof line, f))
    if (sscanf (line, "MemTotal: %ld kB", &v) == 1)
      t = v;
    else if (sscanf (line, "MemAvailable: %ld kB", &v) == 1)
      avail = v;
  if (f)
    fclose (f);
  if (total)
    *total = t;
  return t < 0 || avail < 0 ? -1 : t - avail;
}

struct density
{
  sbx_sandbox_t **v;
  int n, next, started;
  pthread_mutex_t lock;
};

static void *
density_worker (void *arg)
{
  struct density *d = arg;
  for (;;)
    {
      pthread_mutex_lock (&d->lock);
      int i = stop_requested ? d->n : d->next++;
      pthread_mutex_unlock (&d->lock);
      if (i >= d->n)
        return NULL;
      sbx_options_t *o = make_options ();
      sbx_error_t *err = NULL;
      int r = o ? sbx_sandbox_new (o, &d->v[i], &err) : -SBX_E_NOMEM;
      sbx_options_free (o);
      if (r == 0)
        r = sbx_sandbox_start (d->v[i], &err);
      if (r < 0)
        fail_sbx ("density", "sbx_sandbox_start", r, err);
      pthread_mutex_lock (&d->lock);
      d->started += r == 0;
      pthread_mutex_unlock (&d->lock);
    }
}

static void *
density_remover (void *arg)
{
  struct density *d = arg;
  for (;;)
    {
      pthread_mutex_lock (&d->lock);
      int i = d->next++;
      pthread_mutex_unlock (&d->lock);
      if (i >= d->n)
        return NULL;
      if (d->v[i] && sbx_sandbox_id (d->v[i]))
        sbx_sandbox_remove (d->v[i], NULL);
      sbx_sandbox_free (d->v[i]);
    }
}

/* Runs FN on D with 4 threads. */
static void
density_run (struct density *d, void *(*fn) (void *) )
{
  pthread_t t[4];
  int made = 0;
  d->next = 0;
  for (; made < 4; made++)
    if (pthread_create (&t[made], NULL, fn, d) != 0)
      break;
  if (made == 0)
    fn (d);
  for (int i = 0; i < made; i++)
    pthread_join (t[i], NULL);
}

/* ,"density":{...} for the result line ("" when not measured). */
static char density_json[256];

static void
bench_density (void)
{
  struct density d = { .n = cfg.density, .lock = PTHREAD_MUTEX_INITIALIZER };
  if (d.n <= 0 || (d.v = calloc ((size_t) d.n, sizeof *d.v)) == NULL)
    return;
  long total = 0, before = used_kib (&total);
  progress ("density: starting %d idle sandboxes, 4 at a time", d.n);
  double t0 = now_ms ();
  density_run (&d, density_worker);
  double start_ms = now_ms () - t0;
  sleep (3); /* the engine's and the agents' allocations settle */
  long after = used_kib (NULL);
  progress ("density: %d started in %.0f ms; host used memory %ld -> %ld MiB; removing them",
            d.started, start_ms, before / 1024, after / 1024);
  density_run (&d, density_remover);
  free (d.v);
  if (d.started > 0 && before > 0 && after > 0)
    snprintf (density_json, sizeof density_json,
              ",\"density\":{\"sandboxes\":%d,\"used_before_kib\":%ld,\"used_after_kib\":%ld,"
              "\"mem_total_kib\":%ld,\"start_ms\":%.0f}",
              d.started, before, after, total, start_ms);
}

/* --------------------------------------------------------------- JSON */

static void
json_string (FILE *f, const char *s)
{
  fputc ('"', f);
  for (const unsigned char *p = (const unsigned char *) (s ? s : ""); *p; p++)
    {
      if (*p == '"' || *p == '\\')
        fprintf (f, "\\%c", *p);
      else if (*p < 0x20)
        fprintf (f, "\\u%04x", *p);
      else
        fputc (*p, f);
    }
  fputc ('"', f);
}

static void
json_samples (FILE *f, const samples_t *s)
{
  fprintf (f, ",\"%s\":[", s->key);
  for (size_t i = 0; i < s->n; i++)
    fprintf (f, "%s%.4f", i ? "," : "", s->v[i]);
  fputc (']', f);
}

/* ---------------------------------------------------------------- main */

#define TIMED(S, RUNS, WARM, EXPR)                                                                 \
  do                                                                                               \
    {                                                                                              \
      int fail_ = 0;                                                                               \
      for (int w_ = 0; w_ < (WARM) && !fail_ && !stop_requested; w_++)                             \
        fail_ = (EXPR) < 0;                                                                        \
      (S)->v = calloc ((RUNS) > 0 ? (size_t) (RUNS) : 1, sizeof (double));                         \
      for (int i_ = 0; i_ < (RUNS) && !fail_ && !stop_requested && (S)->v; i_++)                   \
        {                                                                                          \
          double t0_ = now_ms ();                                                                  \
          fail_ = (EXPR) < 0;                                                                      \
          double t1_ = now_ms ();                                                                  \
          if (!fail_)                                                                              \
            (S)->v[(S)->n++] = t1_ - t0_;                                                          \
        }                                                                                          \
    }                                                                                              \
  while (0)

static void
fill (unsigned char *p, size_t n, unsigned seed)
{
  unsigned long long x = 0x9e3779b97f4a7c15ULL ^ seed;
  for (size_t i = 0; i < n; i++)
    {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      p[i] = (unsigned char) (x >> 24);
    }
}

static void
usage (void)
{
  fprintf (stderr, "usage: sbx-bench [--image IMG] [--cli PATH] [--tree-cmd CMD --pattern RE "
                   "--grep-path DIR]\n"
                   "                 [--runs-{exec,cli-exec,file-1k,file-1m,cold,grep,session} N]\n"
                   "                 [--density N]\n"
                   "                 [--warmup-{exec,file,cold,grep} N] [--hold]\n"
                   "Normally run by bench/bench.py (make bench).\n");
}

int
main (int argc, char **argv)
{
  enum
  {
    O_IMAGE = 256,
    O_CLI,
    O_TREE,
    O_PATTERN,
    O_GREP_PATH,
    O_R_EXEC,
    O_R_CLI,
    O_R_1K,
    O_R_1M,
    O_R_COLD,
    O_R_GREP,
    O_R_SESSION,
    O_DENSITY,
    O_W_EXEC,
    O_W_FILE,
    O_W_COLD,
    O_W_GREP,
    O_HOLD,
    O_HELP
  };
  static const struct option longopts[] = {
    { "image", required_argument, NULL, O_IMAGE },
    { "cli", required_argument, NULL, O_CLI },
    { "tree-cmd", required_argument, NULL, O_TREE },
    { "pattern", required_argument, NULL, O_PATTERN },
    { "grep-path", required_argument, NULL, O_GREP_PATH },
    { "runs-exec", required_argument, NULL, O_R_EXEC },
    { "runs-cli-exec", required_argument, NULL, O_R_CLI },
    { "runs-file-1k", required_argument, NULL, O_R_1K },
    { "runs-file-1m", required_argument, NULL, O_R_1M },
    { "runs-cold", required_argument, NULL, O_R_COLD },
    { "runs-grep", required_argument, NULL, O_R_GREP },
    { "runs-session", required_argument, NULL, O_R_SESSION },
    { "density", required_argument, NULL, O_DENSITY },
    { "warmup-exec", required_argument, NULL, O_W_EXEC },
    { "warmup-file", required_argument, NULL, O_W_FILE },
    { "warmup-cold", required_argument, NULL, O_W_COLD },
    { "warmup-grep", required_argument, NULL, O_W_GREP },
    { "hold", no_argument, NULL, O_HOLD },
    { "help", no_argument, NULL, O_HELP },
    { NULL, 0, NULL, 0 },
  };
  int c;
  while ((c = getopt_long (argc, argv, "", longopts, NULL)) != -1)
    switch (c)
      {
      case O_IMAGE:
        cfg.image = optarg;
        break;
      case O_CLI:
        cfg.cli = optarg;
        break;
      case O_TREE:
        cfg.tree_cmd = optarg;
        break;
      case O_PATTERN:
        cfg.pattern = optarg;
        break;
      case O_GREP_PATH:
        cfg.grep_path = optarg;
        break;
      case O_R_EXEC:
        cfg.runs_exec = atoi (optarg);
        break;
      case O_R_CLI:
        cfg.runs_cli_exec = atoi (optarg);
        break;
      case O_R_1K:
        cfg.runs_file_1k = atoi (optarg);
        break;
      case O_R_1M:
        cfg.runs_file_1m = atoi (optarg);
        break;
      case O_R_COLD:
        cfg.runs_cold = atoi (optarg);
        break;
      case O_R_GREP:
        cfg.runs_grep = atoi (optarg);
        break;
      case O_R_SESSION:
        cfg.runs_session = atoi (optarg);
        break;
      case O_DENSITY:
        cfg.density = atoi (optarg);
        break;
      case O_W_EXEC:
        cfg.warm_exec = atoi (optarg);
        break;
      case O_W_FILE:
        cfg.warm_file = atoi (optarg);
        break;
      case O_W_COLD:
        cfg.warm_cold = atoi (optarg);
        break;
      case O_W_GREP:
        cfg.warm_grep = atoi (optarg);
        break;
      case O_HOLD:
        cfg.hold = 1;
        break;
      case O_HELP:
        usage ();
        return 0;
      default:
        usage ();
        return 2;
      }

  /* No SA_RESTART: a blocking read or wait returns, and the loops stop. */
  struct sigaction sa = { 0 }, old;
  sa.sa_handler = on_signal;
  sigemptyset (&sa.sa_mask);
  for (int i = 0; i < 2; i++)
    {
      int sig = i ? SIGTERM : SIGINT;
      /* A signal ignored by our parent (a background job) stays ignored. */
      if (sigaction (sig, NULL, &old) == 0 && old.sa_handler != SIG_IGN)
        sigaction (sig, &sa, NULL);
    }
  signal (SIGPIPE, SIG_IGN);

  samples_t s_floor = { "floor", NULL, 0 }, s_help = { "cli_help", NULL, 0 };
  samples_t s_floor_cli = { "floor_cli", NULL, 0 };
  samples_t s_exec = { "exec", NULL, 0 }, s_cli = { "cli_exec", NULL, 0 },
            s_1k = { "file_1k", NULL, 0 }, s_1m = { "file_1m", NULL, 0 },
            s_grep = { "grep", NULL, 0 }, s_cold = { "cold", NULL, 0 };
  samples_t s_scold = { "session_cold", NULL, 0 }, s_claim = { "claim", NULL, 0 },
            s_pfirst = { "pool_first", NULL, 0 };
  long grep_matches = -1;
  double start_ms = -1;
  sbx_sandbox_t *sb = NULL;
  sbx_error_t *err = NULL;
  int r;

  sbx_options_t *opts = make_options ();
  if (opts == NULL)
    return 2;
  r = sbx_sandbox_new (opts, &sb, &err);
  sbx_options_free (opts);
  if (r < 0)
    {
      fail_sbx ("start", "sbx_sandbox_new", r, err), err = NULL;
      sb = NULL;
    }
  else
    {
      progress ("starting a sandbox (image %s)", cfg.image ? cfg.image : "default");
      double t0 = now_ms ();
      r = sbx_sandbox_start (sb, &err);
      start_ms = now_ms () - t0;
      if (r < 0)
        {
          fail_sbx ("start", "sbx_sandbox_start", r, err), err = NULL;
          if (sbx_sandbox_id (sb))
            sbx_sandbox_remove (sb, NULL);
          sbx_sandbox_free (sb);
          sb = NULL;
        }
      else
        progress ("sandbox %s started in %.0f ms", sbx_sandbox_id (sb), start_ms);
    }

  if (sb)
    {
      const char *id = sbx_sandbox_id (sb);

      progress ("sh -c true and sbx_exec(\"true\"), by turns, x %d", cfg.runs_exec);
      for (int w = 0; w < cfg.warm_exec; w++)
        if (floor_true ("floor") < 0 || exec_true (sb, "exec") < 0)
          break;
      s_floor.v = calloc ((size_t) cfg.runs_exec + 1, sizeof (double));
      s_exec.v = calloc ((size_t) cfg.runs_exec + 1, sizeof (double));
      for (int i = 0; s_floor.v && s_exec.v && i < cfg.runs_exec && !stop_requested; i++)
        {
          double t0 = now_ms ();
          if (floor_true ("floor") < 0)
            break;
          double t1 = now_ms ();
          if (exec_true (sb, "exec") < 0)
            break;
          s_floor.v[s_floor.n++] = t1 - t0;
          s_exec.v[s_exec.n++] = now_ms () - t1;
        }
      report (&s_floor, "the floor: sh -c true");
      report (&s_exec, "sbx_exec true");

      if (cfg.cli && cfg.runs_cli_exec > 0)
        {
          progress ("sh -c true, %s exec %s -- true and %s --help, by turns, x %d", cfg.cli, id,
                    cfg.cli, cfg.runs_cli_exec);
          for (int w = 0; w < cfg.warm_exec / 4 + 1; w++)
            if (floor_true ("floor") < 0 || cli_exec_true (id, "cli_exec") < 0
                || cli_help ("cli_help") < 0)
              break;
          size_t runs = (size_t) cfg.runs_cli_exec + 1;
          s_floor_cli.v = calloc (runs, sizeof (double));
          s_cli.v = calloc (runs, sizeof (double));
          s_help.v = calloc (runs, sizeof (double));
          for (int i = 0;
               s_floor_cli.v && s_cli.v && s_help.v && i < cfg.runs_cli_exec && !stop_requested;
               i++)
            {
              double t0 = now_ms ();
              if (floor_true ("floor") < 0)
                break;
              double t1 = now_ms ();
              if (cli_exec_true (id, "cli_exec") < 0)
                break;
              double t2 = now_ms ();
              if (cli_help ("cli_help") < 0)
                break;
              s_floor_cli.v[s_floor_cli.n++] = t1 - t0;
              s_cli.v[s_cli.n++] = t2 - t1;
              s_help.v[s_help.n++] = now_ms () - t2;
            }
          report (&s_floor_cli, "the floor, by turns with the CLI");
          report (&s_cli, "sbx CLI exec true");
          report (&s_help, "sbx --help");
        }

      size_t n1k = 1024, n1m = 1 << 20;
      unsigned char *d1k = malloc (n1k), *d1m = malloc (n1m);
      if (d1k && d1m)
        {
          fill (d1k, n1k, 1), fill (d1m, n1m, 2);
          progress ("sbx_write + sbx_read_bytes 1 KiB x %d, 1 MiB x %d", cfg.runs_file_1k,
                    cfg.runs_file_1m);
          TIMED (&s_1k, cfg.runs_file_1k, cfg.warm_file,
                 write_read (sb, "/workspace/sbx_file_1k.bin", d1k, n1k, "file_1k"));
          report (&s_1k, "write+read 1 KiB");
          TIMED (&s_1m, cfg.runs_file_1m, cfg.warm_file,
                 write_read (sb, "/workspace/sbx_file_1m.bin", d1m, n1m, "file_1m"));
          report (&s_1m, "write+read 1 MiB");
        }
      free (d1k);
      free (d1m);

      if (cfg.pattern && cfg.grep_path && cfg.runs_grep > 0 && !stop_requested)
        {
          progress ("creating the grep corpus");
          double t0 = now_ms ();
          if (make_tree (sb) == 0)
            {
              progress ("corpus made in %.0f ms; sbx_grep x %d", now_ms () - t0, cfg.runs_grep);
              size_t m = 0;
              TIMED (&s_grep, cfg.runs_grep, cfg.warm_grep, grep_once (sb, &m, "grep"));
              if (s_grep.n)
                grep_matches = (long) m;
              report (&s_grep, "sbx_grep");
            }
        }
    }

  if ((cfg.runs_cold > 0 || cfg.runs_session > 0) && !stop_requested)
    bench_sessions (&s_cold, &s_scold, &s_claim, &s_pfirst);
  if (!stop_requested)
    bench_density ();
  if (stop_requested)
    record_error ("run", "interrupted");

  /* The result, on one line. */
  printf ("{\"image\":");
  json_string (stdout, cfg.image ? cfg.image : (sb ? sbx_sandbox_image (sb) : NULL));
  printf (",\"sandbox_id\":");
  if (sb)
    json_string (stdout, sbx_sandbox_id (sb));
  else
    printf ("null");
  printf (",\"start_ms\":%.3f", start_ms);
  const samples_t *all[] = { &s_floor, &s_exec, &s_floor_cli, &s_cli,   &s_help,  &s_1k,
                             &s_1m,    &s_grep, &s_cold,      &s_scold, &s_claim, &s_pfirst };
  for (size_t i = 0; i < sizeof all / sizeof *all; i++)
    if (all[i]->n)
      json_samples (stdout, all[i]);
  printf ("%s,\"grep_matches\":", density_json);
  if (grep_matches >= 0)
    printf ("%ld", grep_matches);
  else
    printf ("null");
  printf (",\"errors\":{");
  for (size_t i = 0; i < n_errors; i++)
    {
      printf ("%s", i ? "," : "");
      json_string (stdout, errors[i].op);
      putchar (':');
      json_string (stdout, errors[i].msg);
    }
  printf ("}}\n");
  fflush (stdout);

  if (sb && cfg.hold)
    {
      /* Until the caller has read the agent's memory (EOF or a line). */
      char buf[256];
      while (!stop_requested)
        {
          ssize_t n = read (STDIN_FILENO, buf, sizeof buf);
          if (n == 0 || (n < 0 && errno != EINTR) || (n > 0 && memchr (buf, '\n', (size_t) n)))
            break;
        }
    }
  if (sb)
    {
      progress ("removing sandbox %s", sbx_sandbox_id (sb));
      r = sbx_sandbox_remove (sb, &err);
      if (r < 0)
        {
          fprintf (stderr, "sbx-bench: could not remove sandbox %s: %s\n", sbx_sandbox_id (sb),
                   sbx_error_message (err));
          sbx_error_free (err);
        }
      sbx_sandbox_free (sb);
    }
  for (size_t i = 0; i < sizeof all / sizeof *all; i++)
    free (all[i]->v);
  for (size_t i = 0; i < n_errors; i++)
    free (errors[i].msg);
  return s_exec.n || s_cold.n ? 0 : 1;
}
