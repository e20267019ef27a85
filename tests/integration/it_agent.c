/* The agent under attack from inside its own sandbox: it serves from PID 1
 * alone, nothing inside can stop it, it works at every limit, every
 * operation ends, it repairs its socket, and it stays quiet. Each test plays
 * the attacker and checks the outcome exactly. */
#include "helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

/* Seconds an operation bounded by SECONDS may take on a busy machine. */
#define SLACK 8.0

/* A fresh handle on SB's sandbox runs `echo ok` within SECONDS. */
static bool
fresh_handle_works (sbx_sandbox_t *sb, double seconds)
{
  double t0 = now_s ();
  sbx_sandbox_t *other = NULL;
  sbx_error_t *err = NULL;
  const char *out = NULL;
  if (sbx_sandbox_open (sbx_sandbox_id (sb), &other, &err) == 0)
    out = run (other, "echo ok", NULL);
  else
    diag ("open: %s", sbx_error_message (err));
  sbx_error_free (err);
  sbx_sandbox_free (other);
  return out && strcmp (out, "ok\n") == 0 && now_s () - t0 < seconds;
}

/* ------------------------------------------------------ PID 1 alone */

static void
test_pid1_alone (sbx_sandbox_t *sb)
{
  is_str (run (sb, "ls /proc/1/task", NULL), "1\n", "the agent is one thread");
  is_str (run (sb,
               "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline 2>/dev/null; echo; done "
               "| grep -c '^/.sbx/agent'",
               NULL),
          "1\n", "the agent is one process");
  is_str (run (sb, "cut -d' ' -f4 /proc/$$/stat", NULL), "1\n", "a command's parent is PID 1");
  char *id = NULL;
  sbx_error_t *err = NULL;
  if (check_ok (sbx_bg_start (sb, "exec sleep 300", NULL, &id, &err), &err, "a background process"))
    {
      sbx_bg_info_t *items = NULL;
      size_t n = 0;
      char cmd[128] = "false";
      if (sbx_bg_list (sb, &items, &n, &err) == 0)
        for (size_t i = 0; i < n; i++)
          if (strcmp (items[i].id, id) == 0)
            snprintf (cmd, sizeof cmd, "cut -d' ' -f4 /proc/%lld/stat", (long long) items[i].pid);
      sbx_bg_info_list_free (items, n);
      sbx_error_free (err), err = NULL;
      is_str (run (sb, cmd, NULL), "1\n", "a background process's parent is PID 1");
      /* Its state is in the agent's memory: nothing in the sandbox to tamper with. */
      run (sb, "rm -rf /run/* /tmp/* /var/run/* 2>/dev/null; true", NULL);
      n = 0;
      bool listed = false;
      if (check_ok (sbx_bg_list (sb, &items, &n, &err), &err, "list after wiping /run and /tmp"))
        for (size_t i = 0; i < n; i++)
          listed |= strcmp (items[i].id, id) == 0 && items[i].running;
      ok (listed, "the background process is still listed, running");
      sbx_bg_info_list_free (items, n);
      check_ok (sbx_bg_kill (sb, id, &err), &err, "and killed");
    }
  free (id);
}

/* ------------------------------------------------------ signals and co */

/* rt_sigqueueinfo with a forged sender: pid 0, as the host's signals read. */
static const char *spoof_script
    = "import ctypes, struct\n"
      "libc = ctypes.CDLL(None, use_errno=True)\n"
      "sent = []\n"
      "for sig in (15, 2, 1):\n"
      "    info = struct.pack('iiiiii', sig, 0, -1, 0, 0, 0) + bytes(104)\n"
      "    buf = ctypes.create_string_buffer(info, 128)\n"
      "    sent.append(libc.syscall(129, 1, sig, buf))\n"
      "print('sent', *sent)\n";

/* Prints "read" once no TERM or INT waits for the agent: it has read them
 * from its signalfd (they stay pending until then). */
static const char *term_int_read
    = "for m in $(awk '/^(SigPnd|ShdPnd)/ {print $2}' /proc/1/status); do "
      "[ $((0x$m & 0x4002)) = 0 ] || echo pending; done; echo read";

