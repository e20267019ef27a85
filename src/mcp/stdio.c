/* The stdio server: messages read from stdin and answered on stdout (only
 * protocol messages go there; logs go to stderr), tool calls run one at a
 * time by a worker thread so that ping and tools/list are answered while a
 * command runs, the sandbox made on the first tool call that needs it, and
 * removed (or stopped, when kept) when the client closes stdin or a signal
 * comes.
 *
 * Shutting down: at the end of stdin the queued calls still run and are
 * answered (a client may write its requests and close its end at once); on
 * SIGTERM, SIGINT or SIGHUP the queue is dropped and a running call is cut
 * short by removing the sandbox under it, so that the client's grace period
 * (2 s in the SDKs) is enough to leave nothing behind. */
#include "mcp.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#define READ_CHUNK 65536

static void note (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));

/* One line on stderr, written at once so that the two threads' lines don't
 * interleave. */
static void
note (const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  cleanup_free char *s = sbx_strdup_vprintf (fmt, ap);
  va_end (ap);
  fprintf (stderr, "sbx mcp: %s\n", s ? s : "(out of memory)");
}

/* ---------------------------------------------------------------- sandbox */

/* The session's sandbox source: one sandbox, made on first use. */
struct box
{
  const sbx_options_t *opts;
  sbx_sandbox_t *sb; /* the worker's handle; NULL until the first use */
  bool started;
  pthread_mutex_t lock;
  char *id;      /* published for the main thread, which may have to
                    remove the sandbox while the worker uses it */
  bool stopping; /* set by the main thread: make nothing more */
};

static int
box_sandbox (void *userdata, bool create, sbx_sandbox_t **out, sbx_error_t **err)
{
  struct box *box = userdata;
  *out = NULL;
  if (!box->started && !create)
    return 0;
  pthread_mutex_lock (&box->lock);
  bool stopping = box->stopping;
  pthread_mutex_unlock (&box->lock);
  if (stopping)
    return sbx_error_set (err, SBX_E_GONE, "the server is shutting down.");
  int r = 0;
  if (box->sb == NULL && (r = sbx_sandbox_new (box->opts, &box->sb, err)) < 0)
    return r;
  if (!box->started)
    {
      double t0 = sbx_now ();
      r = sbx_sandbox_start (box->sb, err);
      const char *id = sbx_sandbox_id (box->sb);
      /* Published even after a failure: a container may exist anyway. The
       * main thread either sees the id (and removes the sandbox) or its
       * stop is seen here. */
      pthread_mutex_lock (&box->lock);
      if (box->id == NULL && id)
        box->id = strdup (id);
      stopping = box->stopping;
      pthread_mutex_unlock (&box->lock);
      if (r < 0)
        {
          note ("the sandbox could not be started: %s",
                err && *err ? sbx_error_message (*err) : "out of memory");
          return sbx_error_wrap (err, r, "the sandbox could not be started");
        }
      if (stopping)
        return sbx_error_set (err, SBX_E_GONE, "the server is shutting down.");
      box->started = true;
      note ("sandbox %s is ready (image %s, work dir %s) after %.1f s", id,
            sbx_sandbox_image (box->sb), sbx_sandbox_workdir (box->sb), sbx_now () - t0);
      if (sbx_sandbox_notice (box->sb))
        note ("%s", sbx_sandbox_notice (box->sb));
    }
  *out = box->sb;
  return 0;
}

/* ----------------------------------------------------------------- server */

struct job
{
  sbx_mcp_call_t *call;
  struct job *next;
};

struct server
{
  const sbx_mcp_stdio_opts_t *opts;
  struct box box;

  pthread_mutex_t lock; /* the queue and the flags below */
  pthread_cond_t cond;
  struct job *head, *tail;
  bool closing;  /* no more calls come: finish the queue, then stop */
  bool aborting; /* stop now, dropping the queue */
  bool busy;     /* the worker runs a call */

  pthread_mutex_t out_lock;
  bool out_broken; /* stdout is gone: nobody reads the replies */
  int done[2];     /* the worker writes here when it ends */
};

