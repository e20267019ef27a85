/* EXEC: runs `sh -c COMMAND` in a session of its own, forwards its output
 * as it arrives (up to a cap, then drains it), feeds it the host's stdin,
 * and enforces the timeout on its whole process tree. The timeout runs on
 * the agent's clock, whatever the pace at which the host reads: a command
 * whose output waits for the host is killed on time all the same. */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>

#define DEFAULT_MAX_OUTPUT 100000
#define TIMEOUT_EXIT_CODE 124
#define KILL_GRACE_MS 2000 /* from SIGTERM to SIGKILL */
#define LINGER_MS 100      /* reading on after the command exited */
#define TREE_POLL_MS 50    /* checking whether a killed tree is gone */
#define STDIN_MAX_PENDING (1u << 20)

typedef struct run
{
  conn_t *c;
  struct run *next; /* in `running` */
  pid_t pid;        /* the shell, leader of the command's session */
  watch_t out[2];   /* stdout (or both) and stderr pipes; fd -1 once closed */
  bool readable[2];
  watch_t in; /* the command's stdin, fd -1 when closed or unused */
  bool in_writable;
  bool in_eof;       /* the host sent STDIN_EOF: close once written */
  sbx_buf_t pending; /* stdin not yet written, from offset in_off */
  size_t in_off;
  int64_t max_output, forwarded;
  int64_t deadline;     /* timeout, 0 for none */
  int64_t kill_at;      /* SIGKILL due for the tree, 0 for none */
  int64_t gone_by;      /* after the SIGKILL, wait for the tree until then */
  int64_t linger_until; /* after the exit, stop reading output by then */
  int64_t oom_before;
  bool exited, timed_out, truncated, killed;
  int code; /* how the shell ended: status, or 128 + signal */
} run_t;

/* Commands running for a connection, and those whose connection went away
 * (killed, waiting to be reaped). */
static run_t *running;
static run_t *orphans;

static void
unlink_run (run_t **list, run_t *r)
{
  for (run_t **p = list; *p; p = &(*p)->next)
    if (*p == r)
      {
        *p = r->next;
        return;
      }
}

static void
close_watch (watch_t *w)
{
  loop_unwatch (w);
  close_fd (&w->fd);
}

static void
close_stdin (run_t *r)
{
  close_watch (&r->in);
  sbx_buf_reset (&r->pending);
  r->in_off = 0;
  conn_pause_input (r->c, false);
}