static void
test_signals (sbx_sandbox_t *sb)
{
  int code = -1;
  is_str (run (sb, "kill -9 -1 2>/dev/null; echo survived", &code), "survived\n",
          "kill -9 -1 in a command: the exec returns what it printed");
  is_int (code, 0, "and its exit code");
  is_str (run (sb,
               "kill -KILL $PPID; kill -STOP 1; kill -TERM 1; kill -INT 1; kill -HUP 1; "
               "kill -SEGV 1; echo alive",
               NULL),
          "alive\n", "KILL, STOP, TERM, INT, HUP and SEGV sent to the agent change nothing");
  run (sb,
       "python3 -c \"\nimport os\nfor s in range(1, 65):\n    try: os.kill(1, s)\n"
       "    except OSError: pass\"",
       NULL);
  is_str (run (sb, "echo after-all-signals", NULL), "after-all-signals\n",
          "every signal number sent to PID 1: the agent still answers");
  sbx_error_t *err = NULL;
  check_ok (sbx_write (sb, "/tmp/spoof.py", spoof_script, strlen (spoof_script), &err), &err,
            "a script that forges signals");
  is_str (run (sb, "python3 /tmp/spoof.py", NULL), "sent 0 0 0\n",
          "TERM, INT and HUP queued with a forged sender");
  ok (run_until (sb, term_int_read, "read\n", 10), "the agent has read them");
  is_str (run (sb, "echo not-fooled", NULL), "not-fooled\n",
          "a signal that claims to come from outside does not stop the agent");
  is_str (run (sb,
               "python3 -c \"import ctypes; l = ctypes.CDLL(None, use_errno=True); "
               "print(l.ptrace(16, 1, 0, 0), ctypes.get_errno())\"",
               NULL),
          "-1 1\n", "ptrace attach to the agent: EPERM");
  char limits[512];
  const char *before = run (sb, "grep -E '^Max (open files|cpu time)' /proc/1/limits", NULL);
  snprintf (limits, sizeof limits, "%s", before ? before : "");
  is_str (run (sb,
               "prlimit --pid 1 --nofile=4:4 >/dev/null 2>&1; echo $?; "
               "setpriv --reuid=65534 --regid=65534 --clear-groups prlimit --pid 1 "
               "--cpu=1:1 >/dev/null 2>&1; echo $?",
               NULL),
          "1\n1\n", "prlimit on the agent (as root, and as any other user): refused");
  is_str (run (sb, "grep -E '^Max (open files|cpu time)' /proc/1/limits", NULL), limits,
          "the agent's limits are untouched");
  is_str (run (sb,
               "cat /proc/1/oom_score_adj; (echo 1000 > /proc/1/oom_score_adj) 2>/dev/null || "
               "echo refused; (echo 1000 > /proc/1/task/1/oom_score_adj) 2>/dev/null || "
               "echo refused; cat /proc/1/oom_score_adj /proc/self/oom_score_adj",
               NULL),
          "0\nrefused\nrefused\n0\n500\n",
          "the agent's OOM score is read-only; commands are the OOM killer's first choice");

  /* Everything inside killed and stopped in a loop, while the host works. */
  char *looper = NULL;
  if (!check_ok (sbx_bg_start (sb,
                               "echo looping; while :; do kill -KILL -1; kill -STOP -1; done "
                               "2>/dev/null",
                               NULL, &looper, &err),
                 &err, "a loop that kills and stops every process it can"))
    return;
  char said[256] = "";
  ok (bg_output_until (sb, looper, "looping\n", said, sizeof said), "the loop runs");
  bool all_returned = true;
  double t0 = now_s ();
  for (int i = 0; i < 20; i++)
    {
      sbx_exec_result_t res;
      if (sbx_exec (sb, "echo x", NULL, &res, &err) < 0)
        {
          diag ("exec %d: %s", i, sbx_error_message (err));
          sbx_error_free (err), err = NULL;
          all_returned = false;
        }
      sbx_exec_result_free (&res);
    }
  ok (all_returned && now_s () - t0 < 30,
      "under the loop, every exec returns a result (its command killed or not)");
  check_ok (sbx_write (sb, "/workspace/under-attack.txt", "still\n", 6, &err), &err,
            "write under the loop");
  char *text = NULL;
  if (check_ok (sbx_read (sb, "/workspace/under-attack.txt", 0, 0, &text, &err), &err,
                "read under the loop"))
    is_str (text, "     1\tstill\n", "what was written");
  free (text);
  sbx_file_list_t list;
  check_ok (sbx_ls (sb, "/workspace", NULL, &list, &err), &err, "ls under the loop");
  sbx_file_list_free (&list);
  size_t killed = 0;
  if (check_ok (sbx_sandbox_kill_all (sb, &killed, &err), &err, "kill_all ends the loop"))
    ok (killed >= 1, "it killed the loop (%zu processes)", killed);
  is_str (run (sb, "echo back", NULL), "back\n", "and commands run again");
  free (looper);
}

/* ------------------------------------------------------ at the pids limit */

/* Takes up to 1 MiB of a stream, then stops it. */
static int
drain_cb (const void *data, size_t len, void *ud)
{
  (void) data;
  size_t *total = ud;
  *total += len;
  return *total >= (1u << 20);
}

/* Runs `true` until exec fails with limit_reached (or 10 s pass); its
 * message in MSG. Until the limit is reached, commands may still start. */
static bool
limit_reached (sbx_sandbox_t *sb, char *msg, size_t cap)
{
  for (double end = now_s () + 10; now_s () < end; usleep (50000))
    {
      sbx_exec_result_t res;
      sbx_error_t *err = NULL;
      int r = sbx_exec (sb, "true", NULL, &res, &err);
      sbx_exec_result_free (&res);
      snprintf (msg, cap, "%s", sbx_error_message (err));
      sbx_error_free (err);
      if (r == -SBX_E_LIMIT)
        return true;
    }
  return false;
}

