/* libsbx-mcp's modules (the library's face is include/sbx_mcp.h):
 *
 *   jsonrpc.c      JSON-RPC 2.0 as MCP restricts it: messages parsed and
 *                  validated, replies, newline framing (pure)
 *   permissions.c  presets, rules files, decisions (pure, but for the one
 *                  function that reads a rules file)
 *   session.c      a client's session: its permissions, where its sandbox
 *                  comes from, what the model last read of each file
 *   paths.c        paths a tool works on: resolved in the sandbox, checked
 *                  as given and as resolved
 *   ops.c          the tools as typed operations: arguments in, permission
 *                  checks, library calls, structured results out
 *   render.c       the text the model reads, from each result
 *   catalog.c      the tools' table: names, texts, schemas (parsed once,
 *                  shared), annotations, the list, argument checks, and the
 *                  glue from a call's JSON to an operation and its text
 *   protocol.c     a connection's state machine: initialize, versions,
 *                  ping, tools/list, tools/call
 *   stdio.c        the stdio server: a reader, a worker, signals, the
 *                  sandbox made on first use
 */
#ifndef SBX_MCP_INTERNAL_H
#define SBX_MCP_INTERNAL_H

#include "helpers.h"
#include "sbx.h"
#include "sbx_mcp.h"

#include <jansson.h>
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
/* MSG as compact JSON text, without a newline (steals MSG); NULL when out
 * of memory. */
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

struct sbx_mcp_perms
{
  char *origin; /* "the default permissions", "the rules file x.json" */
  struct mcp_op_perms ops[MCP_OP_COUNT];
};

/* The seed's secret patterns (NULL-terminated). */
extern const char *const mcp_secret_patterns[];

const char *mcp_op_name (enum mcp_op op);
/* A preset by name (see sbx_mcp_perms_presets). */
int mcp_perms_preset (const char *name, sbx_mcp_perms_t **out, sbx_error_t **err);

/* The action for OP on PATH (absolute, normalised), or with PATH NULL the
 * action of an operation without paths (execute). *RULE receives the rule
 * that decided, or NULL when the operation's fallback did. A path too long
 * to decide on is denied by a rule that denies (fails closed). */
enum mcp_action mcp_perms_check (const sbx_mcp_perms_t *p, enum mcp_op op, const char *path,
                                 const char *workdir, const struct mcp_rule **rule);
/* Whether OP is denied whatever the path: its tools are not listed. */
bool mcp_perms_denies_all (const sbx_mcp_perms_t *p, enum mcp_op op);
/* Whether some path may be denied: results must be filtered. */
bool mcp_perms_may_deny (const sbx_mcp_perms_t *p, enum mcp_op op);
/* Whether OP asks anywhere: its tools are annotated destructive. */
bool mcp_perms_may_ask (const sbx_mcp_perms_t *p, enum mcp_op op);
/* The failure saying that OP on PATH (NULL: OP as a whole) was denied, and
 * by which RULE (NULL: by the fallback): always -SBX_E_PERMISSION (or
 * -SBX_E_NOMEM, a failure too), so that a denial can never read as
 * allowed. */
int mcp_perms_deny (const sbx_mcp_perms_t *p, enum mcp_op op, const char *path,
                    const struct mcp_rule *rule, sbx_error_t **err);

/* ------------------------------------------------------------ session.c */

struct mcp_seen;

struct sbx_mcp_session
{
  const sbx_mcp_perms_t *perms;
  bool network;
  char *workdir; /* for the instructions; may be NULL */
  sbx_mcp_sandbox_fn sandbox;
  void *userdata;
  struct mcp_seen *seen; /* what the model last read, per file (edit_file) */
};

/* The session's sandbox, made if need be (CREATE) or only if it exists
 * (then *SB may be NULL); a failure is the source's. */
int mcp_session_sandbox (sbx_mcp_session_t *s, bool create, sbx_sandbox_t **sb, sbx_error_t **err);
/* What the model saw of the file at PATH (resolved): its fingerprint, or
 * NULL when it never read it. */
const char *mcp_seen_get (sbx_mcp_session_t *s, const char *path);
/* Records that the model saw PATH as FP ("" forgets it). */
void mcp_seen_put (sbx_mcp_session_t *s, const char *path, const char *fp);

/* ------------------------------------------------------------- paths.c */

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
 * fingerprint). On failure (a denial: SBX_E_PERMISSION) *T needs no
 * clearing. */
int mcp_target (sbx_mcp_session_t *s, sbx_sandbox_t *sb, enum mcp_op op, const char *given,
                bool always_probe, struct mcp_target *t, sbx_error_t **err);
