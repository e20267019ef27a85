/* exec: output, exit codes, env, cwd, stdin, streams, caps, timeouts and
 * background processes, against a real sandbox. */
#include "helpers.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct
{
  int chunks;
  size_t bytes;
  int stop_after;
} stream_log_t;

static int
on_output (enum sbx_stream stream, const char *data, size_t len, void *ud)
{
  (void) stream, (void) data;
  stream_log_t *log = ud;
  log->chunks++;
  log->bytes += len;
  return log->stop_after && log->chunks >= log->stop_after;
}

static void
test_basics (sbx_sandbox_t *sb)
{
  int code = -1;
  is_str (run (sb, "echo hello; echo err >&2; exit 3", &code), "hello\nerr\n",
          "combined output keeps order");
  is_int (code, 3, "exit code is returned");
  is_str (run (sb, "pwd", NULL), "/workspace\n", "commands run in the work dir");
  is_str (run (sb, "printf '%s' \"a'b\\\"c\"", NULL), "a'b\"c", "quotes reach sh -c intact");
  run (sb, "kill -9 $$", &code);
  is_int (code, 137, "a command killed by SIGKILL exits 128+9");

  sbx_exec_opts_t o;
  sbx_exec_opts_init (&o);
  const char *env[] = { "GREETING=hi there", "EMPTY=", NULL };
  o.env = env;
  o.cwd = "/tmp";
  sbx_exec_result_t res;
  sbx_error_t *err = NULL;
  if (check_ok (sbx_exec (sb, "echo \"$GREETING|$EMPTY|$(pwd)\"", &o, &res, &err), &err,
                "exec with env and cwd"))
    is_str (res.output, "hi there||/tmp\n", "per-call env and cwd apply");
  sbx_exec_result_free (&res);

  sbx_exec_opts_init (&o);
  o.separate_streams = true;
  err = NULL;
  if (check_ok (sbx_exec (sb, "echo out; echo err >&2", &o, &res, &err), &err, "separate streams"))
    {
      is_str (res.stdout_data, "out\n", "stdout alone");
      is_str (res.stderr_data, "err\n", "stderr alone");
    }
  sbx_exec_result_free (&res);

  sbx_exec_opts_init (&o);
  o.stdin_data = "line one\nline two\n";
  o.stdin_len = strlen (o.stdin_data);
  err = NULL;
  if (check_ok (sbx_exec (sb, "wc -l; cat /dev/null", &o, &res, &err), &err, "stdin from memory"))
    is_str (res.output, "2\n", "stdin reaches the command");
  sbx_exec_result_free (&res);

  /* stdin from a descriptor: 3 MB through a pipe, checked by checksum. */
  int p[2];
  if (pipe (p) == 0)
    {
      if (fork () == 0)
        {
          close (p[0]);
          char buf[4096];
          memset (buf, 'x', sizeof buf);
          for (int i = 0; i < 768; i++)
            if (write (p[1], buf, sizeof buf) < 0)
              _exit (1);
          _exit (0);
        }
      close (p[1]);
      sbx_exec_opts_init (&o);
      o.stdin_fd = p[0];
      err = NULL;
      if (check_ok (sbx_exec (sb, "wc -c", &o, &res, &err), &err, "stdin from a descriptor"))
        is_str (res.output, "3145728\n", "all 3 MiB of stdin arrive");
      sbx_exec_result_free (&res);
      close (p[0]);
    }

  stream_log_t log = { 0 };
  sbx_exec_opts_init (&o);
  o.on_output = on_output;
  o.userdata = &log;
  err = NULL;
  if (check_ok (sbx_exec (sb, "for i in 1 2 3; do echo $i; sleep 0.2; done", &o, &res, &err), &err,
                "streaming exec"))
    {
      ok (log.chunks >= 3, "output arrives in pieces as it is printed (%d chunks)", log.chunks);
      is_int (log.bytes, 6, "the callback sees every byte");
    }
  sbx_exec_result_free (&res);

  log = (stream_log_t){ .stop_after = 1 };
  err = NULL;
  double t0 = now_s ();
  if (check_ok (sbx_exec (sb, "while true; do echo tick; sleep 0.1; done", &o, &res, &err), &err,
                "cancelling from the callback"))
    {
      ok (res.cancelled, "the result says it was cancelled");
      ok (now_s () - t0 < 5, "cancel stops an endless command promptly");
    }
  sbx_exec_result_free (&res);
}