/* Sends MSG (a message's text, stolen) as one line; false once stdout is
 * gone. */
static bool
send_msg (struct server *s, char *msg)
{
  /* The other thread may be marking stdout broken: the flag is read under
   * the lock, also when there is nothing to write. */
  pthread_mutex_lock (&s->out_lock);
  if (msg == NULL)
    note ("out of memory: a reply was lost");
  else if (!s->out_broken
           && (sbx_write_all (STDOUT_FILENO, msg, strlen (msg)) < 0
               || sbx_write_all (STDOUT_FILENO, "\n", 1) < 0))
    {
      note ("cannot write to stdout: %s; stopping", strerror (errno));
      s->out_broken = true;
    }
  bool ok = !s->out_broken;
  pthread_mutex_unlock (&s->out_lock);
  free (msg);
  return ok;
}

static void
run_job (struct server *s, struct job *job)
{
  double t0 = sbx_now ();
  char *reply = NULL;
  bool failed = false;
  sbx_error_t *err = NULL;
  if (sbx_mcp_call_run (job->call, &reply, &failed, &err) < 0)
    note ("%s: %s", sbx_mcp_call_tool (job->call), sbx_error_message (err));
  else
    note ("%s: %s in %.0f ms", sbx_mcp_call_tool (job->call), failed ? "error" : "done",
          (sbx_now () - t0) * 1e3);
  sbx_error_free (err);
  pthread_mutex_lock (&s->lock);
  s->busy = false;
  bool abort = s->aborting;
  pthread_mutex_unlock (&s->lock);
  if (abort)
    free (reply); /* cut short by a signal: the client is leaving */
  else if (!send_msg (s, reply))
    {
      pthread_mutex_lock (&s->lock);
      s->aborting = true;
      pthread_mutex_unlock (&s->lock);
    }
}

static void *
worker (void *arg)
{
  struct server *s = arg;
  for (;;)
    {
      pthread_mutex_lock (&s->lock);
      while (s->head == NULL && !s->closing && !s->aborting)
        pthread_cond_wait (&s->cond, &s->lock);
      struct job *job = s->aborting ? NULL : s->head;
      if (job)
        {
          s->head = job->next;
          if (s->head == NULL)
            s->tail = NULL;
          s->busy = true;
        }
      pthread_mutex_unlock (&s->lock);
      if (job == NULL)
        break;
      run_job (s, job);
      sbx_mcp_call_free (job->call);
      free (job);
    }
  if (write (s->done[1], "x", 1) < 0)
    note ("cannot wake the main thread: %s", strerror (errno));
  return NULL;
}

static bool
enqueue (struct server *s, sbx_mcp_call_t *call)
{
  struct job *job = calloc (1, sizeof *job);
  if (job == NULL)
    return false;
  job->call = call;
  pthread_mutex_lock (&s->lock);
  if (s->tail)
    s->tail->next = job;
  else
    s->head = job;
  s->tail = job;
  pthread_cond_signal (&s->cond);
  pthread_mutex_unlock (&s->lock);
  return true;
}

/* Makes the worker make no sandbox, and when it is BUSY removes (or stops,
 * when kept) the sandbox by its id, through a handle of our own: the
 * worker's is in the middle of a call, which then fails at once. */
static void
cut_short (struct server *s, bool busy)
{
  pthread_mutex_lock (&s->box.lock);
  s->box.stopping = true;
  cleanup_free char *id = busy && s->box.id ? strdup (s->box.id) : NULL;
  pthread_mutex_unlock (&s->box.lock);
  if (id == NULL)
    return;
  sbx_sandbox_t *h = NULL;
  sbx_error_t *err = NULL;
  int r = sbx_sandbox_open (id, &h, &err);
  if (r == 0)
    r = s->opts->keep ? sbx_sandbox_stop (h, &err) : sbx_sandbox_remove (h, &err);
  if (r < 0 && sbx_error_code (err) != SBX_E_GONE)
    note ("cannot stop sandbox %s: %s", id, sbx_error_message (err));
  sbx_error_free (err);
  sbx_sandbox_free (h);
}

