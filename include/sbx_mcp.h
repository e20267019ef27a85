/* sbx_mcp: a sandbox's tools for an AI agent, over the Model Context
 * Protocol, as a library (build/libsbx-mcp.a, on libsbx). The CLI's
 * `sbx mcp` serves it on stdio; a server may serve it over any transport.
 *
 * The parts, from the inside out:
 *  - permissions (sbx_mcp_perms_t): what the tools may touch, enforced;
 *  - a session (sbx_mcp_session_t): the tools of one client, run in the
 *    sandbox that a source the caller provides hands out, with the
 *    client's own memory of what it read; one process may hold many;
 *  - a connection (sbx_mcp_conn_t): the protocol's state machine for one
 *    client, transport-free: a message in, a reply out, or a tool call to
 *    run (sbx_mcp_call_t), whose reply comes when it has run.
 *
 * Conventions are libsbx's (sbx.h): 0 or a negative sbx_errc, errors
 * through the last argument, the caller frees what it receives. Messages
 * are JSON-RPC 2.0 texts, without framing. */
#ifndef SBX_MCP_H
#define SBX_MCP_H

#include "sbx.h"

#include <stdbool.h>
#include <stddef.h>

/* ------------------------------------------------------------ permissions */

typedef struct sbx_mcp_perms sbx_mcp_perms_t;

/* The presets' names (default, permissive, readonly, strict), NULL-terminated. */
const char *const *sbx_mcp_perms_presets (void);
/* A preset by name, else a JSON rules file by path (at most 1 MiB; see the
 * README). SBX_E_INVALID names the mistake. */
int sbx_mcp_perms_load (const char *preset_or_file, sbx_mcp_perms_t **out, sbx_error_t **err);
/* A rules file's text; ORIGIN names it in messages ("the rules file x.json"). */
int sbx_mcp_perms_parse (const char *text, size_t len, const char *origin, sbx_mcp_perms_t **out,
                         sbx_error_t **err);
/* "the default permissions", "the rules file x.json". Owned by PERMS. */
const char *sbx_mcp_perms_origin (const sbx_mcp_perms_t *perms);
void sbx_mcp_perms_free (sbx_mcp_perms_t *perms);

/* ------------------------------------------------------------- sessions */

/* Where a session's tools find their sandbox. With CREATE, the sandbox is
 * made if need be; without, *SB is NULL when there is none yet (the tools
 * that only look at background processes then make none). The sandbox
 * stays the source's: a session never frees or stops it. Called from the
 * thread that runs the session's calls. */
typedef int (*sbx_mcp_sandbox_fn) (void *userdata, bool create, sbx_sandbox_t **sb,
                                   sbx_error_t **err);

typedef struct sbx_mcp_session sbx_mcp_session_t;

typedef struct sbx_mcp_session_opts
{
  const sbx_mcp_perms_t *perms; /* the caller's; outlives the session */
  bool network;                 /* the sandbox reaches a network (openWorldHint) */
  const char *workdir;          /* for the instructions, or NULL */
  sbx_mcp_sandbox_fn sandbox;
  void *userdata;
} sbx_mcp_session_opts_t;

int sbx_mcp_session_new (const sbx_mcp_session_opts_t *opts, sbx_mcp_session_t **out,
                         sbx_error_t **err);
/* Runs one tool with ARGS (a JSON object's text, or NULL for none) and
 * returns the CallToolResult's JSON text in *RESULT: failures the model
 * should read (a denied path, a missing file, a failed command) are
 * results with isError, not errors. Fails only when the call could not be
 * made (unknown tool, out of memory). Calls of one session must not run
 * at the same time. */
int sbx_mcp_session_call (sbx_mcp_session_t *s, const char *tool, const char *args, char **result,
                          sbx_error_t **err);
void sbx_mcp_session_free (sbx_mcp_session_t *s);

/* ----------------------------------------------------------- connections */

typedef struct sbx_mcp_conn sbx_mcp_conn_t;
typedef struct sbx_mcp_call sbx_mcp_call_t;

/* A client's connection to SESSION (which must outlive it). */
int sbx_mcp_conn_new (sbx_mcp_session_t *session, sbx_mcp_conn_t **out, sbx_error_t **err);
void sbx_mcp_conn_free (sbx_mcp_conn_t *c);
/* Handles one message (LEN bytes): *REPLY receives the message to send
 * back (malloc'd text, or NULL when none is due, as for a notification),
 * or, for a tools/call, *CALL receives the call to run and *REPLY stays
 * NULL. Fails only when out of memory. */
int sbx_mcp_conn_handle (sbx_mcp_conn_t *c, const char *msg, size_t len, char **reply,
                         sbx_mcp_call_t **call, sbx_error_t **err);
/* Whether VERSION is a protocol version the connections speak (an HTTP
 * transport checks the MCP-Protocol-Version header with it). */
bool sbx_mcp_version_supported (const char *version);
/* Whether initialize was answered; the client's "name version" and the
 * protocol version agreed on, for logs (NULL before). Owned by C. */
bool sbx_mcp_conn_initialized (const sbx_mcp_conn_t *c);
const char *sbx_mcp_conn_client (const sbx_mcp_conn_t *c);
const char *sbx_mcp_conn_version (const sbx_mcp_conn_t *c);

/* Runs CALL in its session (it may take as long as the command) and puts
 * the reply to send in *REPLY (malloc'd); *FAILED (may be NULL) says
 * whether the tool reported a failure to the model. Independent of the
 * connection's thread: the connection may go on handling messages (ping,
 * tools/list) meanwhile. */
int sbx_mcp_call_run (sbx_mcp_call_t *call, char **reply, bool *failed, sbx_error_t **err);
/* The tool's name. Owned by CALL. */
const char *sbx_mcp_call_tool (const sbx_mcp_call_t *call);
/* A reply saying the call was not run (the server is stopping). */
int sbx_mcp_call_refuse (sbx_mcp_call_t *call, const char *why, char **reply, sbx_error_t **err);
void sbx_mcp_call_free (sbx_mcp_call_t *call);

/* --------------------------------------------------------------- stdio */

typedef struct sbx_mcp_stdio_opts
{
  const sbx_options_t *sandbox; /* how to make the sandbox; the caller's */
  const sbx_mcp_perms_t *perms;
  const char *workdir; /* --workdir, for the instructions; may be NULL */
  bool keep;           /* stop (do not remove) the sandbox at the end (named) */
  bool network;        /* the sandbox has a network */
} sbx_mcp_stdio_opts_t;

/* Serves one client on stdin/stdout (newline-delimited messages) until it
 * closes stdin or a signal (TERM, INT, HUP) comes; the sandbox is made on
 * the first tool call that needs it, and removed (or stopped, with KEEP)
 * at the end. Logs on stderr. 0, or negative when the server could not run
 * or the sandbox could not be ended. */
int sbx_mcp_serve_stdio (const sbx_mcp_stdio_opts_t *opts);

#endif
