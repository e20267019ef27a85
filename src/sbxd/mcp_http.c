/* /mcp: the tools of `sbx mcp` (libsbx-mcp, the same permissions) over
 * MCP's Streamable HTTP transport. Each POST carries one message and gets
 * its answer as application/json (or 202 for a notification); initialize
 * makes an MCP session, named by Mcp-Session-Id on every later request;
 * DELETE ends it. There is no server-initiated stream (GET is 405).
 *
 * Who may use an MCP session: the bearer of the token that made it. A
 * session token binds the MCP session to that sandbox session; the service
 * token (or none, with --no-auth) gets a sandbox session of its own, made
 * on the first tool call that needs one and ended with the MCP session. */
#include "sbxd.h"

#include "internal.h"
#include "sha256.h"

#include <stdio.h>
#include <string.h>

/* MCP sessions kept at once, and of one token; past them, initialize
 * answers 503 or 429. */
#define MAX_MCP_SESSIONS 1024
#define MAX_MCP_SESSIONS_PER_TOKEN 64
/* A message's JSON: at most this many values, this deep. */
#define MAX_MESSAGE_VALUES 4096
#define MAX_MESSAGE_DEPTH 64

typedef struct mcp_sess mcp_sess_t;
struct mcp_sess
{
  char *id;
  char owner[65]; /* SHA-256 of the token that made it ("" with auth off) */
  sbxd_server_t *srv;
  bool owns;             /* its sandbox session was made for it */
  bool by_token;         /* bound by a session's token (from the start, for good) */
  bool ready;            /* initialized: findable (store.lock) */
  sbxd_session_t *bound; /* referenced; NULL until made (owns) */
  sbx_mcp_session_t *ms;
  sbx_mcp_conn_t *conn;
  pthread_mutex_t conn_lock; /* the connection's state machine */
  pthread_mutex_t call_lock; /* one tool call at a time */
  sbx_sandbox_t *held;       /* during a call: the sandbox session's handle */
  bool reserved;             /* during a call: it holds a place in the bound session */
  unsigned calls;            /* tool calls running or waiting (store.lock) */
  double last_used;          /* sbx_now () */
  int refs;                  /* store.lock */
  mcp_sess_t *next;
};

static struct
{
  pthread_mutex_t lock;
  mcp_sess_t *list;
  size_t count;
} store = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* ------------------------------------------------------------ sessions */

/* Ends the sandbox session the MCP session made; then frees it. */
static void
sess_free (mcp_sess_t *m)
{
  if (m->bound && m->owns)
    {
      sbxd_fail_t f = { 0 };
      if (sbxd_session_delete (m->srv->registry, m->bound, false, &f) < 0 && f.status != 404)
        fprintf (stderr, "sbxd: mcp: ending session %s: %s\n", sbxd_session_id (m->bound),
                 f.detail);
      sbxd_fail_clear (&f);
    }
  sbxd_session_unref (m->bound);
  sbx_mcp_conn_free (m->conn);
  sbx_mcp_session_free (m->ms);
  pthread_mutex_destroy (&m->conn_lock);
  pthread_mutex_destroy (&m->call_lock);
  free (m->id);
  free (m);
}

static void
sess_unref (mcp_sess_t *m)
{
  pthread_mutex_lock (&store.lock);
  bool last = --m->refs == 0;
  pthread_mutex_unlock (&store.lock);
  if (last)
    sess_free (m);
}

/* store.lock held: M leaves the store (its reference with it). */
static bool
unlink_sess (mcp_sess_t *m)
{
  for (mcp_sess_t **p = &store.list; *p; p = &(*p)->next)
    if (*p == m)
      {
        *p = m->next;
        store.count--;
        return --m->refs == 0;
      }
  return false;
}

