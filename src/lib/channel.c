/* The host side of the private channel to the in-container agent: connect,
 * verify who answers, exchange frames. Everything the agent sends is
 * untrusted: frames are bounded by the codec and every field used is checked
 * here before it reaches a caller. */
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

#define MAX_AGENT_MESSAGE 1024

void
sbx_agent_disconnect (sbx_sandbox_t *sb)
{
  if (sb->fd >= 0)
    close (sb->fd);
  sb->fd = -1;
  sbx_reader_free (&sb->reader);
  sbx_buf_reset (&sb->out);
  sb->hello_len = 0;
  sb->hello_pending = false;
}

void
sbx_agent_drop_request (sbx_sandbox_t *sb)
{
  sbx_buf_reset (&sb->out);
  sb->out.len = sb->hello_len;
}

void
sbx_agent_sent (sbx_sandbox_t *sb)
{
  sbx_buf_reset (&sb->out);
  sb->hello_len = 0;
}

int
sbx_agent_protocol_error (sbx_sandbox_t *sb, const char *what, sbx_error_t **err)
{
  sbx_agent_disconnect (sb);
  return sbx_error_set (err, SBX_E_PROTOCOL,
                        "the agent of sandbox %s sent an invalid reply (%s); "
                        "the connection was closed",
                        sb->id, what);
}

int
sbx_agent_broken (sbx_sandbox_t *sb, const char *why, sbx_error_t **err)
{
  sbx_agent_disconnect (sb);
  json_t *info = NULL;
  sbx_error_t *ierr = NULL;
  if ((sb->engine == NULL && sbx_engine_get (&sb->engine, &ierr) < 0)
      || sbx_engine_container_inspect (sb->engine, sb->id, &info, &ierr) < 0)
    {
      int code = ierr ? sbx_error_code (ierr) : SBX_E_AGENT;
      int r = code == SBX_E_GONE
                  ? sbx_error_set (err, SBX_E_GONE, "sandbox %s was removed while in use", sb->id)
                  : sbx_error_set (err, SBX_E_AGENT,
                                   "lost the connection to the agent of sandbox %s (%s)", sb->id,
                                   why);
      sbx_error_free (ierr);
      return r;
    }
  json_t *state = json_object_get (info, "State");
  bool running = json_is_true (json_object_get (state, "Running"));
  bool oom = json_is_true (json_object_get (state, "OOMKilled"));
  json_int_t code = json_integer_value (json_object_get (state, "ExitCode"));
  json_decref (info);
  if (oom)
    return sbx_error_set (err, SBX_E_OOM,
                          "sandbox %s was killed because it ran out of memory (limit "
                          "%lld MiB); give it more with --memory",
                          sb->id, (long long) (sb->memory >> 20));
  if (!running)
    return sbx_error_set (err, SBX_E_GONE,
                          "sandbox %s stopped (exit code %lld) while in use; start it "
                          "again or create a new one",
                          sb->id, (long long) code);
  return sbx_error_set (err, SBX_E_AGENT, "lost the connection to the agent of sandbox %s (%s)",
                        sb->id, why);
}

