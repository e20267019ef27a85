/* Running commands through the agent: streaming output, stdin, timeouts,
 * and the host's own deadline in case the agent stops answering. */
#include "sandbox.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

/* Past the command's timeout plus the agent's TERM-to-KILL grace, the host
 * asks for a kill, then gives up on the agent. */
#define HOST_GRACE 15.0
#define CANCEL_GRACE 10.0
#define STDIN_PENDING_MAX (256u * 1024)

/* Whole milliseconds, a fraction of one rounding up: a timeout above zero
 * never reads as "none". SECONDS is checked already. */
static int64_t
timeout_ms (double seconds)
{
  double ms = seconds * 1000;
  int64_t whole = (int64_t) ms;
  return whole < ms ? whole + 1 : whole;
}

SBX_EXPORT void
sbx_exec_opts_init (sbx_exec_opts_t *opts)
{
  memset (opts, 0, sizeof *opts);
  opts->stdin_fd = -1;
  opts->cancel_fd = -1;
}

SBX_EXPORT void
sbx_exec_result_free (sbx_exec_result_t *r)
{
  if (r == NULL)
    return;
  free (r->output);
  free (r->stdout_data);
  free (r->stderr_data);
  memset (r, 0, sizeof *r);
}

int
sbx_exec_frame (sbx_sandbox_t *sb, uint8_t type, const char *command, const sbx_exec_opts_t *o,
                sbx_error_t **err)
{
  if (command == NULL)
    return sbx_error_set (err, SBX_E_INVALID, "no command given");
  if (strlen (command) > SBX_PROTO_MAX_BODY / 2)
    return sbx_error_set (err, SBX_E_TOO_LARGE, "command too long (at most %u bytes)",
                          SBX_PROTO_MAX_BODY / 2);
  for (const char *const *e = o ? o->env : NULL; e && *e; e++)
    {
      int r = sbx_validate_env (*e, err);
      if (r < 0)
        return r;
    }
  int r;
  if (o && (r = sbx_timeout_check (o->timeout, err)) < 0)
    return r;
  cleanup_free char *cwd = sbx_sandbox_path (sb, o ? o->cwd : NULL, err);
  if (cwd == NULL)
    return -SBX_E_INVALID;
  sbx_frame_begin (&sb->out, type);
  sbx_frame_str (&sb->out, SBX_T_COMMAND, command);
  sbx_frame_str (&sb->out, SBX_T_CWD, cwd);
  size_t nenv = 0;
  for (const char *const *e = o ? o->env : NULL; e && *e; e++, nenv++)
    sbx_frame_str (&sb->out, SBX_T_ENV, *e);
  if (nenv > SBX_PROTO_MAX_FIELDS - 8)
    {
      sbx_agent_drop_request (sb);
      return sbx_error_set (err, SBX_E_INVALID,
                            "too many environment variables (at most %d per call)",
                            SBX_PROTO_MAX_FIELDS - 8);
    }
  return 0;
}

typedef struct exec_state
{
  const sbx_exec_opts_t *opts;
  sbx_exec_result_t *res;
  size_t max_output;
  sbx_buf_t all, out, errs;
  size_t kept;
  /* stdin */
  size_t stdin_off;
  bool stdin_open;
  size_t sent; /* bytes of sb->out already written */
  bool cancel_sent;
} exec_state_t;

static void
queue_cancel (sbx_sandbox_t *sb, exec_state_t *st)
{
  if (st->cancel_sent)
    return;
  st->cancel_sent = true;
  sbx_frame_begin (&sb->out, SBX_M_CANCEL);
  sbx_frame_end (&sb->out);
}

/* Queues the next piece of stdin when little is pending. */
static int
queue_stdin (sbx_sandbox_t *sb, exec_state_t *st, bool fd_readable, sbx_error_t **err)
{
  const sbx_exec_opts_t *o = st->opts;
  if (!st->stdin_open || sb->out.len - st->sent > STDIN_PENDING_MAX)
    return 0;
  char chunk[SBX_PROTO_CHUNK];
  ssize_t n;
  if (o->stdin_fd >= 0)
    {
      if (!fd_readable)
        return 0;
      do
        n = read (o->stdin_fd, chunk, sizeof chunk);
      while (n < 0 && errno == EINTR);
      if (n < 0)
        return sbx_error_set_errno (err, SBX_E_IO, errno, "cannot read the command's input");
    }
  else
    {
      n = o->stdin_len - st->stdin_off;
      if ((size_t) n > sizeof chunk)
        n = sizeof chunk;
      memcpy (chunk, (const char *) o->stdin_data + st->stdin_off, n);
      st->stdin_off += n;
    }
  if (n == 0)
    {
      st->stdin_open = false;
      sbx_frame_begin (&sb->out, SBX_M_STDIN_EOF);
    }
  else
    {
      sbx_frame_begin (&sb->out, SBX_M_STDIN);
      sbx_frame_bytes (&sb->out, SBX_T_DATA, chunk, n);
    }
  sbx_frame_end (&sb->out);
  return 0;
}

