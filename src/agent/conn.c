/* Host connections, all served by the agent's one event loop. Requests are
 * answered in order, one at a time per connection; those that take longer
 * than an instant run as jobs, in slices, so that no request, however
 * large its content, holds up the others. Replies are buffered and written
 * as the host reads them: past a high-water mark, a job waits (its
 * deadline does not). While a job runs, the host hears ALIVE every
 * SBX_PROTO_ALIVE_MS. */
#include "agent.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#define MAX_CONNS 128
#define MAX_MESSAGE 1024
/* Past this much unsent output, jobs wait and requests are held. */
#define OUT_HIGH (256u * 1024)
/* Buffers larger than this are freed between requests. */
#define IDLE_BUFFER (64u * 1024)
/* A closing connection whose host does not read is dropped after this. */
#define CLOSE_GRACE_MS 5000

static conn_t *conns;
static int nconns;

bool
conn_room (const conn_t *c)
{
  return c->out.len - c->out_off < OUT_HIGH;
}

void
conn_wake (conn_t *c)
{
  c->runnable = true;
}

void
conn_wake_at (conn_t *c, int64_t at)
{
  if (c->wake_at == 0 || at < c->wake_at)
    c->wake_at = at;
}

void
conn_start_job (conn_t *c, const job_ops_t *ops, void *data)
{
  c->job = ops;
  c->job_data = data;
  c->runnable = true;
  c->want_room = false;
  c->wake_at = 0;
}

static void
update_events (conn_t *c)
{
  if (c->dead)
    return;
  uint32_t ev = 0;
  if (!c->held && !c->input_paused && !c->closing)
    ev |= EPOLLIN;
  if (c->out.len > c->out_off)
    ev |= EPOLLOUT;
  if (ev != c->events)
    {
      (void) loop_rewatch (&c->watch, ev);
      c->events = ev;
    }
}

void
conn_pause_input (conn_t *c, bool paused)
{
  c->input_paused = paused;
  update_events (c);
}

/* Ends the connection now: its job released, its memory freed at the end
 * of the turn. */
static void
conn_drop (conn_t *c)
{
  if (c->dead)
    return;
  if (c->job)
    {
      const job_ops_t *job = c->job;
      c->job = NULL;
      job->abort (c);
      c->job_data = NULL;
    }
  loop_unwatch (&c->watch);
  close (c->watch.fd);
  c->dead = true;
}

void
conn_close (conn_t *c)
{
  c->closing = true;
  c->close_by = now_ms () + CLOSE_GRACE_MS;
}

void
conn_protocol_error (conn_t *c, const char *why)
{
  reply_err (c, SBX_E_PROTOCOL, "invalid request stream: %s", why);
  if (c->job)
    {
      const job_ops_t *job = c->job;
      c->job = NULL;
      job->abort (c);
      c->job_data = NULL;
    }
  conn_close (c);
}

/* ------------------------------------------------------------ replies */

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
    case ENOSPC:
    case EDQUOT:
      return SBX_E_LIMIT;
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
reply_ok (conn_t *c, uint8_t tag, int64_t v)
{
  sbx_frame_begin (&c->out, SBX_M_OK);
  if (tag)
    sbx_frame_int (&c->out, tag, v);
  sbx_frame_end (&c->out);
}

void
reply_end (conn_t *c, bool truncated, const char *why)
{
  sbx_frame_begin (&c->out, SBX_M_END);
  sbx_frame_int (&c->out, SBX_T_TRUNCATED, truncated);
  if (why)
    sbx_frame_str (&c->out, SBX_T_MESSAGE, why);
  sbx_frame_end (&c->out);
}

