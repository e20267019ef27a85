/* sbxd: sessions of sandboxes served over HTTP, speaking the sandboxd
 * protocol (see the README's "sbxd" section). The modules:
 *  - config.c:   flags, the config file and the service token;
 *  - registry.c: the sessions (tokens, tenants, limits, hibernation,
 *                records on the host for a restart), on the session manager;
 *  - ops.c:      the nine operations, as sandboxd answers them;
 *  - routes.c:   the routes, authentication and the service's documents;
 *  - workspaces.c: the read-only routes over workspaces on the host;
 *  - http.c:     libmicrohttpd, its connections handed to a pool of workers;
 *  - events.c:   each session's event log;  metrics.c: counters for /metrics. */
#ifndef SBXD_H
#define SBXD_H

#include "events.h"
#include "text.h"
#include "helpers.h"
#include "sbx.h"
#include "sbx_mcp.h"

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

/* ------------------------------------------------------------------ config */

typedef struct sbxd_runtime
{
  char *alias;
  char *image; /* the image its sandboxes run (resolved at start) */
  char *description;
  bool builds; /* a built-in runtime whose image sbx builds */
  sbx_options_t *opts;
  sbx_manager_t *manager;
} sbxd_runtime_t;

typedef struct sbxd_config
{
  char *listen;        /* "HOST:PORT", or "unix:PATH" */
  char *name;          /* the instance: its records and managers on the host */
  char *token;         /* the service token; NULL only with auth off (tests of the protocol) */
  char token_hash[65]; /* its SHA-256, what requests are compared with */
  bool auth_off;
  bool loopback; /* it listens on a loopback address or a Unix socket */
  sbxd_runtime_t *runtimes;
  size_t n_runtimes;
  size_t max_sessions;      /* resident (running) sessions; 0: none */
  size_t max_open_sessions; /* running and hibernated; 0: none */
  size_t max_per_tenant;    /* 0: none */
  double idle_timeout;      /* seconds before an idle session is ended */
  double execute_timeout;   /* every operation's ceiling (504 past it) */
  double evict_idle_after;  /* hibernate at capacity a session idle this long; 0: never */
  size_t max_read_bytes;    /* read, read_bytes and the workspace routes */
  size_t max_body;          /* request bodies */
  char *workspace_root;     /* NULL: none */
  size_t pool_size;         /* warm sandboxes of the default runtime */
  unsigned workers;         /* threads that run operations */
  unsigned max_inflight;    /* a session's requests running at once */
  unsigned max_per_ip;      /* connections from one address (TCP) */
  bool stop_on_exit;        /* SIGTERM stops the sessions' sandboxes (else they keep running) */
  int64_t memory, pids;     /* sandbox limits (sbx's defaults unless given) */
  int64_t disk;
  double cpus;
  char *network;
  char **allowed_hosts;   /* Host header values accepted (besides loopback ones); NULL-terminated */
  char *mcp_permissions;  /* a preset or a rules file, for /mcp's tools */
  sbx_mcp_perms_t *perms; /* loaded from it */
} sbxd_config_t;

/* Fills CONFIG from ARGV (and the config file and token it names). 0; 1
 * when it printed --help; -1 after printing the mistake on stderr. */
int sbxd_config_load (int argc, char **argv, sbxd_config_t *config);
void sbxd_config_free (sbxd_config_t *config);
/* The runtime named ALIAS (NULL: the default one), or NULL. */
sbxd_runtime_t *sbxd_config_runtime (sbxd_config_t *config, const char *alias);

/* ---------------------------------------------------------------- registry */

typedef enum sbxd_state
{
  SBXD_OPENING,
  SBXD_RUNNING,
  SBXD_HIBERNATED,
  SBXD_CLOSING, /* being deleted: still named, so that its id is not reused meanwhile */
  SBXD_CLOSED,  /* deleted or reaped: out of the registry, freed by its last holder */
} sbxd_state_t;

typedef struct sbxd_session sbxd_session_t;

typedef struct sbxd_registry sbxd_registry_t;

int sbxd_registry_open (sbxd_config_t *config, sbxd_registry_t **out, sbx_error_t **err);
/* Stops the sweeper; with STOP, stops every session's sandbox too. */
void sbxd_registry_close (sbxd_registry_t *reg, bool stop);

/* Why a call failed, as an HTTP status and a sentence. */
typedef struct sbxd_fail
{
  int status;
  char *detail;
} sbxd_fail_t;

int sbxd_fail (sbxd_fail_t *f, int status, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));
void sbxd_fail_clear (sbxd_fail_t *f);

/* POST /sessions. On success *INFO is the SessionCreated document. */
int sbxd_session_create (sbxd_registry_t *reg, const char *id, const char *runtime,
                         const char *tenant, bool reuse, json_t **info, sbxd_fail_t *f);