static void
stop_now (struct server *s)
{
  pthread_mutex_lock (&s->lock);
  s->aborting = true;
  bool busy = s->busy;
  for (struct job *j = s->head, *next; j; j = next)
    {
      next = j->next;
      sbx_mcp_call_free (j->call);
      free (j);
    }
  s->head = s->tail = NULL;
  pthread_cond_signal (&s->cond);
  pthread_mutex_unlock (&s->lock);
  cut_short (s, busy);
}

/* The end of the sandbox, once the worker is gone. */
static int
finish_sandbox (struct server *s)
{
  sbx_sandbox_t *sb = s->box.sb;
  const char *id = sb ? sbx_sandbox_id (sb) : NULL;
  if (id == NULL)
    return 0;
  sbx_error_t *err = NULL;
  int r = s->opts->keep ? sbx_sandbox_stop (sb, &err) : sbx_sandbox_remove (sb, &err);
  if (r < 0 && sbx_error_code (err) != SBX_E_GONE)
    {
      note ("cannot %s sandbox %s: %s", s->opts->keep ? "stop" : "remove", id,
            sbx_error_message (err));
      sbx_error_free (err);
      return r;
    }
  sbx_error_free (err);
  if (s->opts->keep)
    note ("stopped sandbox %s; it is kept, and `sbx mcp --name %s` uses it again", id, id);
  else
    note ("removed sandbox %s", id);
  return 0;
}

/* Handles the complete lines read so far; false when stdout is gone. */
static bool
handle_lines (struct server *s, sbx_mcp_conn_t *conn, struct mcp_lines *lines, bool eof,
              bool *said_hello)
{
  const char *line;
  size_t len;
  int r;
  while ((r = mcp_lines_next (lines, eof, &line, &len)) != 0)
    {
      char *reply = NULL;
      sbx_mcp_call_t *call = NULL;
      sbx_error_t *err = NULL;
      if (r == MCP_LINE_TOO_LONG)
        {
          size_t n;
          reply = mcp_encode (mcp_reply_error (NULL, MCP_INVALID_REQUEST,
                                               "Invalid Request: message larger than %u bytes",
                                               MCP_MAX_MESSAGE),
                              &n);
          if (reply == NULL)
            note ("out of memory: a reply was lost");
        }
      else if (sbx_mcp_conn_handle (conn, line, len, &reply, &call, &err) < 0)
        note ("a message was dropped: %s", sbx_error_message (err));
      else if (call && !enqueue (s, call))
        {
          if (sbx_mcp_call_refuse (call, "Internal error: out of memory", &reply, NULL) < 0)
            note ("out of memory: a reply was lost");
          sbx_mcp_call_free (call);
        }
      sbx_error_free (err);
      if (reply && !send_msg (s, reply))
        return false;
      if (!*said_hello && sbx_mcp_conn_initialized (conn))
        {
          note ("%s connected (protocol %s)", sbx_mcp_conn_client (conn),
                sbx_mcp_conn_version (conn));
          *said_hello = true;
        }
    }
  return true;
}