/* MCP sessions unused for longer than the idle timeout end. */
static void
expire (sbxd_server_t *srv)
{
  double idle = srv->config->idle_timeout > 0 ? srv->config->idle_timeout : SBX_MAX_TIMEOUT;
  double now = sbx_now ();
  mcp_sess_t *dead = NULL;
  pthread_mutex_lock (&store.lock);
  for (mcp_sess_t *m = store.list, *next; m; m = next)
    {
      next = m->next;
      if (now - m->last_used > idle && m->refs == 1 && unlink_sess (m))
        {
          m->next = dead;
          dead = m;
        }
    }
  pthread_mutex_unlock (&store.lock);
  for (mcp_sess_t *m = dead, *next; m; m = next)
    {
      next = m->next;
      sess_free (m);
    }
}

static void
owner_of (const sbxd_config_t *c, const char *token, char hex[65])
{
  memset (hex, 0, 65); /* compared whole */
  if (!c->auth_off && token != NULL)
    sbx_sha256_hex (token, strlen (token), hex);
}

/* The MCP session ID if TOKEN made it, referenced; else NULL (an unknown
 * id and another's id look the same). */
static mcp_sess_t *
find (sbxd_server_t *srv, const char *id, const char *token)
{
  char owner[65];
  owner_of (srv->config, token, owner);
  pthread_mutex_lock (&store.lock);
  mcp_sess_t *found = NULL;
  for (mcp_sess_t *m = store.list; m && !found; m = m->next)
    if (m->ready && strcmp (m->id, id) == 0)
      {
        if (sbxd_same_hash (m->owner, owner))
          found = m;
      }
  if (found)
    {
      found->refs++;
      found->last_used = sbx_now ();
    }
  pthread_mutex_unlock (&store.lock);
  return found;
}

/* The tools' sandbox: the bound session's, got for the call (and put back
 * after it); made on the first call that needs it when the MCP session
 * owns its sandbox session. */
static int
source (void *userdata, bool create, sbx_sandbox_t **sb, sbx_error_t **err)
{
  mcp_sess_t *m = userdata;
  *sb = NULL;
  if (m->held)
    {
      *sb = m->held;
      return 0;
    }
  sbxd_registry_t *reg = m->srv->registry;
  sbxd_fail_t f = { 0 };
  if (m->bound == NULL)
    {
      if (!create)
        return 0;
      json_t *info = NULL;
      if (sbxd_session_create (reg, NULL, NULL, NULL, false, &info, &f) < 0)
        {
          int code = f.status == 429 ? SBX_E_LIMIT : SBX_E_ENGINE;
          sbx_error_set (err, code, "%s", f.detail ? f.detail : "no sandbox");
          sbxd_fail_clear (&f);
          return -code;
        }
      const char *id
          = json_string_value (json_object_get (json_object_get (info, "session"), "session_id"));
      m->bound = id ? sbxd_session_find (reg, id) : NULL;
      json_decref (info);
      if (m->bound == NULL)
        return sbx_error_set (err, SBX_E_GONE, "the sandbox session ended as it was made");
      m->owns = true;
    }
  bool reserved = m->reserved;
  m->reserved = false;
  if ((reserved ? sbxd_session_get_reserved (reg, m->bound, &m->held, &f)
                : sbxd_session_get (reg, m->bound, &m->held, &f))
      < 0)
    {
      int code = f.status == 429 ? SBX_E_LIMIT : f.status == 404 ? SBX_E_GONE : SBX_E_ENGINE;
      sbx_error_set (err, code, "%s", f.detail ? f.detail : "no sandbox");
      sbxd_fail_clear (&f);
      return -code;
    }
  if (m->owns && create)
    fprintf (stderr, "sbxd: mcp %s: sandbox %s is ready (session %s)\n", m->id,
             sbx_sandbox_id (m->held), sbxd_session_id (m->bound));
  *sb = m->held;
  return 0;
}