static void
test_fork_bomb (void)
{
  sbx_options_t *o = test_options ();
  sbx_options_set_pids (o, 64, NULL);
  sbx_sandbox_t *sb = start_sandbox (o);
  if (!ok (sb != NULL, "a sandbox with 64 pids"))
    return;
  sbx_error_t *err = NULL;
  check_ok (sbx_write (sb, "/workspace/notes.txt", "alpha\nbeta\n", 11, &err), &err,
            "a file before the bomb");
  /* Every process forks on and on: the pids limit stays full. */
  static const char bomb_py[] = "import os\nwhile True:\n    try:\n        os.fork()\n"
                                "    except OSError:\n        pass\n";
  check_ok (sbx_write (sb, "/tmp/bomb.py", bomb_py, sizeof bomb_py - 1, &err), &err, "a bomb");
  char *bomb = NULL;
  check_ok (sbx_bg_start (sb, "python3 /tmp/bomb.py", NULL, &bomb, &err), &err,
            "a fork bomb in the background");
  char msg[512];
  if (!ok (limit_reached (sb, msg, sizeof msg), "the bomb fills the pids limit"))
    {
      remove_sandbox (sb);
      free (bomb);
      return;
    }
  ok (strstr (msg, "limit of 64 processes") && strstr (msg, "pids limit")
          && strstr (msg, "sbx kill"),
      "exec fails with limit_reached, naming the limit and the way out (%s)", msg);
  sbx_exec_result_t res;
  double t0 = now_s ();
  int r = sbx_exec (sb, "true", NULL, &res, &err);
  sbx_exec_result_free (&res);
  ok (r == -SBX_E_LIMIT && now_s () - t0 < 2, "and fails at once");
  sbx_error_free (err), err = NULL;

  /* Everything that needs no new process still works. */
  char *text = NULL;
  if (check_ok (sbx_read (sb, "notes.txt", 0, 0, &text, &err), &err, "read at the limit"))
    is_str (text, "     1\talpha\n     2\tbeta\n", "its content");
  free (text);
  check_ok (sbx_write (sb, "new.txt", "gamma\n", 6, &err), &err, "write at the limit");
  size_t n = 0;
  check_ok (sbx_edit (sb, "notes.txt", "beta", "delta", false, &n, &err), &err,
            "edit at the limit");
  sbx_file_list_t list;
  if (check_ok (sbx_ls (sb, NULL, NULL, &list, &err), &err, "ls at the limit"))
    is_int (list.count, 2, "two files");
  sbx_file_list_free (&list);
  if (check_ok (sbx_glob (sb, "*.txt", NULL, NULL, &list, &err), &err, "glob at the limit"))
    is_int (list.count, 2, "two matches");
  sbx_file_list_free (&list);
  sbx_grep_result_t g;
  if (check_ok (sbx_grep (sb, "delta", NULL, &g, &err), &err, "grep at the limit"))
    is_int (g.count, 1, "one match");
  sbx_grep_result_free (&g);
  bool exists = false;
  check_ok (sbx_exists (sb, "new.txt", &exists, &err), &err, "exists at the limit");
  sbx_path_info_t info;
  if (check_ok (sbx_resolve (sb, "new.txt", &info, &err), &err, "resolve at the limit"))
    ok (info.exists && info.is_file && info.size == 6, "resolve describes it");
  sbx_path_info_clear (&info);
  sbx_bg_info_t *items = NULL;
  size_t count = 0;
  if (check_ok (sbx_bg_list (sb, &items, &count, &err), &err, "bg list at the limit"))
    ok (count == 1 && items[0].running, "the bomb is listed, running");
  sbx_bg_info_list_free (items, count);
  char *out = NULL;
  size_t len = 0;
  check_ok (sbx_bg_read (sb, bomb, &out, &len, NULL, &err), &err, "bg read at the limit");
  free (out);
  size_t total = 0;
  check_ok (sbx_read_stream (sb, "notes.txt", drain_cb, &total, &err), &err,
            "read_stream at the limit");

  /* The way out. */
  size_t killed = 0;
  t0 = now_s ();
  if (check_ok (sbx_sandbox_kill_all (sb, &killed, &err), &err, "kill_all"))
    ok (killed > 10 && now_s () - t0 < 10, "killed the bomb (%zu processes)", killed);
  is_str (run (sb, "echo still-works", NULL), "still-works\n", "commands run again");
  is_str (run (sb, "cat notes.txt new.txt", NULL), "alpha\ndelta\ngamma\n", "no file was lost");
  t0 = now_s ();
  check_ok (sbx_bg_kill (sb, bomb, &err), &err, "killing the ended bomb is fine");
  ok (now_s () - t0 < 5, "and quick");
  if (check_ok (sbx_bg_list (sb, &items, &count, &err), &err, "bg list after kill_all"))
    ok (count == 1 && !items[0].running && items[0].exit_code == 137,
        "the bomb's entry says it was killed");
  sbx_bg_info_list_free (items, count);

  /* The CLI's way out, on a second bomb. */
  free (bomb);
  check_ok (sbx_bg_start (sb, "python3 /tmp/bomb.py", NULL, &bomb, &err), &err, "a second bomb");
  ok (limit_reached (sb, msg, sizeof msg), "fills the limit again");
  char cmd[256];
  snprintf (cmd, sizeof cmd, "build/sbx kill %s", sbx_sandbox_id (sb));
  FILE *p = popen (cmd, "r");
  char line[128] = "";
  if (p && fgets (line, sizeof line, p) == NULL)
    line[0] = '\0';
  int status = p ? pclose (p) : -1;
  ok (status == 0 && strncmp (line, "killed ", 7) == 0, "`sbx kill ID` ends it (%s)", line);
  is_str (run (sb, "echo again", NULL), "again\n", "commands run again");
  free (bomb);
  remove_sandbox (sb);
}

