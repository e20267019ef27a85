/* EXEC: runs `sh -c COMMAND` in a session of its own, forwards its output
 * as it arrives (up to a cap, then drains it), feeds it the host's stdin,
 * and enforces the timeout on its whole process tree. Also the spawning
 * code that background processes share. */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>

#define DEFAULT_MAX_OUTPUT 100000
#define TIMEOUT_EXIT_CODE 124
#define KILL_GRACE_MS 2000         /* from SIGTERM to SIGKILL */
#define LINGER_MS 100              /* reading on after the command exited */
#define TREE_POLL_MS 50            /* checking whether a killed tree is gone */
#define STDIN_MAX_PENDING (1u << 20)

extern char **environ;

/* ------------------------------------------------------------ spawning */

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

void
cmd_exec_child (const cmd_spec_t *spec, int in, int out, int err)
{
  if (setsid () < 0)
    goto fail;
  if (in < 0 && (in = open ("/dev/null", O_RDONLY)) < 0)
    goto fail;
  if (dup2 (in, 0) < 0 || dup2 (out, 1) < 0 || dup2 (err, 2) < 0)
    goto fail;
  /* Ignored signals survive exec (the agent ignores SIGPIPE) and so does
     the mask: start the command with a clean slate. Signals that cannot
     be caught, or that libc reserves, just refuse the call. */
  for (int sig = 1; sig < NSIG; sig++)
    if (sig != SIGKILL && sig != SIGSTOP)
      (void) signal (sig, SIG_DFL);
  sigset_t none;
  sigemptyset (&none);
  if (sigprocmask (SIG_SETMASK, &none, NULL) < 0)
    goto fail;
  close_fds_from (3);
  if (chdir (spec->cwd) < 0)
    {
      dprintf (2, "sbx: cannot enter %s: %s\n", spec->cwd, strerror (errno));
      _exit (127);
    }
  char sh[] = "sh", dash_c[] = "-c";
  char *argv[] = { sh, dash_c, spec->command, NULL };
  execve ("/bin/sh", argv, spec->env);
fail:
  dprintf (2, "sbx: cannot run /bin/sh: %s\n", strerror (errno));
  _exit (127);
}