static void
test_output_cap (sbx_sandbox_t *sb)
{
  sbx_exec_opts_t o;
  sbx_exec_result_t res;
  sbx_error_t *err = NULL;
  sbx_exec_opts_init (&o);
  long before = max_rss_kib ();
  if (check_ok (
          sbx_exec (sb, "head -c 1000000000 /dev/zero | tr '\\0' a; echo done >&2", &o, &res, &err),
          &err, "1 GB of output"))
    {
      is_int (res.output_len, SBX_DEFAULT_MAX_OUTPUT, "output is capped at 100,000 bytes");
      ok (res.truncated, "truncated is set");
      is_int (res.exit_code, 0, "the command ran to its end (the rest was drained)");
    }
  sbx_exec_result_free (&res);
  long grown = max_rss_kib () - before;
  ok (grown < 20 * 1024, "the host's memory stays flat (grew %ld KiB)", grown);

  o.max_output = 10;
  err = NULL;
  if (check_ok (sbx_exec (sb, "echo 0123456789abcdef", &o, &res, &err), &err, "small cap"))
    {
      is_int (res.output_len, 10, "custom cap applies");
      ok (memcmp (res.output, "0123456789", 10) == 0 && res.truncated, "first bytes kept");
    }
  sbx_exec_result_free (&res);
}

static bool
sleepers_left (sbx_sandbox_t *sb)
{
  const char *out = run (sb, "cat /proc/[0-9]*/comm 2>/dev/null | grep -c '^sleep$'", NULL);
  return out == NULL || strcmp (out, "0\n") != 0;
}

static void
test_timeout (sbx_sandbox_t *sb)
{
  sbx_exec_opts_t o;
  sbx_exec_result_t res;
  sbx_error_t *err = NULL;
  sbx_exec_opts_init (&o);
  o.timeout = 1;
  double t0 = now_s ();
  /* A grandchild that ignores TERM, and a child in its own process group. */
  if (check_ok (sbx_exec (sb,
                          "echo started; (trap '' TERM; sleep 1000) & "
                          "setsid sleep 1000 & sleep 1000",
                          &o, &res, &err),
                &err, "exec with a timeout"))
    {
      ok (res.timed_out, "timed_out is set");
      is_int (res.exit_code, SBX_TIMEOUT_EXIT_CODE, "exit code 124");
      is_str (res.output, "started\n", "partial output is kept");
      double took = now_s () - t0;
      ok (took >= 1 && took < 8, "returns soon after the timeout (%.1f s)", took);
    }
  sbx_exec_result_free (&res);
  ok (!sleepers_left (sb), "the whole process tree is gone, TERM-ignoring child included");

  sbx_exec_opts_init (&o);
  err = NULL;
  if (check_ok (sbx_exec (sb, "exit 124", &o, &res, &err), &err, "a command's own 124"))
    ok (res.exit_code == 124 && !res.timed_out, "is not mistaken for a timeout");
  sbx_exec_result_free (&res);

  o.timeout = 5;
  err = NULL;
  t0 = now_s ();
  if (check_ok (sbx_exec (sb, "sleep 1000 > /dev/null 2>&1 & echo bg", &o, &res, &err), &err,
                "a command that leaves a background child"))
    {
      is_str (res.output, "bg\n", "its output is returned");
      ok (now_s () - t0 < 3, "it returns without waiting for the child");
    }
  sbx_exec_result_free (&res);

  run (sb,
       "pkill sleep 2>/dev/null; for p in /proc/[0-9]*; do "
       "[ \"$(cat $p/comm 2>/dev/null)\" = sleep ] && kill ${p#/proc/}; done; true",
       NULL);

  /* cancel_fd: a silent command ends when the peer of that socket hangs
   * up, and not before. */
  int pair[2];
  if (ok (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0, "a socket pair"))
    {
      sbx_exec_opts_init (&o);
      o.cancel_fd = pair[0];
      err = NULL;
      if (check_ok (sbx_exec (sb, "sleep 0.5; echo done", &o, &res, &err), &err,
                    "exec with a cancel_fd whose peer stays"))
        ok (!res.cancelled && strcmp (res.output, "done\n") == 0,
            "runs to its end while the peer is there");
      sbx_exec_result_free (&res);
      close (pair[1]);
      t0 = now_s ();
      err = NULL;
      if (check_ok (sbx_exec (sb, "sleep 1000", &o, &res, &err), &err,
                    "exec with a cancel_fd whose peer hung up"))
        {
          ok (res.cancelled, "cancelled is set");
          ok (now_s () - t0 < 8, "it ends at once (%.1f s)", now_s () - t0);
        }
      sbx_exec_result_free (&res);
      close (pair[0]);
      ok (!sleepers_left (sb), "the cancelled command's tree is gone");
    }
}