/* Reads stdin until its end, the worker's end or a signal. */
static int
serve (struct server *s, sbx_mcp_conn_t *conn, int sigfd)
{
  struct mcp_lines lines;
  mcp_lines_init (&lines, MCP_MAX_MESSAGE);
  bool eof = false, said_hello = false;
  cleanup_free char *buf = malloc (READ_CHUNK);
  int ret = 0;
  if (buf == NULL)
    {
      note ("out of memory");
      stop_now (s);
      ret = -SBX_E_NOMEM;
    }
  while (buf)
    {
      struct pollfd fds[3] = {
        { sigfd, POLLIN, 0 },
        { s->done[0], POLLIN, 0 },
        { eof ? -1 : STDIN_FILENO, POLLIN, 0 },
      };
      if (poll (fds, 3, -1) < 0)
        {
          if (errno == EINTR)
            continue;
          note ("poll: %s", strerror (errno));
          stop_now (s);
          break;
        }
      if (fds[0].revents)
        {
          struct signalfd_siginfo si;
          if (read (sigfd, &si, sizeof si) == sizeof si)
            note ("%s: stopping", strsignal ((int) si.ssi_signo));
          stop_now (s);
          break;
        }
      if (fds[1].revents)
        break; /* the worker is done: the queue after EOF, or stdout is gone */
      if (!fds[2].revents)
        continue;
      ssize_t n = read (STDIN_FILENO, buf, READ_CHUNK);
      if (n < 0 && (errno == EINTR || errno == EAGAIN))
        continue;
      if (n < 0)
        note ("cannot read stdin: %s", strerror (errno));
      eof = n <= 0;
      if (n > 0 && mcp_lines_push (&lines, buf, (size_t) n) < 0)
        {
          note ("out of memory");
          stop_now (s);
          break;
        }
      if (!handle_lines (s, conn, &lines, eof, &said_hello))
        {
          stop_now (s);
          break;
        }
      if (eof)
        {
          note ("the client closed stdin");
          pthread_mutex_lock (&s->lock);
          s->closing = true;
          pthread_cond_signal (&s->cond);
          pthread_mutex_unlock (&s->lock);
        }
    }
  mcp_lines_free (&lines);
  return ret;
}

int
sbx_mcp_serve_stdio (const sbx_mcp_stdio_opts_t *opts)
{
  struct server s = { .opts = opts, .done = { -1, -1 } };
  s.box.opts = opts->sandbox;
  pthread_mutex_init (&s.lock, NULL);
  pthread_mutex_init (&s.out_lock, NULL);
  pthread_mutex_init (&s.box.lock, NULL);
  pthread_cond_init (&s.cond, NULL);

  sbx_mcp_session_opts_t so = { .perms = opts->perms,
                                .network = opts->network,
                                .workdir = opts->workdir,
                                .sandbox = box_sandbox,
                                .userdata = &s.box };
  sbx_mcp_session_t *session = NULL;
  sbx_mcp_conn_t *conn = NULL;
  sbx_error_t *err = NULL;

  /* Signals arrive through a descriptor, in the main thread's poll; the
   * worker inherits the blocked mask. A reader gone from stdout is an
   * error on write, not a death. */
  sigset_t set;
  sigemptyset (&set);
  sigaddset (&set, SIGTERM);
  sigaddset (&set, SIGINT);
  sigaddset (&set, SIGHUP);
  signal (SIGPIPE, SIG_IGN);
  int sigfd = -1, ret = 0;
  pthread_t thread;
  bool have_thread = false;
  if ((ret = sbx_mcp_session_new (&so, &session, &err)) < 0
      || (ret = sbx_mcp_conn_new (session, &conn, &err)) < 0)
    note ("cannot start: %s", sbx_error_message (err));
  else if (sigprocmask (SIG_BLOCK, &set, NULL) < 0
           || (sigfd = signalfd (-1, &set, SFD_CLOEXEC | SFD_NONBLOCK)) < 0
           || pipe2 (s.done, O_CLOEXEC) < 0
           || (errno = pthread_create (&thread, NULL, worker, &s)) != 0)
    {
      note ("cannot start: %s", strerror (errno));
      ret = -SBX_E_IO;
    }
  else
    {
      have_thread = true;
      note ("serving MCP on stdin/stdout with %s; the sandbox is made on the first tool call",
            sbx_mcp_perms_origin (opts->perms));
      ret = serve (&s, conn, sigfd);
    }
  sbx_error_free (err);

  if (have_thread)
    pthread_join (thread, NULL);
  int r = finish_sandbox (&s);
  if (r < 0)
    ret = r;
  sbx_sandbox_free (s.box.sb);
  free (s.box.id);
  sbx_mcp_conn_free (conn);
  sbx_mcp_session_free (session);
  if (sigfd >= 0)
    close (sigfd);
  for (int i = 0; i < 2; i++)
    if (s.done[i] >= 0)
      close (s.done[i]);
  pthread_cond_destroy (&s.cond);
  pthread_mutex_destroy (&s.lock);
  pthread_mutex_destroy (&s.out_lock);
  pthread_mutex_destroy (&s.box.lock);
  return ret;
}