static mcp_sess_t *
sess_new (sbxd_server_t *srv, const char *token, sbxd_session_t *bound, sbx_error_t **err)
{
  mcp_sess_t *m = calloc (1, sizeof *m);
  if (m == NULL)
    {
      sbx_error_set (err, SBX_E_NOMEM, "out of memory");
      return NULL;
    }
  m->srv = srv;
  m->bound = bound;
  m->by_token = bound != NULL;
  m->refs = 1;
  m->last_used = sbx_now ();
  pthread_mutex_init (&m->conn_lock, NULL);
  pthread_mutex_init (&m->call_lock, NULL);
  owner_of (srv->config, token, m->owner);
  m->id = sbx_random_id ("", 16);
  sbx_mcp_session_opts_t opts = {
    .perms = srv->config->perms,
    .network = srv->config->network && strcmp (srv->config->network, "none") != 0,
    .workdir = SBX_DEFAULT_WORKDIR,
    .sandbox = source,
    .userdata = m,
  };
  if (m->id == NULL)
    sbx_error_set (err, SBX_E_NOMEM, "no randomness for a session id");
  if (m->id == NULL || sbx_mcp_session_new (&opts, &m->ms, err) < 0
      || sbx_mcp_conn_new (m->ms, &m->conn, err) < 0)
    {
      m->bound = NULL;
      sess_free (m);
      return NULL;
    }
  return m;
}

/* -------------------------------------------------------------- replies */

static void
reply_text (sbxd_reply_t *reply, int status, char *body)
{
  reply->status = status;
  reply->body = body ? body : strdup ("");
  reply->len = reply->body ? strlen (reply->body) : 0;
  reply->content_type = "application/json";
}

/* A JSON-RPC error with no id, as the transport answers what it refuses. */
static void
reply_rpc_error (sbxd_reply_t *reply, int status, int code, const char *msg)
{
  json_t *doc = json_pack ("{s:s,s:{s:i,s:s},s:n}", "jsonrpc", "2.0", "error", "code", code,
                           "message", msg, "id");
  reply_text (reply, status, doc ? json_dumps (doc, JSON_COMPACT) : NULL);
  json_decref (doc);
}

static void
reply_unauthorized (sbxd_reply_t *reply)
{
  reply->bearer_challenge = true;
  reply_rpc_error (reply, 401, -32001,
                   "Unauthorized: a sandbox session's token or the service token, as "
                   "Authorization: Bearer");
}

static bool
accepts (const char *accept, const char *type)
{
  return accept && (strstr (accept, type) || strstr (accept, "*/*"));
}

/* After a failed tool call: whether it failed because the sandbox is gone
 * (its handle is then dropped, and the next call gets a new sandbox). */
static bool
sandbox_lost (sbx_sandbox_t *sb)
{
  sbx_path_info_t info = { 0 };
  sbx_error_t *err = NULL;
  int r = sbx_resolve (sb, "/", &info, &err);
  int code = r < 0 ? sbx_error_code (err) : 0;
  sbx_path_info_clear (&info);
  sbx_error_free (err);
  return code == SBX_E_GONE || code == SBX_E_AGENT || code == SBX_E_PROTOCOL
         || code == SBX_E_ENGINE;
}

static void
call_done (mcp_sess_t *m)
{
  pthread_mutex_lock (&store.lock);
  m->calls--;
  pthread_mutex_unlock (&store.lock);
}