static int
send_pending (sbx_sandbox_t *sb, exec_state_t *st, sbx_error_t **err)
{
  while (st->sent < sb->out.len)
    {
      ssize_t n = send (sb->fd, sb->out.data + st->sent, sb->out.len - st->sent,
                        MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        break;
      if (n < 0)
        return sbx_agent_broken (sb, strerror (errno), err);
      st->sent += n;
    }
  if (st->sent == sb->out.len)
    {
      sbx_agent_sent (sb);
      st->sent = 0;
    }
  return 0;
}

static void
keep_output (exec_state_t *st, int64_t stream, const uint8_t *data, size_t len)
{
  size_t room = st->max_output - st->kept;
  if (len > room)
    {
      len = room;
      st->res->truncated = true;
    }
  st->kept += len;
  sbx_buf_append (&st->all, data, len);
  if (st->opts->separate_streams)
    sbx_buf_append (stream == SBX_STDERR ? &st->errs : &st->out, data, len);
}

/* 1 when the exec finished, 0 to go on. */
static int
handle_message (sbx_sandbox_t *sb, exec_state_t *st, const sbx_msg_t *msg, sbx_error_t **err)
{
  int64_t stream, code, flags;
  const uint8_t *data;
  size_t len;
  int r;
  switch (msg->type)
    {
    case SBX_M_OUTPUT:
      if ((r = sbx_agent_int (sb, msg, SBX_T_STREAM, SBX_STDOUT, SBX_STDERR, &stream, err)) < 0
          || (r = sbx_agent_bytes (sb, msg, SBX_T_DATA, SBX_PROTO_CHUNK, &data, &len, err)) < 0)
        return r;
      if (st->opts->on_output && !st->cancel_sent
          && st->opts->on_output ((enum sbx_stream) stream, (const char *) data, len,
                                  st->opts->userdata))
        {
          st->res->cancelled = true;
          queue_cancel (sb, st);
        }
      keep_output (st, stream, data, len);
      return 0;
    case SBX_M_ALIVE:
      sbx_sandbox_touch (sb);
      return 0;
    case SBX_M_EXIT:
      if ((r = sbx_agent_int (sb, msg, SBX_T_EXIT_CODE, 0, 255, &code, err)) < 0
          || (r = sbx_agent_int (sb, msg, SBX_T_FLAGS, 0, INT32_MAX, &flags, err)) < 0)
        return r;
      st->res->exit_code = (int) code;
      st->res->timed_out = flags & SBX_F_TIMED_OUT;
      st->res->truncated |= (flags & SBX_F_TRUNCATED) != 0;
      st->res->oom_killed = flags & SBX_F_OOM;
      return 1;
    default:
      return sbx_agent_fail (sb, msg, err);
    }
}

static int
take_buffer (sbx_buf_t *b, char **data, size_t *len)
{
  sbx_buf_append (b, "", 1);
  if (b->failed)
    return -1;
  *len = b->len - 1;
  *data = (char *) steal_pointer (&b->data);
  sbx_buf_free (b);
  return 0;
}

static int
run_exec (sbx_sandbox_t *sb, exec_state_t *st, double timeout, sbx_error_t **err)
{
  const sbx_exec_opts_t *o = st->opts;
  double deadline = timeout > 0 ? sbx_now () + timeout + HOST_GRACE : 0;
  double heard = sbx_now (); /* when the agent last sent something */
  for (;;)
    {
      sbx_msg_t msg;
      int r;
      while ((r = sbx_agent_next (sb, &msg, err)) > 0)
        if ((r = handle_message (sb, st, &msg, err)) != 0)
          return r < 0 ? r : 0;
      if (r < 0)
        return r;
      while (st->stdin_open && o->stdin_fd < 0 && sb->out.len - st->sent <= STDIN_PENDING_MAX)
        if ((r = queue_stdin (sb, st, false, err)) < 0)
          return r;
      if ((r = send_pending (sb, st, err)) < 0)
        return r;

      struct pollfd p[3] = { { .fd = sb->fd, .events = POLLIN },
                             { .fd = -1 },
                             { .fd = st->cancel_sent ? -1 : o->cancel_fd, .events = POLLRDHUP } };
      if (sb->out.len > st->sent)
        p[0].events |= POLLOUT;
      if (st->stdin_open && o->stdin_fd >= 0 && sb->out.len - st->sent <= STDIN_PENDING_MAX)
        p[1] = (struct pollfd){ .fd = o->stdin_fd, .events = POLLIN };
      /* The agent says ALIVE while the command runs: silence means it
         stopped answering, whatever the command's own timeout. */
      double wait = heard + SBX_AGENT_IDLE - sbx_now ();
      if (deadline > 0)
        {
          double left = deadline - sbx_now ();
          if (left <= 0 && !st->cancel_sent)
            {
              queue_cancel (sb, st);
              deadline = sbx_now () + CANCEL_GRACE;
              continue;
            }
          if (left <= 0)
            {
              sbx_agent_disconnect (sb);
              return sbx_error_set (err, SBX_E_TIMEOUT,
                                    "the agent of sandbox %s did not finish the "
                                    "command %.0f s after its timeout; the connection was dropped",
                                    sb->id, HOST_GRACE + CANCEL_GRACE);
            }
          if (left < wait)
            wait = left;
        }
      int pr = poll (p, 3, wait > 0 ? (int) (wait * 1000) + 1 : 0);
      if (pr < 0 && errno != EINTR)
        return sbx_error_set_errno (err, SBX_E_IO, errno, "poll");
      if (pr == 0 && sbx_now () >= heard + SBX_AGENT_IDLE)
        return sbx_agent_timeout (sb, false, err);
      if (pr <= 0)
        continue;
      if (p[1].revents && (r = queue_stdin (sb, st, true, err)) < 0)
        return r;
      if (p[2].revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL))
        {
          st->res->cancelled = true;
          queue_cancel (sb, st);
        }
      if (p[0].revents & (POLLIN | POLLHUP | POLLERR))
        {
          if ((r = sbx_agent_read_some (sb, err)) < 0)
            return r;
          heard = sbx_now ();
        }
    }
}