void
sbx_sandbox_touch (sbx_sandbox_t *sb)
{
  double now = sbx_now ();
  if (sb->state_dir == NULL || (sb->touched > 0 && now - sb->touched < 1.0))
    return;
  sb->touched = now;
  char path[PATH_MAX];
  snprintf (path, sizeof path, "%s/" SBX_ACTIVITY_FILE, sb->state_dir);
  if (utimensat (AT_FDCWD, path, NULL, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT)
    {
      /* A sandbox made before the file existed. */
      int fd = open (path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
      if (fd >= 0)
        close (fd);
    }
}

int
sbx_agent_flush (sbx_sandbox_t *sb, sbx_error_t **err)
{
  sbx_sandbox_touch (sb);
  if (sb->out.failed)
    {
      sbx_agent_drop_request (sb);
      return sbx_error_set (err, SBX_E_TOO_LARGE, "request too large for the agent protocol");
    }
  size_t off = 0;
  while (off < sb->out.len)
    {
      ssize_t n = send (sb->fd, sb->out.data + off, sb->out.len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        {
          /* An agent that reads nothing for this long has stopped. */
          struct pollfd p = { .fd = sb->fd, .events = POLLOUT };
          int pr = poll (&p, 1, (int) (SBX_AGENT_IDLE * 1000));
          if (pr == 0)
            {
              sbx_buf_reset (&sb->out);
              return sbx_agent_timeout (sb, false, err);
            }
          continue;
        }
      if (n < 0)
        {
          sbx_buf_reset (&sb->out);
          return sbx_agent_broken (sb, strerror (errno), err);
        }
      off += n;
    }
  sbx_agent_sent (sb);
  return 0;
}

int
sbx_agent_read_some (sbx_sandbox_t *sb, sbx_error_t **err)
{
  /* Straight into the reader's buffer: no copy, and no 64 KiB on the stack
     to fault in for a short command. */
  enum
  {
    WANT = 65536
  };
  uint8_t *buf = sbx_reader_space (&sb->reader, WANT);
  if (buf == NULL)
    return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  ssize_t n;
  do
    n = recv (sb->fd, buf, WANT, MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
    return 0;
  if (n <= 0)
    return sbx_agent_broken (sb, n == 0 ? "the agent closed the connection" : strerror (errno),
                             err);
  sbx_reader_commit (&sb->reader, (size_t) n);
  return 0;
}

/* The answer to HELLO: the agent speaks our protocol. */
static int
check_hello (sbx_sandbox_t *sb, const sbx_msg_t *msg, sbx_error_t **err)
{
  int64_t version;
  if (msg->type != SBX_M_OK)
    return sbx_agent_fail (sb, msg, err);
  return sbx_agent_int (sb, msg, SBX_T_VERSION, SBX_PROTO_VERSION, SBX_PROTO_VERSION, &version,
                        err);
}

int
sbx_agent_next (sbx_sandbox_t *sb, sbx_msg_t *msg, sbx_error_t **err)
{
  for (;;)
    {
      int r = sbx_reader_next (&sb->reader, msg);
      if (r < 0)
        return sbx_agent_protocol_error (sb, sb->reader.error, err);
      if (r == 0 || !sb->hello_pending)
        return r;
      sb->hello_pending = false;
      if ((r = check_hello (sb, msg, err)) < 0)
        {
          sbx_agent_disconnect (sb);
          return r;
        }
    }
}

int
sbx_agent_recv (sbx_sandbox_t *sb, sbx_msg_t *msg, double deadline, sbx_error_t **err)
{
  for (;;)
    {
      int r = sbx_agent_next (sb, msg, err);
      /* A long operation keeps its sandbox in use. */
      if (r > 0 && msg->type == SBX_M_ALIVE)
        {
          sbx_sandbox_touch (sb);
          continue;
        }
      if (r > 0)
        return 0;
      if (r < 0)
        return r;
      double wait = SBX_AGENT_IDLE;
      bool overall = false;
      if (deadline > 0 && deadline - sbx_now () < wait)
        {
          wait = deadline - sbx_now ();
          overall = true;
        }
      struct pollfd p = { .fd = sb->fd, .events = POLLIN };
      int pr = wait > 0 ? poll (&p, 1, (int) (wait * 1000) + 1) : 0;
      if (pr < 0 && errno != EINTR)
        return sbx_agent_broken (sb, strerror (errno), err);
      if (pr == 0)
        return sbx_agent_timeout (sb, overall, err);
      if (pr > 0 && (r = sbx_agent_read_some (sb, err)) < 0)
        return r;
    }
}

int
sbx_agent_timeout (sbx_sandbox_t *sb, bool overall, sbx_error_t **err)
{
  /* The stream is out of step: whatever comes later belongs to this call. */
  sbx_agent_disconnect (sb);
  if (overall)
    return sbx_error_set (err, SBX_E_TIMEOUT,
                          "the agent of sandbox %s did not finish in time; the "
                          "connection was dropped",
                          sb->id);
  return sbx_error_set (err, SBX_E_TIMEOUT,
                        "the agent of sandbox %s stopped answering (nothing for "
                        "%.0f s); the sandbox may be paused or overloaded",
                        sb->id, SBX_AGENT_IDLE);
}

double
sbx_agent_deadline (double seconds)
{
  return sbx_now () + seconds + SBX_AGENT_GRACE;
}

/* Keeps what the agent says printable and bounded before it reaches a user. */
static char *
clean_agent_text (const uint8_t *data, size_t len)
{
  if (len > MAX_AGENT_MESSAGE)
    len = MAX_AGENT_MESSAGE;
  char *s = sbx_utf8_sanitize ((const char *) data, len);
  for (char *p = s; p && *p; p++)
    if ((unsigned char) *p < 0x20 || *p == 0x7f)
      *p = ' ';
  return s;
}

int
sbx_agent_fail (sbx_sandbox_t *sb, const sbx_msg_t *msg, sbx_error_t **err)
{
  if (msg->type != SBX_M_ERR)
    {
      char what[64];
      snprintf (what, sizeof what, "unexpected message type %u", msg->type);
      return sbx_agent_protocol_error (sb, what, err);
    }
  int64_t code;
  const sbx_field_t *text = sbx_msg_field (msg, SBX_T_MESSAGE);
  if (sbx_msg_int (msg, SBX_T_CODE, &code) < 0 || code <= 0 || code > SBX_ERRC_MAX || !text)
    return sbx_agent_protocol_error (sb, "malformed error report", err);
  cleanup_free char *clean = clean_agent_text (text->data, text->len);
  if (clean == NULL)
    return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  return sbx_error_set (err, (int) code, "%s", clean);
}

int
sbx_agent_bytes (sbx_sandbox_t *sb, const sbx_msg_t *m, uint8_t tag, size_t max,
                 const uint8_t **data, size_t *len, sbx_error_t **err)
{
  const sbx_field_t *f = sbx_msg_field (m, tag);
  if (f == NULL || f->len > max)
    {
      char what[64];
      snprintf (what, sizeof what, "field %u missing or longer than %zu bytes", tag, max);
      return sbx_agent_protocol_error (sb, what, err);
    }
  *data = f->data;
  *len = f->len;
  return 0;
}

int
sbx_agent_int (sbx_sandbox_t *sb, const sbx_msg_t *m, uint8_t tag, int64_t min, int64_t max,
               int64_t *v, sbx_error_t **err)
{
  if (sbx_msg_int (m, tag, v) < 0 || *v < min || *v > max)
    {
      char what[64];
      snprintf (what, sizeof what, "integer field %u missing or out of range", tag);
      return sbx_agent_protocol_error (sb, what, err);
    }
  return 0;
}

/* Connects to the socket in the sandbox's host folder: by its path, or,
 * when the path is longer than a sockaddr_un holds, through /proc/self/fd.
 * The socket stays non-blocking: every send and recv on it says
 * MSG_DONTWAIT anyway, and a listener in the sandbox with a full backlog
 * must not hold a connect forever (EAGAIN reads as "not ready"). */
static int
connect_socket (const char *state_dir, int *fd_out)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  cleanup_close int dirfd = -1;
  int n = snprintf (addr.sun_path, sizeof addr.sun_path, "%s/run/" SBX_AGENT_SOCKET_NAME,
                    state_dir);
  if (n < 0 || (size_t) n >= sizeof addr.sun_path)
    {
      cleanup_free char *run = sbx_strdup_printf ("%s/run", state_dir);
      if (run == NULL || (dirfd = open (run, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
        return -1;
      snprintf (addr.sun_path, sizeof addr.sun_path, "/proc/self/fd/%d/" SBX_AGENT_SOCKET_NAME,
                dirfd);
    }
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return -1;
  if (connect (fd, (struct sockaddr *) &addr, sizeof addr) < 0)
    {
      int e = errno;
      close (fd);
      errno = e;
      return -1;
    }
  *fd_out = fd;
  return 0;
}

/* Only the container's PID 1 (our agent) may answer: anything else listening
 * on that path was put there by a process inside the sandbox. */
static int
verify_peer (sbx_sandbox_t *sb)
{
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt (sb->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
    return -1;
  return cred.pid == sb->agent_pid ? 0 : -1;
}

/* Queues HELLO; it goes out with the first request (see sbx_agent_next). */
static void
hello (sbx_sandbox_t *sb)
{
  sbx_frame_begin (&sb->out, SBX_M_HELLO);
  sbx_frame_int (&sb->out, SBX_T_VERSION, SBX_PROTO_VERSION);
  sbx_frame_end (&sb->out);
  sb->hello_len = sb->out.len;
  sb->hello_pending = true;
}

int
sbx_agent_try_connect (sbx_sandbox_t *sb, sbx_agent_reach_t *reach, sbx_error_t **err)
{
  sbx_agent_disconnect (sb);
  int fd = -1;
  *reach = SBX_AGENT_NOT_YET;
  if (connect_socket (sb->state_dir, &fd) < 0)
    {
      if (errno == ENOENT || errno == ECONNREFUSED || errno == EAGAIN)
        return 0;
      return sbx_error_set_errno (err, SBX_E_AGENT, errno,
                                  "cannot connect to the agent of sandbox %s", sb->id);
    }
  sb->fd = fd;
  sbx_reader_init (&sb->reader);
  if (verify_peer (sb) < 0)
    {
      sbx_agent_disconnect (sb);
      *reach = SBX_AGENT_IMPOSTOR;
      return 0;
    }
  hello (sb);
  *reach = SBX_AGENT_CONNECTED;
  return 0;
}
