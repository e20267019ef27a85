/* Unit tests for the MCP session (src/mcp/protocol.c) and the tool list and
 * argument checks (src/mcp/tools.c): everything short of running a tool. */
#include "mcp.h"
#include "tap.h"

static struct mcp_perms *perms;

static struct mcp_session
session (const char *preset)
{
  char *error = NULL;
  mcp_perms_free (perms);
  perms = NULL;
  if (mcp_perms_preset (preset, &perms, &error) < 0)
    diag ("%s", error);
  free (error);
  return (struct mcp_session){ .perms = perms, .instructions = "use the tools" };
}

/* Sends LINE; returns the reply (NULL if none) and the call to run. */
static json_t *
send_line (struct mcp_session *s, const char *line, struct mcp_call *call)
{
  json_t *reply = NULL;
  struct mcp_call c;
  enum mcp_disposition d = mcp_session_handle (s, line, strlen (line), &reply, &c);
  if (call)
    *call = c;
  else
    mcp_call_clear (&c);
  if (d == MCP_RUN && call == NULL)
    diag ("unexpected call to run");
  return reply;
}

static int
error_code (json_t *reply)
{
  return (int) json_integer_value (json_object_get (json_object_get (reply, "error"), "code"));
}

static void
expect_error (struct mcp_session *s, const char *line, int code, const char *what)
{
  json_t *reply = send_line (s, line, NULL);
  if (!ok (error_code (reply) == code, "%s: error %d", what, code))
    {
      char *d = json_dumps (reply, JSON_COMPACT);
      diag ("reply: %s", d ? d : "(none)");
      free (d);
    }
  json_decref (reply);
}

static json_t *
initialize (struct mcp_session *s, const char *version)
{
  char line[256];
  snprintf (line, sizeof line,
            "{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"initialize\",\"params\":{"
            "\"protocolVersion\":\"%s\",\"capabilities\":{},"
            "\"clientInfo\":{\"name\":\"t\",\"version\":\"1\"}}}",
            version);
  return send_line (s, line, NULL);
}

static void
test_lifecycle (void)
{
  struct mcp_session s = session ("default");
  expect_error (&s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}", MCP_NOT_INITIALIZED,
                "tools/list before initialize");
  json_t *reply = send_line (&s, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}", NULL);
  ok (json_is_object (json_object_get (reply, "result")), "ping works before initialize");
  json_decref (reply);
  expect_error (&s, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"initialize\",\"params\":{}}",
                MCP_INVALID_PARAMS, "initialize without a protocol version");

  reply = initialize (&s, "2025-11-25");
  json_t *result = json_object_get (reply, "result");
  is_str (json_string_value (json_object_get (result, "protocolVersion")), "2025-11-25",
          "2025-11-25 is spoken");
  ok (json_is_object (json_object_get (json_object_get (result, "capabilities"), "tools")),
      "the tools capability is announced");
  is_str (json_string_value (json_object_get (json_object_get (result, "serverInfo"), "name")),
          "sbx", "serverInfo names sbx");
  is_str (json_string_value (json_object_get (result, "instructions")), "use the tools",
          "instructions are passed on");
  is_str (s.client, "t 1", "the client is recorded for the log");
  json_decref (reply);
  expect_error (&s,
                "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"initialize\",\"params\":{"
                "\"protocolVersion\":\"2025-11-25\"}}",
                MCP_INVALID_REQUEST, "a second initialize");
  ok (send_line (&s, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}", NULL)
          == NULL,
      "notifications get no reply");
  ok (send_line (&s, "{\"jsonrpc\":\"2.0\",\"id\":9,\"result\":{}}", NULL) == NULL,
      "responses get no reply");
  expect_error (&s, "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"resources/list\"}",
                MCP_METHOD_NOT_FOUND, "an unknown method");
  expect_error (&s, "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":", MCP_PARSE_ERROR, "bad JSON");
  reply = send_line (&s, "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"ping\"}", NULL);
  ok (json_integer_value (json_object_get (reply, "id")) == 7
          && json_is_object (json_object_get (reply, "result")),
      "the session goes on after errors");
  json_decref (reply);
}

