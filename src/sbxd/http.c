/* libmicrohttpd's side: a small pool of polling threads reads requests.
 * What is answered from memory (the service's documents, a session's
 * info, any request without a valid token) is answered there and then,
 * before any body is read; every other request, once whole, goes to a
 * pool of workers (the connection suspended meanwhile), since an operation
 * may block for as long as its command runs, and a client that hangs up
 * meanwhile cancels its command. Bodies are bounded one by one (413 past
 * --max-body, said before the body is read when its length is announced,
 * and 120 s to send one), and with the answers not yet taken by their
 * clients, all together (503 past 16 times that); connections are bounded per
 * address, a request's head is due within 10 s (30 s after the previous
 * answer), and a connection silent for 30 s is closed (a suspended one,
 * waiting for its operation or its stream, is not: no timeout runs while
 * suspended).
 * The Host and Origin headers are checked against DNS rebinding.
 * SIGTERM and SIGINT stop the listening, let the requests in flight
 * finish, then stop. */
#include "sbxd.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <microhttpd.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

typedef struct conn_req
{
  sbxd_server_t *srv;
  struct MHD_Connection *conn;
  char *method, *path, *token, *content_type, *host, *origin, *accept, *mcp_session, *mcp_version;
  json_t *query;
  char *body;
  size_t len;
  size_t reserved;    /* of the bodies' budget */
  double started;     /* sbx_now () at its head */
  bool inline_answer; /* answered on the polling thread (sbxd_route_quick, or no valid token) */
  int refused;        /* 413 or 503, said once the body is read (and dropped) */
  bool queued, done;
  bool answered; /* a response queued before the body was whole */
  sbxd_reply_t reply;
  struct conn_req *next;
} conn_req_t;

/* ------------------------------------------------------------- streams */

/* What a stream holds before the client takes it: past this, the writer
 * waits (and so does the command whose output it is). */
#define STREAM_BUFFER (256u << 10)

struct sbxd_stream
{
  pthread_mutex_t lock;
  pthread_cond_t room;
  char *buf;
  size_t len;
  bool ended, gone, suspended;
  struct MHD_Connection *conn; /* set before the first read */
  int refs;
};

sbxd_stream_t *
sbxd_stream_new (void)
{
  sbxd_stream_t *st = calloc (1, sizeof *st);
  if (st == NULL || (st->buf = malloc (STREAM_BUFFER)) == NULL)
    {
      free (st);
      return NULL;
    }
  pthread_mutex_init (&st->lock, NULL);
  pthread_cond_init (&st->room, NULL);
  st->refs = 1;
  return st;
}

sbxd_stream_t *
sbxd_stream_ref (sbxd_stream_t *st)
{
  pthread_mutex_lock (&st->lock);
  st->refs++;
  pthread_mutex_unlock (&st->lock);
  return st;
}

void
sbxd_stream_unref (sbxd_stream_t *st)
{
  if (st == NULL)
    return;
  pthread_mutex_lock (&st->lock);
  bool last = --st->refs == 0;
  pthread_mutex_unlock (&st->lock);
  if (!last)
    return;
  pthread_mutex_destroy (&st->lock);
  pthread_cond_destroy (&st->room);
  free (st->buf);
  free (st);
}

/* st->lock held: the connection, suspended for want of data, goes on. */
static void
wake_reader (sbxd_stream_t *st)
{
  if (st->suspended)
    {
      st->suspended = false;
      MHD_resume_connection (st->conn);
    }
}

