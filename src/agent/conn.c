/* One host connection, served in its own forked process: requests are read
 * and answered one at a time, with plain blocking I/O, until the host hangs
 * up. Replies are buffered and written in large pieces. */
#include "agent.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define MAX_MESSAGE 1024
/* Replies are written once this much is buffered, and at their end. */
#define FLUSH_THRESHOLD (64u * 1024)

int
conn_flush (conn_t *c)
{
  /* A failed buffer holds a half-built frame: nothing sane can follow. */
  if (!c->broken && (c->out.failed || sbx_write_all (c->fd, c->out.data, c->out.len) < 0))
    c->broken = true;
  sbx_buf_reset (&c->out);
  return c->broken ? -1 : 0;
}

int
conn_pending (conn_t *c)
{
  if (c->out.len >= FLUSH_THRESHOLD || c->out.failed)
    return conn_flush (c);
  return c->broken ? -1 : 0;
}

ssize_t
conn_fill (conn_t *c)
{
  char buf[SBX_PROTO_CHUNK];
  ssize_t n;
  do
    n = read (c->fd, buf, sizeof buf);
  while (n < 0 && errno == EINTR);
  if (n > 0 && sbx_reader_feed (&c->rd, buf, (size_t) n) < 0)
    n = -1;
  if (n <= 0)
    c->broken = true;
  return n;
}

int
conn_recv (conn_t *c, sbx_msg_t *m)
{
  for (;;)
    {
      int r = sbx_reader_next (&c->rd, m);
      if (r != 0)
        return r;
      ssize_t n = conn_fill (c);
      if (n <= 0)
        return (int) n;
    }
}

/* The sbx_errc that best describes errno value ERR. */
static int
errno_code (int err)
{
  switch (err)
    {
    case ENOENT:
      return SBX_E_NOT_FOUND;
    case ENOTDIR:
      return SBX_E_NOT_DIR;
    case EISDIR:
      return SBX_E_IS_DIR;
    case EACCES:
    case EPERM:
    case EROFS:
    case ETXTBSY:
      return SBX_E_PERMISSION;
    case EEXIST:
    case ENOTEMPTY:
      return SBX_E_EXISTS;
    case EFBIG:
      return SBX_E_TOO_LARGE;
    case ENAMETOOLONG:
    case ELOOP:
    case EINVAL:
      return SBX_E_INVALID;
    default:
      return SBX_E_IO;
    }
}

static void
put_err (conn_t *c, int code, const char *msg, const int64_t *count)
{
  sbx_frame_begin (&c->out, SBX_M_ERR);
  sbx_frame_int (&c->out, SBX_T_CODE, code);
  sbx_frame_str (&c->out, SBX_T_MESSAGE, msg);
  if (count)
    sbx_frame_int (&c->out, SBX_T_COUNT, *count);
  sbx_frame_end (&c->out);
}

void
reply_err (conn_t *c, int code, const char *fmt, ...)
{
  char msg[MAX_MESSAGE];
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  put_err (c, code, msg, NULL);
}

void
reply_errno (conn_t *c, int err, const char *fmt, ...)
{
  char msg[MAX_MESSAGE];
  va_list ap;
  va_start (ap, fmt);
  int n = vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  if (n >= 0 && (size_t) n < sizeof msg)
    snprintf (msg + n, sizeof msg - (size_t) n, ": %s", strerror (err));
  put_err (c, errno_code (err), msg, NULL);
}

void
reply_err_count (conn_t *c, int code, int64_t count, const char *msg)
{
  put_err (c, code, msg, &count);
}

void
conn_protocol_error (conn_t *c, const char *why)
{
  reply_err (c, SBX_E_PROTOCOL, "invalid request stream: %s", why);
  c->quit = true;
}

char *
req_str (conn_t *c, const sbx_msg_t *m, uint8_t tag, size_t max)
{
  char *s = sbx_msg_strdup (m, tag, max);
  if (s == NULL)
    reply_err (c, SBX_E_INVALID, "request field %u is missing, longer than %zu bytes or holds a "
               "NUL byte", tag, max);
  return s;
}

char *
req_path (conn_t *c, const sbx_msg_t *m, uint8_t tag)
{
  char *s = req_str (c, m, tag, PATH_MAX - 1);
  if (s && s[0] != '/')
    {
      reply_err (c, SBX_E_INVALID, "path %s is not absolute", s);
      free (s);
      return NULL;
    }
  return s;
}