/* ------------------------------------------------------ every operation ends */

/* Expects R to be a failure with CODE within LIMIT seconds of T0. */
static void
fails_in_time (int r, sbx_error_t **err, int code, const char *needle, double t0, double limit,
               const char *what)
{
  double took = now_s () - t0;
  check_fails (r, err, code, needle, what);
  ok (took < limit, "%s: ended in %.1f s", what, took);
}

static const char *lease_script = "import fcntl, os, signal, time\n"
                                  "signal.signal(signal.SIGIO, signal.SIG_IGN)\n"
                                  "fd = os.open('/workspace/adv/leased', os.O_RDWR)\n"
                                  "fcntl.fcntl(fd, 1024, fcntl.F_WRLCK)\n" /* F_SETLEASE */
                                  "print('leased', flush=True)\n"
                                  "time.sleep(600)\n";

static void
test_adversarial_files (sbx_sandbox_t *sb)
{
  sbx_error_t *err = NULL;
  const double limit = 3;
  check_ok (sbx_sandbox_set_file_timeout (sb, limit, &err), &err, "file operations get 3 s");
  check_fails (sbx_sandbox_set_file_timeout (sb, 0, &err), &err, SBX_E_INVALID, "above 0",
               "a file time limit of 0 is refused");
  int code = -1;
  run (sb,
       "mkdir -p /workspace/adv/sub && cd /workspace/adv && "
       "python3 -c \"open('sparse', 'w').write('first line\\n' + 'x' * 70000 + '\\n')\" && "
       "truncate -s 1T sparse && "
       "mkfifo fifo && python3 -c \"import socket; socket.socket(socket.AF_UNIX).bind('sock')\" "
       "&& ln -s loop1 loop2 && ln -s loop2 loop1 && ln -s . self && ln -s .. sub/up && "
       "head -c 50000000 /dev/zero | tr '\\0' a > longline && echo text > leased && "
       "python3 -c \"import os; p = '/workspace/adv/deep' + '/d' * 300; os.makedirs(p); "
       "open(p + '/leaf', 'w')\" && echo ready",
       &code);
  is_int (code, 0, "adversarial content made");
  char *lease_id = NULL;
  check_ok (sbx_write (sb, "/tmp/lease.py", lease_script, strlen (lease_script), &err), &err,
            "a script that takes a lease");
  check_ok (sbx_bg_start (sb, "python3 /tmp/lease.py", NULL, &lease_id, &err), &err,
            "a write lease held on a file");
  char said[256] = "";
  ok (bg_output_until (sb, lease_id, "leased\n", said, sizeof said), "the lease is taken");

  double t0 = now_s ();
  sbx_grep_result_t g;
  sbx_grep_opts_t go = { .path = "/workspace/adv" };
  if (check_ok (sbx_grep (sb, "zzz", &go, &g, &err), &err, "grep over a 1 TB sparse file and co"))
    ok (g.truncated && now_s () - t0 < limit + SLACK, "ends on time, flagged truncated (%.1f s)",
        now_s () - t0);
  sbx_grep_result_free (&g);
  t0 = now_s ();
  go.path = "/workspace/adv/sparse";
  if (check_ok (sbx_grep (sb, "zzz", &go, &g, &err), &err, "grep of the sparse file alone"))
    ok (g.truncated && now_s () - t0 < limit + SLACK, "ends on time, flagged truncated");
  sbx_grep_result_free (&g);
  t0 = now_s ();
  go.path = "/workspace/adv/longline";
  if (check_ok (sbx_grep (sb, "(a+)+b", &go, &g, &err), &err,
                "a runaway pattern over a 50 MB line"))
    ok (g.count == 0 && now_s () - t0 < limit + SLACK, "ends on time");
  sbx_grep_result_free (&g);

  char *text = NULL;
  t0 = now_s ();
  fails_in_time (sbx_read (sb, "/workspace/adv/sparse", 5, 1, &text, &err), &err, SBX_E_TIMEOUT,
                 "time limit", t0, limit + SLACK, "read past the first line of the sparse file");
  t0 = now_s ();
  if (check_ok (sbx_read (sb, "/workspace/adv/longline", 0, 1, &text, &err), &err,
                "read of a 50 MB line"))
    ok (strlen (text) < (17u << 20) && strstr (text, "more lines follow"), "cut, with a note");
  free (text);
  text = NULL;
  void *data = NULL;
  size_t len = 0;
  t0 = now_s ();
  fails_in_time (sbx_read_bytes (sb, "/workspace/adv/sparse", &data, &len, &err), &err,
                 SBX_E_TOO_LARGE, "limit", t0, 2, "read_bytes of the sparse file");
  size_t total = 0;
  t0 = now_s ();
  fails_in_time (sbx_read_stream (sb, "/workspace/adv/sparse", drain_cb, &total, &err), &err,
                 SBX_E_INVALID, "stopped by the caller", t0, 5, "read_stream stopped after 1 MiB");
  const char *nonfiles[] = { "/workspace/adv/fifo", "/workspace/adv/sock", "/dev/zero",
                             "/dev/urandom", NULL };
  for (const char *const *f = nonfiles; *f; f++)
    {
      t0 = now_s ();
      char what[128];
      snprintf (what, sizeof what, "read of %s", *f);
      fails_in_time (sbx_read (sb, *f, 0, 0, &text, &err), &err, SBX_E_INVALID,
                     "not a regular file", t0, 2, what);
      snprintf (what, sizeof what, "edit of %s", *f);
      fails_in_time (sbx_edit (sb, *f, "a", "b", false, NULL, &err), &err, SBX_E_INVALID,
                     "not a regular file", t0, 2, what);
    }
  t0 = now_s ();
  fails_in_time (sbx_read (sb, "/workspace/adv/leased", 0, 0, &text, &err), &err, SBX_E_PERMISSION,
                 "lease", t0, 2, "read of a file under a lease");
  t0 = now_s ();
  fails_in_time (sbx_edit (sb, "/workspace/adv/sparse", "a", "b", false, NULL, &err), &err,
                 SBX_E_TOO_LARGE, "edit handles", t0, 2, "edit of the sparse file");
  sbx_path_info_t info;
  t0 = now_s ();
  fails_in_time (sbx_resolve (sb, "/workspace/adv/loop1", &info, &err), &err, SBX_E_INVALID,
                 "symbolic links", t0, 2, "resolve of a symlink loop");
  t0 = now_s ();
  if (check_ok (sbx_resolve (sb, "/workspace/adv/sub/up/self/self/sub/missing/../x", &info, &err),
                &err, "resolve through links to a missing name"))
    ok (strcmp (info.path, "/workspace/adv/sub/x") == 0 && !info.exists,
        "resolved as realpath -m does (%s)", info.path);
  sbx_path_info_clear (&info);
  sbx_file_list_t list;
  t0 = now_s ();
  if (check_ok (sbx_glob (sb, "**", "/workspace/adv", NULL, &list, &err), &err,
                "glob ** through links, loops and a 300-deep tree"))
    ok (now_s () - t0 < limit + SLACK && list.count == 5 && list.truncated,
        "ends on time, past 256 levels flagged truncated (%zu files)", list.count);
  sbx_file_list_free (&list);
  t0 = now_s ();
  check_ok (sbx_write (sb, "/workspace/adv/fifo", "now a file\n", 11, &err), &err,
            "write over a FIFO replaces it");
  ok (now_s () - t0 < 2, "at once");

  /* A file that grows without end. */
  char *grower = NULL;
  check_ok (sbx_bg_start (sb, "yes grow > /workspace/adv/grow", NULL, &grower, &err), &err,
            "a file that keeps growing");
  ok (run_until (sb, "[ $(wc -c < /workspace/adv/grow) -gt 1048576 ] && echo grown", "grown\n", 10),
      "it has grown past 1 MiB");
  t0 = now_s ();
  go.path = "/workspace/adv/grow";
  if (check_ok (sbx_grep (sb, "zzz", &go, &g, &err), &err, "grep of the growing file"))
    ok (g.truncated && now_s () - t0 < limit + SLACK, "ends on time");
  sbx_grep_result_free (&g);
  sbx_bg_kill (sb, grower, NULL);
  sbx_bg_kill (sb, lease_id, NULL);
  free (grower);
  free (lease_id);
  run (sb, "rm -rf /workspace/adv", NULL);
  sbx_sandbox_set_file_timeout (sb, SBX_DEFAULT_FILE_TIMEOUT, NULL);
}