int
sbxd_stream_write (sbxd_stream_t *st, const char *data, size_t len, double timeout)
{
  struct timespec deadline;
  clock_gettime (CLOCK_REALTIME, &deadline);
  deadline.tv_sec += (time_t) timeout + 1;
  pthread_mutex_lock (&st->lock);
  while (len > 0 && !st->gone)
    {
      while (st->len == STREAM_BUFFER && !st->gone)
        if (pthread_cond_timedwait (&st->room, &st->lock, &deadline) == ETIMEDOUT)
          {
            pthread_mutex_unlock (&st->lock);
            return -1;
          }
      size_t n = STREAM_BUFFER - st->len < len ? STREAM_BUFFER - st->len : len;
      memcpy (st->buf + st->len, data, n);
      st->len += n;
      data += n;
      len -= n;
      wake_reader (st);
    }
  bool gone = st->gone;
  pthread_mutex_unlock (&st->lock);
  return gone ? -1 : 0;
}

void
sbxd_stream_end (sbxd_stream_t *st)
{
  pthread_mutex_lock (&st->lock);
  st->ended = true;
  wake_reader (st);
  pthread_mutex_unlock (&st->lock);
}

static ssize_t
stream_read (void *cls, uint64_t pos, char *buf, size_t max)
{
  (void) pos;
  sbxd_stream_t *st = cls;
  pthread_mutex_lock (&st->lock);
  ssize_t n = 0;
  if (st->len > 0)
    {
      size_t k = st->len < max ? st->len : max;
      memcpy (buf, st->buf, k);
      memmove (st->buf, st->buf + k, st->len - k);
      st->len -= k;
      n = (ssize_t) k;
      pthread_cond_broadcast (&st->room);
    }
  else if (st->ended)
    n = MHD_CONTENT_READER_END_OF_STREAM;
  else
    {
      /* Nothing yet: the connection sleeps until the writer wakes it. */
      st->suspended = true;
      MHD_suspend_connection (st->conn);
    }
  pthread_mutex_unlock (&st->lock);
  return n;
}

/* The response is done with (sent, or the client went away). */
static void
stream_gone (void *cls)
{
  sbxd_stream_t *st = cls;
  pthread_mutex_lock (&st->lock);
  st->gone = true;
  pthread_cond_broadcast (&st->room);
  pthread_mutex_unlock (&st->lock);
  sbxd_stream_unref (st);
}

/* ---------------------------------------------------------------- jobs */

static struct
{
  pthread_mutex_t lock;
  pthread_cond_t cond, idle;
  conn_req_t *head, *tail;
  size_t busy; /* requests queued or running */
  bool stopping;
} jobs = { .lock = PTHREAD_MUTEX_INITIALIZER,
           .cond = PTHREAD_COND_INITIALIZER,
           .idle = PTHREAD_COND_INITIALIZER };

/* ----------------------------------------------------------- the heads */

/* A connection's first head must be whole within HEAD_SECONDS, a later one
 * within IDLE_SECONDS of the previous answer: libmicrohttpd times only
 * silence, so a client sending a byte now and then would keep a
 * connection for ever. A watcher thread shuts down the socket of one that
 * is late (libmicrohttpd then closes it as a client's hang-up). */
#define HEAD_SECONDS 10
#define IDLE_SECONDS 30

typedef struct watch
{
  int fd;
  double deadline; /* sbx_now (); 0 while a request is under way */
  struct watch *prev, *next;
} watch_t;

static struct
{
  pthread_mutex_t lock;
  pthread_cond_t stop;
  watch_t *list;
  bool stopping;
} watches = { .lock = PTHREAD_MUTEX_INITIALIZER, .stop = PTHREAD_COND_INITIALIZER };

/* libmicrohttpd tells of each connection at its start and before it
 * closes its socket: a watch lives in between. */