/* The session ID, referenced (release with sbxd_session_unref), or NULL. */
sbxd_session_t *sbxd_session_find (sbxd_registry_t *reg, const char *id);
void sbxd_session_unref (sbxd_session_t *s);
sbxd_session_t *sbxd_session_ref (sbxd_session_t *s);
/* The session whose token TOKEN is, referenced, or NULL. */
sbxd_session_t *sbxd_session_by_token (sbxd_registry_t *reg, const char *token);
/* Whether two SHA-256 hex digests are the same, in constant time. */
bool sbxd_same_hash (const char *a, const char *b);
/* Whether TOKEN is one of the session's (constant time). */
bool sbxd_session_token_ok (const sbxd_session_t *s, const char *token);
/* SessionInfo; with USAGE, what the sandbox uses now (null when hibernated). */
json_t *sbxd_session_info (sbxd_session_t *s, bool usage);
/* SessionList (svc). */
json_t *sbxd_session_list (sbxd_registry_t *reg, bool usage);
json_t *sbxd_session_events (sbxd_session_t *s, int64_t after);
/* DELETE: ends the session (its sandbox removed; with PURGE its workspace too). */
int sbxd_session_delete (sbxd_registry_t *reg, sbxd_session_t *s, bool purge, sbxd_fail_t *f);

/* A sandbox handle of the session's to run one operation with, waking a
 * hibernated session and replacing a dead container; give it back with
 * sbxd_session_put (BROKEN: the operation lost the sandbox, do not keep it). */
int sbxd_session_get (sbxd_registry_t *reg, sbxd_session_t *s, sbx_sandbox_t **sb, sbxd_fail_t *f);
void sbxd_session_put (sbxd_session_t *s, sbx_sandbox_t *sb, bool broken);
/* A request that waits for its turn before it gets a handle counts
 * against the session's --max-inflight meanwhile (429 past it); then
 * either gets its handle in its place (sbxd_session_get_reserved) or
 * gives the place back (sbxd_session_wait_end). */
int sbxd_session_wait_begin (sbxd_session_t *s, sbxd_fail_t *f);
int sbxd_session_get_reserved (sbxd_registry_t *reg, sbxd_session_t *s, sbx_sandbox_t **sb,
                               sbxd_fail_t *f);
void sbxd_session_wait_end (sbxd_session_t *s);
/* Logs an operation in the session's events and counts it as activity. */
void sbxd_session_event (sbxd_session_t *s, const char *op, const char *target, bool ok,
                         const char *detail, double started);
const char *sbxd_session_id (const sbxd_session_t *s);
sbxd_config_t *sbxd_registry_config (sbxd_registry_t *reg);

/* /healthz numbers. */
void sbxd_registry_counts (sbxd_registry_t *reg, size_t *resident, size_t *open);

/* ------------------------------------------------------------------ routes */

typedef struct sbxd_request
{
  const char *method;
  const char *path;
  const char *token; /* X-Sandbox-Token, else Authorization: Bearer; NULL: none */
  const char *content_type;
  const char *host;
  const char *origin;
  const char *accept;
  const char *mcp_session; /* Mcp-Session-Id */
  const char *mcp_version; /* MCP-Protocol-Version */
  json_t *query;           /* {name: value} */
  const char *body;
  size_t body_len;
  int client_fd; /* the client's socket (borrowed; its hang-up cancels exec), or -1 */
} sbxd_request_t;

/* A response body written as it is made (server-sent events): the route
 * makes it, the server sends what is written, the route's continuation
 * (run by the worker once the response has started) writes it and ends it. */
typedef struct sbxd_stream sbxd_stream_t;
sbxd_stream_t *sbxd_stream_new (void);
/* Appends LEN bytes, waiting at most TIMEOUT seconds for the client to
 * take what is buffered; -1 when the client is gone or too slow. */
int sbxd_stream_write (sbxd_stream_t *st, const char *data, size_t len, double timeout);
void sbxd_stream_end (sbxd_stream_t *st);
sbxd_stream_t *sbxd_stream_ref (sbxd_stream_t *st);
void sbxd_stream_unref (sbxd_stream_t *st);

typedef struct sbxd_reply
{
  int status;
  char *body; /* malloc'd */
  size_t len;
  const char *content_type;
  const char *allow;     /* for 405 */
  char *mcp_session;     /* Mcp-Session-Id to send (malloc'd), or NULL */
  bool bearer_challenge; /* a 401 of /mcp: WWW-Authenticate: Bearer */
  bool truncated;        /* a listing cut short: X-Sbx-Truncated, X-Sbx-Total (TOTAL) */
  size_t total;
  sbxd_stream_t *stream;    /* the body, streamed (text/event-stream), instead of BODY */
  void (*then) (void *arg); /* run after the response started; it owns ARG */
  void *then_arg;
} sbxd_reply_t;