static void
test_versions (void)
{
  static const char *const asked[][2] = {
    { "2025-06-18", "2025-06-18" }, { "2025-03-26", "2025-03-26" }, { "2024-11-05", "2024-11-05" },
    { "2023-01-01", "2025-11-25" }, { "2099-01-01", "2025-11-25" },
  };
  for (size_t i = 0; i < sizeof asked / sizeof asked[0]; i++)
    {
      struct mcp_session s = session ("default");
      json_t *reply = initialize (&s, asked[i][0]);
      is_str (json_string_value (
                  json_object_get (json_object_get (reply, "result"), "protocolVersion")),
              asked[i][1], "asked for %s, answered with %s", asked[i][0], asked[i][1]);
      json_decref (reply);
    }
}

/* The tools/list result's tool named NAME, or NULL. */
static json_t *
listed (json_t *reply, const char *name)
{
  size_t i;
  json_t *t;
  json_array_foreach (json_object_get (json_object_get (reply, "result"), "tools"), i,
                      t) if (strcmp (json_string_value (json_object_get (t, "name")), name)
                             == 0) return t;
  return NULL;
}

static json_t *
tools_list (const char *preset, const char *version)
{
  struct mcp_session s = session (preset);
  json_decref (initialize (&s, version));
  return send_line (&s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}", NULL);
}

static void
test_tools_list (void)
{
  static const char *const all[]
      = { "ls",      "read_file",         "write_file",  "edit_file",  "glob",       "grep",
          "execute", "run_in_background", "read_output", "kill_shell", "list_shells" };
  json_t *reply = tools_list ("default", "2025-11-25");
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
    {
      json_t *t = listed (reply, all[i]);
      json_t *schema = json_object_get (t, "inputSchema");
      json_t *ann = json_object_get (t, "annotations");
      ok (t && json_is_string (json_object_get (t, "description"))
              && strcmp (json_string_value (json_object_get (schema, "type")), "object") == 0
              && json_is_string (json_object_get (t, "title"))
              && json_is_boolean (json_object_get (ann, "readOnlyHint"))
              && json_is_boolean (json_object_get (ann, "destructiveHint"))
              && json_is_boolean (json_object_get (ann, "idempotentHint")),
          "%s is listed with a schema, a description, a title and annotations", all[i]);
    }
  json_t *ann = json_object_get (listed (reply, "read_file"), "annotations");
  ok (json_is_true (json_object_get (ann, "readOnlyHint"))
          && json_is_false (json_object_get (ann, "destructiveHint")),
      "read_file is read-only");
  ann = json_object_get (listed (reply, "execute"), "annotations");
  ok (json_is_false (json_object_get (ann, "readOnlyHint"))
          && json_is_true (json_object_get (ann, "destructiveHint"))
          && json_is_false (json_object_get (ann, "openWorldHint")),
      "execute is destructive, in a closed world (no network)");
  json_t *timeout = json_object_get (
      json_object_get (json_object_get (listed (reply, "execute"), "inputSchema"), "properties"),
      "timeout");
  ok (json_integer_value (json_object_get (timeout, "default")) == 120,
      "execute's timeout defaults to 120 s");
  json_decref (reply);

  reply = tools_list ("readonly", "2025-06-18");
  ok (!listed (reply, "write_file") && !listed (reply, "edit_file") && !listed (reply, "execute")
          && !listed (reply, "run_in_background") && !listed (reply, "kill_shell"),
      "readonly hides write_file, edit_file, execute, run_in_background, kill_shell");
  ok (listed (reply, "read_file") && listed (reply, "grep") && listed (reply, "list_shells"),
      "readonly keeps the reads");
  json_decref (reply);

  reply = tools_list ("strict", "2025-06-18");
  ann = json_object_get (listed (reply, "read_file"), "annotations");
  ok (json_is_false (json_object_get (ann, "readOnlyHint"))
          && json_is_true (json_object_get (ann, "destructiveHint")),
      "strict's ask marks read_file to be confirmed");
  json_decref (reply);

  reply = tools_list ("default", "2025-03-26");
  ok (json_object_get (listed (reply, "ls"), "annotations")
          && !json_object_get (listed (reply, "ls"), "title"),
      "2025-03-26: annotations, no title");
  json_decref (reply);
  reply = tools_list ("default", "2024-11-05");
  ok (listed (reply, "ls") && !json_object_get (listed (reply, "ls"), "annotations"),
      "2024-11-05: no annotations");
  json_decref (reply);
}

/* The text of a tools/call reply's result. */
static const char *
result_text (json_t *reply)
{
  json_t *content = json_object_get (json_object_get (reply, "result"), "content");
  return json_string_value (json_object_get (json_array_get (content, 0), "text"));
}