SBX_EXPORT int
sbx_exec (sbx_sandbox_t *sb, const char *command, const sbx_exec_opts_t *opts,
          sbx_exec_result_t *result, sbx_error_t **err)
{
  sbx_exec_opts_t defaults;
  sbx_exec_opts_init (&defaults);
  const sbx_exec_opts_t *o = opts ? opts : &defaults;
  memset (result, 0, sizeof *result);
  exec_state_t st = { .opts = o, .res = result };
  st.max_output = o->max_output ? o->max_output : SBX_DEFAULT_MAX_OUTPUT;
  st.stdin_open = o->stdin_fd >= 0 || o->stdin_data != NULL;
  sbx_buf_init (&st.all);
  sbx_buf_init (&st.out);
  sbx_buf_init (&st.errs);

  int r = sbx_sandbox_ensure (sb, err);
  if (r == 0)
    r = sbx_exec_frame (sb, SBX_M_EXEC, command, o, err);
  if (r == 0)
    {
      int64_t flags = (o->separate_streams ? SBX_F_SEPARATE : 0)
                      | (st.stdin_open ? SBX_F_STDIN : 0);
      sbx_frame_int (&sb->out, SBX_T_TIMEOUT_MS, timeout_ms (o->timeout));
      sbx_frame_int (&sb->out, SBX_T_MAX_OUTPUT, (int64_t) st.max_output);
      sbx_frame_int (&sb->out, SBX_T_FLAGS, flags);
      if (sbx_frame_end (&sb->out) < 0)
        {
          sbx_agent_drop_request (sb);
          r = sbx_error_set (err, SBX_E_TOO_LARGE,
                             "command and environment too large for one request");
        }
    }
  if (r == 0)
    {
      sbx_sandbox_touch (sb);
      r = run_exec (sb, &st, o->timeout, err);
      /* The stream must stay in step: stdin the command did not wait for is
       * dropped if none of it went out, else the connection is; a failure
       * mid-exec drops the connection, which kills the command's tree. */
      if (r < 0 || st.sent > 0)
        sbx_agent_disconnect (sb);
      else
        sbx_agent_drop_request (sb);
    }
  if (r == 0
      && (take_buffer (&st.all, &result->output, &result->output_len) < 0
          || (o->separate_streams
              && (take_buffer (&st.out, &result->stdout_data, &result->stdout_len) < 0
                  || take_buffer (&st.errs, &result->stderr_data, &result->stderr_len) < 0))))
    r = sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  sbx_buf_free (&st.all);
  sbx_buf_free (&st.out);
  sbx_buf_free (&st.errs);
  if (r < 0)
    sbx_exec_result_free (result);
  return r;
}