char *
req_str (conn_t *c, const sbx_msg_t *m, uint8_t tag, size_t max)
{
  char *s = sbx_msg_strdup (m, tag, max);
  if (s == NULL)
    reply_err (c, SBX_E_INVALID,
               "request field %u is missing, longer than %zu bytes or holds a "
               "NUL byte",
               tag, max);
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

int
req_deadline (conn_t *c, const sbx_msg_t *m, int64_t default_ms, int64_t *deadline)
{
  /* Bounded: every operation ends. */
  int64_t ms = default_ms;
  if (req_int (c, m, SBX_T_TIMEOUT_MS, 1, (int64_t) (SBX_MAX_TIMEOUT * 1000) + 1, &ms) < 0)
    return -1;
  *deadline = now_ms () + ms;
  return 0;
}

/* ------------------------------------------------------------ requests */

static void
hello (conn_t *c, const sbx_msg_t *m)
{
  int64_t version = -1;
  if (m->type != SBX_M_HELLO)
    conn_protocol_error (c, "the first message must be HELLO");
  else if (req_int (c, m, SBX_T_VERSION, 0, INT64_MAX, &version) < 0)
    conn_protocol_error (c, "HELLO without a version");
  else if (version != SBX_PROTO_VERSION)
    {
      reply_err (c, SBX_E_AGENT,
                 "protocol version mismatch: the host speaks version %lld, this "
                 "agent version %d; use matching sbx builds",
                 (long long) version, SBX_PROTO_VERSION);
      conn_close (c);
    }
  else
    {
      sbx_frame_begin (&c->out, SBX_M_OK);
      sbx_frame_int (&c->out, SBX_T_VERSION, SBX_PROTO_VERSION);
      sbx_frame_int (&c->out, SBX_T_PID, getpid ());
      sbx_frame_end (&c->out);
      c->greeted = true;
    }
}

typedef void (*handler_fn) (conn_t *c, const sbx_msg_t *m);

static const struct
{
  uint8_t type;
  handler_fn fn;
} handlers[] = {
  { SBX_M_EXEC, handle_exec },         { SBX_M_STAT, handle_stat },
  { SBX_M_RESOLVE, handle_resolve },   { SBX_M_LS, handle_ls },
  { SBX_M_READ, handle_read },         { SBX_M_READ_BYTES, handle_read_bytes },
  { SBX_M_WRITE, handle_write },       { SBX_M_EDIT, handle_edit },
  { SBX_M_GLOB, handle_glob },         { SBX_M_GREP, handle_grep },
  { SBX_M_BG_START, handle_bg_start }, { SBX_M_BG_READ, handle_bg_read },
  { SBX_M_BG_KILL, handle_bg_kill },   { SBX_M_BG_LIST, handle_bg_list },
  { SBX_M_KILL_ALL, handle_kill_all },
};

static void
dispatch (conn_t *c, const sbx_msg_t *m)
{
  if (!c->greeted)
    {
      hello (c, m);
      return;
    }
  switch (m->type)
    {
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

/* Handles the messages waiting in the reader, in order, as far as the
 * connection can: a new request waits (held) while a job runs or while the
 * host is behind with reading. */
static void
process_input (conn_t *c)
{
  while (!c->dead && !c->closing)
    {
      sbx_msg_t m;
      if (c->held)
        m = c->held_msg;
      else
        {
          int r = sbx_reader_next (&c->rd, &m);
          if (r == 0)
            break;
          if (r < 0)
            {
              conn_protocol_error (c, c->rd.error);
              break;
            }
        }
      bool for_job = c->job && c->job->message
                     && (m.type == SBX_M_STDIN || m.type == SBX_M_STDIN_EOF
                         || m.type == SBX_M_CANCEL || m.type == SBX_M_WRITE_DATA
                         || m.type == SBX_M_WRITE_END);
      if (!for_job && (c->job || !conn_room (c)))
        {
          /* Its fields point into the reader, which is not fed meanwhile. */
          c->held = true;
          c->held_msg = m;
          break;
        }
      c->held = false;
      if (for_job)
        c->job->message (c, &m);
      else
        dispatch (c, &m);
    }
  /* What the loop watches for is set at the end of the turn (conns_turn). */
}

static void
conn_event (watch_t *w, uint32_t events)
{
  conn_t *c = (conn_t *) w;
  if (events & EPOLLIN)
    {
      char buf[SBX_PROTO_CHUNK];
      ssize_t n = recv (c->watch.fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
      if (n <= 0)
        {
          conn_drop (c);
          return;
        }
      if (sbx_reader_feed (&c->rd, buf, (size_t) n) < 0)
        {
          agent_log ("out of memory reading a request; connection dropped");
          conn_drop (c);
          return;
        }
      process_input (c);
    }
  else if (events & (EPOLLERR | EPOLLHUP))
    conn_drop (c);
  /* EPOLLOUT: conns_turn writes. */
}

bool
conn_accept (int fd)
{
  conn_t *c = nconns < MAX_CONNS ? calloc (1, sizeof *c) : NULL;
  if (c == NULL)
    return false;
  sbx_reader_init (&c->rd);
  sbx_buf_init (&c->out);
  if (loop_watch (&c->watch, fd, EPOLLIN, conn_event) < 0)
    {
      free (c);
      return false;
    }
  c->events = EPOLLIN;
  c->last_sent = now_ms ();
  c->next = conns;
  conns = c;
  nconns++;
  return true;
}

/* ------------------------------------------------------------ the turn */

static void
flush (conn_t *c, int64_t now)
{
  if (c->out.failed)
    {
      /* A half-built frame: nothing sane can follow. */
      agent_log ("a reply could not be built (out of memory); connection dropped");
      conn_drop (c);
      return;
    }
  while (c->out.len > c->out_off)
    {
      ssize_t n = send (c->watch.fd, c->out.data + c->out_off, c->out.len - c->out_off,
                        MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && errno == EAGAIN)
        break;
      if (n < 0)
        {
          conn_drop (c);
          return;
        }
      c->out_off += (size_t) n;
      c->last_sent = now;
    }
  if (c->out_off == c->out.len)
    {
      sbx_buf_reset (&c->out);
      c->out_off = 0;
    }
  else if (c->out_off >= OUT_HIGH)
    {
      memmove (c->out.data, c->out.data + c->out_off, c->out.len - c->out_off);
      c->out.len -= c->out_off;
      c->out_off = 0;
    }
}

/* Runs the job's slice; on its end, the next request may start. */
static void
step (conn_t *c)
{
  c->runnable = false;
  c->want_room = false;
  if (c->job->step (c))
    {
      c->job = NULL;
      c->job_data = NULL;
      c->wake_at = 0;
      c->input_paused = false;
    }
}

int
conns_turn (void)
{
  int64_t now = now_ms (), wait = -1;
  for (conn_t *c = conns; c; c = c->next)
    {
      if (c->dead)
        continue;
      if (c->job && c->wake_at && now >= c->wake_at)
        {
          c->wake_at = 0;
          c->runnable = true;
        }
      if (c->job && c->want_room && conn_room (c))
        c->runnable = true;
      if (c->job && c->runnable)
        step (c);
      if (!c->job && !c->dead)
        process_input (c);
      if (c->job && c->out.len == c->out_off && now - c->last_sent >= SBX_PROTO_ALIVE_MS)
        {
          sbx_frame_begin (&c->out, SBX_M_ALIVE);
          sbx_frame_end (&c->out);
        }
      if (!c->dead)
        flush (c, now);
      /* Between requests, large buffers go back to the system: the agent's
         memory counts against the sandbox's. */
      if (!c->dead && !c->job && !c->held && c->out.len == 0 && c->out.cap > IDLE_BUFFER)
        sbx_buf_free (&c->out);
      if (!c->dead && !c->held && c->rd.pos == c->rd.len && c->rd.cap > IDLE_BUFFER)
        {
          sbx_reader_free (&c->rd);
          sbx_reader_init (&c->rd);
        }
      if (!c->dead && c->closing && (c->out.len == c->out_off || now >= c->close_by))
        conn_drop (c);
      if (c->dead)
        continue;
      update_events (c);
      /* The longest this connection lets the loop sleep. */
      int64_t until = -1;
      if (c->job && (c->runnable || (c->want_room && conn_room (c))))
        until = now;
      else if (c->job)
        {
          until = c->last_sent + SBX_PROTO_ALIVE_MS;
          if (c->wake_at && c->wake_at < until)
            until = c->wake_at;
        }
      else if (c->held && conn_room (c))
        until = now;
      if (c->closing && (until < 0 || c->close_by < until))
        until = c->close_by;
      if (until >= 0)
        {
          int64_t left = until > now ? until - now : 0;
          if (wait < 0 || left < wait)
            wait = left;
        }
    }
  /* Free the connections that ended. */
  for (conn_t **p = &conns; *p;)
    {
      conn_t *c = *p;
      if (!c->dead)
        {
          p = &c->next;
          continue;
        }
      *p = c->next;
      nconns--;
      sbx_reader_free (&c->rd);
      sbx_buf_free (&c->out);
      loop_defer_free (c);
    }
  return wait < 0 ? -1 : wait > INT_MAX ? INT_MAX : (int) wait;
}
