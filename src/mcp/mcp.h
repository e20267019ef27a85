/* sbx mcp: the agent's tools over the Model Context Protocol, on stdio.
 *
 *   jsonrpc.c      newline-delimited JSON-RPC 2.0: framing, parsing and
 *                  validation, replies (pure, no I/O)
 *   permissions.c  presets, rules files, path normalisation, decisions (pure)
 *   protocol.c     the MCP session: initialize and version negotiation,
 *                  ping, tools/list, tools/call routing (pure)
 *   tools.c        the tools: schemas, descriptions, annotations, calls
 *   server.c       stdio, the tool worker, signals, the sandbox's life
 */
#ifndef SBX_MCP_H
#define SBX_MCP_H

#include "helpers.h"
#include "sbx.h"

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* ------------------------------------------------------------- jsonrpc.c */

/* JSON-RPC 2.0 error codes, and the one MCP servers use (as LSP does) for a
 * request that comes before initialize. */
#define MCP_PARSE_ERROR (-32700)
#define MCP_INVALID_REQUEST (-32600)
#define MCP_METHOD_NOT_FOUND (-32601)
#define MCP_INVALID_PARAMS (-32602)
#define MCP_INTERNAL_ERROR (-32603)
#define MCP_NOT_INITIALIZED (-32002)

/* The largest message read: a write_file of a big file fits; a runaway
 * client can't make the server hold more. */
#define MCP_MAX_MESSAGE (64u << 20)

/* Splits a byte stream into lines ('\n', an optional '\r' before it is
 * dropped). A line longer than MAX is dropped and reported once. */
struct mcp_lines
{
  char *buf;
  size_t len;     /* bytes held */
  size_t start;   /* where the current line starts */
  size_t scanned; /* bytes after START known to hold no '\n' */
  size_t cap, max;
  bool skipping; /* dropping the rest of an over-long line */
};

#define MCP_LINE_TOO_LONG (-2)

void mcp_lines_init (struct mcp_lines *l, size_t max);
void mcp_lines_free (struct mcp_lines *l);
/* Adds bytes read; -1 when out of memory. */
int mcp_lines_push (struct mcp_lines *l, const void *data, size_t n);
/* 1 and the next non-empty line in *LINE / *LEN (valid until the next call),
 * 0 when no complete line is held, or MCP_LINE_TOO_LONG. With EOF, what is
 * left without a final newline counts as a line. */
int mcp_lines_next (struct mcp_lines *l, bool eof, const char **line, size_t *len);

enum mcp_msg_kind
{
  MCP_MSG_REQUEST,      /* method and id: needs a reply */
  MCP_MSG_NOTIFICATION, /* method, no id: never replied to */
  MCP_MSG_RESPONSE,     /* id and result or error: a reply to us */
  MCP_MSG_INVALID,      /* CODE and MESSAGE say why; ID if it could be read */
};

struct mcp_msg
{
  enum mcp_msg_kind kind;
  json_t *doc;        /* the whole message, owned (NULL if unparseable) */
  json_t *id;         /* borrowed from DOC, or NULL */
  const char *method; /* borrowed from DOC */
  json_t *params;     /* borrowed object, or NULL when absent */
  int code;
  char message[200];
};

/* Parses and validates one message (JSON-RPC 2.0 as MCP restricts it: ids
 * are strings or numbers, params are objects, no batches). */
void mcp_msg_parse (const char *data, size_t len, struct mcp_msg *msg);
void mcp_msg_clear (struct mcp_msg *msg);

/* Replies; ID may be NULL (then null). They steal RESULT; NULL when out of
 * memory. */
json_t *mcp_reply_result (json_t *id, json_t *result);
json_t *mcp_reply_error (json_t *id, int code, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));
/* MSG as one compact line ending in '\n' (steals MSG); NULL when out of
 * memory. */
char *mcp_encode (json_t *msg, size_t *len);

/* --------------------------------------------------------- permissions.c */

enum mcp_op
{
  MCP_OP_READ,
  MCP_OP_WRITE,
  MCP_OP_EDIT,
  MCP_OP_EXECUTE,
  MCP_OP_GLOB,
  MCP_OP_GREP,
  MCP_OP_LS,
  MCP_OP_COUNT
};

enum mcp_action
{
  MCP_ALLOW,
  MCP_DENY,
  /* The seed's "ask": MCP has no approval step, so it allows, and the tool
   * is annotated destructive so that a client that asks its user asks. */
  MCP_ASK,
};

struct mcp_rule
{
  char *pattern;
  char *description; /* may be NULL */
  struct sbx_glob *glob;
  bool relative; /* matched against the path below the work dir */
  bool icase;    /* matched without regard to ASCII case (the secret patterns) */
  enum mcp_action action;
};

struct mcp_op_perms
{
  enum mcp_action fallback; /* when no rule matches */
  struct mcp_rule *rules;   /* first match wins */
  size_t nrules;
};

