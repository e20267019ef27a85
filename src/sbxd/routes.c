/* The routes: which token each needs, the order of the checks (a path id
 * is checked, then the token, then the session's existence, so a token
 * that is not the service's learns nothing of other sessions), and the
 * service's documents (/, /healthz, /policy, /openapi.json, /metrics). */
#include "sbxd.h"

#include "sha256.h"

#include <stdio.h>
#include <string.h>

#define MAX_SEGMENTS 5
/* A request body's JSON: at most this many values, this deep. */
#define MAX_BODY_VALUES 256
#define MAX_BODY_DEPTH 8

typedef struct route_ctx
{
  sbxd_server_t *srv;
  const sbxd_request_t *req;
  sbxd_reply_t *reply;
  const char *metric; /* the route's name in /metrics */
} route_ctx_t;

static void
reply_json (route_ctx_t *rc, int status, json_t *doc)
{
  rc->reply->status = status;
  rc->reply->body = doc ? json_dumps (doc, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
  json_decref (doc);
  if (rc->reply->body == NULL)
    {
      rc->reply->status = 500;
      rc->reply->body = strdup ("{\"detail\":\"out of memory\"}");
    }
  rc->reply->len = rc->reply->body ? strlen (rc->reply->body) : 0;
}

static void
reply_detail (route_ctx_t *rc, int status, const char *detail)
{
  reply_json (rc, status, json_pack ("{s:s}", "detail", detail ? detail : "error"));
}

static void
reply_fail (route_ctx_t *rc, sbxd_fail_t *f, json_t *invalid)
{
  if (f->status == 422 && invalid)
    reply_json (rc, 422, json_pack ("{s:O}", "detail", invalid));
  else
    reply_detail (rc, f->status ? f->status : 500, f->detail);
  sbxd_fail_clear (f);
}

static void
reply_invalid (route_ctx_t *rc, const char *where, const char *field, const char *msg,
               const char *type)
{
  sbxd_invalid_t inv = { 0 };
  sbxd_invalid_add (&inv, where, field, msg, type);
  reply_json (rc, 422, json_pack ("{s:o}", "detail", inv.list));
}

/* ----------------------------------------------------------------- auth */

/* Whether TOKEN is the service token: the SHA-256 of both compared in
 * constant time (so neither length nor a prefix leaks). */
bool
sbxd_is_service (const sbxd_config_t *c, const char *token)
{
  if (c->auth_off)
    return true;
  if (token == NULL)
    return false;
  char hex[65];
  sbx_sha256_hex (token, strlen (token), hex);
  return sbxd_same_hash (hex, c->token_hash);
}

static bool
require_service (route_ctx_t *rc)
{
  if (sbxd_is_service (rc->srv->config, rc->req->token))
    return true;
  reply_detail (rc, 401,
                "Invalid or missing service token (X-Sandbox-Token or "
                "Authorization: Bearer)");
  return false;
}

bool
sbxd_token_known (sbxd_server_t *srv, const char *token)
{
  if (sbxd_is_service (srv->config, token))
    return true;
  sbxd_session_t *s = sbxd_session_by_token (srv->registry, token);
  sbxd_session_unref (s);
  return s != NULL;
}

/* The service's documents: any valid token (the service's or a
 * session's) reads them; only /healthz is open to all. */
static bool
require_any_token (route_ctx_t *rc)
{
  if (sbxd_token_known (rc->srv, rc->req->token))
    return true;
  reply_detail (rc, 401, "Invalid or missing token (X-Sandbox-Token or Authorization: Bearer)");
  return false;
}

/* The session ID for a request that carries its token or the service's:
 * 401 before 404, so that only the service token learns whether an id exists. */
static sbxd_session_t *
authorized_session (route_ctx_t *rc, const char *id)
{
  if (!sbx_session_id_valid (id))
    {
      reply_invalid (rc, "path", "session_id",
                     "String should match pattern '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'",
                     "string_pattern_mismatch");
      return NULL;
    }
  bool service = sbxd_is_service (rc->srv->config, rc->req->token);
  sbxd_session_t *s = sbxd_session_find (rc->srv->registry, id);
  if (!service && s == NULL && rc->req->token)
    {
      /* As long as a real check: the time says nothing of the id. */
      char hex[65];
      sbx_sha256_hex (rc->req->token, strlen (rc->req->token), hex);
    }
  if (!service && (s == NULL || !sbxd_session_token_ok (s, rc->req->token)))
    {
      sbxd_session_unref (s);
      reply_detail (rc, 401, "Invalid or missing token for this session");
      return NULL;
    }
  if (s == NULL)
    {
      char msg[128];
      snprintf (msg, sizeof msg, "Session not found: %s", id);
      reply_detail (rc, 404, msg);
    }
  return s;
}

/* ------------------------------------------------------------ documents */

static json_t *
health_doc (sbxd_server_t *srv)
{
  sbxd_config_t *c = srv->config;
  size_t resident, open;
  sbxd_registry_counts (srv->registry, &resident, &open);
  json_t *rts = json_array ();
  for (size_t i = 0; rts && i < c->n_runtimes; i++)
    json_array_append_new (rts, json_string (c->runtimes[i].alias));
  return json_pack (
      "{s:s,s:I,s:o,s:I,s:o,s:o*}", "status", "ok", "sessions", (json_int_t) resident, "limit",
      c->max_sessions ? json_integer ((json_int_t) c->max_sessions) : json_null (), "open_sessions",
      (json_int_t) open, "open_limit",
      c->max_open_sessions ? json_integer ((json_int_t) c->max_open_sessions) : json_null (),
      "runtimes", rts);
}

static json_t *
opt_int (int64_t v)
{
  return v ? json_integer (v) : json_null ();
}

static json_t *
policy_doc (sbxd_config_t *c)
{
  json_t *rts = json_array ();
  for (size_t i = 0; rts && i < c->n_runtimes; i++)
    {
      sbxd_runtime_t *rt = &c->runtimes[i];
      json_array_append_new (
          rts, json_pack ("{s:s,s:s,s:s,s:b,s:o,s:o,s:o,s:n,s:o,s:s,s:s}", "alias", rt->alias,
                          "image", rt->image ? rt->image : "", "description",
                          rt->description ? rt->description : "", "builds", rt->builds, "mem_limit",
                          opt_int (c->memory), "memswap_limit", opt_int (c->memory), "cpus",
                          json_real (c->cpus), "cpu_shares", "pids_limit", opt_int (c->pids),
                          "network_mode", c->network ? c->network : "none", "oci_runtime", "runc"));
    }
  json_t *doc = json_pack (
      "{s:o*,s:s,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:n,s:o,s:s,s:I,s:I,s:I,s:b,s:n,s:n,s:n,s:n,s:b,s:b}",
      "runtimes", rts, "default_runtime", c->runtimes[0].alias, "max_sessions",
      opt_int ((int64_t) c->max_sessions), "max_open_sessions",
      opt_int ((int64_t) c->max_open_sessions), "max_sessions_per_tenant",
      opt_int ((int64_t) c->max_per_tenant), "evict_idle_after",
      c->evict_idle_after > 0 ? json_integer ((json_int_t) c->evict_idle_after) : json_null (),
      "mem_limit", opt_int (c->memory), "memswap_limit", opt_int (c->memory), "cpus",
      json_real (c->cpus), "cpu_shares", "pids_limit", opt_int (c->pids), "network_mode",
      c->network ? c->network : "none", "idle_timeout", (json_int_t) c->idle_timeout,
      "execute_timeout", (json_int_t) c->execute_timeout, "max_read_bytes",
      (json_int_t) c->max_read_bytes, "persist_containers", false, "sandbox_uid", "workspace_ttl",
      "container_ttl", "tmpfs_size", "prewarm", c->pool_size > 0, "buildkit", false);
  if (doc)
    {
      json_object_set_new (doc, "work_dir", json_string (SBX_DEFAULT_WORKDIR));
      json_object_set_new (doc, "disk_limit", json_integer (c->disk));
    }
  return doc;
}

/* Every route: method, path, auth, the operation's name (for bodies), a summary. */
static const struct
{
  const char *method, *path, *auth, *op, *summary;
} catalog[] = {
  { "get", "/", "token", NULL, "The service's index" },
  { "get", "/healthz", "none", NULL, "Health: sessions and runtimes" },
  { "get", "/openapi.json", "token", NULL, "This document" },
  { "get", "/docs", "token", NULL, "The routes, as a page to read" },
  { "get", "/policy", "service", NULL, "The service's effective settings" },
  { "get", "/metrics", "service", NULL, "Prometheus metrics" },
  { "post", "/sessions", "service", NULL,
    "Open a session: {session_id?, runtime?, tenant?, reuse} -> {session, token}" },
  { "get", "/sessions", "service", NULL, "List the sessions" },
  { "get", "/sessions/{session_id}", "session", NULL, "A session's info" },
  { "delete", "/sessions/{session_id}", "session", NULL,
    "End a session (?purge=true: its workspace too)" },
  { "get", "/sessions/{session_id}/events", "session", NULL,
    "The session's last 200 operations (?after=SEQ)" },
  { "post", "/sessions/{session_id}/exec", "session", "exec", "Run a shell command" },
  { "post", "/sessions/{session_id}/read", "session", "read", "Read lines of a text file" },
  { "post", "/sessions/{session_id}/read_bytes", "session", "read_bytes", "Read a file, base64" },
  { "post", "/sessions/{session_id}/write", "session", "write", "Write a file (base64)" },
  { "post", "/sessions/{session_id}/edit", "session", "edit", "Replace a string in a file" },
  { "post", "/sessions/{session_id}/exists", "session", "exists", "Whether a regular file exists" },
  { "post", "/sessions/{session_id}/ls", "session", "ls", "List a folder" },
  { "post", "/sessions/{session_id}/glob", "session", "glob", "Files matching a glob" },
  { "post", "/sessions/{session_id}/grep", "session", "grep", "Search files (PCRE2)" },
  { "post", "/sessions/{session_id}/exec_stream", "session", "exec",
    "Run a shell command, its output as server-sent events (output, then exit or error)" },
  { "post", "/sessions/{session_id}/bg", "session", "bg", "Start a background process: {id}" },
  { "get", "/sessions/{session_id}/bg", "session", NULL, "The background processes" },
  { "get", "/sessions/{session_id}/bg/{bg_id}", "session", NULL,
    "A background process: its new output and status" },
  { "delete", "/sessions/{session_id}/bg/{bg_id}", "session", NULL,
    "Kill a background process (its process tree)" },
  { "post", "/sessions/{session_id}/kill_all", "session", NULL,
    "Kill every process in the sandbox but its agent: {killed}" },
  { "post", "/mcp", "token", NULL,
    "MCP over Streamable HTTP (a session's token binds it to that session)" },
  { "delete", "/mcp", "token", NULL, "End an MCP session (Mcp-Session-Id)" },
  { "post", "/workspaces/{session_id}/ls", "service", "ls",
    "List a folder of a session's workspace on the host" },
  { "post", "/workspaces/{session_id}/read", "service", "read",
    "Read a file of a session's workspace on the host" },
};
#define N_CATALOG (sizeof catalog / sizeof *catalog)

static int
cmp_str (const void *a, const void *b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

static json_t *
index_doc (sbxd_server_t *srv)
{
  /* Every path but "/", once each, sorted (as sandboxd lists them). */
  const char *sorted[N_CATALOG];
  size_t n = 0;
  for (size_t i = 0; i < N_CATALOG; i++)
    {
      bool seen = strcmp (catalog[i].path, "/") == 0;
      for (size_t k = 0; k < n && !seen; k++)
        seen = strcmp (sorted[k], catalog[i].path) == 0;
      if (!seen)
        sorted[n++] = catalog[i].path;
    }
  qsort (sorted, n, sizeof *sorted, cmp_str);
  json_t *paths = json_array ();
  for (size_t i = 0; paths && i < n; i++)
    json_array_append_new (paths, json_string (sorted[i]));
  return json_pack ("{s:s,s:s,s:s,s:o*,s:s,s:s,s:n,s:o*}", "service", "sandboxd", "implementation",
                    "sbxd", "version", SBX_VERSION, "health", health_doc (srv), "docs_url", "/docs",
                    "openapi_url", "/openapi.json", "ui_url", "endpoints", paths);
}

static void
html_text (FILE *out, const char *text)
{
  for (const char *c = text; *c; c++)
    if (*c == '<')
      fputs ("&lt;", out);
    else if (*c == '>')
      fputs ("&gt;", out);
    else if (*c == '&')
      fputs ("&amp;", out);
    else
      fputc (*c, out);
}

/* /docs: the routes as a page a person reads (no script: the machine's
 * version is /openapi.json). */
static char *
docs_page (void)
{
  char *buf = NULL;
  size_t len = 0;
  FILE *out = open_memstream (&buf, &len);
  if (out == NULL)
    return NULL;
  fputs ("<!doctype html><html><head><meta charset=\"utf-8\"><title>sbxd</title></head><body>"
         "<h1>sbxd " SBX_VERSION "</h1><p>Sandbox sessions over HTTP: the sandboxd protocol "
         "(0.2.21) and more. Tokens go in <code>X-Sandbox-Token</code> or <code>Authorization: "
         "Bearer</code>. The full description: <a href=\"/openapi.json\">/openapi.json</a>.</p>"
         "<table><tr><th>method</th><th>path</th><th>token</th><th>what</th></tr>",
         out);
  for (size_t i = 0; i < N_CATALOG; i++)
    {
      fprintf (out, "<tr><td>%s</td><td><code>", catalog[i].method);
      html_text (out, catalog[i].path);
      fprintf (out, "</code></td><td>%s</td><td>", catalog[i].auth);
      html_text (out, catalog[i].summary);
      fputs ("</td></tr>", out);
    }
  fputs ("</table></body></html>\n", out);
  if (fclose (out) != 0)
    {
      free (buf);
      return NULL;
    }
  return buf;
}

static json_t *
openapi_doc (void)
{
  json_t *paths = json_object ();
  for (size_t i = 0; paths && i < N_CATALOG; i++)
    {
      json_t *item = json_object_get (paths, catalog[i].path);
      if (item == NULL)
        {
          item = json_object ();
          json_object_set_new (paths, catalog[i].path, item);
        }
      json_t *op = json_pack ("{s:s,s:{s:{s:s}}}", "summary", catalog[i].summary, "responses",
                              "200", "description", "OK");
      if (op == NULL)
        continue;
      if (strcmp (catalog[i].auth, "none") != 0)
        json_object_set_new (op, "security", json_pack ("[{s:[]},{s:[]}]", "token", "bearer"));
      json_object_set_new (op, "x-sbx-auth", json_string (catalog[i].auth));
      json_t *params = json_array ();
      if (strstr (catalog[i].path, "{session_id}"))
        json_array_append_new (params,
                               json_pack ("{s:s,s:s,s:b,s:{s:s,s:s}}", "name", "session_id", "in",
                                          "path", "required", true, "schema", "type", "string",
                                          "pattern", "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"));
      if (strstr (catalog[i].path, "{bg_id}"))
        json_array_append_new (params,
                               json_pack ("{s:s,s:s,s:b,s:{s:s}}", "name", "bg_id", "in", "path",
                                          "required", true, "schema", "type", "string"));
      if (json_array_size (params))
        json_object_set_new (op, "parameters", params);
      else
        json_decref (params);
      if (catalog[i].op)
        json_object_set_new (op, "requestBody",
                             json_pack ("{s:b,s:{s:{s:o*}}}", "required", true, "content",
                                        "application/json", "schema",
                                        sbxd_op_schema (catalog[i].op)));
      json_object_set_new (item, catalog[i].method, op);
    }
  return json_pack (
      "{s:s,s:{s:s,s:s,s:s},s:o*,s:{s:{s:{s:s,s:s,s:s},s:{s:s,s:s}}}}", "openapi", "3.1.0", "info",
      "title", "sbxd", "version", SBX_VERSION, "description",
      "Sandbox sessions over HTTP: the sandboxd protocol (0.2.21). Failed operations answer 200 "
      "with the failure in the body; 401 bad token, 404 no such session, 409 conflict, 413 body "
      "too "
      "large, 422 invalid request, 429 at a limit, 502 the sandbox failed, 504 past the ceiling.",
      "paths", paths, "components", "securitySchemes", "token", "type", "apiKey", "in", "header",
      "name", "X-Sandbox-Token", "bearer", "type", "http", "scheme", "bearer");
}

/* --------------------------------------------------------------- routes */

/* A boolean query parameter, read as FastAPI reads one: into *OUT (false
 * when absent); false after answering 422 for another word. */
static bool
query_bool (route_ctx_t *rc, const char *name, bool *out)
{
  static const char *const yes[] = { "true", "1", "yes", "on", "t", "y", NULL };
  static const char *const no[] = { "false", "0", "no", "off", "f", "n", NULL };
  const char *v = json_string_value (json_object_get (rc->req->query, name));
  *out = false;
  if (v == NULL)
    return true;
  for (size_t i = 0; yes[i]; i++)
    if (strcasecmp (v, yes[i]) == 0)
      return *out = true;
  for (size_t i = 0; no[i]; i++)
    if (strcasecmp (v, no[i]) == 0)
      return true;
  reply_invalid (rc, "query", name, "Input should be a valid boolean, unable to interpret input",
                 "bool_parsing");
  return false;
}

/* The body as a JSON object; EMPTY_OK: no body reads as {}. */
static json_t *
body_object (route_ctx_t *rc, bool empty_ok)
{
  const sbxd_request_t *req = rc->req;
  if (req->body_len == 0 && empty_ok)
    return json_object ();
  /* The protocol's bodies are flat objects of a few fields. */
  if (!sbxd_json_shape_ok (req->body, req->body_len, MAX_BODY_VALUES, MAX_BODY_DEPTH))
    {
      reply_invalid (rc, "body", NULL,
                     "JSON with more than 256 values or nested deeper than 8 levels",
                     "json_invalid");
      return NULL;
    }
  json_error_t jerr;
  json_t *doc = json_loadb (req->body, req->body_len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL,
                            &jerr);
  if (doc == NULL)
    {
      char msg[256];
      snprintf (msg, sizeof msg, "JSON decode error: %s (at byte %d)", jerr.text, jerr.position);
      reply_invalid (rc, "body", NULL, msg, "json_invalid");
      return NULL;
    }
  if (!json_is_object (doc))
    {
      json_decref (doc);
      reply_invalid (rc, "body", NULL, "Input should be a valid dictionary", "dict_type");
      return NULL;
    }
  return doc;
}

static void
route_create (route_ctx_t *rc)
{
  if (!require_service (rc))
    return;
  json_t *body = body_object (rc, true);
  if (body == NULL)
    return;
  sbxd_invalid_t inv = { 0 };
  const char *id = sbxd_field_str (body, "session_id", false, &inv);
  const char *runtime = sbxd_field_str (body, "runtime", false, &inv);
  const char *tenant = sbxd_field_str (body, "tenant", false, &inv);
  bool reuse = sbxd_field_bool (body, "reuse", false, &inv);
  const char *pattern = "String should match pattern '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'";
  if (id && !sbx_session_id_valid (id))
    sbxd_invalid_add (&inv, "body", "session_id", pattern, "string_pattern_mismatch");
  if (tenant && !sbx_session_id_valid (tenant))
    sbxd_invalid_add (&inv, "body", "tenant", pattern, "string_pattern_mismatch");
  if (inv.list)
    {
      reply_json (rc, 422, json_pack ("{s:o}", "detail", inv.list));
      json_decref (body);
      return;
    }
  sbxd_fail_t f = { 0 };
  json_t *info = NULL;
  if (sbxd_session_create (rc->srv->registry, id, runtime, tenant, reuse, &info, &f) < 0)
    reply_fail (rc, &f, NULL);
  else
    reply_json (rc, 200, info);
  json_decref (body);
}

/* The methods a session's route takes (OP NULL: the session itself). */
static const char *
session_methods (const char *op, const char *bg_id)
{
  if (op == NULL)
    return "GET, DELETE";
  if (strcmp (op, "events") == 0)
    return "GET";
  if (strcmp (op, "bg") == 0)
    return bg_id ? "GET, DELETE" : "GET, POST";
  return "POST";
}

static bool
method_in (const char *method, const char *list)
{
  size_t n = strlen (method);
  for (const char *p = list; (p = strstr (p, method)) != NULL; p += n)
    if ((p == list || p[-1] == ' ') && (p[n] == ',' || p[n] == '\0'))
      return true;
  return false;
}

static void
route_session (route_ctx_t *rc, const char *id, const char *op, const char *bg_id)
{
  const sbxd_request_t *req = rc->req;
  bool known = op == NULL || strcmp (op, "events") == 0 || sbxd_op_known (op)
               || strcmp (op, "exec_stream") == 0 || strcmp (op, "bg") == 0
               || strcmp (op, "kill_all") == 0;
  if (!known || (bg_id && strcmp (op, "bg") != 0))
    {
      reply_detail (rc, 404, "Not Found");
      return;
    }
  const char *methods = session_methods (op, bg_id);
  if (!method_in (req->method, methods))
    {
      rc->reply->allow = methods;
      reply_detail (rc, 405, "Method Not Allowed");
      return;
    }
  rc->metric = op == NULL ? "session" : strcmp (op, "events") == 0 ? "events" : "op";
  bool flag = false; /* ?usage= of a GET, ?purge= of a DELETE */
  if (op == NULL && !query_bool (rc, strcmp (req->method, "GET") == 0 ? "usage" : "purge", &flag))
    return;
  int64_t after = 0;
  if (op && strcmp (op, "events") == 0)
    {
      const char *a = json_string_value (json_object_get (req->query, "after"));
      char *end = NULL;
      after = a ? strtoll (a, &end, 10) : 0;
      if (a && (!*a || *end || after < 0))
        {
          reply_invalid (rc, "query", "after",
                         "Input should be an integer greater than or equal to 0",
                         "greater_than_equal");
          return;
        }
    }
  sbxd_session_t *s = authorized_session (rc, id);
  if (s == NULL)
    return;
  sbxd_fail_t f = { 0 };
  bool get = strcmp (req->method, "GET") == 0, post = strcmp (req->method, "POST") == 0;
  json_t *body = post ? body_object (rc, op && strcmp (op, "kill_all") == 0) : NULL;
  json_t *reply = NULL;
  if (post && body == NULL)
    ; /* answered: an invalid body */
  else if (op == NULL && get)
    reply_json (rc, 200, sbxd_session_info (s, flag));
  else if (op == NULL)
    {
      if (sbxd_session_delete (rc->srv->registry, s, flag, &f) < 0)
        reply_fail (rc, &f, NULL);
      else
        reply_json (rc, 204, json_null ());
    }
  else if (strcmp (op, "events") == 0)
    reply_json (rc, 200, sbxd_session_events (s, after));
  else if (strcmp (op, "exec_stream") == 0)
    {
      if (sbxd_op_exec_stream (rc->srv->registry, s, body, req->client_fd, rc->reply, &reply, &f)
          < 0)
        reply_fail (rc, &f, reply);
    }
  else if (strcmp (op, "bg") == 0 || strcmp (op, "kill_all") == 0)
    {
      if (sbxd_op_process (rc->srv->registry, s, req->method, op, bg_id, body, &reply, &f) < 0)
        reply_fail (rc, &f, reply);
      else
        {
          bool deleted = json_is_null (reply);
          reply_json (rc, deleted ? 204 : 200, reply);
          reply = NULL;
        }
    }
  else if (sbxd_op_run (rc->srv->registry, s, op, body, req->client_fd, &reply, &f) < 0)
    reply_fail (rc, &f, reply);
  else
    {
      reply_json (rc, 200, reply);
      reply = NULL;
    }
  if (rc->reply->status == 204)
    {
      free (rc->reply->body);
      rc->reply->body = strdup ("");
      rc->reply->len = 0;
    }
  json_decref (reply);
  json_decref (body);
  sbxd_session_unref (s);
}

static void
route_workspace (route_ctx_t *rc, const char *id, const char *op)
{
  rc->metric = "workspaces";
  if (strcmp (rc->req->method, "POST") != 0)
    {
      rc->reply->allow = "POST";
      reply_detail (rc, 405, "Method Not Allowed");
      return;
    }
  if (strcmp (op, "ls") != 0 && strcmp (op, "read") != 0)
    {
      reply_detail (rc, 404, "Not Found");
      return;
    }
  if (!sbx_session_id_valid (id))
    {
      reply_invalid (rc, "path", "session_id",
                     "String should match pattern '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'",
                     "string_pattern_mismatch");
      return;
    }
  if (!require_service (rc))
    return;
  json_t *body = body_object (rc, strcmp (op, "ls") == 0);
  if (body == NULL)
    return;
  sbxd_fail_t f = { 0 };
  json_t *reply = NULL;
  if (sbxd_workspace_op (rc->srv->config, id, op, body, &reply, &rc->reply->truncated,
                         &rc->reply->total, &f)
      < 0)
    {
      reply_fail (rc, &f, reply);
      json_decref (reply);
    }
  else
    reply_json (rc, 200, reply);
  json_decref (body);
}

/* A Host (or Origin's host) that names this service: a loopback name, an
 * --allowed-host, or, on a non-loopback listener without allowed hosts,
 * any. Against DNS rebinding: a page of another site that resolves its
 * name to 127.0.0.1 still sends its own name. */
static bool
host_allowed (const sbxd_config_t *c, const char *host, size_t n)
{
  static const char *const loopback[] = { "localhost", "127.0.0.1", "[::1]", NULL };
  const char *colon = memrchr (host, ':', n);
  if (colon && host[0] != '[')
    n = (size_t) (colon - host);
  else if (host[0] == '[' && colon && colon > host && colon[-1] == ']')
    n = (size_t) (colon - host);
  for (size_t i = 0; loopback[i]; i++)
    if (strlen (loopback[i]) == n && strncasecmp (host, loopback[i], n) == 0)
      return true;
  for (size_t i = 0; c->allowed_hosts && c->allowed_hosts[i]; i++)
    if (strlen (c->allowed_hosts[i]) == n && strncasecmp (host, c->allowed_hosts[i], n) == 0)
      return true;
  return !c->loopback && c->allowed_hosts == NULL;
}

static bool
origin_ok (route_ctx_t *rc)
{
  const sbxd_config_t *c = rc->srv->config;
  const char *host = rc->req->host;
  if (host && !host_allowed (c, host, strlen (host)))
    {
      reply_detail (rc, 403, "Host not allowed (sbxd --allowed-host HOST adds one)");
      return false;
    }
  const char *origin = rc->req->origin;
  if (origin == NULL)
    return true;
  const char *h = strstr (origin, "://");
  if (h && (strncmp (origin, "http://", 7) == 0 || strncmp (origin, "https://", 8) == 0)
      && host_allowed (c, h + 3, strcspn (h + 3, "/")))
    return true;
  reply_detail (rc, 403, "Origin not allowed (sbxd --allowed-host HOST adds one)");
  return false;
}

/* The GET routes that answer from memory: /, the service's documents, the
 * session list, a session's info (without usage) and its events. */
bool
sbxd_route_quick (const char *method, const char *path, json_t *query)
{
  /* ?usage= asks the engine. */
  if (strcmp (method, "GET") != 0 || json_object_get (query, "usage"))
    return false;
  static const char *const docs[] = { "/",     "/healthz", "/policy",   "/openapi.json",
                                      "/docs", "/metrics", "/sessions", NULL };
  for (size_t i = 0; docs[i]; i++)
    if (strcmp (path, docs[i]) == 0)
      return true;
  if (strncmp (path, "/sessions/", 10) != 0)
    return false;
  const char *id = path + 10, *slash = strchr (id, '/');
  return slash == NULL ? *id != '\0' : slash > id && strcmp (slash, "/events") == 0;
}

void
sbxd_route (sbxd_server_t *srv, const sbxd_request_t *req, sbxd_reply_t *reply)
{
  double started = sbx_now ();
  route_ctx_t rc = { .srv = srv, .req = req, .reply = reply, .metric = "other" };
  /* Split the path: at most MAX_SEGMENTS segments, none empty. */
  char buf[1024];
  const char *seg[MAX_SEGMENTS] = { 0 };
  size_t n = 0;
  bool bad_path = strlen (req->path) >= sizeof buf || req->path[0] != '/';
  if (!bad_path)
    {
      strcpy (buf, req->path);
      for (char *save = NULL, *t = strtok_r (buf, "/", &save); t && !bad_path;
           t = strtok_r (NULL, "/", &save))
        if (n < MAX_SEGMENTS)
          seg[n++] = t;
        else
          bad_path = true;
    }
  bool get = strcmp (req->method, "GET") == 0, post = strcmp (req->method, "POST") == 0;
  if (!origin_ok (&rc))
    ;
  else if (bad_path)
    reply_detail (&rc, 404, "Not Found");
  else if (n == 0
           || (n == 1
               && (strcmp (seg[0], "healthz") == 0 || strcmp (seg[0], "policy") == 0
                   || strcmp (seg[0], "openapi.json") == 0 || strcmp (seg[0], "metrics") == 0
                   || strcmp (seg[0], "docs") == 0)))
    {
      rc.metric = "service";
      const char *what = n ? seg[0] : "";
      if (!get)
        {
          reply->allow = "GET";
          reply_detail (&rc, 405, "Method Not Allowed");
        }
      else if (strcmp (what, "healthz") != 0 && strcmp (what, "policy") != 0
               && strcmp (what, "metrics") != 0 && !require_any_token (&rc))
        ; /* answered: 401 */
      else if (n == 0)
        reply_json (&rc, 200, index_doc (srv));
      else if (strcmp (what, "healthz") == 0)
        reply_json (&rc, 200, health_doc (srv));
      else if (strcmp (what, "openapi.json") == 0)
        reply_json (&rc, 200, openapi_doc ());
      else if (strcmp (what, "docs") == 0)
        {
          reply->body = docs_page ();
          reply->len = reply->body ? strlen (reply->body) : 0;
          reply->status = reply->body ? 200 : 500;
          reply->content_type = "text/html; charset=utf-8";
        }
      else if (strcmp (what, "policy") == 0)
        {
          if (require_service (&rc))
            reply_json (&rc, 200, policy_doc (srv->config));
        }
      else if (require_service (&rc))
        {
          reply->body = sbxd_metrics_text (srv->registry);
          reply->len = reply->body ? strlen (reply->body) : 0;
          reply->status = reply->body ? 200 : 500;
          reply->content_type = "text/plain; version=0.0.4";
        }
    }
  else if (strcmp (seg[0], "mcp") == 0 && n == 1)
    {
      rc.metric = "mcp";
      sbxd_mcp_route (srv, req, reply);
    }
  else if (strcmp (seg[0], "sessions") == 0 && n == 1)
    {
      rc.metric = "sessions";
      if (post)
        route_create (&rc);
      else if (get)
        {
          bool usage = false;
          if (require_service (&rc) && query_bool (&rc, "usage", &usage))
            reply_json (&rc, 200, sbxd_session_list (srv->registry, usage));
        }
      else
        {
          reply->allow = "GET, POST";
          reply_detail (&rc, 405, "Method Not Allowed");
        }
    }
  else if (strcmp (seg[0], "sessions") == 0 && n <= 4)
    route_session (&rc, seg[1], n >= 3 ? seg[2] : NULL, n == 4 ? seg[3] : NULL);
  else if (strcmp (seg[0], "workspaces") == 0 && n == 3)
    route_workspace (&rc, seg[1], seg[2]);
  else
    reply_detail (&rc, 404, "Not Found");
  sbxd_metrics_request (rc.metric, reply->status, sbx_now () - started);
}
