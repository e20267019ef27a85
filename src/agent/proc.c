/* Process trees and the cgroup's OOM counter, read from /proc and /sys.
 *
 * A command runs in its own session, so "its processes" are: every process
 * of that session, every process in a process group of one of those, and
 * every child of one of those (a fixpoint: a job started with its own
 * process group, or a child that changed session, is still caught while its
 * parent lives). A process that calls setsid() after a double fork, whose
 * intermediate parent has exited, is indistinguishable from an unrelated
 * process and escapes; the container's own teardown still ends it. */
#include "agent.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

typedef struct pinfo {
  pid_t pid, ppid, pgrp, sid;
  bool live;  /* not a zombie */
  bool in;    /* part of the tree */
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
  long f[3];  /* ppid, pgrp, session */
  char *q = (char *) rp + 3;
  for (int i = 0; i < 3; i++)
    {
      char *e;
      f[i] = strtol (q, &e, 10);
      if (e == q || *e != ' ')
        return false;
      q = e;
    }
  *p = (pinfo_t) { .pid = (pid_t) strtol (name, NULL, 10), .ppid = (pid_t) f[0],
                   .pgrp = (pid_t) f[1], .sid = (pid_t) f[2],
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

  pid_t self = getpid ();
  int live = 0;
  for (ssize_t i = 0; i < n; i++)
    {
      /* Never the agent itself, whatever the links say. */
      if (!v[i].in || v[i].pid == 1 || v[i].pid == self)
        continue;
      live += v[i].live;
      if (sig && kill (v[i].pid, sig) < 0 && errno != ESRCH)
        agent_log ("cannot signal process %ld: %s", (long) v[i].pid, strerror (errno));
    }
  /* Catches members forked since the scan (they are in the group). */
  if (sig && kill (-sid, sig) < 0 && errno != ESRCH)
    agent_log ("cannot signal process group %ld: %s", (long) sid, strerror (errno));
  return live;
}

/* The "oom_kill N" line of a cgroup file; -1 when missing. */
static int64_t
read_oom_kill (const char *path)
{
  char buf[2048];
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  ssize_t n = read_full (fd, buf, sizeof buf - 1);
  close (fd);
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
oom_kill_count (void)
{
  int64_t v = read_oom_kill ("/sys/fs/cgroup/memory.events");  /* cgroup v2 */
  return v >= 0 ? v : read_oom_kill ("/sys/fs/cgroup/memory/memory.oom_control");
}