int
sigchld_fd (void)
{
  sigset_t mask;
  sigemptyset (&mask);
  sigaddset (&mask, SIGCHLD);
  return signalfd (-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
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

/* ------------------------------------------------------------ EXEC */

typedef struct run {
  conn_t *c;
  pid_t pid;            /* the shell, leader of the command's session */
  int sfd;              /* SIGCHLD */
  int out[2];           /* stdout (or both) and stderr pipes; -1 once closed */
  int in;               /* the command's stdin, -1 when closed or unused */
  bool in_eof;          /* the host sent STDIN_EOF: close once written */
  sbx_buf_t pending;    /* stdin not yet written, from offset in_off */
  size_t in_off;
  int64_t max_output, forwarded;
  int64_t deadline;     /* timeout, 0 for none */
  int64_t kill_at;      /* SIGKILL due for the tree, 0 for none */
  int64_t gone_by;      /* after the SIGKILL, wait for the tree until then */
  int64_t linger_until; /* after the exit, stop reading output by then */
  bool exited, timed_out, truncated, killed;
  int code;             /* how the shell ended: status, or 128 + signal */
} run_t;

/* The host is gone (or broke the protocol): nothing may outlive it. */
__attribute__ ((noreturn)) static void
abandon (run_t *r)
{
  proc_kill_tree (r->pid, SIGKILL);
  if (r->c->quit)
    conn_flush (r->c);
  _exit (0);
}

static void
close_fd (int *fd)
{
  if (*fd >= 0)
    close (*fd);
  *fd = -1;
}

static void
close_stdin (run_t *r)
{
  close_fd (&r->in);
  sbx_buf_reset (&r->pending);
  r->in_off = 0;
}

static void
kill_now (run_t *r)
{
  proc_kill_tree (r->pid, SIGKILL);
  r->killed = true;
  r->kill_at = 0;
  r->gone_by = now_ms () + KILL_GRACE_MS;
}

static void
forward (run_t *r, int stream, const char *data, size_t n)
{
  size_t room = (size_t) (r->max_output - r->forwarded);
  size_t take = n < room ? n : room;
  if (take)
    {
      sbx_frame_begin (&r->c->out, SBX_M_OUTPUT);
      sbx_frame_int (&r->c->out, SBX_T_STREAM, stream);
      sbx_frame_bytes (&r->c->out, SBX_T_DATA, data, take);
      sbx_frame_end (&r->c->out);
      r->forwarded += (int64_t) take;
    }
  if (take < n)
    r->truncated = true;
}

static void
read_output (run_t *r, int i)
{
  char buf[SBX_PROTO_CHUNK];
  ssize_t n = read (r->out[i], buf, sizeof buf);
  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  if (n <= 0)
    close_fd (&r->out[i]);
  else
    forward (r, i + 1, buf, (size_t) n);
}

static void
write_stdin (run_t *r)
{
  size_t left = r->pending.len - r->in_off;
  ssize_t n = write (r->in, r->pending.data + r->in_off, left);
  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  if (n < 0)
    {
      /* EPIPE: the command closed its stdin; the rest has no reader. */
      close_stdin (r);
      return;
    }
  r->in_off += (size_t) n;
  if (r->in_off == r->pending.len)
    {
      sbx_buf_reset (&r->pending);
      r->in_off = 0;
      if (r->in_eof)
        close_stdin (r);
    }
}

/* A message from the host while the command runs. */
static void
host_message (run_t *r, const sbx_msg_t *m)
{
  const sbx_field_t *f;
  switch (m->type)
    {
    case SBX_M_STDIN:
      if ((f = sbx_msg_field (m, SBX_T_DATA)) == NULL)
        break;
      if (r->in >= 0 && !r->in_eof)
        {
          if (r->in_off > 0)
            {
              memmove (r->pending.data, r->pending.data + r->in_off, r->pending.len - r->in_off);
              r->pending.len -= r->in_off;
              r->in_off = 0;
            }
          sbx_buf_append (&r->pending, f->data, f->len);
          if (r->pending.failed)
            close_stdin (r);
        }
      return;
    case SBX_M_STDIN_EOF:
      r->in_eof = true;
      if (r->pending.len == r->in_off)
        close_stdin (r);
      return;
    case SBX_M_CANCEL:
      kill_now (r);
      return;
    default:
      break;
    }
  conn_protocol_error (r->c, "unexpected message during EXEC");
  abandon (r);
}

static void
read_host (run_t *r)
{
  sbx_msg_t m;
  int k;
  while ((k = sbx_reader_next (&r->c->rd, &m)) > 0)
    host_message (r, &m);
  if (k < 0)
    {
      conn_protocol_error (r->c, r->c->rd.error);
      abandon (r);
    }
}

static void
child_exited (run_t *r)
{
  struct signalfd_siginfo si;
  while (read (r->sfd, &si, sizeof si) == sizeof si)
    ;
  /* The shell is reaped at the very end (see cmd_exit_status). */
  if (cmd_exit_status (r->pid, &r->code) != 0)
    {
      r->exited = true;
      r->linger_until = now_ms () + LINGER_MS;
      close_stdin (r);
    }
}

/* Shortens the poll wait *MS (-1: none yet) to end at AT; waits stay below
 * a minute so that a far deadline never overflows poll's int. */
static void
limit_wait (int64_t *ms, int64_t at, int64_t now)
{
  int64_t left = at > now ? at - now : 0;
  if (left > 60000)
    left = 60000;
  if (*ms < 0 || left < *ms)
    *ms = left;
}

/* Runs until the command exited and its output is read (or abandoned to
 * background processes), and, after a timeout, until its tree is gone. */
static void
run_loop (run_t *r)
{
  enum { P_SIG, P_OUT, P_ERR, P_IN, P_HOST, P_N };
  for (;;)
    {
      read_host (r);
      if (r->c->out.len && conn_flush (r->c) < 0)
        abandon (r);
      int64_t now = now_ms (), ms = -1;
      if (!r->exited && r->deadline && !r->timed_out && now >= r->deadline)
        {
          r->timed_out = true;
          proc_kill_tree (r->pid, SIGTERM);
          r->kill_at = now + KILL_GRACE_MS;
        }
      if (r->kill_at && now >= r->kill_at)
        kill_now (r);
      if (r->exited && now >= r->linger_until)
        {
          /* Background processes hold the pipes: leave them be. */
          close_fd (&r->out[0]);
          close_fd (&r->out[1]);
        }
      if (r->exited && r->out[0] < 0 && r->out[1] < 0)
        {
          /* After a kill, EXIT waits (boundedly) until the tree is gone,
             killing what was forked meanwhile. */
          bool waiting = r->kill_at || (r->gone_by && now < r->gone_by);
          if (!waiting || proc_kill_tree (r->pid, r->kill_at ? 0 : SIGKILL) == 0)
            return;
          limit_wait (&ms, now + TREE_POLL_MS, now);
        }
      if (!r->exited && r->deadline && !r->timed_out)
        limit_wait (&ms, r->deadline, now);
      if (r->kill_at)
        limit_wait (&ms, r->kill_at, now);
      if (r->exited && (r->out[0] >= 0 || r->out[1] >= 0))
        limit_wait (&ms, r->linger_until, now);

      bool stdin_full = r->pending.len - r->in_off >= STDIN_MAX_PENDING;
      struct pollfd p[P_N] = {
        [P_SIG] = { .fd = r->exited ? -1 : r->sfd, .events = POLLIN },
        [P_OUT] = { .fd = r->out[0], .events = POLLIN },
        [P_ERR] = { .fd = r->out[1], .events = POLLIN },
        [P_IN] = { .fd = r->pending.len > r->in_off ? r->in : -1, .events = POLLOUT },
        /* Past a bound of unwritten stdin, the host waits. */
        [P_HOST] = { .fd = stdin_full ? -1 : r->c->fd, .events = POLLIN },
      };
      int n = poll (p, P_N, (int) ms);
      if (n < 0 && errno != EINTR)
        {
          agent_log ("exec: poll: %s", strerror (errno));
          abandon (r);
        }
      if (n <= 0)
        continue;
      if (p[P_SIG].revents)
        child_exited (r);
      for (int i = 0; i < 2; i++)
        if (p[P_OUT + i].revents)
          read_output (r, i);
      if (p[P_IN].revents && r->in >= 0)
        write_stdin (r);
      if (p[P_HOST].revents && conn_fill (r->c) <= 0)
        abandon (r);
    }
}

/* Pipes for the command's stdout (and stderr, and stdin). Our ends are
 * non-blocking. */
static int
make_pipes (run_t *r, int64_t flags, int child[3])
{
  int p[2];
  if (pipe2 (p, O_CLOEXEC) < 0)
    return -1;
  r->out[0] = p[0];
  child[1] = child[2] = p[1];
  if (flags & SBX_F_SEPARATE)
    {
      if (pipe2 (p, O_CLOEXEC) < 0)
        return -1;
      r->out[1] = p[0];
      child[2] = p[1];
    }
  if (flags & SBX_F_STDIN)
    {
      if (pipe2 (p, O_CLOEXEC) < 0)
        return -1;
      child[0] = p[0];
      r->in = p[1];
    }
  int ours[] = { r->out[0], r->out[1], r->in };
  for (size_t i = 0; i < 3; i++)
    if (ours[i] >= 0 && fcntl (ours[i], F_SETFL, O_NONBLOCK) < 0)
      return -1;
  return 0;
}

static void
close_child_ends (int child[3])
{
  for (int i = 0; i < 3; i++)
    if (child[i] >= 0 && (i != 2 || child[2] != child[1]))
      close (child[i]);
  child[0] = child[1] = child[2] = -1;
}

void
handle_exec (conn_t *c, const sbx_msg_t *m)
{
  int64_t timeout = 0, max_output = 0, flags = 0;
  if (req_int (c, m, SBX_T_TIMEOUT_MS, 0, INT64_MAX / 2, &timeout) < 0
      || req_int (c, m, SBX_T_MAX_OUTPUT, 0, INT64_MAX, &max_output) < 0
      || req_int (c, m, SBX_T_FLAGS, 0, INT32_MAX, &flags) < 0)
    return;
  cmd_spec_t spec;
  if (cmd_parse (c, m, &spec) < 0)
    return;

  /* An exit code for a child that cannot be waited for (never expected). */
  run_t r = { .c = c, .out = { -1, -1 }, .in = -1, .sfd = -1, .code = 255 };
  r.max_output = max_output ? max_output : DEFAULT_MAX_OUTPUT;
  sbx_buf_init (&r.pending);
  int child[3] = { -1, -1, -1 };
  int64_t oom_before = oom_kill_count ();
  if (make_pipes (&r, flags, child) < 0 || (r.sfd = sigchld_fd ()) < 0
      || (r.pid = fork ()) < 0)
    {
      reply_errno (c, errno, "cannot start the command");
      close_child_ends (child);
      goto out;
    }
  if (r.pid == 0)
    cmd_exec_child (&spec, child[0], child[1], child[2]);
  close_child_ends (child);
  if (timeout)
    r.deadline = now_ms () + timeout;

  run_loop (&r);
  while (waitpid (r.pid, NULL, 0) < 0 && errno == EINTR)
    ;

  int64_t out_flags = 0;
  if (r.timed_out)
    out_flags |= SBX_F_TIMED_OUT;
  if (r.truncated)
    out_flags |= SBX_F_TRUNCATED;
  /* A SIGKILL that the agent did not send, with the cgroup's OOM counter
     up, is the OOM killer's. The shell reports a killed child as 137. */
  if (r.code == 128 + SIGKILL && !r.killed && oom_before >= 0 && oom_kill_count () > oom_before)
    out_flags |= SBX_F_OOM;
  sbx_frame_begin (&c->out, SBX_M_EXIT);
  sbx_frame_int (&c->out, SBX_T_EXIT_CODE, r.timed_out ? TIMEOUT_EXIT_CODE : r.code);
  sbx_frame_int (&c->out, SBX_T_FLAGS, out_flags);
  sbx_frame_end (&c->out);
out:
  close_fd (&r.out[0]);
  close_fd (&r.out[1]);
  close_fd (&r.in);
  close_fd (&r.sfd);
  sbx_buf_free (&r.pending);
  cmd_free (&spec);
}