struct mcp_perms
{
  char *origin; /* "the default preset", "the rules file x.json" */
  struct mcp_op_perms ops[MCP_OP_COUNT];
};

/* The seed's secret patterns (NULL-terminated). */
extern const char *const mcp_secret_patterns[];

const char *mcp_op_name (enum mcp_op op);
/* Names of the presets, NULL-terminated. */
extern const char *const mcp_preset_names[];
/* 0 and *OUT, or -1 and *ERROR (malloc'd) for an unknown name. */
int mcp_perms_preset (const char *name, struct mcp_perms **out, char **error);
/* A rules file's text (see the README); ORIGIN names it in messages. */
int mcp_perms_parse (const char *text, size_t len, const char *origin, struct mcp_perms **out,
                     char **error);
void mcp_perms_free (struct mcp_perms *p);

/* The action for OP on PATH (absolute, normalised), or with PATH NULL the
 * action of an operation without paths (execute). *RULE receives the rule
 * that decided, or NULL when the operation's fallback did. */
enum mcp_action mcp_perms_check (const struct mcp_perms *p, enum mcp_op op, const char *path,
                                 const char *workdir, const struct mcp_rule **rule);
/* Whether OP is denied whatever the path: its tools are not listed. */
bool mcp_perms_denies_all (const struct mcp_perms *p, enum mcp_op op);
/* Whether some path may be denied: results must be filtered. */
bool mcp_perms_may_deny (const struct mcp_perms *p, enum mcp_op op);
/* Whether OP asks anywhere: its tools are annotated destructive. */
bool mcp_perms_may_ask (const struct mcp_perms *p, enum mcp_op op);
/* The sentence saying that OP on PATH was denied, and by what (malloc'd). */
char *mcp_perms_denial (const struct mcp_perms *p, enum mcp_op op, const char *path,
                        const struct mcp_rule *rule);

/* ------------------------------------------------------------ tools.c */

struct mcp_ctx;

struct mcp_tool
{
  const char *name;
  const char *title;
  const char *description; /* written for a model */
  const char *schema;      /* the input's JSON Schema, as JSON text */
  enum mcp_op op;          /* the operation the permissions govern it by */
  bool read_only, destructive, idempotent;
  bool runs_commands; /* in an open world when the sandbox has a network */
  json_t *(*call) (struct mcp_ctx *ctx, json_t *args);
};

extern const struct mcp_tool mcp_tools[];

/* Parses the schemas once; -1 if one is broken (a bug). */
int mcp_tools_init (void);
void mcp_tools_cleanup (void);
const struct mcp_tool *mcp_tool_find (const char *name);
bool mcp_tool_listed (const struct mcp_tool *t, const struct mcp_perms *p);
/* The result of tools/list for protocol VERSION; NETWORK says whether the
 * sandbox reaches a network (execute's openWorldHint). */
json_t *mcp_tools_list (const struct mcp_perms *p, const char *version, bool network);
/* NULL when ARGS fit T's schema, else a message for the model (malloc'd). */
char *mcp_tool_check_args (const struct mcp_tool *t, json_t *args);

/* Results: a CallToolResult with one text content, made valid UTF-8
 * whatever it holds (N bytes, NULs included). NULL when out of memory. */