/* ------------------------------------------------------ slow reader */

static int
slow_reader (enum sbx_stream stream, const char *data, size_t len, void *ud)
{
  (void) stream, (void) data, (void) len, (void) ud;
  usleep (100000);
  return 0;
}

static void
test_slow_reader (sbx_sandbox_t *sb)
{
  sbx_exec_opts_t eo;
  sbx_exec_opts_init (&eo);
  eo.timeout = 1;
  eo.max_output = 512u << 20;
  eo.on_output = slow_reader;
  sbx_exec_result_t res;
  sbx_error_t *err = NULL;
  double t0 = now_s ();
  if (check_ok (sbx_exec (sb, "exec yes", &eo, &res, &err), &err,
                "yes with a 1 s timeout, read at 640 KB/s"))
    {
      ok (res.timed_out && res.exit_code == 124, "timed out (exit %d)", res.exit_code);
      ok (now_s () - t0 < 1 + SLACK, "on time whatever the reading pace (%.1f s)", now_s () - t0);
    }
  sbx_exec_result_free (&res);
  is_str (run (sb,
               "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline 2>/dev/null; echo; done "
               "| grep -c '^yes' || true",
               NULL),
          "0\n", "the command is gone");
}

/* ------------------------------------------------------ kill-all mid-exec */

struct bg_exec
{
  sbx_sandbox_t *sb;
  int r, code;
  double took;
};