int
req_int (conn_t *c, const sbx_msg_t *m, uint8_t tag, int64_t min, int64_t max, int64_t *v)
{
  int64_t x;
  if (sbx_msg_int_or (m, tag, *v, &x) < 0 || x < min || x > max)
    {
      reply_err (c, SBX_E_INVALID, "request field %u is not an integer in [%lld, %lld]", tag,
                 (long long) min, (long long) max);
      return -1;
    }
  *v = x;
  return 0;
}

static bool
hello (conn_t *c, const sbx_msg_t *m, pid_t agent_pid)
{
  int64_t version = -1;
  if (m->type != SBX_M_HELLO)
    conn_protocol_error (c, "the first message must be HELLO");
  else if (req_int (c, m, SBX_T_VERSION, 0, INT64_MAX, &version) < 0)
    c->quit = true;
  else if (version != SBX_PROTO_VERSION)
    {
      reply_err (c, SBX_E_AGENT, "protocol version mismatch: the host speaks version %lld, this "
                 "agent version %d; use matching sbx builds", (long long) version,
                 SBX_PROTO_VERSION);
      c->quit = true;
    }
  else
    {
      sbx_frame_begin (&c->out, SBX_M_OK);
      sbx_frame_int (&c->out, SBX_T_VERSION, SBX_PROTO_VERSION);
      sbx_frame_int (&c->out, SBX_T_PID, agent_pid);
      sbx_frame_end (&c->out);
      return true;
    }
  return false;
}

typedef void (*handler_fn) (conn_t *c, const sbx_msg_t *m);

static const struct {
  uint8_t type;
  handler_fn fn;
} handlers[] = {
  { SBX_M_EXEC, handle_exec },         { SBX_M_STAT, handle_stat },
  { SBX_M_LS, handle_ls },             { SBX_M_READ, handle_read },
  { SBX_M_READ_BYTES, handle_read_bytes }, { SBX_M_WRITE, handle_write },
  { SBX_M_EDIT, handle_edit },         { SBX_M_GLOB, handle_glob },
  { SBX_M_GREP, handle_grep },         { SBX_M_BG_START, handle_bg_start },
  { SBX_M_BG_READ, handle_bg_read },   { SBX_M_BG_KILL, handle_bg_kill },
  { SBX_M_BG_LIST, handle_bg_list },
};

static void
dispatch (conn_t *c, const sbx_msg_t *m, pid_t agent_pid)
{
  switch (m->type)
    {
    case SBX_M_HELLO:
      hello (c, m, agent_pid);
      return;
    case SBX_M_STDIN:
    case SBX_M_STDIN_EOF:
    case SBX_M_CANCEL:
      /* The host may have queued these before it saw the command's EXIT:
         they refer to a finished exec and need no reply. */
      return;
    case SBX_M_WRITE_DATA:
    case SBX_M_WRITE_END:
      conn_protocol_error (c, "write data outside a WRITE request");
      return;
    default:
      break;
    }
  for (size_t i = 0; i < sizeof handlers / sizeof handlers[0]; i++)
    if (handlers[i].type == m->type)
      {
        handlers[i].fn (c, m);
        return;
      }
  reply_err (c, SBX_E_PROTOCOL, "unknown request type %u", m->type);
}

void
conn_serve (int fd, pid_t agent_pid)
{
  /* TERM and INT end a handler (PID 1 relays docker stop with kill(-1));
     SIGCHLD stays blocked for the signalfds of exec and bg. */
  sigset_t mask;
  sigemptyset (&mask);
  sigaddset (&mask, SIGTERM);
  sigaddset (&mask, SIGINT);
  if (sigprocmask (SIG_UNBLOCK, &mask, NULL) < 0)
    {
      agent_log ("handler: cannot unblock signals: %s", strerror (errno));
      _exit (1);
    }
  conn_t c = { .fd = fd };
  sbx_reader_init (&c.rd);
  sbx_buf_init (&c.out);
  bool greeted = false;
  for (;;)
    {
      sbx_msg_t m;
      int r = conn_recv (&c, &m);
      if (r < 0 && c.rd.error)
        conn_protocol_error (&c, c.rd.error);
      else if (r <= 0)
        _exit (0);
      else if (!greeted)
        greeted = hello (&c, &m, agent_pid);
      else
        dispatch (&c, &m, agent_pid);
      if (conn_flush (&c) < 0 || c.quit)
        _exit (0);
    }
}