static void
release (run_t *r)
{
  close_watch (&r->out[0]);
  close_watch (&r->out[1]);
  close_watch (&r->in);
  sbx_buf_free (&r->pending);
  loop_defer_free (r);
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

/* Reads what the pipes hold, as far as the host keeps up (output past the
 * cap is drained whatever the host does). */
static void
read_pipes (run_t *r, int64_t until)
{
  char buf[SBX_PROTO_CHUNK];
  for (int i = 0; i < 2; i++)
    while (r->out[i].fd >= 0 && r->readable[i])
      {
        if (r->forwarded < r->max_output && !conn_room (r->c))
          {
            r->c->want_room = true;
            break;
          }
        if (now_ms () >= until)
          {
            conn_wake (r->c);
            return;
          }
        ssize_t n = read (r->out[i].fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
          continue;
        if (n < 0 && errno == EAGAIN)
          {
            r->readable[i] = false;
            (void) loop_rewatch (&r->out[i], EPOLLIN | EPOLLONESHOT);
          }
        else if (n <= 0)
          close_watch (&r->out[i]);
        else
          forward (r, i + 1, buf, (size_t) n);
      }
}

static void
write_stdin (run_t *r)
{
  while (r->in.fd >= 0 && r->in_writable && r->pending.len > r->in_off)
    {
      ssize_t n = write (r->in.fd, r->pending.data + r->in_off, r->pending.len - r->in_off);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && errno == EAGAIN)
        {
          r->in_writable = false;
          (void) loop_rewatch (&r->in, EPOLLOUT | EPOLLONESHOT);
          return;
        }
      if (n < 0)
        {
          /* EPIPE: the command closed its stdin; the rest has no reader. */
          close_stdin (r);
          return;
        }
      r->in_off += (size_t) n;
    }
  if (r->in.fd >= 0 && r->pending.len == r->in_off)
    {
      sbx_buf_reset (&r->pending);
      r->in_off = 0;
      conn_pause_input (r->c, false);
      if (r->in_eof)
        close_stdin (r);
    }
}

static void
finish (run_t *r)
{
  cmd_reap (r->pid);
  int64_t flags = 0;
  if (r->timed_out)
    flags |= SBX_F_TIMED_OUT;
  if (r->truncated)
    flags |= SBX_F_TRUNCATED;
  /* A SIGKILL that the agent did not send, with the cgroup's OOM counter
     up, is the OOM killer's. The shell reports a killed child as 137. */
  if (r->code == 128 + SIGKILL && !r->killed && r->oom_before >= 0
      && oom_kill_count () > r->oom_before)
    flags |= SBX_F_OOM;
  conn_t *c = r->c;
  sbx_frame_begin (&c->out, SBX_M_EXIT);
  sbx_frame_int (&c->out, SBX_T_EXIT_CODE, r->timed_out ? TIMEOUT_EXIT_CODE : r->code);
  sbx_frame_int (&c->out, SBX_T_FLAGS, flags);
  sbx_frame_end (&c->out);
  unlink_run (&running, r);
  release (r);
}

static bool
exec_step (conn_t *c)
{
  run_t *r = c->job_data;
  int64_t now = now_ms ();
  if (!r->exited && r->deadline && !r->timed_out && now >= r->deadline)
    {
      r->timed_out = true;
      proc_kill_tree (r->pid, SIGTERM);
      r->kill_at = now + KILL_GRACE_MS;
    }
  if (r->kill_at && now >= r->kill_at)
    kill_now (r);
  read_pipes (r, now + SLICE_MS);
  write_stdin (r);
  if (r->exited && now >= r->linger_until)
    {
      /* Background processes hold the pipes: leave them be. */
      close_watch (&r->out[0]);
      close_watch (&r->out[1]);
    }
  if (r->exited && r->out[0].fd < 0 && r->out[1].fd < 0)
    {
      /* After a kill, EXIT waits (boundedly) until the tree is gone,
         killing what was forked meanwhile. */
      bool waiting = r->kill_at || (r->gone_by && now < r->gone_by);
      if (!waiting || proc_kill_tree (r->pid, r->kill_at ? 0 : SIGKILL) == 0)
        {
          finish (r);
          return true;
        }
      conn_wake_at (c, now + TREE_POLL_MS);
    }
  if (!r->exited && r->deadline && !r->timed_out)
    conn_wake_at (c, r->deadline);
  if (r->kill_at)
    conn_wake_at (c, r->kill_at);
  if (r->exited && (r->out[0].fd >= 0 || r->out[1].fd >= 0))
    conn_wake_at (c, r->linger_until);
  return false;
}

static void
exec_message (conn_t *c, const sbx_msg_t *m)
{
  run_t *r = c->job_data;
  const sbx_field_t *f;
  switch (m->type)
    {
    case SBX_M_STDIN:
      if ((f = sbx_msg_field (m, SBX_T_DATA)) != NULL && r->in.fd >= 0 && !r->in_eof)
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
          else if (r->pending.len >= STDIN_MAX_PENDING)
            conn_pause_input (c, true); /* past a bound, the host waits */
          conn_wake (c);
        }
      return;
    case SBX_M_STDIN_EOF:
      r->in_eof = true;
      if (r->pending.len == r->in_off && r->in.fd >= 0)
        close_stdin (r);
      return;
    case SBX_M_CANCEL:
      kill_now (r);
      conn_wake (c);
      return;
    default:
      conn_protocol_error (c, "unexpected message during EXEC");
    }
}

/* The host is gone: nothing may outlive it. The shell is reaped once it
 * has exited (exec_children_changed). */
static void
exec_abort (conn_t *c)
{
  run_t *r = c->job_data;
  proc_kill_tree (r->pid, SIGKILL);
  close_watch (&r->out[0]);
  close_watch (&r->out[1]);
  close_watch (&r->in);
  sbx_buf_free (&r->pending);
  unlink_run (&running, r);
  r->c = NULL;
  r->next = orphans;
  orphans = r;
  exec_children_changed ();
}

static const job_ops_t exec_ops = { exec_step, exec_message, exec_abort };