/* Reads background process ID's new output until some arrives (or 10 s
 * pass) into BUF, and whether it still runs into *RUNNING; false after
 * saying why a read failed. */
static bool
read_some (sbx_sandbox_t *sb, const char *id, char *buf, size_t cap, bool *running)
{
  buf[0] = '\0';
  for (double end = now_s () + 10;;)
    {
      char *out = NULL;
      size_t len = 0;
      sbx_bg_info_t info;
      sbx_error_t *err = NULL;
      if (sbx_bg_read (sb, id, &out, &len, &info, &err) < 0)
        {
          diag ("bg read: %s", sbx_error_message (err));
          sbx_error_free (err);
          return false;
        }
      snprintf (buf, cap, "%s", out);
      *running = info.running;
      sbx_bg_info_clear (&info);
      free (out);
      if (buf[0] || now_s () > end)
        return true;
      usleep (50000);
    }
}

static void
test_background (sbx_sandbox_t *sb)
{
  sbx_error_t *err = NULL;
  char *id = NULL;
  /* The pause between the lines keeps them apart in the reads. */
  if (!check_ok (
          sbx_bg_start (sb, "echo first; sleep 0.5; echo second; sleep 1000", NULL, &id, &err),
          &err, "start a background process"))
    return;
  char text[64];
  bool running = false;
  if (ok (read_some (sb, id, text, sizeof text, &running), "read its output"))
    {
      is_str (text, "first\n", "the output so far");
      ok (running, "it is running");
    }
  if (ok (read_some (sb, id, text, sizeof text, &running), "read again"))
    is_str (text, "second\n", "only the new output");
  char *out = NULL;
  size_t len = 0;
  sbx_bg_info_t info;

  sbx_bg_info_t *items = NULL;
  size_t n = 0;
  err = NULL;
  if (check_ok (sbx_bg_list (sb, &items, &n, &err), &err, "list background processes"))
    {
      bool found = false;
      for (size_t i = 0; i < n; i++)
        found |= strcmp (items[i].id, id) == 0 && items[i].running
                 && strstr (items[i].command, "echo first");
      ok (found, "the list shows it, running, with its command");
      sbx_bg_info_list_free (items, n);
    }

  /* A new handle (as a later CLI call would be) sees the same process. */
  sbx_sandbox_t *again = NULL;
  err = NULL;
  if (check_ok (sbx_sandbox_open (sbx_sandbox_id (sb), &again, &err), &err, "open by id"))
    {
      err = NULL;
      check_ok (sbx_bg_kill (again, id, &err), &err, "kill it from another connection");
      err = NULL;
      if (check_ok (sbx_bg_read (again, id, &out, &len, &info, &err), &err, "read after kill"))
        {
          ok (!info.running, "it is no longer running");
          is_int (info.exit_code, 128 + 15, "killed by TERM");
          sbx_bg_info_clear (&info);
        }
      free (out);
      sbx_sandbox_free (again);
    }
  ok (!sleepers_left (sb), "its process tree is gone");
  err = NULL;
  check_fails (sbx_bg_read (sb, "999", &out, &len, NULL, &err), &err, SBX_E_NO_PROCESS, NULL,
               "an unknown id is an error");
  err = NULL;
  check_fails (sbx_bg_kill (sb, "../x", &err), &err, SBX_E_NO_PROCESS, NULL,
               "an id that is not a number is refused");
  free (id);
}