/* One message of SESS: handled, a tool call run; the answer in REPLY. */
static void
handle (mcp_sess_t *m, const sbxd_request_t *req, sbxd_reply_t *reply)
{
  char *answer = NULL;
  sbx_mcp_call_t *call = NULL;
  sbx_error_t *err = NULL;
  pthread_mutex_lock (&m->conn_lock);
  int r = sbx_mcp_conn_handle (m->conn, req->body, req->body_len, &answer, &call, &err);
  pthread_mutex_unlock (&m->conn_lock);
  if (r == 0 && call)
    {
      double started = sbx_now ();
      bool failed = false;
      /* Calls wait their turn; those waiting on a session's token count
       * against its --max-inflight, so that they cannot hold every worker. */
      sbxd_fail_t f = { 0 };
      pthread_mutex_lock (&store.lock);
      bool room = m->calls < m->srv->config->max_inflight;
      m->calls += room;
      pthread_mutex_unlock (&store.lock);
      if (!room)
        sbxd_fail (&f, 429,
                   "This MCP session has %u tool calls running or waiting, its limit: wait for "
                   "one to end (sbxd --max-inflight N)",
                   m->srv->config->max_inflight);
      if (!room || (m->by_token && sbxd_session_wait_begin (m->bound, &f) < 0))
        {
          if (room)
            call_done (m);
          sbx_mcp_call_free (call);
          reply_rpc_error (reply, f.status, -32000, f.detail ? f.detail : "busy");
          sbxd_fail_clear (&f);
          return;
        }
      pthread_mutex_lock (&m->call_lock);
      m->reserved = m->by_token;
      r = sbx_mcp_call_run (call, &answer, &failed, &err);
      if (m->held)
        {
          sbxd_session_event (m->bound, "mcp", sbx_mcp_call_tool (call), !failed,
                              failed ? "failed" : "", started);
          sbxd_session_put (m->bound, m->held, failed && sandbox_lost (m->held));
          m->held = NULL;
        }
      if (m->reserved)
        sbxd_session_wait_end (m->bound);
      m->reserved = false;
      pthread_mutex_unlock (&m->call_lock);
      call_done (m);
      sbx_mcp_call_free (call);
    }
  if (r < 0)
    {
      reply_rpc_error (reply, 500, -32603, sbx_error_message (err));
      sbx_error_free (err);
      return;
    }
  if (answer == NULL)
    {
      /* A notification or a response: accepted, nothing to say. */
      reply_text (reply, 202, NULL);
      return;
    }
  reply_text (reply, 200, answer);
}

static bool
is_initialize (json_t *msg)
{
  const char *method = json_string_value (json_object_get (msg, "method"));
  return method && strcmp (method, "initialize") == 0;
}

static void
post (sbxd_server_t *srv, const sbxd_request_t *req, sbxd_reply_t *reply)
{
  if (!accepts (req->accept, "application/json") || !accepts (req->accept, "text/event-stream"))
    {
      reply_rpc_error (reply, 406, -32000,
                       "Not Acceptable: the client must accept both application/json and "
                       "text/event-stream");
      return;
    }
  if (req->content_type == NULL || strncmp (req->content_type, "application/json", 16) != 0)
    {
      reply_rpc_error (reply, 415, -32000,
                       "Unsupported Media Type: the body must be application/json");
      return;
    }
  /* Bounded before it is parsed (twice: here, and by the MCP library). */
  if (!sbxd_json_shape_ok (req->body, req->body_len, MAX_MESSAGE_VALUES, MAX_MESSAGE_DEPTH))
    {
      reply_rpc_error (reply, 400, -32700,
                       "Parse error: a message of more than 4096 values or 64 levels");
      return;
    }
  json_error_t jerr;
  json_t *msg = json_loadb (req->body, req->body_len, 0, &jerr);
  if (msg == NULL)
    {
      reply_rpc_error (reply, 400, -32700, "Parse error");
      return;
    }
  bool init = is_initialize (msg);
  json_decref (msg);
  if (req->mcp_version && !sbx_mcp_version_supported (req->mcp_version))
    {
      reply_rpc_error (reply, 400, -32000, "Bad Request: unsupported MCP-Protocol-Version");
      return;
    }
  if (init)
    {
      if (req->mcp_session)
        {
          reply_rpc_error (reply, 400, -32600,
                           "Invalid Request: initialize within a session (drop Mcp-Session-Id)");
          return;
        }
      sbxd_session_t *bound = NULL;
      if (!sbxd_is_service (srv->config, req->token)
          && (bound = sbxd_session_by_token (srv->registry, req->token)) == NULL)
        {
          reply_unauthorized (reply);
          return;
        }
      expire (srv);
      sbx_error_t *err = NULL;
      mcp_sess_t *m = sess_new (srv, req->token, bound, &err);
      if (m == NULL)
        {
          sbxd_session_unref (bound);
          reply_rpc_error (reply, 503, -32000, sbx_error_message (err));
          sbx_error_free (err);
          return;
        }
      /* Counted from now on, not yet findable: a crowd of initializes
       * cannot all pass the bounds at once. */
      size_t mine = 0;
      pthread_mutex_lock (&store.lock);
      bool full = store.count >= MAX_MCP_SESSIONS;
      for (mcp_sess_t *o = store.list; o; o = o->next)
        mine += memcmp (o->owner, m->owner, sizeof m->owner) == 0;
      bool counted = !full && mine < MAX_MCP_SESSIONS_PER_TOKEN;
      if (counted)
        {
          m->refs++; /* ours, while it is initialized; the store has the other */
          m->next = store.list;
          store.list = m;
          store.count++;
        }
      pthread_mutex_unlock (&store.lock);
      if (!counted)
        {
          sess_free (m);
          if (full)
            reply_rpc_error (reply, 503, -32000, "Too many MCP sessions: end one (DELETE /mcp)");
          else
            reply_rpc_error (reply, 429, -32000,
                             "Too many MCP sessions for this token: end one (DELETE /mcp)");
          return;
        }
      handle (m, req, reply);
      bool ok = reply->status == 200 && sbx_mcp_conn_initialized (m->conn);
      if (ok)
        reply->mcp_session = strdup (m->id);
      pthread_mutex_lock (&store.lock);
      if (ok)
        m->ready = true;
      else
        unlink_sess (m);
      bool last = --m->refs == 0;
      pthread_mutex_unlock (&store.lock);
      if (last)
        sess_free (m);
      return;
    }
  if (req->mcp_session == NULL)
    {
      reply_rpc_error (reply, 400, -32000, "Bad Request: Mcp-Session-Id header is required");
      return;
    }
  mcp_sess_t *m = find (srv, req->mcp_session, req->token);
  if (m == NULL)
    {
      reply_rpc_error (reply, 404, -32001, "Session not found");
      return;
    }
  handle (m, req, reply);
  sess_unref (m);
}