static void
on_connection (void *cls, struct MHD_Connection *c, void **socket_context,
               enum MHD_ConnectionNotificationCode toe)
{
  (void) cls;
  watch_t *w = *socket_context;
  if (toe == MHD_CONNECTION_NOTIFY_STARTED)
    {
      const union MHD_ConnectionInfo *ci
          = MHD_get_connection_info (c, MHD_CONNECTION_INFO_CONNECTION_FD);
      if (ci == NULL || (w = calloc (1, sizeof *w)) == NULL)
        return;
      w->fd = ci->connect_fd;
      w->deadline = sbx_now () + HEAD_SECONDS;
      pthread_mutex_lock (&watches.lock);
      w->next = watches.list;
      if (w->next)
        w->next->prev = w;
      watches.list = w;
      pthread_mutex_unlock (&watches.lock);
      *socket_context = w;
      return;
    }
  if (w == NULL)
    return;
  pthread_mutex_lock (&watches.lock);
  if (w->prev)
    w->prev->next = w->next;
  else
    watches.list = w->next;
  if (w->next)
    w->next->prev = w->prev;
  pthread_mutex_unlock (&watches.lock);
  free (w);
  *socket_context = NULL;
}

/* C's next head is due by DEADLINE (0: none now). */
static void
watch_set (struct MHD_Connection *c, double deadline)
{
  const union MHD_ConnectionInfo *ci = MHD_get_connection_info (c,
                                                                MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  watch_t *w = ci ? ci->socket_context : NULL;
  if (w == NULL)
    return;
  pthread_mutex_lock (&watches.lock);
  w->deadline = deadline;
  pthread_mutex_unlock (&watches.lock);
}

static void *
watcher_main (void *arg)
{
  (void) arg;
  pthread_mutex_lock (&watches.lock);
  while (!watches.stopping)
    {
      double now = sbx_now ();
      for (watch_t *w = watches.list; w; w = w->next)
        if (w->deadline > 0 && now > w->deadline)
          {
            shutdown (w->fd, SHUT_RDWR);
            w->deadline = 0;
          }
      struct timespec tick;
      clock_gettime (CLOCK_REALTIME, &tick);
      tick.tv_sec += 1;
      pthread_cond_timedwait (&watches.stop, &watches.lock, &tick);
    }
  pthread_mutex_unlock (&watches.lock);
  return NULL;
}

/* ---------------------------------------------------------- the bodies */

/* A body must be whole this long after its head. */
#define BODY_SECONDS 120

/* The bytes of request bodies held at once, all connections together. */
static struct
{
  pthread_mutex_t lock;
  size_t held;
} bodies = { .lock = PTHREAD_MUTEX_INITIALIZER };

static size_t
bodies_budget (const sbxd_server_t *srv)
{
  return srv->config->max_body * 16;
}

/* Takes N more bytes of the budget for R: false when they are not there. */
static bool
bodies_take (conn_req_t *r, size_t n)
{
  pthread_mutex_lock (&bodies.lock);
  bool ok = bodies.held + n <= bodies_budget (r->srv);
  if (ok)
    {
      bodies.held += n;
      r->reserved += n;
    }
  pthread_mutex_unlock (&bodies.lock);
  return ok;
}

static void
bodies_give_back (conn_req_t *r)
{
  pthread_mutex_lock (&bodies.lock);
  bodies.held -= r->reserved;
  r->reserved = 0;
  pthread_mutex_unlock (&bodies.lock);
}

static void
conn_req_free (conn_req_t *r)
{
  bodies_give_back (r);
  free (r->method);
  free (r->path);
  if (r->token)
    explicit_bzero (r->token, strlen (r->token));
  free (r->token);
  free (r->content_type);
  free (r->host);
  free (r->origin);
  free (r->accept);
  free (r->mcp_session);
  free (r->mcp_version);
  free (r->reply.mcp_session);
  if (r->reply.stream)
    {
      /* Never sent (the client left first): its writer must not wait. */
      sbxd_stream_t *st = r->reply.stream;
      pthread_mutex_lock (&st->lock);
      if (st->conn == NULL)
        st->gone = true;
      pthread_cond_broadcast (&st->room);
      pthread_mutex_unlock (&st->lock);
      sbxd_stream_unref (st);
    }
  json_decref (r->query);
  free (r->body);
  free (r->reply.body);
  free (r);
}

static char *
header (struct MHD_Connection *c, const char *name)
{
  const char *v = MHD_lookup_connection_value (c, MHD_HEADER_KIND, name);
  return v ? strdup (v) : NULL;
}

static enum MHD_Result
add_query (void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
  (void) kind;
  json_object_set_new (cls, key, json_string (value ? value : ""));
  return MHD_YES;
}

static enum MHD_Result
send_reply (struct MHD_Connection *c, sbxd_reply_t *reply)
{
  struct MHD_Response *resp;
  if (reply->stream)
    {
      pthread_mutex_lock (&reply->stream->lock);
      reply->stream->conn = c;
      reply->stream->refs++; /* the response's */
      pthread_mutex_unlock (&reply->stream->lock);
      resp = MHD_create_response_from_callback (MHD_SIZE_UNKNOWN, 16384, stream_read, reply->stream,
                                                stream_gone);
      if (resp == NULL)
        stream_gone (reply->stream);
      else
        MHD_add_response_header (resp, "X-Accel-Buffering", "no");
    }
  else
    {
      /* Handed over, not copied: an answer is held once, until it is sent. */
      resp = MHD_create_response_from_buffer (reply->len, reply->body, MHD_RESPMEM_MUST_FREE);
      if (resp)
        reply->body = NULL;
    }
  if (resp == NULL)
    return MHD_NO;
  MHD_add_response_header (resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                           reply->stream         ? "text/event-stream"
                           : reply->content_type ? reply->content_type
                                                 : "application/json");
  MHD_add_response_header (resp, "X-Content-Type-Options", "nosniff");
  MHD_add_response_header (resp, "Cache-Control", "no-store");
  if (reply->allow)
    MHD_add_response_header (resp, "Allow", reply->allow);
  if (reply->mcp_session)
    MHD_add_response_header (resp, "Mcp-Session-Id", reply->mcp_session);
  if (reply->bearer_challenge)
    MHD_add_response_header (resp, "WWW-Authenticate", "Bearer");
  if (reply->truncated)
    {
      char total[32];
      snprintf (total, sizeof total, "%zu", reply->total);
      MHD_add_response_header (resp, "X-Sbx-Truncated", "true");
      MHD_add_response_header (resp, "X-Sbx-Total", total);
    }
  enum MHD_Result r = MHD_queue_response (c, (unsigned) reply->status, resp);
  MHD_destroy_response (resp);
  return r;
}

static enum MHD_Result
send_detail (struct MHD_Connection *c, int status, const char *detail)
{
  json_t *doc = json_pack ("{s:s}", "detail", detail);
  sbxd_reply_t reply = { .status = status };
  reply.body = doc ? json_dumps (doc, JSON_COMPACT) : NULL;
  reply.len = reply.body ? strlen (reply.body) : 0;
  json_decref (doc);
  enum MHD_Result r = send_reply (c, &reply);
  free (reply.body);
  return r;
}

static enum MHD_Result
send_too_big (struct MHD_Connection *c, sbxd_server_t *srv)
{
  char msg[128];
  snprintf (msg, sizeof msg, "Request body larger than %zu bytes", srv->config->max_body);
  sbxd_metrics_request ("other", 413, 0);
  return send_detail (c, 413, msg);
}

static enum MHD_Result
send_busy (struct MHD_Connection *c, sbxd_server_t *srv)
{
  char msg[160];
  snprintf (msg, sizeof msg,
            "Too many request bodies at once (%zu MiB held, the limit): retry in a moment",
            bodies_budget (srv) >> 20);
  sbxd_metrics_request ("other", 503, 0);
  return send_detail (c, 503, msg);
}

/* An operation's answer that its client does not take counts against the
 * same budget as the bodies, until it is sent: past it, 503 instead. */
static enum MHD_Result
send_answer (struct MHD_Connection *c, conn_req_t *r)
{
  if (r->reply.stream || bodies_take (r, r->reply.len))
    return send_reply (c, &r->reply);
  char msg[200];
  snprintf (msg, sizeof msg,
            "Too many answers held for clients that do not take them (%zu MiB, the limit): "
            "retry in a moment",
            bodies_budget (r->srv) >> 20);
  sbxd_metrics_request ("other", 503, 0);
  return send_detail (c, 503, msg);
}

static sbxd_request_t request_of (const conn_req_t *r);

/* Routes R on this thread, without its body, and answers. */
static enum MHD_Result
answer_here (struct MHD_Connection *c, conn_req_t *r)
{
  sbxd_request_t req = request_of (r);
  req.body = "";
  req.body_len = 0;
  sbxd_route (r->srv, &req, &r->reply);
  r->answered = true;
  return send_reply (c, &r->reply);
}

static sbxd_request_t
request_of (const conn_req_t *r)
{
  return (sbxd_request_t){
    .method = r->method,
    .path = r->path,
    .token = r->token,
    .content_type = r->content_type,
    .host = r->host,
    .origin = r->origin,
    .accept = r->accept,
    .mcp_session = r->mcp_session,
    .mcp_version = r->mcp_version,
    .query = r->query,
    .body = r->body ? r->body : "",
    .body_len = r->len,
    .client_fd = -1,
  };
}

static void *
worker_main (void *arg)
{
  (void) arg;
  for (;;)
    {
      pthread_mutex_lock (&jobs.lock);
      while (jobs.head == NULL && !jobs.stopping)
        pthread_cond_wait (&jobs.cond, &jobs.lock);
      if (jobs.head == NULL)
        {
          pthread_mutex_unlock (&jobs.lock);
          return NULL;
        }
      conn_req_t *r = jobs.head;
      jobs.head = r->next;
      if (jobs.head == NULL)
        jobs.tail = NULL;
      pthread_mutex_unlock (&jobs.lock);
      sbxd_request_t req = request_of (r);
      /* The socket stays the connection's while it is suspended; a copy of
       * it, for the operation to watch for the client hanging up. */
      const union MHD_ConnectionInfo *ci
          = MHD_get_connection_info (r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
      req.client_fd = ci ? fcntl (ci->connect_fd, F_DUPFD_CLOEXEC, 0) : -1;
      sbxd_route (r->srv, &req, &r->reply);
      if (req.client_fd >= 0)
        close (req.client_fd);
      /* Done with: its bytes go back before the answer does. */
      free (r->body);
      r->body = NULL;
      bodies_give_back (r);
      void (*then) (void *) = r->reply.then;
      void *then_arg = r->reply.then_arg;
      r->done = true;
      MHD_resume_connection (r->conn);
      /* R may be freed from here on: the continuation has what it needs. */
      if (then)
        then (then_arg);
    }
}

static void
enqueue (conn_req_t *r)
{
  pthread_mutex_lock (&jobs.lock);
  jobs.busy++;
  if (jobs.tail)
    jobs.tail->next = r;
  else
    jobs.head = r;
  jobs.tail = r;
  pthread_cond_signal (&jobs.cond);
  pthread_mutex_unlock (&jobs.lock);
}

static enum MHD_Result
on_request (void *cls, struct MHD_Connection *c, const char *url, const char *method,
            const char *version, const char *upload_data, size_t *upload_data_size, void **req_cls)
{
  (void) version;
  sbxd_server_t *srv = cls;
  conn_req_t *r = *req_cls;
  if (r == NULL)
    {
      r = calloc (1, sizeof *r);
      if (r == NULL)
        return MHD_NO;
      *req_cls = r;
      watch_set (c, 0);
      r->srv = srv;
      r->conn = c;
      r->method = strdup (method);
      r->path = strdup (url);
      r->content_type = header (c, MHD_HTTP_HEADER_CONTENT_TYPE);
      r->host = header (c, MHD_HTTP_HEADER_HOST);
      r->origin = header (c, "Origin");
      r->accept = header (c, MHD_HTTP_HEADER_ACCEPT);
      r->mcp_session = header (c, "Mcp-Session-Id");
      r->mcp_version = header (c, "MCP-Protocol-Version");
      r->token = header (c, "X-Sandbox-Token");
      const char *auth = MHD_lookup_connection_value (c, MHD_HEADER_KIND, "Authorization");
      if (r->token == NULL && auth && strncasecmp (auth, "Bearer ", 7) == 0)
        r->token = strdup (auth + 7);
      r->query = json_object ();
      if (r->query)
        MHD_get_connection_values (c, MHD_GET_ARGUMENT_KIND, add_query, r->query);
      if (r->method == NULL || r->path == NULL || r->query == NULL)
        return MHD_NO;
      const char *cl = MHD_lookup_connection_value (c, MHD_HEADER_KIND, "Content-Length");
      unsigned long long announced = cl ? strtoull (cl, NULL, 10) : 0;
      bool has_body = announced > 0
                      || MHD_lookup_connection_value (c, MHD_HEADER_KIND, "Transfer-Encoding");
      r->started = sbx_now ();
      /* What needs no worker is answered on this thread: the documents,
       * and whatever a request without a valid token gets (401, 404, 405,
       * 422): before its body is read when it has one (MHD then closes the
       * connection), else once whole (the connection then goes on). */
      if (sbxd_route_quick (r->method, r->path, r->query) || !sbxd_token_known (srv, r->token))
        {
          r->inline_answer = true;
          return has_body ? answer_here (c, r) : MHD_YES;
        }
      if (announced > srv->config->max_body)
        {
          /* Said before the body is read. */
          r->answered = true;
          return send_too_big (c, srv);
        }
      return MHD_YES;
    }
  if (*upload_data_size)
    {
      size_t n = *upload_data_size;
      *upload_data_size = 0;
      /* A body must be whole within BODY_SECONDS: a client that trickles
       * it is cut off (libmicrohttpd takes no answer in mid-body). */
      if (sbx_now () - r->started > BODY_SECONDS)
        return MHD_NO;
      if (r->answered || r->refused)
        return MHD_YES;
      /* Bytes are counted as they come (an announced length holds
       * nothing); the rest of a refused body is read and dropped, then
       * the refusal said. */
      r->refused = r->len + n > srv->config->max_body                                       ? 413
                   : r->len + n > r->reserved && !bodies_take (r, r->len + n - r->reserved) ? 503
                                                                                            : 0;
      if (r->refused)
        {
          free (r->body);
          r->body = NULL;
          bodies_give_back (r);
          return MHD_YES;
        }
      char *grown = realloc (r->body, r->len + n + 1);
      if (grown == NULL)
        return MHD_NO;
      memcpy (grown + r->len, upload_data, n);
      r->body = grown;
      r->len += n;
      r->body[r->len] = '\0';
      return MHD_YES;
    }
  if (r->answered)
    return MHD_YES;
  if (r->inline_answer)
    return answer_here (c, r);
  if (r->refused)
    return r->refused == 413 ? send_too_big (c, srv) : send_busy (c, srv);
  if (r->done)
    return send_answer (c, r);
  r->queued = true;
  MHD_suspend_connection (c);
  enqueue (r);
  return MHD_YES;
}

static void
on_completed (void *cls, struct MHD_Connection *c, void **req_cls,
              enum MHD_RequestTerminationCode toe)
{
  (void) cls;
  (void) c;
  (void) toe;
  conn_req_t *r = *req_cls;
  if (r && r->queued)
    {
      pthread_mutex_lock (&jobs.lock);
      if (--jobs.busy == 0)
        pthread_cond_broadcast (&jobs.idle);
      pthread_mutex_unlock (&jobs.lock);
    }
  watch_set (c, sbx_now () + IDLE_SECONDS);
  /* A big answer's memory goes back to the system, not only to malloc. */
  bool big = r && r->reserved >= (1u << 20);
  if (r)
    conn_req_free (r);
  *req_cls = NULL;
  if (big)
    malloc_trim (0);
}

/* libmicrohttpd's complaints ("connection limit reached", ...), at most
 * LOG_BURST a minute: a flood of connections must not flood the log. */
#define LOG_BURST 20

static void
log_some (void *cls, const char *fmt, va_list ap)
{
  (void) cls;
  static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
  static time_t window;
  static unsigned said, dropped;
  time_t now = time (NULL);
  pthread_mutex_lock (&lock);
  if (now - window >= 60)
    {
      if (dropped)
        fprintf (stderr, "sbxd: (%u more messages of libmicrohttpd not shown)\n", dropped);
      window = now;
      said = dropped = 0;
    }
  bool say = said < LOG_BURST;
  said += say;
  dropped += !say;
  if (say)
    {
      fputs ("sbxd: ", stderr);
      vfprintf (stderr, fmt, ap);
    }
  pthread_mutex_unlock (&lock);
}

/* A listening socket on a Unix path (mode 0600: only this user, root
 * aside, may connect), made before the daemon. */
static int
unix_listener (const char *path)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  if (strlen (path) >= sizeof addr.sun_path)
    {
      fprintf (stderr, "sbxd: the socket path %s is too long\n", path);
      return -1;
    }
  strcpy (addr.sun_path, path);
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct stat st;
  /* A stale socket of an earlier run is replaced; anything else stays. */
  if (lstat (path, &st) == 0 && S_ISSOCK (st.st_mode))
    unlink (path);
  mode_t old = umask (0177);
  int r = fd >= 0 ? bind (fd, (struct sockaddr *) &addr, sizeof addr) : -1;
  umask (old);
  if (r < 0 || listen (fd, 256) < 0)
    {
      fprintf (stderr, "sbxd: cannot listen on %s: %s\n", path, strerror (errno));
      if (fd >= 0)
        close (fd);
      return -1;
    }
  return fd;
}

static struct addrinfo *
tcp_address (const char *listen)
{
  const char *colon = strrchr (listen, ':');
  if (colon == NULL || colon == listen || !colon[1])
    {
      fprintf (stderr, "sbxd: --listen wants HOST:PORT or unix:PATH, not '%s'\n", listen);
      return NULL;
    }
  char host[256];
  size_t n = (size_t) (colon - listen);
  if (listen[0] == '[' && n >= 2 && listen[n - 1] == ']')
    listen++, n -= 2;
  if (n >= sizeof host)
    return NULL;
  memcpy (host, listen, n);
  host[n] = '\0';
  struct addrinfo hints = { .ai_family = AF_UNSPEC,
                            .ai_socktype = SOCK_STREAM,
                            .ai_flags = AI_NUMERICSERV | AI_PASSIVE };
  struct addrinfo *ai = NULL;
  int r = getaddrinfo (host, colon + 1, &hints, &ai);
  if (r != 0)
    {
      fprintf (stderr, "sbxd: --listen %s: %s\n", listen, gai_strerror (r));
      return NULL;
    }
  return ai;
}

int
sbxd_http_serve (sbxd_server_t *srv)
{
  sbxd_config_t *c = srv->config;
  sigset_t sigs;
  sigemptyset (&sigs);
  sigaddset (&sigs, SIGTERM);
  sigaddset (&sigs, SIGINT);
  pthread_sigmask (SIG_BLOCK, &sigs, NULL);
  signal (SIGPIPE, SIG_IGN);

  /* poll(), not epoll: libmicrohttpd 0.9.75 aborts ("Failed to remove
   * listen FD from epoll set") when MHD_quiesce_daemon races its pool of
   * epoll threads, as a SIGTERM under ASan showed. */
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_ALLOW_SUSPEND_RESUME
                   | MHD_USE_ERROR_LOG;
  int lfd = -1;
  struct addrinfo *ai = NULL;
  bool is_unix = strncmp (c->listen, "unix:", 5) == 0;
  if (is_unix)
    lfd = unix_listener (c->listen + 5);
  else if ((ai = tcp_address (c->listen)) != NULL && ai->ai_family == AF_INET6)
    flags |= MHD_USE_IPv6;
  if (is_unix ? lfd < 0 : ai == NULL)
    return -1;
  struct MHD_Daemon *d = MHD_start_daemon (
      flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_THREAD_POOL_SIZE, 2u,
      MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_CONNECTION_LIMIT, 4096u,
      MHD_OPTION_PER_IP_CONNECTION_LIMIT, is_unix ? 0u : c->max_per_ip, MHD_OPTION_EXTERNAL_LOGGER,
      log_some, NULL, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_NOTIFY_CONNECTION,
      on_connection, NULL, is_unix ? MHD_OPTION_LISTEN_SOCKET : MHD_OPTION_SOCK_ADDR,
      is_unix ? (intptr_t) lfd : (intptr_t) ai->ai_addr, MHD_OPTION_END);
  if (ai)
    freeaddrinfo (ai);
  if (d == NULL)
    {
      fprintf (stderr, "sbxd: cannot listen on %s: %s\n", c->listen,
               errno ? strerror (errno) : "libmicrohttpd refused to start");
      if (lfd >= 0)
        close (lfd);
      return -1;
    }
  pthread_t watcher;
  bool watching = pthread_create (&watcher, NULL, watcher_main, NULL) == 0;
  pthread_t *workers = calloc (c->workers, sizeof *workers);
  unsigned started = 0;
  while (workers && started < c->workers
         && pthread_create (&workers[started], NULL, worker_main, NULL) == 0)
    started++;
  if (is_unix)
    printf ("sbxd: listening on %s\n", c->listen);
  else
    {
      const union MHD_DaemonInfo *info = MHD_get_daemon_info (d, MHD_DAEMON_INFO_BIND_PORT);
      const char *colon = strrchr (c->listen, ':');
      printf ("sbxd: listening on http://%.*s:%u\n", (int) (colon - c->listen), c->listen,
              info ? info->port : 0);
    }
  fflush (stdout);

  int sig = 0;
  sigwait (&sigs, &sig);
  fprintf (stderr, "sbxd: %s: finishing the requests in flight\n", strsignal (sig));
  MHD_quiesce_daemon (d);
  /* The requests in flight end within the ceiling of their operation. */
  struct timespec deadline;
  clock_gettime (CLOCK_REALTIME, &deadline);
  deadline.tv_sec += (time_t) c->execute_timeout + 10;
  pthread_mutex_lock (&jobs.lock);
  while (jobs.busy > 0 && pthread_cond_timedwait (&jobs.idle, &jobs.lock, &deadline) != ETIMEDOUT)
    ;
  size_t left = jobs.busy;
  jobs.stopping = true;
  pthread_cond_broadcast (&jobs.cond);
  pthread_mutex_unlock (&jobs.lock);
  if (left)
    {
      /* Their workers still hold connections: nothing can be stopped cleanly. */
      fprintf (stderr, "sbxd: %zu requests still running at the deadline; exiting\n", left);
      _exit (1);
    }
  MHD_stop_daemon (d);
  pthread_mutex_lock (&watches.lock);
  watches.stopping = true;
  pthread_cond_signal (&watches.stop);
  pthread_mutex_unlock (&watches.lock);
  if (watching)
    pthread_join (watcher, NULL);
  for (unsigned i = 0; i < started; i++)
    pthread_join (workers[i], NULL);
  free (workers);
  if (is_unix)
    unlink (c->listen + 5);
  return 0;
}