static void
call_refused (struct mcp_session *s, const char *tool, const char *args, const char *needle)
{
  char line[512];
  struct mcp_call call;
  snprintf (line, sizeof line,
            "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"tools/call\",\"params\":{\"name\":\"%s\","
            "\"arguments\":%s}}",
            tool, args);
  json_t *reply = send_line (s, line, &call);
  const char *text = result_text (reply);
  if (!ok (call.tool == NULL
               && json_is_true (json_object_get (json_object_get (reply, "result"), "isError"))
               && text && strstr (text, needle),
           "%s %s is refused as a tool error", tool, args))
    diag ("text: %s", text ? text : "(none)");
  mcp_call_clear (&call);
  json_decref (reply);
}

static void
test_tools_call (void)
{
  struct mcp_session s = session ("readonly");
  json_decref (initialize (&s, "2025-11-25"));
  struct mcp_call call;
  json_t *reply = send_line (&s,
                             "{\"jsonrpc\":\"2.0\",\"id\":\"c1\",\"method\":\"tools/call\","
                             "\"params\":{\"name\":\"read_file\",\"arguments\":{\"path\":"
                             "\"a.txt\",\"offset\":2.0,\"limit\":null}}}",
                             &call);
  ok (reply == NULL && call.tool && strcmp (call.tool->name, "read_file") == 0
          && strcmp (json_string_value (call.id), "c1") == 0
          && json_object_get (call.args, "limit") == NULL,
      "a valid call is handed over to run (nulls dropped)");
  mcp_call_clear (&call);

  expect_error (&s,
                "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{"
                "\"name\":\"nope\",\"arguments\":{}}}",
                MCP_INVALID_PARAMS, "an unknown tool");
  expect_error (&s,
                "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{"
                "\"name\":\"write_file\",\"arguments\":{\"path\":\"a\",\"content\":\"\"}}}",
                MCP_INVALID_PARAMS, "a tool the permissions hide");
  expect_error (&s, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{}}",
                MCP_INVALID_PARAMS, "tools/call without a name");
  expect_error (&s,
                "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{"
                "\"name\":\"ls\",\"arguments\":[]}}",
                MCP_INVALID_PARAMS, "arguments that are not an object");

  call_refused (&s, "read_file", "{}", "\"path\" is missing");
  call_refused (&s, "read_file", "{\"path\":3}", "\"path\" must be a string");
  call_refused (&s, "read_file", "{\"path\":\"a\",\"offset\":-1}", "at least 0");
  call_refused (&s, "read_file", "{\"path\":\"a\",\"limit\":1.5}", "an integer");
  call_refused (&s, "read_file", "{\"file_path\":\"a\"}",
                "unknown argument \"file_path\"; read_file takes path, offset, limit");
  call_refused (&s, "read_file", "{\"path\":\"a\\u0000b\"}", "NUL");
  call_refused (&s, "grep", "{\"pattern\":\"x\",\"output_mode\":\"lines\"}",
                "one of \"files_with_matches\", \"content\", \"count\"");
  call_refused (&s, "list_shells", "{\"x\":1}", "takes no arguments");

  s = session ("default");
  json_decref (initialize (&s, "2025-11-25"));
  call_refused (&s, "execute", "{\"command\":\"x\",\"timeout\":99999}", "at most 3600");
  call_refused (&s, "edit_file",
                "{\"path\":\"a\",\"old_string\":\"x\",\"new_string\":\"y\","
                "\"replace_all\":\"yes\"}",
                "true or false");
  reply = send_line (&s,
                     "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{"
                     "\"name\":\"write_file\",\"arguments\":{\"path\":\"a\",\"content\":"
                     "\"x\\u0000y\"}}}",
                     &call);
  ok (reply == NULL && call.tool, "write_file's content may hold NULs");
  mcp_call_clear (&call);
}

static void
test_results (void)
{
  json_t *r = mcp_tool_result (true, "bad \xff byte");
  is_str (json_string_value (
              json_object_get (json_array_get (json_object_get (r, "content"), 0), "text")),
          "bad \xef\xbf\xbd byte", "tool results are valid UTF-8");
  ok (json_is_true (json_object_get (r, "isError")), "isError is set");
  json_decref (r);
}

int
main (void)
{
  if (mcp_tools_init () < 0)
    return 1;
  test_lifecycle ();
  test_versions ();
  test_tools_list ();
  test_tools_call ();
  test_results ();
  mcp_perms_free (perms);
  mcp_tools_cleanup ();
  return done_testing ();
}