void
sbxd_mcp_route (sbxd_server_t *srv, const sbxd_request_t *req, sbxd_reply_t *reply)
{
  /* First, so that a stranger's request is answered before its body is
   * read. DELETE needs only the token that made the MCP session, live or
   * not: one bound to a session since ended can still be ended. */
  if (strcmp (req->method, "DELETE") != 0 && !sbxd_token_known (srv, req->token))
    {
      reply_unauthorized (reply);
      return;
    }
  if (strcmp (req->method, "POST") == 0)
    post (srv, req, reply);
  else if (strcmp (req->method, "DELETE") == 0)
    {
      mcp_sess_t *m = req->mcp_session ? find (srv, req->mcp_session, req->token) : NULL;
      if (m == NULL)
        {
          reply_rpc_error (reply, req->mcp_session ? 404 : 400, -32000,
                           req->mcp_session ? "Session not found"
                                            : "Bad Request: Mcp-Session-Id header is required");
          return;
        }
      pthread_mutex_lock (&store.lock);
      bool last = unlink_sess (m);
      last = --m->refs == 0 || last;
      pthread_mutex_unlock (&store.lock);
      if (last)
        sess_free (m);
      reply_text (reply, 204, NULL);
    }
  else
    {
      /* No stream of the server's own messages: it sends none. */
      reply->allow = "POST, DELETE";
      reply_rpc_error (reply, 405, -32000, "Method Not Allowed");
    }
}

void
sbxd_mcp_close_all (sbxd_server_t *srv)
{
  (void) srv;
  pthread_mutex_lock (&store.lock);
  mcp_sess_t *list = store.list;
  store.list = NULL;
  store.count = 0;
  pthread_mutex_unlock (&store.lock);
  for (mcp_sess_t *m = list, *next; m; m = next)
    {
      next = m->next;
      if (--m->refs == 0)
        sess_free (m);
    }
}
