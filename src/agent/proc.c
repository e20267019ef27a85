/* Processes: trees, kill-all, and the cgroup's counters, read from /proc
 * and /sys.
 *
 * A command runs in its own session, so "its processes" are: every process
 * of that session, every process in a process group of one of those, and
 * every child of one of those (a fixpoint: a job started with its own
 * process group, or a child that changed session, is still caught while its
 * parent lives). A process that calls setsid() after a double fork, whose
 * intermediate parent has exited, is indistinguishable from an unrelated
 * process and escapes; KILL_ALL, and the container's own teardown, still
 * end it. */
#include "agent.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#define KILL_ALL_LIMIT_MS 5000
#define KILL_ALL_POLL_MS 10

typedef struct pinfo
{
  pid_t pid, ppid, pgrp, sid;
  bool live; /* not a zombie */
  bool in;   /* part of the tree */
} pinfo_t;

/* Fields 3 to 6 of /proc/PID/stat. The command name (field 2) is in
 * parentheses and may itself hold spaces and parentheses, so parsing
 * starts after the last ')'. */
static bool
read_stat (int procfd, const char *name, pinfo_t *p)
{
  char path[64], buf[512];
  snprintf (path, sizeof path, "%s/stat", name);
  int fd = openat (procfd, path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  ssize_t n = read (fd, buf, sizeof buf - 1);
  close (fd);
  if (n <= 0)
    return false;
  buf[n] = '\0';
  const char *rp = memrchr (buf, ')', (size_t) n);
  if (rp == NULL || rp[1] != ' ' || rp[2] == '\0' || rp[3] != ' ')
    return false;
  char state = rp[2];
  long f[3]; /* ppid, pgrp, session */
  char *q = (char *) rp + 3;
  for (int i = 0; i < 3; i++)
    {
      char *e;
      f[i] = strtol (q, &e, 10);
      if (e == q || *e != ' ')
        return false;
      q = e;
    }
  *p = (pinfo_t){ .pid = (pid_t) strtol (name, NULL, 10),
                  .ppid = (pid_t) f[0],
                  .pgrp = (pid_t) f[1],
                  .sid = (pid_t) f[2],
                  .live = state != 'Z' && state != 'X' };
  return true;
}

/* Every process visible in /proc; -1 when /proc cannot be read. */
static ssize_t
scan_procs (pinfo_t **out)
{
  int procfd = open ("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (procfd < 0)
    return -1;
  DIR *d = fdopendir (procfd);
  if (d == NULL)
    {
      close (procfd);
      return -1;
    }
  pinfo_t *v = NULL;
  size_t n = 0, cap = 0;
  struct dirent *e;
  while ((e = readdir (d)) != NULL)
    {
      if (e->d_name[0] < '1' || e->d_name[0] > '9')
        continue;
      if (n == cap)
        {
          size_t ncap = cap ? cap * 2 : 256;
          pinfo_t *nv = realloc (v, ncap * sizeof *nv);
          if (nv == NULL)
            break;
          v = nv;
          cap = ncap;
        }
      if (read_stat (procfd, e->d_name, &v[n]))
        n++;
    }
  closedir (d);
  *out = v;
  return (ssize_t) n;
}

int
proc_kill_tree (pid_t sid, int sig)
{
  cleanup_free pinfo_t *v = NULL;
  ssize_t n = scan_procs (&v);
  /* Without /proc, the session's process group is all that can be found. */
  if (n < 0)
    return kill (-sid, sig) == 0 ? 1 : 0;

  for (ssize_t i = 0; i < n; i++)
    v[i].in = v[i].sid == sid;
  for (bool changed = true; changed;)
    {
      changed = false;
      for (ssize_t i = 0; i < n; i++)
        for (ssize_t j = 0; j < n && !v[i].in; j++)
          if (v[j].in && (v[i].pgrp == v[j].pgrp || v[i].ppid == v[j].pid))
            v[i].in = changed = true;
    }

  int live = 0;
  for (ssize_t i = 0; i < n; i++)
    {
      /* Never the agent itself, whatever the links say. */
      if (!v[i].in || v[i].pid == 1)
        continue;
      live += v[i].live;
      if (sig && v[i].live && kill (v[i].pid, sig) < 0 && errno != ESRCH)
        agent_log ("cannot signal process %ld: %s", (long) v[i].pid, strerror (errno));
    }
  /* Catches members forked since the scan (they are in the group). */
  if (sig && live && kill (-sid, sig) < 0 && errno != ESRCH)
    agent_log ("cannot signal process group %ld: %s", (long) sid, strerror (errno));
  return live;
}

int
proc_count_others (void)
{
  cleanup_free pinfo_t *v = NULL;
  ssize_t n = scan_procs (&v);
  int live = 0;
  for (ssize_t i = 0; i < n; i++)
    live += v[i].live && v[i].pid != 1;
  return live;
}

void
proc_reap_zombies (bool (*keep) (pid_t pid))
{
  /* The agent's children, listed by the kernel (one thread: all of them);
     every process in /proc otherwise. */
  char buf[16384];
  int fd = open ("/proc/self/task/1/children", O_RDONLY | O_CLOEXEC);
  ssize_t n = fd >= 0 ? read_full (fd, buf, sizeof buf - 1) : -1;
  if (fd >= 0)
    close (fd);
  if (n >= 0 && (size_t) n < sizeof buf - 1)
    {
      buf[n] = '\0';
      for (char *p = buf, *end; *p; p = end)
        {
          pid_t pid = (pid_t) strtol (p, &end, 10);
          if (end == p)
            break;
          if (pid > 0 && !keep (pid))
            (void) waitpid (pid, NULL, WNOHANG);
        }
      return;
    }
  cleanup_free pinfo_t *v = NULL;
  ssize_t count = scan_procs (&v);
  for (ssize_t i = 0; i < count; i++)
    if (!v[i].live && v[i].ppid == 1 && !keep (v[i].pid))
      (void) waitpid (v[i].pid, NULL, WNOHANG);
}

/* Reads the small file PATH into BUF, NUL-terminated; -1 when missing. */
static ssize_t
read_small (const char *path, char *buf, size_t cap)
{
  int fd = open (path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0)
    return -1;
  ssize_t n = read_full (fd, buf, cap - 1);
  close (fd);
  if (n >= 0)
    buf[n] = '\0';
  return n;
}

/* The cgroup's memory events (v2) or OOM control (v1) file, opened once. */
static int oom_fd = -2;

int64_t
oom_kill_count (void)
{
  if (oom_fd == -2)
    {
      oom_fd = open ("/sys/fs/cgroup/memory.events", O_RDONLY | O_CLOEXEC);
      if (oom_fd < 0)
        oom_fd = open ("/sys/fs/cgroup/memory/memory.oom_control", O_RDONLY | O_CLOEXEC);
    }
  char buf[2048];
  ssize_t n = oom_fd >= 0 ? pread (oom_fd, buf, sizeof buf - 1, 0) : -1;
  if (n < 0)
    return -1;
  buf[n] = '\0';
  for (const char *line = buf; line; line = strchr (line, '\n'))
    {
      if (*line == '\n')
        line++;
      if (strncmp (line, "oom_kill ", 9) == 0)
        return strtoll (line + 9, NULL, 10);
    }
  return -1;
}

int64_t
pids_limit (void)
{
  char buf[64];
  if (read_small ("/sys/fs/cgroup/pids.max", buf, sizeof buf) <= 0
      && read_small ("/sys/fs/cgroup/pids/pids.max", buf, sizeof buf) <= 0)
    return -1;
  char *end;
  long long v = strtoll (buf, &end, 10);
  return end != buf && v > 0 ? v : -1;
}

/* ------------------------------------------------------------ KILL_ALL */

/* Every process but the agent, until none is left: the way out of a fork
 * bomb without losing the container. kill (-1) from PID 1 reaches all the
 * others; forks racing it fail, since a process with SIGKILL pending
 * cannot fork. The commands the agent supervises end as killed. */
typedef struct kill_all
{
  int64_t give_up;
  int found;
} kill_all_t;

static bool
kill_all_step (conn_t *c)
{
  kill_all_t *k = c->job_data;
  int left = proc_count_others ();
  if (left > 0 && now_ms () < k->give_up)
    {
      if (kill (-1, SIGKILL) < 0 && errno != ESRCH)
        agent_log ("cannot kill processes: %s", strerror (errno));
      conn_wake_at (c, now_ms () + KILL_ALL_POLL_MS);
      return false;
    }
  if (left > 0)
    reply_err (c, SBX_E_IO, "%d processes were still alive %d s after SIGKILL", left,
               KILL_ALL_LIMIT_MS / 1000);
  else
    reply_ok (c, SBX_T_COUNT, k->found);
  free (k);
  return true;
}

static void
kill_all_abort (conn_t *c)
{
  free (c->job_data);
}

static const job_ops_t kill_all_ops = { kill_all_step, NULL, kill_all_abort };

void
handle_kill_all (conn_t *c, const sbx_msg_t *m)
{
  (void) m;
  kill_all_t *k = calloc (1, sizeof *k);
  if (k == NULL)
    {
      reply_err (c, SBX_E_IO, "out of memory");
      return;
    }
  k->found = proc_count_others ();
  k->give_up = now_ms () + KILL_ALL_LIMIT_MS;
  if (kill (-1, SIGKILL) < 0 && errno != ESRCH)
    agent_log ("cannot kill processes: %s", strerror (errno));
  conn_start_job (c, &kill_all_ops, k);
}
