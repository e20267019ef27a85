/* A connection's protocol: initialize and version negotiation, ping,
 * tools/list, and the checks of tools/call before a tool runs. Transport-
 * free: a message in, a reply (or a call to run) out, so that the whole
 * protocol is unit-tested without a sandbox and served over any transport. */
#include "mcp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const mcp_versions[] = { MCP_LATEST_VERSION, "2025-06-18", "2025-03-26", "2024-11-05",
                                     NULL };

struct sbx_mcp_conn
{
  sbx_mcp_session_t *session;
  bool initialized;    /* initialize was answered */
  const char *version; /* negotiated; static storage */
  char client[128];    /* "name version", for logs */
  char *instructions;  /* for initialize's result */
};

struct sbx_mcp_call
{
  sbx_mcp_session_t *session;
  json_t *id;
  const struct mcp_tool *tool;
  json_t *args;
};

/* The entry of mcp_versions that VERSION is, or NULL. */
static const char *
known_version (const char *version)
{
  for (size_t i = 0; version && mcp_versions[i]; i++)
    if (strcmp (version, mcp_versions[i]) == 0)
      return mcp_versions[i];
  return NULL;
}

const char *
mcp_negotiate_version (const char *requested)
{
  const char *v = known_version (requested);
  return v ? v : mcp_versions[0];
}

bool
sbx_mcp_version_supported (const char *version)
{
  return known_version (version) != NULL;
}

bool
mcp_version_at_least (const char *version, const char *min)
{
  /* Versions are dates, YYYY-MM-DD: they sort as strings. */
  return version && strcmp (version, min) >= 0;
}

static char *
instructions (const sbx_mcp_session_t *s)
{
  const char *wd = s->workdir;
  return sbx_strdup_printf (
      "These tools work in an isolated Linux sandbox (a Docker container), not on the user's "
      "machine. Relative paths resolve against the sandbox's work dir%s%s%s. Files last as long "
      "as this server. Read a file with read_file before changing it with edit_file. Use "
      "run_in_background for servers and other commands that keep running. Permissions are "
      "enforced by %s: a denied path is an error that names the rule.",
      wd ? " (" : "", wd ? wd : "", wd ? ")" : "", s->perms->origin);
}

int
sbx_mcp_conn_new (sbx_mcp_session_t *session, sbx_mcp_conn_t **out, sbx_error_t **err)
{
  *out = NULL;
  sbx_mcp_conn_t *c = calloc (1, sizeof *c);
  if (c == NULL || (c->instructions = instructions (session)) == NULL)
    {
      free (c);
      return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
    }
  c->session = session;
  *out = c;
  return 0;
}

void
sbx_mcp_conn_free (sbx_mcp_conn_t *c)
{
  if (c == NULL)
    return;
  free (c->instructions);
  free (c);
}

bool
sbx_mcp_conn_initialized (const sbx_mcp_conn_t *c)
{
  return c->initialized;
}

const char *
sbx_mcp_conn_client (const sbx_mcp_conn_t *c)
{
  return c->initialized ? c->client : NULL;
}

const char *
sbx_mcp_conn_version (const sbx_mcp_conn_t *c)
{
  return c->initialized ? c->version : NULL;
}

void
sbx_mcp_call_free (sbx_mcp_call_t *call)
{
  if (call == NULL)
    return;
  json_decref (call->id);
  json_decref (call->args);
  free (call);
}

const char *
sbx_mcp_call_tool (const sbx_mcp_call_t *call)
{
  return call->tool->name;
}