/* --------------------------------------------------------------------- ops */

/* Runs operation OP (exec, read, ...) with the request BODY in session S:
 * *REPLY is the response document (operation failures are in it, as
 * sandboxd answers them: status 200); a failure of the service in F.
 * CLIENT_FD (or -1): the client's socket, whose hang-up cancels exec. */
int sbxd_op_run (sbxd_registry_t *reg, sbxd_session_t *s, const char *op, json_t *body,
                 int client_fd, json_t **reply, sbxd_fail_t *f);

/* Request validation, as FastAPI reports it (422 with a list). */
typedef struct sbxd_invalid
{
  json_t *list; /* [{loc, msg, type}] */
} sbxd_invalid_t;

void sbxd_invalid_add (sbxd_invalid_t *inv, const char *where, const char *field, const char *msg,
                       const char *type);
/* POST /sessions/{id}/exec_stream: exec's body; the output as server-sent
 * events ("output" {stream, text}, then "exit" {exit_code, truncated,
 * timed_out} or "error" {detail}). Sets up REPLY's stream. */
int sbxd_op_exec_stream (sbxd_registry_t *reg, sbxd_session_t *s, json_t *body, int client_fd,
                         sbxd_reply_t *reply, json_t **invalid, sbxd_fail_t *f);
/* Background processes and kill-all: POST bg {command} -> {id}, GET bg,
 * GET bg/ID (new output and status), DELETE bg/ID, POST kill_all. */
int sbxd_op_process (sbxd_registry_t *reg, sbxd_session_t *s, const char *method, const char *what,
                     const char *bg_id, json_t *body, json_t **reply, sbxd_fail_t *f);

/* The nine operations of the sandboxd protocol: the Ith's name (I below
 * SBXD_N_OPS), for /metrics. */
#define SBXD_N_OPS 9
const char *sbxd_op_name (size_t i);

/* Whether OP names an operation route; what its body must hold (adds to
 * INV), and that as a JSON Schema (for /openapi.json). */
bool sbxd_op_known (const char *op);
void sbxd_op_validate (const char *op, json_t *body, sbxd_invalid_t *inv);
json_t *sbxd_op_schema (const char *op);

/* Field readers: a missing optional field keeps *OUT; a wrong type adds to INV. */
const char *sbxd_field_str (json_t *body, const char *name, bool required, sbxd_invalid_t *inv);
bool sbxd_field_bool (json_t *body, const char *name, bool dflt, sbxd_invalid_t *inv);
int64_t sbxd_field_int (json_t *body, const char *name, int64_t dflt, int64_t min,
                        sbxd_invalid_t *inv);

typedef struct sbxd_server
{
  sbxd_config_t *config;
  sbxd_registry_t *registry;
} sbxd_server_t;

void sbxd_route (sbxd_server_t *srv, const sbxd_request_t *req, sbxd_reply_t *reply);
/* Whether a request is answered from memory at once (no sandbox, no host
 * file): such requests never wait for a worker. */
bool sbxd_route_quick (const char *method, const char *path, json_t *query);
/* Whether TOKEN is the service's or a live session's: a request without
 * one is answered (401) before its body is read. */
bool sbxd_token_known (sbxd_server_t *srv, const char *token);
/* Whether TOKEN is the service token (constant time; always with auth off). */
bool sbxd_is_service (const sbxd_config_t *c, const char *token);

/* /mcp: MCP over Streamable HTTP (mcp_http.c). */
void sbxd_mcp_route (sbxd_server_t *srv, const sbxd_request_t *req, sbxd_reply_t *reply);
/* Ends every MCP session (the sandbox sessions they made included). */
void sbxd_mcp_close_all (sbxd_server_t *srv);

/* POST /workspaces/{id}/{ls,read} (svc). A listing past 100000 entries
 * or 16 MiB of JSON is cut short: *TRUNCATED, and *TOTAL the folder's
 * entries. */
int sbxd_workspace_op (sbxd_config_t *config, const char *id, const char *op, json_t *body,
                       json_t **reply, bool *truncated, size_t *total, sbxd_fail_t *f);

/* ----------------------------------------------------------------- metrics */

void sbxd_metrics_request (const char *route, int status, double seconds);
void sbxd_metrics_op (const char *op, bool ok, double seconds);
/* The Prometheus text; malloc'd. */
char *sbxd_metrics_text (sbxd_registry_t *reg);

/* -------------------------------------------------------------------- http */

int sbxd_http_serve (sbxd_server_t *srv);

#endif