/* Findings of the security review, kept as regressions. */
static void
test_stream_in_step (sbx_sandbox_t *sb)
{
  /* A command that exits without reading its stdin leaves unsent input
     behind; the next call must not see the stream out of step. */
  size_t n = 8u << 20;
  char *big = malloc (n);
  memset (big, 'z', n);
  bool all_fine = true;
  for (int i = 0; i < 3; i++)
    {
      sbx_exec_opts_t o;
      sbx_exec_result_t res;
      sbx_error_t *err = NULL;
      sbx_exec_opts_init (&o);
      o.stdin_data = big;
      o.stdin_len = n;
      int r = sbx_exec (sb, "true", &o, &res, &err);
      sbx_exec_result_free (&res);
      sbx_error_free (err);
      const char *out = run (sb, "echo next", NULL);
      if (r < 0 || out == NULL || strcmp (out, "next\n") != 0)
        all_fine = false;
    }
  ok (all_fine, "unread stdin never puts the next call out of step");
  free (big);
}

static void
test_bg_hostile (sbx_sandbox_t *sb)
{
  /* A command longer than the listing shows is cut, so listings stay small. */
  char cmd[3000];
  memset (cmd, ' ', sizeof cmd);
  memcpy (cmd, "sleep 300", 9);
  memcpy (cmd + sizeof cmd - 6, "#tail", 6);
  char *id = NULL, *flood = NULL;
  sbx_error_t *err = NULL;
  if (!check_ok (sbx_bg_start (sb, cmd, NULL, &id, &err), &err, "start a long command"))
    return;
  sbx_bg_info_t *items = NULL;
  size_t count = 0;
  if (check_ok (sbx_bg_list (sb, &items, &count, &err), &err, "list it"))
    {
      bool cut = false;
      for (size_t i = 0; i < count; i++)
        if (strcmp (items[i].id, id) == 0)
          cut = strlen (items[i].command) <= 1024
                && strncmp (items[i].command, "sleep 300", 9) == 0;
      ok (cut, "a listed command is cut at 1 KiB");
      sbx_bg_info_list_free (items, count);
    }
  /* A flood of output: the agent keeps 8 MiB of it (in its memory, out of
     the sandbox's reach), counts the rest as dropped, and hands out 1 MiB
     per read. */
  if (check_ok (sbx_bg_start (sb, "head -c 20000000 /dev/zero", NULL, &flood, &err), &err,
                "a background process prints 20 MB"))
    {
      sbx_bg_info_t info = { 0 };
      /* Until it is done, unread. */
      bool running = true;
      for (double end = now_s () + 20; running && now_s () < end;)
        {
          sbx_bg_info_t *all = NULL;
          size_t n = 0;
          if (sbx_bg_list (sb, &all, &n, &err) == 0)
            {
              running = false;
              for (size_t i = 0; i < n; i++)
                running |= strcmp (all[i].id, flood) == 0 && all[i].running;
            }
          else
            diag ("bg list: %s", sbx_error_message (err));
          sbx_error_free (err), err = NULL;
          sbx_bg_info_list_free (all, n);
          if (running)
            usleep (50000);
        }
      ok (!running, "it ends within 20 s, its output unread");
      size_t got = 0;
      for (int i = 0; i < 20; i++)
        {
          char *out = NULL;
          size_t len = 0;
          sbx_bg_info_clear (&info);
          if (sbx_bg_read (sb, flood, &out, &len, &info, &err) < 0)
            break;
          free (out);
          ok (len <= (1u << 20), "read %d: at most 1 MiB (%zu)", i, len);
          got += len;
          if (len == 0)
            break;
        }
      sbx_error_free (err), err = NULL;
      ok (info.dropped + got >= 20000000 - (1u << 20) && got <= (8u << 20) + (1u << 20),
          "at most 8 MiB kept, the rest counted as dropped (%zu read, %llu dropped)", got,
          (unsigned long long) info.dropped);
      sbx_bg_info_clear (&info);
      const char *rss = run (sb,
                             "awk '/^VmRSS/ {print ($2 < 16384) ? \"small\" : $2}' "
                             "/proc/1/status",
                             NULL);
      is_str (rss, "small\n", "the agent stays small (VmRSS under 16 MiB)");
    }
  sbx_bg_kill (sb, id, &err);
  sbx_error_free (err);
  free (id);
  free (flood);
}

int
main (void)
{
  sbx_sandbox_t *sb = start_sandbox (test_options ());
  if (!ok (sb != NULL, "sandbox started"))
    return done_testing ();
  test_basics (sb);
  test_output_cap (sb);
  test_timeout (sb);
  test_background (sb);
  test_stream_in_step (sb);
  test_bg_hostile (sb);
  remove_sandbox (sb);
  return done_testing ();
}