static void *
long_exec (void *arg)
{
  struct bg_exec *b = arg;
  sbx_exec_result_t res;
  double t0 = now_s ();
  b->r = sbx_exec (b->sb, "sleep 100", NULL, &res, NULL);
  b->code = res.exit_code;
  b->took = now_s () - t0;
  sbx_exec_result_free (&res);
  return NULL;
}

static void
test_kill_all_mid_exec (sbx_sandbox_t *sb)
{
  sbx_sandbox_t *other = NULL;
  sbx_error_t *err = NULL;
  if (!check_ok (sbx_sandbox_open (sbx_sandbox_id (sb), &other, &err), &err, "a second handle"))
    return;
  struct bg_exec b = { .sb = other };
  pthread_t t;
  pthread_create (&t, NULL, long_exec, &b);
  ok (run_until (sb,
                 "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline 2>/dev/null; echo; done "
                 "| grep -c '^sleep 10[0]'",
                 "1\n", 10),
      "the command runs");
  size_t killed = 0;
  check_ok (sbx_sandbox_kill_all (sb, &killed, &err), &err, "kill_all while a command runs");
  pthread_join (t, NULL);
  ok (b.r == 0 && b.code == 137 && b.took < 10,
      "the running exec ends at once, killed (r=%d, exit %d, %.1f s)", b.r, b.code, b.took);
  sbx_sandbox_free (other);
}

/* ------------------------------------------------------ the socket */

/* The agent may put its socket back between the unlink and the bind: the
 * impostor tries again until its bind (and its chmod, which the agent's
 * repair can beat) wins. */
static const char *impersonate_script = "import os, socket, time\n"
                                        "for _ in range(1000):\n"
                                        "    s = socket.socket(socket.AF_UNIX)\n"
                                        "    try:\n"
                                        "        os.unlink('/.sbx/run/agent.sock')\n"
                                        "    except FileNotFoundError:\n"
                                        "        pass\n"
                                        "    try:\n"
                                        "        s.bind('/.sbx/run/agent.sock')\n"
                                        "        os.chmod('/.sbx/run/agent.sock', 0o666)\n"
                                        "        break\n"
                                        "    except OSError:\n"
                                        "        s.close()\n"
                                        "else:\n"
                                        "    raise SystemExit('the agent kept its place')\n"
                                        "s.listen(5)\n"
                                        "print('listening', flush=True)\n"
                                        "time.sleep(600)\n";