static json_t *
initialize (sbx_mcp_conn_t *c, const struct mcp_msg *m)
{
  if (c->initialized)
    return mcp_reply_error (m->id, MCP_INVALID_REQUEST,
                            "Invalid Request: the session is already initialized");
  const char *requested = json_string_value (json_object_get (m->params, "protocolVersion"));
  json_t *caps = json_object_get (m->params, "capabilities");
  json_t *client = json_object_get (m->params, "clientInfo");
  if (requested == NULL || (caps && !json_is_object (caps)) || (client && !json_is_object (client)))
    return mcp_reply_error (m->id, MCP_INVALID_PARAMS,
                            "Invalid params: initialize needs {\"protocolVersion\": string, "
                            "\"capabilities\": object, \"clientInfo\": object}");
  c->version = mcp_negotiate_version (requested);
  const char *name = json_string_value (json_object_get (client, "name"));
  const char *version = json_string_value (json_object_get (client, "version"));
  snprintf (c->client, sizeof c->client, "%s%s%s", name ? name : "an unnamed client",
            version ? " " : "", version ? version : "");

  json_t *info = json_pack ("{s:s, s:s}", "name", "sbx", "version", SBX_VERSION);
  /* Implementation.title came with 2025-06-18. */
  if (info && mcp_version_at_least (c->version, "2025-06-18"))
    json_object_set_new (info, "title", json_string ("sbx: a Docker sandbox for AI agents"));
  json_t *result = json_pack ("{s:s, s:{s:{s:b}}, s:o, s:s}", "protocolVersion", c->version,
                              "capabilities", "tools", "listChanged", 0, "serverInfo", info,
                              "instructions", c->instructions);
  if (result == NULL)
    return mcp_reply_error (m->id, MCP_INTERNAL_ERROR, "Internal error: out of memory");
  c->initialized = true;
  return mcp_reply_result (m->id, result);
}

static json_t *
tools_list (sbx_mcp_conn_t *c, const struct mcp_msg *m)
{
  /* One page holds every tool, so no cursor was ever handed out. */
  if (json_object_get (m->params, "cursor"))
    return mcp_reply_error (m->id, MCP_INVALID_PARAMS,
                            "Invalid params: unknown cursor (the tool list has one page)");
  struct mcp_list_features features = {
    .titles = mcp_version_at_least (c->version, "2025-06-18"),
    .annotations = mcp_version_at_least (c->version, "2025-03-26"),
  };
  json_t *result = mcp_tools_list (c->session->perms, features, c->session->network);
  if (result == NULL)
    return mcp_reply_error (m->id, MCP_INTERNAL_ERROR, "Internal error: out of memory");
  return mcp_reply_result (m->id, result);
}

/* Either a reply (protocol errors; arguments that don't fit the schema,
 * which are the model's to fix, so a tool result) or *CALL to run. */
static json_t *
tools_call (sbx_mcp_conn_t *c, const struct mcp_msg *m, sbx_mcp_call_t **call)
{
  const sbx_mcp_perms_t *perms = c->session->perms;
  json_t *jname = json_object_get (m->params, "name");
  const char *name = json_string_value (jname);
  json_t *args = json_object_get (m->params, "arguments");
  /* A NUL would cut the name: "ls\u0000x" is no tool. */
  if (name && strlen (name) != json_string_length (jname))
    return mcp_reply_error (m->id, MCP_INVALID_PARAMS,
                            "Invalid params: a tool name holds no NUL characters");
  if (name == NULL || (args && !json_is_object (args) && !json_is_null (args)))
    return mcp_reply_error (m->id, MCP_INVALID_PARAMS,
                            "Invalid params: tools/call needs {\"name\": string, \"arguments\": "
                            "object}");
  const struct mcp_tool *t = mcp_tool_find (name);
  if (t == NULL)
    return mcp_reply_error (m->id, MCP_INVALID_PARAMS, "Unknown tool: %s", name);
  if (!mcp_tool_listed (t, perms))
    return mcp_reply_error (m->id, MCP_INVALID_PARAMS,
                            "Unknown tool: %s (%s denies %s, so the tool is not offered)", name,
                            perms->origin, mcp_op_name (t->op));

  /* Copies, so that the thread that runs the call shares no reference with
     this one. */
  json_t *copy = json_is_object (args) ? json_deep_copy (args) : json_object ();
  cleanup_free char *problem = NULL;
  if (copy == NULL || mcp_tool_check_args (t, copy, &problem) < 0)
    {
      json_decref (copy);
      return mcp_reply_error (m->id, MCP_INTERNAL_ERROR, "Internal error: out of memory");
    }
  if (problem)
    {
      json_decref (copy);
      json_t *result = mcp_result_text (true, problem, strlen (problem));
      return result ? mcp_reply_result (m->id, result)
                    : mcp_reply_error (m->id, MCP_INTERNAL_ERROR, "Internal error: out of memory");
    }
  sbx_mcp_call_t *k = calloc (1, sizeof *k);
  if (k == NULL || (k->id = json_deep_copy (m->id)) == NULL)
    {
      free (k);
      json_decref (copy);
      return mcp_reply_error (m->id, MCP_INTERNAL_ERROR, "Internal error: out of memory");
    }
  k->session = c->session;
  k->tool = t;
  k->args = copy;
  *call = k;
  return NULL;
}

