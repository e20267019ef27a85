/* Shared helpers for the integration tests: they drive a real Docker engine
 * through the public API only. */
#ifndef SBX_TEST_HELPERS_H
#define SBX_TEST_HELPERS_H

#include "sbx.h"
#include "tap.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The image tests use: $SBX_TEST_IMAGE, else sbx's own base image. */
static inline const char *
test_image (void)
{
  const char *img = getenv ("SBX_TEST_IMAGE");
  return img && *img ? img : SBX_BASE_IMAGE;
}

static inline sbx_options_t *
test_options (void)
{
  sbx_options_t *o = sbx_options_new ();
  sbx_options_set_image (o, test_image (), NULL);
  return o;
}

/* A started sandbox with OPTS (consumed), or NULL after reporting why. */
static inline sbx_sandbox_t *
start_sandbox (sbx_options_t *o)
{
  sbx_sandbox_t *sb = NULL;
  sbx_error_t *err = NULL;
  int r = sbx_sandbox_new (o, &sb, &err);
  if (r == 0)
    r = sbx_sandbox_start (sb, &err);
  sbx_options_free (o);
  if (r < 0)
    {
      diag ("cannot start a sandbox: %s", sbx_error_message (err));
      sbx_error_free (err);
      sbx_sandbox_free (sb);
      return NULL;
    }
  return sb;
}

/* Runs COMMAND; returns its output (static buffer, cut at 64 KiB) or NULL. */
static inline const char *
run (sbx_sandbox_t *sb, const char *command, int *exit_code)
{
  static char out[65536];
  sbx_exec_result_t res;
  sbx_error_t *err = NULL;
  if (sbx_exec (sb, command, NULL, &res, &err) < 0)
    {
      diag ("exec '%s' failed: %s", command, sbx_error_message (err));
      sbx_error_free (err);
      return NULL;
    }
  snprintf (out, sizeof out, "%s", res.output);
  if (exit_code)
    *exit_code = res.exit_code;
  sbx_exec_result_free (&res);
  return out;
}

static inline void
remove_sandbox (sbx_sandbox_t *sb)
{
  sbx_error_t *err = NULL;
  if (sb && sbx_sandbox_remove (sb, &err) < 0)
    diag ("cleanup: %s", sbx_error_message (err));
  sbx_error_free (err);
  sbx_sandbox_free (sb);
}

static inline double
now_s (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Runs COMMAND until it prints WANT, for at most SECONDS: the way to wait
 * for a state inside the sandbox. Whether it came (what did come is told). */
static inline bool
run_until (sbx_sandbox_t *sb, const char *command, const char *want, double seconds)
{
  const char *out = NULL;
  for (double end = now_s () + seconds;; usleep (50000))
    if ((out = run (sb, command, NULL)) && strcmp (out, want) == 0)
      return true;
    else if (now_s () > end)
      break;
  diag ("'%s' printed '%s', not '%s'", command, out ? out : "(nothing)", want);
  return false;
}

/* Reads background process ID's output into ACC (CAP bytes, appended to)
 * until it holds WANT, for at most 10 s. Whether it came. */
static inline bool
bg_output_until (sbx_sandbox_t *sb, const char *id, const char *want, char *acc, size_t cap)
{
  for (double end = now_s () + 10;; usleep (50000))
    {
      char *out = NULL;
      size_t len = 0;
      sbx_error_t *err = NULL;
      if (sbx_bg_read (sb, id, &out, &len, NULL, &err) < 0)
        {
          diag ("bg read %s: %s", id, sbx_error_message (err));
          sbx_error_free (err);
          return false;
        }
      snprintf (acc + strlen (acc), cap - strlen (acc), "%s", out);
      free (out);
      if (strstr (acc, want))
        return true;
      if (now_s () > end)
        break;
    }
  diag ("background process %s printed '%s', not '%s'", id, acc, want);
  return false;
}

static inline long
max_rss_kib (void)
{
  struct rusage ru;
  getrusage (RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

/* The engine's socket, for what the public API does not expose (pause,
 * logs): the tests talk to it with curl, as an operator would. */
static inline const char *
engine_socket (void)
{
  const char *h = getenv ("DOCKER_HOST");
  return h && strncmp (h, "unix://", 7) == 0 ? h + 7 : "/var/run/docker.sock";
}

/* METHOD PATH on the engine, with the JSON BODY (may be NULL); its reply
 * body in OUT (cut to CAP; may be NULL). 0 or -1. */
static inline int
engine (const char *method, const char *path, const char *body, char *out, size_t cap)
{
  char cmd[1024], file[] = "/tmp/sbx-test-body-XXXXXX";
  int fd = -1;
  if (body)
    {
      if ((fd = mkstemp (file)) < 0 || write (fd, body, strlen (body)) != (ssize_t) strlen (body))
        return -1;
      close (fd);
    }
  snprintf (cmd, sizeof cmd,
            "curl -s --max-time 20 --unix-socket %s -X %s %s%s%s "
            "'http://localhost%s'",
            engine_socket (), method,
            body ? "-H 'Content-Type: application/json' --data-binary @" : "", body ? file : "", "",
            path);
  FILE *p = popen (cmd, "r");
  size_t n = p && out ? fread (out, 1, cap - 1, p) : 0;
  if (out)
    out[n] = '\0';
  /* What does not fit is read all the same: curl, cut off, would fail. */
  while (p && fgetc (p) != EOF)
    ;
  int r = p && pclose (p) == 0 ? 0 : -1;
  if (body)
    unlink (file);
  return r;
}

/* sbx's state root on the host. */
static inline const char *
state_root (void)
{
  const char *r = getenv ("SBX_STATE_DIR");
  return r && *r ? r : "/var/lib/sbx";
}

/* The sandbox's run folder on the host. */
static inline void
run_dir (sbx_sandbox_t *sb, char *buf, size_t cap)
{
  snprintf (buf, cap, "%s/sandboxes/%s/run", state_root (), sbx_sandbox_id (sb));
}

static inline bool
path_exists (const char *path)
{
  struct stat st;
  return lstat (path, &st) == 0;
}

/* Containers of that name, as the engine sees them. */
static inline bool
container_exists (const char *name)
{
  char path[256], body[4096];
  snprintf (path, sizeof path, "/containers/%s/json", name);
  return engine ("GET", path, NULL, body, sizeof body) == 0 && strstr (body, "\"Id\":");
}

/* Whether anything is mounted below PATH. */
static inline bool
mounted_below (const char *path)
{
  FILE *f = fopen ("/proc/self/mountinfo", "re");
  char line[4096];
  bool found = false;
  while (f && fgets (line, sizeof line, f))
    if (strstr (line, path))
      found = true;
  if (f)
    fclose (f);
  return found;
}

#endif