void mcp_target_clear (struct mcp_target *t);
/* Whether OP may touch PATH (absolute), by the path alone. */
bool mcp_allowed (sbx_mcp_session_t *s, enum mcp_op op, const char *path, const char *workdir);
/* PATHS with symlinks resolved in the sandbox: *REALS (N malloc'd strings
 * in a malloc'd, NULL-terminated array). */
int mcp_resolve_many (sbx_sandbox_t *sb, const char *const *paths, size_t n, char ***reals,
                      sbx_error_t **err);
/* After a write or an edit: records what the file at REAL now is. */
void mcp_remember (sbx_mcp_session_t *s, sbx_sandbox_t *sb, const char *real);

/* --------------------------------------------------------------- ops.c */

/* Each tool as a typed operation: its arguments (borrowed from the caller,
 * and within the tool's schema: catalog.c checks them first), its result
 * (owned, freed with the clear function), and an sbx_error_t with a
 * sentence for the model on failure. */

/* ls */
struct mcp_ls_args
{
  const char *path;
};
struct mcp_ls_result
{
  char *path;           /* the directory, as the model named it, made absolute */
  sbx_file_list_t list; /* the entries shown (the permissions' left out) */
  size_t hidden;        /* entries the permissions left out */
  size_t more;          /* entries past what was asked for */
};
int mcp_op_ls (sbx_mcp_session_t *s, const struct mcp_ls_args *a, struct mcp_ls_result *r,
               sbx_error_t **err);
void mcp_ls_result_clear (struct mcp_ls_result *r);

/* read_file */
struct mcp_read_args
{
  const char *path;
  long long offset, limit; /* lines; limit 0: the library's default */
};
struct mcp_read_result
{
  char *path;
  char *text; /* numbered lines, "" past the end */
  long long offset;
};
int mcp_op_read (sbx_mcp_session_t *s, const struct mcp_read_args *a, struct mcp_read_result *r,
                 sbx_error_t **err);
void mcp_read_result_clear (struct mcp_read_result *r);

/* write_file */
struct mcp_write_args
{
  const char *path;
  const char *content;
  size_t len; /* bytes of CONTENT (NULs allowed) */
};
struct mcp_write_result
{
  char *path;
  size_t lines;
};
int mcp_op_write (sbx_mcp_session_t *s, const struct mcp_write_args *a, struct mcp_write_result *r,
                  sbx_error_t **err);
void mcp_write_result_clear (struct mcp_write_result *r);

/* edit_file */
struct mcp_edit_args
{
  const char *path, *old_string, *new_string;
  bool replace_all;
};
struct mcp_edit_result
{
  char *path;
  size_t replaced;
};
int mcp_op_edit (sbx_mcp_session_t *s, const struct mcp_edit_args *a, struct mcp_edit_result *r,
                 sbx_error_t **err);
void mcp_edit_result_clear (struct mcp_edit_result *r);

/* glob */
struct mcp_glob_args
{
  const char *pattern, *path;
};
struct mcp_glob_result
{
  const char *pattern; /* borrowed from the arguments */
  char *path;
  sbx_file_list_t list; /* the matches allowed, sorted */
  size_t hidden;        /* matches the permissions left out */
  size_t beyond;        /* matches past those returned (counted, not checked) */
};
int mcp_op_glob (sbx_mcp_session_t *s, const struct mcp_glob_args *a, struct mcp_glob_result *r,
                 sbx_error_t **err);
void mcp_glob_result_clear (struct mcp_glob_result *r);

/* grep */
enum mcp_grep_mode
{
  MCP_GREP_FILES,
  MCP_GREP_CONTENT,
  MCP_GREP_COUNT,
};
struct mcp_grep_args
{
  const char *pattern, *path, *glob; /* GLOB may be NULL */
  enum mcp_grep_mode mode;
};
struct mcp_grep_result
{
  const char *pattern;
  enum mcp_grep_mode mode;
  char *path;
  sbx_grep_result_t matches;
  size_t files;  /* files with a match */
  size_t hidden; /* files the permissions kept out (never searched) */
};
int mcp_op_grep (sbx_mcp_session_t *s, const struct mcp_grep_args *a, struct mcp_grep_result *r,
                 sbx_error_t **err);
void mcp_grep_result_clear (struct mcp_grep_result *r);

/* execute */
struct mcp_exec_args
{
  const char *command;
  long long timeout; /* seconds */
};
struct mcp_exec_result
{
  long long timeout;
  sbx_exec_result_t exec;
};
int mcp_op_exec (sbx_mcp_session_t *s, const struct mcp_exec_args *a, struct mcp_exec_result *r,
                 sbx_error_t **err);
void mcp_exec_result_clear (struct mcp_exec_result *r);