static void
test_socket (sbx_sandbox_t *sealed)
{
  /* As root, the host seals the run folder once the agent answers. */
  is_str (run (sealed,
               "rm -f /.sbx/run/agent.sock 2>&1 | grep -c 'Read-only'; "
               "touch /.sbx/run/x 2>/dev/null || echo refused; ls /.sbx/run",
               NULL),
          "1\nrefused\nagent.sock\n", "the socket cannot be removed or replaced");
  ok (fresh_handle_works (sealed, 5), "a new connection works");

  /* A host that cannot seal it (not root): the agent repairs its socket.
     (Connections made before a socket was removed pin it, so this sandbox
     is not sealed again: it goes.) */
  sbx_sandbox_t *sb = start_sandbox (test_options ());
  if (!ok (sb != NULL, "a sandbox whose run folder stays writable"))
    return;
  char dir[512], cmd[700];
  run_dir (sb, dir, sizeof dir);
  snprintf (cmd, sizeof cmd, "mount -o remount,rw '%s'", dir);
  if (!ok (system (cmd) == 0, "the run folder made writable again from the host"))
    {
      remove_sandbox (sb);
      return;
    }
  is_str (run (sb, "rm /.sbx/run/agent.sock && echo removed", NULL), "removed\n",
          "the socket removed from inside");
  ok (fresh_handle_works (sb, 5), "a fresh socket is in place: a new connection works");
  sbx_error_t *err = NULL;
  check_ok (sbx_write (sb, "/tmp/fake.py", impersonate_script, strlen (impersonate_script), &err),
            &err, "an impostor's script");
  char *id = NULL;
  check_ok (sbx_bg_start (sb, "python3 /tmp/fake.py", NULL, &id, &err), &err,
            "a listener of its own in the socket's place");
  char said[256] = "";
  ok (bg_output_until (sb, id, "listening\n", said, sizeof said), "it listens");
  ok (fresh_handle_works (sb, 5), "replaced again by the agent: a new connection works");
  sbx_bg_kill (sb, id, NULL);
  free (id);
  is_str (run (sb,
               "for i in $(seq 100); do (: > /.sbx/run/f$i) 2>/dev/null; done; "
               "rm /.sbx/run/agent.sock; echo filled",
               NULL),
          "filled\n", "the folder filled to its last inode, the socket removed");
  ok (fresh_handle_works (sb, 5), "the agent clears the folder and makes its socket again");
  run (sb, "rm -f /.sbx/run/f*", NULL);

  /* While the agent is frozen, something else listens on its path, with a
     full backlog: the host refuses to talk to it, and never hangs. */
  char path[256];
  snprintf (path, sizeof path, "/containers/%s/pause", sbx_sandbox_id (sb));
  ok (engine ("POST", path, NULL, NULL, 0) == 0, "the agent frozen");
  char sock[sizeof ((struct sockaddr_un *) 0)->sun_path];
  if (snprintf (sock, sizeof sock, "%s/agent.sock", dir) >= (int) sizeof sock)
    diag ("the run folder's path is too long for a socket address");
  unlink (sock);
  int fake = socket (AF_UNIX, SOCK_STREAM, 0), filler = socket (AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  memcpy (addr.sun_path, sock, sizeof sock);
  bool placed = bind (fake, (struct sockaddr *) &addr, sizeof addr) == 0 && listen (fake, 0) == 0
                && connect (filler, (struct sockaddr *) &addr, sizeof addr) == 0;
  if (!ok (placed, "an impostor listens on the agent's path, its backlog full"))
    diag ("%s: %s", sock, strerror (errno));
  double t0 = now_s ();
  sbx_sandbox_t *other = NULL;
  int r = sbx_sandbox_open (sbx_sandbox_id (sb), &other, &err);
  sbx_exec_result_t res = { 0 };
  if (r == 0)
    r = sbx_exec (other, "echo hi", NULL, &res, &err);
  ok (r < 0 && sbx_error_code (err) == SBX_E_AGENT && now_s () - t0 < 10,
      "the host refuses it, in %.1f s (%s)", now_s () - t0, sbx_error_message (err));
  sbx_exec_result_free (&res);
  sbx_error_free (err), err = NULL;
  sbx_sandbox_free (other);
  snprintf (path, sizeof path, "/containers/%s/unpause", sbx_sandbox_id (sb));
  ok (engine ("POST", path, NULL, NULL, 0) == 0, "thawed");
  close (filler);
  close (fake);
  ok (fresh_handle_works (sb, 5), "the agent puts its socket back: a new connection works");
  t0 = now_s ();
  remove_sandbox (sb);
  ok (now_s () - t0 < 10, "and the sandbox is removed promptly");
}

/* ------------------------------------------------------ quiet */

static const char *connect_loop = "import socket, time\n"
                                  "n, end = 0, time.time() + 3\n"
                                  "while time.time() < end:\n"
                                  "    s = socket.socket(socket.AF_UNIX)\n"
                                  "    try:\n"
                                  "        s.connect('/.sbx/run/agent.sock'); n += 1\n"
                                  "    except OSError:\n"
                                  "        pass\n"
                                  "    s.close()\n"
                                  "print(n)\n";

static void
test_quiet (sbx_sandbox_t *sb)
{
  char path[256], body[65536];
  snprintf (path, sizeof path, "/containers/%s/json", sbx_sandbox_id (sb));
  if (ok (engine ("GET", path, NULL, body, sizeof body) == 0, "inspect the container"))
    ok (strstr (body, "\"LogConfig\":{\"Type\":\"json-file\",\"Config\":{\"max-file\":\"2\","
                      "\"max-size\":\"1m\"}}"),
        "its engine log is capped (json-file, 2 files of 1 MB)");
  sbx_error_t *err = NULL;
  check_ok (sbx_write (sb, "/tmp/loop.py", connect_loop, strlen (connect_loop), &err), &err,
            "a connect loop's script");
  const char *n = run (sb, "python3 /tmp/loop.py", NULL);
  long conns = n ? atol (n) : 0;
  ok (conns > 1000, "a connect loop from inside (%ld connections)", conns);
  snprintf (path, sizeof path, "/containers/%s/logs?stdout=1&stderr=1", sbx_sandbox_id (sb));
  if (ok (engine ("GET", path, NULL, body, sizeof body) == 0, "read the container's log"))
    ok (strlen (body) < 4096, "the log holds %zu bytes: refusals are rate-limited", strlen (body));
}

/* ------------------------------------------------------ timeouts */

static void
test_timeouts (sbx_sandbox_t *sb)
{
  sbx_exec_opts_t eo;
  sbx_exec_opts_init (&eo);
  sbx_exec_result_t res;
  sbx_error_t *err = NULL;
  eo.timeout = 0.0004;
  double t0 = now_s ();
  if (check_ok (sbx_exec (sb, "sleep 2", &eo, &res, &err), &err, "a 0.0004 s timeout"))
    ok (res.timed_out && res.exit_code == 124 && now_s () - t0 < 1.5,
        "rounds up to 1 ms: the command is timed out");
  sbx_exec_result_free (&res);
  double bad[] = { 1e300, -1, NAN, INFINITY, SBX_MAX_TIMEOUT + 1 };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    {
      eo.timeout = bad[i];
      char what[64];
      snprintf (what, sizeof what, "a timeout of %g s is refused", bad[i]);
      check_fails (sbx_exec (sb, "true", &eo, &res, &err), &err, SBX_E_INVALID,
                   "out of range: give 0 for none, or up to 2592000 s (30 days)", what);
    }
  eo.timeout = SBX_MAX_TIMEOUT;
  if (check_ok (sbx_exec (sb, "echo max", &eo, &res, &err), &err, "the longest timeout"))
    is_str (res.output, "max\n", "runs");
  sbx_exec_result_free (&res);
  FILE *p = popen ("build/sbx exec nothing --timeout 1e300 -- true 2>&1; echo \"exit $?\"", "r");
  char out[512] = "";
  size_t n = p ? fread (out, 1, sizeof out - 1, p) : 0;
  out[n] = '\0';
  if (p)
    pclose (p);
  is_str (out,
          "sbx exec: --timeout: a timeout of 1e+300 s is out of range: give 0 for none, or up to "
          "2592000 s (30 days)\nTry 'sbx exec --help' for more information.\nexit 125\n",
          "the CLI refuses it too");
}

/* ------------------------------------------------------ the host's deadlines */

static void *
hung_engine (void *arg)
{
  int fd = *(int *) arg;
  /* Accepts, reads, never answers. */
  int c[8], n = 0;
  while (n < 8 && (c[n] = accept (fd, NULL, NULL)) >= 0)
    n++;
  return NULL;
}

static void
test_hung_engine (void)
{
  char path[] = "/tmp/sbx-hung-XXXXXX";
  int tmp = mkstemp (path);
  close (tmp);
  unlink (path);
  int fd = socket (AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  snprintf (addr.sun_path, sizeof addr.sun_path, "%s", path);
  if (!ok (bind (fd, (struct sockaddr *) &addr, sizeof addr) == 0 && listen (fd, 8) == 0,
           "an engine that accepts and never answers"))
    return;
  pthread_t t;
  pthread_create (&t, NULL, hung_engine, &fd);
  char host[300];
  snprintf (host, sizeof host, "unix://%s", path);
  char *saved = getenv ("DOCKER_HOST") ? strdup (getenv ("DOCKER_HOST")) : NULL;
  setenv ("DOCKER_HOST", host, 1);
  setenv ("SBX_ENGINE_TIMEOUT", "2", 1);
  sbx_sandbox_info_t *items = NULL;
  size_t count = 0;
  sbx_error_t *err = NULL;
  double t0 = now_s ();
  fails_in_time (sbx_sandbox_list (&items, &count, &err), &err, SBX_E_TIMEOUT, "did not answer", t0,
                 2 + SLACK, "listing sandboxes");
  t0 = now_s ();
  int status = system ("build/sbx ps >/dev/null 2>&1");
  ok (WIFEXITED (status) && WEXITSTATUS (status) == 125 && now_s () - t0 < 2 + SLACK,
      "`sbx ps` fails in %.1f s", now_s () - t0);
  setenv ("SBX_ENGINE_TIMEOUT", "0", 1);
  check_fails (sbx_sandbox_list (&items, &count, &err), &err, SBX_E_INVALID,
               "SBX_ENGINE_TIMEOUT=0 is not a number of seconds", "a bad SBX_ENGINE_TIMEOUT");
  unsetenv ("SBX_ENGINE_TIMEOUT");
  if (saved)
    setenv ("DOCKER_HOST", saved, 1);
  else
    unsetenv ("DOCKER_HOST");
  free (saved);
  shutdown (fd, SHUT_RDWR);
  close (fd);
  unlink (path);
  pthread_cancel (t);
  pthread_join (t, NULL);
}

static void
test_paused_agent (void)
{
  sbx_sandbox_t *sb = start_sandbox (test_options ());
  if (!ok (sb != NULL, "a sandbox to pause"))
    return;
  char path[256];
  snprintf (path, sizeof path, "/containers/%s/pause", sbx_sandbox_id (sb));
  ok (engine ("POST", path, NULL, NULL, 0) == 0, "paused (frozen) through the engine");
  sbx_exec_result_t res;
  sbx_error_t *err = NULL;
  double t0 = now_s ();
  fails_in_time (sbx_exec (sb, "true", NULL, &res, &err), &err, SBX_E_TIMEOUT, "stopped answering",
                 t0, 10 + SLACK, "an exec in a frozen sandbox");
  t0 = now_s ();
  char *text = NULL;
  fails_in_time (sbx_read (sb, "/etc/hostname", 0, 0, &text, &err), &err, SBX_E_TIMEOUT, NULL, t0,
                 10 + SLACK, "a read in a frozen sandbox");
  snprintf (path, sizeof path, "/containers/%s/unpause", sbx_sandbox_id (sb));
  ok (engine ("POST", path, NULL, NULL, 0) == 0, "thawed");
  is_str (run (sb, "echo thawed", NULL), "thawed\n", "the handle works again");
  remove_sandbox (sb);
}

int
main (void)
{
  /* Room for the 1 TB sparse file of test_adversarial_files where the disk
     limit is a cap on each file. */
  sbx_options_t *o = test_options ();
  sbx_options_set_disk (o, 2LL << 40, NULL);
  sbx_sandbox_t *sb = start_sandbox (o);
  if (!ok (sb != NULL, "sandbox started"))
    return done_testing ();
  test_pid1_alone (sb);
  test_signals (sb);
  test_adversarial_files (sb);
  test_slow_reader (sb);
  test_kill_all_mid_exec (sb);
  test_timeouts (sb);
  test_socket (sb);
  test_quiet (sb);
  remove_sandbox (sb);
  test_fork_bomb ();
  test_hung_engine ();
  test_paused_agent ();
  return done_testing ();
}
