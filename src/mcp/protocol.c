/* The MCP session: initialize and version negotiation, ping, tools/list, and
 * the checks of tools/call before a tool runs. Pure: a line in, a reply (or
 * a call to run) out, so that the whole protocol is unit-tested without a
 * sandbox. */
#include "mcp.h"

#include <stdio.h>
#include <string.h>

const char *const mcp_versions[]
    = { MCP_LATEST_VERSION, "2025-06-18", "2025-03-26", "2024-11-05", NULL };

const char *
mcp_negotiate_version (const char *requested)
{
  for (size_t i = 0; requested && mcp_versions[i]; i++)
    if (strcmp (requested, mcp_versions[i]) == 0)
      return mcp_versions[i];
  return mcp_versions[0];
}

void
mcp_call_clear (struct mcp_call *call)
{
  json_decref (call->id);
  json_decref (call->args);
  memset (call, 0, sizeof *call);
}

static json_t *
initialize (struct mcp_session *s, const struct mcp_msg *m)
{
  if (s->initialized)
    return mcp_reply_error (m->id, MCP_INVALID_REQUEST,
                            "Invalid Request: the session is "
                            "already initialized");
  const char *requested = json_string_value (json_object_get (m->params, "protocolVersion"));
  json_t *caps = json_object_get (m->params, "capabilities");
  json_t *client = json_object_get (m->params, "clientInfo");
  if (requested == NULL || (caps && !json_is_object (caps)) || (client && !json_is_object (client)))
    return mcp_reply_error (m->id, MCP_INVALID_PARAMS,
                            "Invalid params: initialize needs "
                            "{\"protocolVersion\": string, \"capabilities\": object, "
                            "\"clientInfo\": object}");
  s->version = mcp_negotiate_version (requested);
  const char *name = json_string_value (json_object_get (client, "name"));
  const char *version = json_string_value (json_object_get (client, "version"));
  snprintf (s->client, sizeof s->client, "%s%s%s", name ? name : "an unnamed client",
            version ? " " : "", version ? version : "");

  json_t *info = json_pack ("{s:s, s:s}", "name", "sbx", "version", SBX_VERSION);
  /* Implementation.title came with 2025-06-18. */
  if (info && mcp_version_at_least (s->version, "2025-06-18"))
    json_object_set_new (info, "title", json_string ("sbx: a Docker sandbox for AI agents"));
  json_t *result = json_pack ("{s:s, s:{s:{s:b}}, s:o}", "protocolVersion", s->version,
                              "capabilities", "tools", "listChanged", 0, "serverInfo", info);
  if (result && s->instructions)
    json_object_set_new (result, "instructions", json_string (s->instructions));
  if (result == NULL)
    return mcp_reply_error (m->id, MCP_INTERNAL_ERROR, "Internal error: out of memory");
  s->initialized = true;
  return mcp_reply_result (m->id, result);
}

static json_t *
tools_list (struct mcp_session *s, const struct mcp_msg *m)
{
  json_t *cursor = json_object_get (m->params, "cursor");
  /* One page holds every tool, so no cursor was ever handed out. */
  if (cursor)
    return mcp_reply_error (m->id, MCP_INVALID_PARAMS,
                            "Invalid params: unknown cursor (the "
                            "tool list has one page)");
  json_t *result = mcp_tools_list (s->perms, s->version, s->network);
  if (result == NULL)
    return mcp_reply_error (m->id, MCP_INTERNAL_ERROR, "Internal error: out of memory");
  return mcp_reply_result (m->id, result);
}

/* Either a reply (protocol errors; arguments that don't fit the schema,
 * which are the model's to fix, so a tool result) or *CALL to run. */
static json_t *
tools_call (struct mcp_session *s, const struct mcp_msg *m, struct mcp_call *call)
{
  const char *name = json_string_value (json_object_get (m->params, "name"));
  json_t *args = json_object_get (m->params, "arguments");
  if (name == NULL || (args && !json_is_object (args) && !json_is_null (args)))
    return mcp_reply_error (m->id, MCP_INVALID_PARAMS,
                            "Invalid params: tools/call needs "
                            "{\"name\": string, \"arguments\": object}");
  const struct mcp_tool *t = mcp_tool_find (name);
  if (t == NULL)
    return mcp_reply_error (m->id, MCP_INVALID_PARAMS, "Unknown tool: %s", name);
  if (!mcp_tool_listed (t, s->perms))
    return mcp_reply_error (m->id, MCP_INVALID_PARAMS,
                            "Unknown tool: %s (%s denies %s, so the "
                            "tool is not offered)",
                            name, s->perms->origin, mcp_op_name (t->op));

  json_t *copy = json_is_object (args) ? json_deep_copy (args) : json_object ();
  char *problem = copy ? mcp_tool_check_args (t, copy) : NULL;
  if (copy && problem == NULL)
    {
      /* Copies, so that the worker that runs the call shares no reference
       * with this thread. */
      call->id = json_deep_copy (m->id);
      call->tool = t;
      call->args = copy;
      if (call->id)
        return NULL;
      mcp_call_clear (call);
      copy = NULL;
    }
  json_decref (copy);
  if (problem == NULL)
    return mcp_reply_error (m->id, MCP_INTERNAL_ERROR, "Internal error: out of memory");
  json_t *result = mcp_tool_result (true, problem);
  free (problem);
  return result ? mcp_reply_result (m->id, result)
                : mcp_reply_error (m->id, MCP_INTERNAL_ERROR, "Internal error: out of memory");
}

static json_t *
request (struct mcp_session *s, const struct mcp_msg *m, struct mcp_call *call)
{
  if (strcmp (m->method, "ping") == 0)
    return mcp_reply_result (m->id, json_object ());
  if (strcmp (m->method, "initialize") == 0)
    return initialize (s, m);
  if (!s->initialized)
    return mcp_reply_error (m->id, MCP_NOT_INITIALIZED,
                            "Server not initialized: send "
                            "initialize first");
  if (strcmp (m->method, "tools/list") == 0)
    return tools_list (s, m);
  if (strcmp (m->method, "tools/call") == 0)
    return tools_call (s, m, call);
  return mcp_reply_error (m->id, MCP_METHOD_NOT_FOUND, "Method not found: %s", m->method);
}

enum mcp_disposition
mcp_session_handle (struct mcp_session *s, const char *line, size_t len, json_t **reply,
                    struct mcp_call *call)
{
  struct mcp_msg m;
  *reply = NULL;
  memset (call, 0, sizeof *call);
  mcp_msg_parse (line, len, &m);
  switch (m.kind)
    {
    case MCP_MSG_INVALID:
      *reply = mcp_reply_error (m.id, m.code, "%s", m.message);
      break;
    case MCP_MSG_REQUEST:
      *reply = request (s, &m, call);
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
  return call->tool ? MCP_RUN : MCP_REPLY;
}

bool
mcp_version_at_least (const char *version, const char *min)
{
  /* Versions are dates, YYYY-MM-DD: they sort as strings. */
  return version && strcmp (version, min) >= 0;
}