/* run_in_background, read_output, kill_shell, kill_all, list_shells */
struct mcp_bg_args
{
  const char *command;  /* run_in_background */
  const char *shell_id; /* the others */
};
struct mcp_bg_result
{
  char *id;
  const char *command; /* run_in_background: borrowed */
  char *output;        /* read_output */
  size_t len;
  sbx_bg_info_t info;  /* read_output */
  sbx_bg_info_t *list; /* list_shells */
  size_t count;        /* list_shells: entries; kill_all: processes killed */
};
int mcp_op_bg_start (sbx_mcp_session_t *s, const struct mcp_bg_args *a, struct mcp_bg_result *r,
                     sbx_error_t **err);
int mcp_op_bg_read (sbx_mcp_session_t *s, const struct mcp_bg_args *a, struct mcp_bg_result *r,
                    sbx_error_t **err);
int mcp_op_bg_kill (sbx_mcp_session_t *s, const struct mcp_bg_args *a, struct mcp_bg_result *r,
                    sbx_error_t **err);
int mcp_op_kill_all (sbx_mcp_session_t *s, const struct mcp_bg_args *a, struct mcp_bg_result *r,
                     sbx_error_t **err);
int mcp_op_bg_list (sbx_mcp_session_t *s, const struct mcp_bg_args *a, struct mcp_bg_result *r,
                    sbx_error_t **err);
void mcp_bg_result_clear (struct mcp_bg_result *r);

/* ------------------------------------------------------------ render.c */

/* The text the model reads, written to F. */
void mcp_render_ls (FILE *f, const struct mcp_ls_result *r);
void mcp_render_read (FILE *f, const struct mcp_read_result *r);
void mcp_render_write (FILE *f, const struct mcp_write_result *r);
void mcp_render_edit (FILE *f, const struct mcp_edit_result *r);
void mcp_render_glob (FILE *f, const struct mcp_glob_result *r);
void mcp_render_grep (FILE *f, const struct mcp_grep_result *r);
void mcp_render_exec (FILE *f, const struct mcp_exec_result *r);
void mcp_render_bg_start (FILE *f, const struct mcp_bg_result *r);
void mcp_render_bg_read (FILE *f, const struct mcp_bg_result *r);
void mcp_render_bg_kill (FILE *f, const struct mcp_bg_result *r);
void mcp_render_kill_all (FILE *f, const struct mcp_bg_result *r);
void mcp_render_bg_list (FILE *f, const struct mcp_bg_result *r);

/* A CallToolResult with one text content, made valid UTF-8 whatever it
 * holds (N bytes, NULs included); NULL when out of memory. */
json_t *mcp_result_text (bool is_error, const char *text, size_t n);
/* The result of a failed call: "Error: " and ERR's sentence (a denial, which
 * starts "Permission denied:", as it is). */
json_t *mcp_result_error (const sbx_error_t *err);

/* ----------------------------------------------------------- catalog.c */

struct mcp_tool
{
  const char *name;
  const char *title;
  const char *description; /* written for a model */
  const char *schema;      /* the input's JSON Schema, as JSON text */
  enum mcp_op op;          /* the operation the permissions govern it by */
  bool read_only, destructive, idempotent;
  bool runs_commands; /* in an open world when the sandbox has a network */
  /* Reads ARGS (checked against the schema), runs the operation, writes
   * its text to OUT. */
  int (*call) (sbx_mcp_session_t *s, json_t *args, FILE *out, sbx_error_t **err);
};

const struct mcp_tool *mcp_tool_find (const char *name);
bool mcp_tool_listed (const struct mcp_tool *t, const sbx_mcp_perms_t *p);
/* What tools/list says, by protocol feature. */
struct mcp_list_features
{
  bool titles;      /* Tool.title (2025-06-18) */
  bool annotations; /* Tool.annotations (2025-03-26) */
};
/* The result of tools/list; NULL when out of memory. */
json_t *mcp_tools_list (const sbx_mcp_perms_t *p, struct mcp_list_features features, bool network);
/* 0 when ARGS fit T's schema (null values dropped: "not given"), else a
 * message for the model in *WHY (malloc'd). -1 when out of memory. */
int mcp_tool_check_args (const struct mcp_tool *t, json_t *args, char **why);
/* Runs T with ARGS (checked): a CallToolResult, failures included; NULL
 * only when out of memory. */
json_t *mcp_tool_call (sbx_mcp_session_t *s, const struct mcp_tool *t, json_t *args);

/* ---------------------------------------------------------- protocol.c */

#define MCP_LATEST_VERSION "2025-11-25"
extern const char *const mcp_versions[]; /* newest first, NULL-terminated */

/* The version to answer an initialize that asked for REQUESTED with: the
 * same when supported, else the latest (the client then decides). */
const char *mcp_negotiate_version (const char *requested);
/* Whether the negotiated VERSION is MIN or later (features by version). */
bool mcp_version_at_least (const char *version, const char *min);

#endif