json_t *mcp_tool_result (bool is_error, const char *text);
json_t *mcp_result_text (bool is_error, const char *text, size_t n);
/* A failed call's result: a sentence the model can act on. */
json_t *mcp_errorf (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
json_t *mcp_okf (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
/* "Error: " and the library's message; frees ERR. */
json_t *mcp_failure (sbx_error_t *err);

/* A result's text built with stdio. */
struct mcp_out
{
  FILE *f;
  char *s;
  size_t n;
};
bool mcp_out_open (struct mcp_out *o);
/* Closes O and makes its text a result. */
json_t *mcp_out_result (struct mcp_out *o, bool is_error);

/* What a tool call runs with. */
struct mcp_seen;
struct mcp_box;

struct mcp_ctx
{
  const struct mcp_perms *perms;
  struct mcp_box *box;
  struct mcp_seen *seen; /* what the model last read, per file (edit_file) */
};

/* Runs T with ARGS (already checked): a CallToolResult, failures included.
 * NULL only when out of memory. */
json_t *mcp_tool_call (struct mcp_ctx *ctx, const struct mcp_tool *t, json_t *args);

/* -------------------------------------------------------------- calls.c */

/* The tools' calls (mcp_tools[].call). */
json_t *mcp_run_ls (struct mcp_ctx *ctx, json_t *args);
json_t *mcp_run_read_file (struct mcp_ctx *ctx, json_t *args);
json_t *mcp_run_write_file (struct mcp_ctx *ctx, json_t *args);
json_t *mcp_run_edit_file (struct mcp_ctx *ctx, json_t *args);
json_t *mcp_run_glob (struct mcp_ctx *ctx, json_t *args);
json_t *mcp_run_grep (struct mcp_ctx *ctx, json_t *args);
json_t *mcp_run_execute (struct mcp_ctx *ctx, json_t *args);
json_t *mcp_run_run_in_background (struct mcp_ctx *ctx, json_t *args);
json_t *mcp_run_read_output (struct mcp_ctx *ctx, json_t *args);
json_t *mcp_run_kill_shell (struct mcp_ctx *ctx, json_t *args);
json_t *mcp_run_kill_all (struct mcp_ctx *ctx, json_t *args);
json_t *mcp_run_list_shells (struct mcp_ctx *ctx, json_t *args);

/* -------------------------------------------------------------- paths.c */

/* A path a tool works on. */
struct mcp_target
{
  char *path;   /* absolute, lexically normalised: what messages name */
  char *real;   /* symlinks resolved in the sandbox: what the operation uses */
  char fp[128]; /* what the file is now (device, inode, size, times), or ""
                   when it does not exist (or was not looked at) */
};

/* Resolves the path GIVEN for OP and checks it, as given and as resolved.
 * ALWAYS_PROBE looks in the sandbox even when no rule could deny (for the
 * fingerprint). NULL, or the error to return (then *T needs no clearing). */
json_t *mcp_target (struct mcp_ctx *ctx, sbx_sandbox_t *sb, enum mcp_op op, const char *given,
                    bool always_probe, struct mcp_target *t);
void mcp_target_clear (struct mcp_target *t);
/* Whether OP may touch PATH (absolute), by the path alone. */
bool mcp_allowed (struct mcp_ctx *ctx, enum mcp_op op, const char *path, const char *workdir);
/* PATHS with symlinks resolved in the sandbox, in one exec: NULL and *REALS
 * (N malloc'd strings in a malloc'd array), or the error to return. */
json_t *mcp_resolve_many (sbx_sandbox_t *sb, const char *const *paths, size_t n, char ***reals);

/* What the model saw of the file at PATH (resolved): its fingerprint, or
 * NULL when it never read it. */
const char *mcp_seen_get (struct mcp_ctx *ctx, const char *path);
/* Records that the model saw PATH as FP ("" forgets it). */
void mcp_seen_put (struct mcp_ctx *ctx, const char *path, const char *fp);
/* After a write or an edit: records what the file now is. */
void mcp_remember (struct mcp_ctx *ctx, sbx_sandbox_t *sb, const char *real);
void mcp_seen_free (struct mcp_seen *seen);

/* ---------------------------------------------------------- protocol.c */

#define MCP_LATEST_VERSION "2025-11-25"
extern const char *const mcp_versions[]; /* newest first, NULL-terminated */

/* The version to answer an initialize that asked for REQUESTED with: the
 * same when supported, else the latest (the client then decides). */
const char *mcp_negotiate_version (const char *requested);
/* Whether the negotiated VERSION is MIN or later (features by version). */
bool mcp_version_at_least (const char *version, const char *min);

struct mcp_session
{
  const struct mcp_perms *perms;
  bool network;
  bool initialized;         /* initialize was answered */
  const char *version;      /* negotiated; static storage */
  char client[128];         /* "name version", for the log */
  const char *instructions; /* for initialize's result; may be NULL */
};

/* A tools/call to run, with references the caller drops. */
struct mcp_call
{
  json_t *id;
  const struct mcp_tool *tool;
  json_t *args;
};

enum mcp_disposition
{
  MCP_REPLY, /* send *REPLY (when not NULL) */
  MCP_RUN,   /* run *CALL, then reply with its result */
};

/* Handles one message line: everything but running a tool. */
enum mcp_disposition mcp_session_handle (struct mcp_session *s, const char *line, size_t len,
                                         json_t **reply, struct mcp_call *call);
void mcp_call_clear (struct mcp_call *call);

/* ------------------------------------------------------------ server.c */

/* The sandbox, made on the first tool call that needs it. -1 with *ERR
 * NULL when the server is stopping. */
int mcp_box_get (struct mcp_box *box, sbx_sandbox_t **sb, sbx_error_t **err);
/* The sandbox if it was made, else NULL (never makes it). */
sbx_sandbox_t *mcp_box_peek (struct mcp_box *box);

struct mcp_server_opts
{
  sbx_options_t *sandbox; /* how to make the sandbox; owned by the caller */
  const struct mcp_perms *perms;
  const char *workdir; /* --workdir for the instructions, or NULL */
  bool named;          /* keep the sandbox at the end (--name) */
  bool network;        /* the sandbox has a network */
};

/* Serves MCP on stdin/stdout until the client closes stdin or a signal
 * (TERM, INT, HUP) comes; removes (or, when named, stops) the sandbox.
 * Logs on stderr. Returns the exit code. */
int mcp_serve (const struct mcp_server_opts *opts);

#endif
