/* Starting the commands the host asks for (EXEC and BG_START): their
 * environment, their working directory, and their start as children of the
 * agent, and the reaping of every process.
 *
 * The agent reaps every exited process at once, except the commands it
 * tracks: each stays a zombie until its process tree has been dealt with,
 * so that its pid, the id of its session, is not given to another process
 * meanwhile. */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sched.h>
#include <sys/wait.h>

/* Commands are the OOM killer's first choice, never the agent (which keeps
 * the container's score; /proc/1/oom_score_adj is read-only inside). */
#define COMMAND_OOM_SCORE_ADJ "500"

extern char **environ;

/* environ with each "K=V" of OVERRIDES replacing K or added. The strings
 * are shared, not copied. */
static char **
build_env (char **overrides)
{
  size_t n = 0, k = 0;
  while (environ[n])
    n++;
  while (overrides[k])
    k++;
  char **env = calloc (n + k + 1, sizeof *env);
  if (env == NULL)
    return NULL;
  memcpy (env, environ, n * sizeof *env);
  for (char **o = overrides; *o; o++)
    {
      size_t keylen = (size_t) (strchr (*o, '=') - *o) + 1;
      bool replaced = false;
      for (size_t i = 0; i < n; i++)
        if (strncmp (env[i], *o, keylen) == 0)
          {
            env[i] = *o;
            replaced = true;
          }
      if (!replaced)
        env[n++] = *o;
    }
  return env;
}

void
cmd_free (cmd_spec_t *spec)
{
  free (spec->command);
  free (spec->cwd);
  for (char **o = spec->overrides; o && *o; o++)
    free (*o);
  free (spec->overrides);
  free (spec->env);
  memset (spec, 0, sizeof *spec);
}

int
cmd_parse (conn_t *c, const sbx_msg_t *m, cmd_spec_t *spec)
{
  memset (spec, 0, sizeof *spec);
  size_t nenv = 0;
  for (size_t i = 0; i < m->nfields; i++)
    nenv += m->fields[i].tag == SBX_T_ENV;
  if ((spec->overrides = calloc (nenv + 1, sizeof (char *))) == NULL)
    {
      reply_err (c, SBX_E_IO, "out of memory");
      return -1;
    }
  if ((spec->command = req_str (c, m, SBX_T_COMMAND, SBX_PROTO_MAX_BODY)) == NULL
      || (spec->cwd = req_path (c, m, SBX_T_CWD)) == NULL)
    goto fail;
  for (size_t i = 0, k = 0; i < m->nfields; i++)
    {
      if (m->fields[i].tag != SBX_T_ENV)
        continue;
      char *kv = sbx_field_strdup (&m->fields[i], SBX_PROTO_MAX_BODY);
      if (kv == NULL || kv[0] == '=' || strchr (kv, '=') == NULL)
        {
          reply_err (c, SBX_E_INVALID, "environment entries must be KEY=VALUE without NUL bytes");
          free (kv);
          goto fail;
        }
      spec->overrides[k++] = kv;
    }
  struct stat st;
  if (stat (spec->cwd, &st) < 0)
    {
      if (errno == ENOENT)
        reply_err (c, SBX_E_NOT_FOUND, "working directory %s does not exist", spec->cwd);
      else
        reply_errno (c, errno, "cannot use the working directory %s", spec->cwd);
      goto fail;
    }
  if (!S_ISDIR (st.st_mode))
    {
      reply_err (c, SBX_E_NOT_DIR, "working directory %s is not a directory", spec->cwd);
      goto fail;
    }
  if ((spec->env = build_env (spec->overrides)) == NULL)
    {
      reply_err (c, SBX_E_IO, "out of memory");
      goto fail;
    }
  return 0;
fail:
  cmd_free (spec);
  return -1;
}

/* What the child needs, handed over through memory it shares with the
 * agent until it execs. */
struct child_args
{
  const cmd_spec_t *spec;
  int in, out, err;
};

/* The child's side. It runs in the agent's memory, on its own stack, while
 * the agent waits (CLONE_VM | CLONE_VFORK): only system calls, nothing that
 * changes the state of the agent's libc. */