void
exec_children_changed (void)
{
  for (run_t *r = running; r; r = r->next)
    if (!r->exited && cmd_exit_status (r->pid, &r->code) != 0)
      {
        r->exited = true;
        r->linger_until = now_ms () + LINGER_MS;
        close_stdin (r);
        conn_wake (r->c);
      }
  for (run_t **p = &orphans; *p;)
    {
      run_t *r = *p;
      int code;
      if (cmd_exit_status (r->pid, &code) == 0)
        {
          p = &r->next;
          continue;
        }
      proc_kill_tree (r->pid, SIGKILL);
      cmd_reap (r->pid);
      *p = r->next;
      loop_defer_free (r);
    }
}

static void
on_out0 (watch_t *w, uint32_t events)
{
  (void) events;
  run_t *r = container_of (w, run_t, out[0]);
  r->readable[0] = true;
  conn_wake (r->c);
}

static void
on_out1 (watch_t *w, uint32_t events)
{
  (void) events;
  run_t *r = container_of (w, run_t, out[1]);
  r->readable[1] = true;
  conn_wake (r->c);
}

static void
on_in (watch_t *w, uint32_t events)
{
  (void) events;
  run_t *r = container_of (w, run_t, in);
  r->in_writable = true;
  conn_wake (r->c);
}

/* Pipes for the command's stdout (and stderr, and stdin), watched by the
 * loop. Our ends are non-blocking. CHILD gets the command's ends. */
static int
make_pipes (run_t *r, int64_t flags, int child[3])
{
  int p[2];
  if (pipe2 (p, O_CLOEXEC | O_NONBLOCK) < 0)
    return -1;
  r->out[0].fd = p[0];
  child[1] = child[2] = p[1];
  if (flags & SBX_F_SEPARATE)
    {
      if (pipe2 (p, O_CLOEXEC | O_NONBLOCK) < 0)
        return -1;
      r->out[1].fd = p[0];
      child[2] = p[1];
    }
  if (flags & SBX_F_STDIN)
    {
      if (pipe2 (p, O_CLOEXEC | O_NONBLOCK) < 0)
        return -1;
      child[0] = p[0];
      r->in.fd = p[1];
    }
  /* The command's ends block, as a program expects. */
  for (int i = 0; i < 3; i++)
    if (child[i] >= 0 && fcntl (child[i], F_SETFL, 0) < 0)
      return -1;
  if (loop_watch (&r->out[0], r->out[0].fd, EPOLLIN | EPOLLONESHOT, on_out0) < 0
      || (r->out[1].fd >= 0
          && loop_watch (&r->out[1], r->out[1].fd, EPOLLIN | EPOLLONESHOT, on_out1) < 0)
      || (r->in.fd >= 0 && loop_watch (&r->in, r->in.fd, EPOLLOUT | EPOLLONESHOT, on_in) < 0))
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
  run_t *r = calloc (1, sizeof *r);
  int child[3] = { -1, -1, -1 };
  if (r == NULL)
    {
      reply_err (c, SBX_E_IO, "out of memory");
      cmd_free (&spec);
      return;
    }
  /* An exit code for a child that cannot be waited for (never expected). */
  *r = (run_t){ .c = c,
                .out = { { .fd = -1 }, { .fd = -1 } },
                .in = { .fd = -1 },
                .code = 255,
                .in_writable = true };
  r->max_output = max_output ? max_output : DEFAULT_MAX_OUTPUT;
  sbx_buf_init (&r->pending);
  r->oom_before = oom_kill_count ();
  if (make_pipes (r, flags, child) < 0)
    {
      reply_errno (c, errno, "cannot start the command");
      close_child_ends (child);
      release (r);
      cmd_free (&spec);
      return;
    }
  r->pid = cmd_spawn (&spec, child[0], child[1], child[2]);
  int e = errno;
  close_child_ends (child);
  cmd_free (&spec);
  if (r->pid < 0)
    {
      reply_spawn_error (c, e, "the command");
      release (r);
      return;
    }
  if (timeout)
    r->deadline = now_ms () + timeout;
  r->next = running;
  running = r;
  /* Its exit is seen through SIGCHLD, pending if it has exited already. */
  conn_start_job (c, &exec_ops, r);
}