static json_t *
request (sbx_mcp_conn_t *c, const struct mcp_msg *m, sbx_mcp_call_t **call)
{
  if (strcmp (m->method, "ping") == 0)
    return mcp_reply_result (m->id, json_object ());
  if (strcmp (m->method, "initialize") == 0)
    return initialize (c, m);
  if (!c->initialized)
    return mcp_reply_error (m->id, MCP_NOT_INITIALIZED,
                            "Server not initialized: send initialize first");
  if (strcmp (m->method, "tools/list") == 0)
    return tools_list (c, m);
  if (strcmp (m->method, "tools/call") == 0)
    return tools_call (c, m, call);
  return mcp_reply_error (m->id, MCP_METHOD_NOT_FOUND, "Method not found: %s", m->method);
}

/* MSG as the text to send (stolen). */
static int
encode (json_t *msg, char **out, sbx_error_t **err)
{
  size_t len;
  *out = msg ? mcp_encode (msg, &len) : NULL;
  return *out ? 0 : sbx_error_set (err, SBX_E_NOMEM, "out of memory");
}

int
sbx_mcp_conn_handle (sbx_mcp_conn_t *c, const char *text, size_t len, char **reply,
                     sbx_mcp_call_t **call, sbx_error_t **err)
{
  struct mcp_msg m;
  *reply = NULL;
  *call = NULL;
  mcp_msg_parse (text, len, &m);
  json_t *out = NULL;
  bool due = false;
  switch (m.kind)
    {
    case MCP_MSG_INVALID:
      out = mcp_reply_error (m.id, m.code, "%s", m.message);
      due = true;
      break;
    case MCP_MSG_REQUEST:
      out = request (c, &m, call);
      due = *call == NULL;
      break;
    case MCP_MSG_NOTIFICATION:
      /* notifications/initialized needs nothing; a cancelled tool call
       * runs to its end (its time limit bounds it) and its reply is
       * ignored by the client, as the specification allows. */
    case MCP_MSG_RESPONSE:
      /* This server sends no requests, so replies are not expected. */
      break;
    }
  mcp_msg_clear (&m);
  return due ? encode (out, reply, err) : 0;
}

int
sbx_mcp_call_run (sbx_mcp_call_t *call, char **reply, bool *failed, sbx_error_t **err)
{
  json_t *result = mcp_tool_call (call->session, call->tool, call->args);
  if (failed)
    *failed = result == NULL || json_is_true (json_object_get (result, "isError"));
  json_t *msg = result ? mcp_reply_result (call->id, result)
                       : mcp_reply_error (call->id, MCP_INTERNAL_ERROR,
                                          "Internal error: out of memory");
  return encode (msg, reply, err);
}

int
sbx_mcp_call_refuse (sbx_mcp_call_t *call, const char *why, char **reply, sbx_error_t **err)
{
  return encode (mcp_reply_error (call->id, MCP_INTERNAL_ERROR, "%s", why), reply, err);
}