static int
child (void *arg)
{
  static const char cannot[] = "sbx: cannot start /bin/sh\n";
  const struct child_args *a = arg;
  if (setsid () < 0)
    goto fail;
  /* The agent's own stdin is /dev/null (main.c). */
  if (dup2 (a->in >= 0 ? a->in : 0, 0) < 0 || dup2 (a->out, 1) < 0 || dup2 (a->err, 2) < 0)
    goto fail;
  /* Ignored signals survive exec (the agent ignores SIGPIPE and SIGXFSZ,
     and handles no other), and so does the mask: start the command with a
     clean slate. */
  struct sigaction dfl = { .sa_handler = SIG_DFL };
  sigset_t none;
  sigemptyset (&none);
  if (sigaction (SIGPIPE, &dfl, NULL) < 0 || sigaction (SIGXFSZ, &dfl, NULL) < 0
      || sigprocmask (SIG_SETMASK, &none, NULL) < 0)
    goto fail;
  close_fds_from (3);
  /* Not close-on-exec: closed at once, and libc adds no call for it. */
  int fd = open ("/proc/self/oom_score_adj", O_WRONLY);
  if (fd >= 0)
    {
      (void) !write (fd, COMMAND_OOM_SCORE_ADJ, sizeof COMMAND_OOM_SCORE_ADJ - 1);
      close (fd);
    }
  if (chdir (a->spec->cwd) < 0)
    {
      static const char nodir[] = "sbx: cannot enter the working directory\n";
      (void) !write (2, nodir, sizeof nodir - 1);
      _exit (127);
    }
  char sh[] = "sh", dash_c[] = "-c";
  char *argv[] = { sh, dash_c, a->spec->command, NULL };
  execve ("/bin/sh", argv, a->spec->env);
fail:
  (void) !write (2, cannot, sizeof cannot - 1);
  _exit (127);
}

/* The commands the agent reaps itself (cmd_reap), not reap_children. */
static pid_t *tracked;
static size_t ntracked, tracked_cap;

static bool
is_tracked (pid_t pid)
{
  for (size_t i = 0; i < ntracked; i++)
    if (tracked[i] == pid)
      return true;
  return false;
}

pid_t
cmd_spawn (const cmd_spec_t *spec, int in, int out, int err)
{
  if (ntracked == tracked_cap)
    {
      size_t cap = tracked_cap ? tracked_cap * 2 : 64;
      pid_t *v = realloc (tracked, cap * sizeof *v);
      if (v == NULL)
        return errno = ENOMEM, -1;
      tracked = v;
      tracked_cap = cap;
    }
  /* As posix_spawn does: no copy of the agent's memory to make, and the
     agent goes on once the command has exec'd. The agent is one thread, so
     one stack serves every child. */
  static char stack[32 * 1024] __attribute__ ((aligned (16)));
  struct child_args a = { spec, in, out, err };
  pid_t pid = clone (child, stack + sizeof stack, CLONE_VM | CLONE_VFORK | SIGCHLD, &a);
  if (pid > 0)
    tracked[ntracked++] = pid;
  return pid;
}

int
cmd_exit_status (pid_t pid, int *code)
{
  siginfo_t si = { 0 };
  if (waitid (P_PID, (id_t) pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0)
    return errno == EINTR ? 0 : -1;
  if (si.si_pid != pid)
    return 0;
  *code = si.si_code == CLD_EXITED ? si.si_status : 128 + si.si_status;
  return 1;
}

void
cmd_reap (pid_t pid)
{
  while (waitpid (pid, NULL, 0) < 0 && errno == EINTR)
    ;
  for (size_t i = 0; i < ntracked; i++)
    if (tracked[i] == pid)
      {
        tracked[i] = tracked[--ntracked];
        break;
      }
}

void
reap_children (void)
{
  /* The kernel names one exited child at a time: reaped, unless it is a
     command the agent keeps for now. */
  for (;;)
    {
      siginfo_t si = { 0 };
      if (waitid (P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || si.si_pid == 0)
        return;
      if (is_tracked (si.si_pid))
        break;
      (void) waitpid (si.si_pid, NULL, WNOHANG);
    }
  /* A kept command hides the others: look for them in /proc. */
  proc_reap_zombies (is_tracked);
}

void
reply_spawn_error (conn_t *c, int err, const char *what)
{
  int64_t limit = pids_limit ();
  if (err == EAGAIN && limit > 0)
    reply_err (c, SBX_E_LIMIT,
               "cannot start %s: the sandbox has reached its limit of %lld "
               "processes (pids limit); end them all with `sbx kill ID` "
               "(sbx_sandbox_kill_all, the MCP tool kill_all), or give the sandbox more with "
               "--pids",
               what, (long long) limit);
  else if (err == EAGAIN)
    reply_err (c, SBX_E_LIMIT,
               "cannot start %s: the sandbox has too many processes; end them "
               "all with `sbx kill ID` (sbx_sandbox_kill_all, the MCP tool kill_all)",
               what);
  else
    reply_errno (c, err, "cannot start %s", what);
}
