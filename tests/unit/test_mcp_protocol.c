/* Unit tests for a connection's protocol (src/mcp/protocol.c), the tool
 * list and argument checks (src/mcp/catalog.c) and a session's calls
 * (src/mcp/session.c): everything short of a real sandbox, which a source
 * that refuses stands in for. */
#include "mcp.h"
#include "tap.h"

static sbx_mcp_perms_t *perms;
static sbx_mcp_session_t *session_now;
static sbx_mcp_conn_t *conn_now;

/* The sandbox source of these tests: there is none. */
static int
no_sandbox (void *userdata, bool create, sbx_sandbox_t **sb, sbx_error_t **err)
{
  (void) userdata;
  *sb = NULL;
  return create ? sbx_error_set (err, SBX_E_AGENT, "no sandbox in unit tests") : 0;
}

static void
end_session (void)
{
  sbx_mcp_conn_free (conn_now);
  sbx_mcp_session_free (session_now);
  sbx_mcp_perms_free (perms);
  conn_now = NULL;
  session_now = NULL;
  perms = NULL;
}

/* A fresh connection to a session with the permissions PRESET. */
static sbx_mcp_conn_t *
session (const char *preset)
{
  sbx_error_t *err = NULL;
  end_session ();
  sbx_mcp_session_opts_t o = { .sandbox = no_sandbox, .workdir = "/workspace" };
  if (sbx_mcp_perms_load (preset, &perms, &err) < 0
      || (o.perms = perms, sbx_mcp_session_new (&o, &session_now, &err)) < 0
      || sbx_mcp_conn_new (session_now, &conn_now, &err) < 0)
    diag ("%s", sbx_error_message (err));
  sbx_error_free (err);
  return conn_now;
}

/* Sends LINE; returns the reply (NULL if none) and the call to run. */
static json_t *
send_line (sbx_mcp_conn_t *c, const char *line, sbx_mcp_call_t **call)
{
  char *reply = NULL;
  sbx_mcp_call_t *k = NULL;
  sbx_error_t *err = NULL;
  if (sbx_mcp_conn_handle (c, line, strlen (line), &reply, &k, &err) < 0)
    diag ("handle: %s", sbx_error_message (err));
  sbx_error_free (err);
  if (call)
    *call = k;
  else if (k)
    {
      diag ("unexpected call to run");
      sbx_mcp_call_free (k);
    }
  json_t *doc = reply ? json_loads (reply, 0, NULL) : NULL;
  if (reply && (doc == NULL || strchr (reply, '\n')))
    diag ("the reply is not one line of JSON: %s", reply);
  free (reply);
  return doc;
}

static int
error_code (json_t *reply)
{
  return (int) json_integer_value (json_object_get (json_object_get (reply, "error"), "code"));
}

static void
expect_error (sbx_mcp_conn_t *s, const char *line, int code, const char *what)
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
initialize (sbx_mcp_conn_t *s, const char *version)
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
  sbx_mcp_conn_t *s = session ("default");
  expect_error (s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}", MCP_NOT_INITIALIZED,
                "tools/list before initialize");
  json_t *reply = send_line (s, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}", NULL);
  ok (json_is_object (json_object_get (reply, "result")), "ping works before initialize");
  json_decref (reply);
  expect_error (s, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"initialize\",\"params\":{}}",
                MCP_INVALID_PARAMS, "initialize without a protocol version");

  reply = initialize (s, "2025-11-25");
  json_t *result = json_object_get (reply, "result");
  is_str (json_string_value (json_object_get (result, "protocolVersion")), "2025-11-25",
          "2025-11-25 is spoken");
  ok (json_is_object (json_object_get (json_object_get (result, "capabilities"), "tools")),
      "the tools capability is announced");
  is_str (json_string_value (json_object_get (json_object_get (result, "serverInfo"), "name")),
          "sbx", "serverInfo names sbx");
  const char *instr = json_string_value (json_object_get (result, "instructions"));
  ok (instr && strstr (instr, "work dir (/workspace)") && strstr (instr, "the default permissions"),
      "the instructions name the work dir and the permissions");
  is_str (sbx_mcp_conn_client (s), "t 1", "the client is recorded for the log");
  is_str (sbx_mcp_conn_version (s), "2025-11-25", "and the version agreed on");
  json_decref (reply);
  expect_error (s,
                "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"initialize\",\"params\":{"
                "\"protocolVersion\":\"2025-11-25\"}}",
                MCP_INVALID_REQUEST, "a second initialize");
  ok (send_line (s, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}", NULL) == NULL,
      "notifications get no reply");
  ok (send_line (s, "{\"jsonrpc\":\"2.0\",\"id\":9,\"result\":{}}", NULL) == NULL,
      "responses get no reply");
  expect_error (s, "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"resources/list\"}",
                MCP_METHOD_NOT_FOUND, "an unknown method");
  expect_error (s, "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":", MCP_PARSE_ERROR, "bad JSON");
  reply = send_line (s, "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"ping\"}", NULL);
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
      sbx_mcp_conn_t *s = session ("default");
      json_t *reply = initialize (s, asked[i][0]);
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
  json_array_foreach (json_object_get (json_object_get (reply, "result"), "tools"), i, t)
    if (strcmp (json_string_value (json_object_get (t, "name")), name) == 0)
      return t;
  return NULL;
}

static json_t *
tools_list (const char *preset, const char *version)
{
  sbx_mcp_conn_t *s = session (preset);
  json_decref (initialize (s, version));
  return send_line (s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}", NULL);
}

static void
test_tools_list (void)
{
  static const char *const all[] = { "ls",          "read_file",  "write_file", "edit_file",
                                     "glob",        "grep",       "execute",    "run_in_background",
                                     "read_output", "kill_shell", "list_shells" };
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
call_refused (sbx_mcp_conn_t *s, const char *tool, const char *args, const char *needle)
{
  char line[512];
  sbx_mcp_call_t *call = NULL;
  snprintf (line, sizeof line,
            "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"tools/call\",\"params\":{\"name\":\"%s\","
            "\"arguments\":%s}}",
            tool, args);
  json_t *reply = send_line (s, line, &call);
  const char *text = result_text (reply);
  if (!ok (call == NULL
               && json_is_true (json_object_get (json_object_get (reply, "result"), "isError"))
               && text && strstr (text, needle),
           "%s %s is refused as a tool error", tool, args))
    diag ("text: %s", text ? text : "(none)");
  sbx_mcp_call_free (call);
  json_decref (reply);
}

/* Runs CALL and returns its reply. */
static json_t *
run_call (sbx_mcp_call_t *call)
{
  char *reply = NULL;
  bool failed = false;
  sbx_error_t *err = NULL;
  if (sbx_mcp_call_run (call, &reply, &failed, &err) < 0)
    diag ("run: %s", sbx_error_message (err));
  sbx_error_free (err);
  json_t *doc = reply ? json_loads (reply, 0, NULL) : NULL;
  free (reply);
  return doc;
}

static void
test_tools_call (void)
{
  sbx_mcp_conn_t *s = session ("readonly");
  json_decref (initialize (s, "2025-11-25"));
  sbx_mcp_call_t *call = NULL;
  json_t *reply = send_line (s,
                             "{\"jsonrpc\":\"2.0\",\"id\":\"c1\",\"method\":\"tools/call\","
                             "\"params\":{\"name\":\"read_file\",\"arguments\":{\"path\":"
                             "\"a.txt\",\"offset\":2.0,\"limit\":null}}}",
                             &call);
  ok (reply == NULL && call && strcmp (sbx_mcp_call_tool (call), "read_file") == 0,
      "a valid call is handed over to run (nulls dropped, integral reals taken)");
  json_t *ran = call ? run_call (call) : NULL;
  ok (strcmp (json_string_value (json_object_get (ran, "id")) ?: "", "c1") == 0
          && json_is_true (json_object_get (json_object_get (ran, "result"), "isError"))
          && strcmp (result_text (ran) ?: "", "Error: no sandbox in unit tests") == 0,
      "run, its reply carries the id and the source's failure for the model");
  json_decref (ran);
  sbx_mcp_call_free (call);

  expect_error (s,
                "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{"
                "\"name\":\"nope\",\"arguments\":{}}}",
                MCP_INVALID_PARAMS, "an unknown tool");
  expect_error (s,
                "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{"
                "\"name\":\"ls\\u0000x\",\"arguments\":{}}}",
                MCP_INVALID_PARAMS,
                "a tool name with a NUL is no tool (fuzzing found it read as ls)");
  expect_error (s, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\\u0000junk\"}",
                MCP_INVALID_REQUEST, "a method with a NUL is no method (not ping)");
  expect_error (s,
                "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{"
                "\"name\":\"write_file\",\"arguments\":{\"path\":\"a\",\"content\":\"\"}}}",
                MCP_INVALID_PARAMS, "a tool the permissions hide");
  expect_error (s, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{}}",
                MCP_INVALID_PARAMS, "tools/call without a name");
  expect_error (s,
                "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{"
                "\"name\":\"ls\",\"arguments\":[]}}",
                MCP_INVALID_PARAMS, "arguments that are not an object");

  call_refused (s, "read_file", "{}", "\"path\" is missing");
  call_refused (s, "read_file", "{\"path\":3}", "\"path\" must be a string");
  call_refused (s, "read_file", "{\"path\":\"a\",\"offset\":-1}", "at least 0");
  call_refused (s, "read_file", "{\"path\":\"a\",\"limit\":1.5}", "an integer");
  call_refused (s, "read_file", "{\"file_path\":\"a\"}",
                "unknown argument \"file_path\"; read_file takes path, offset, limit");
  call_refused (s, "read_file", "{\"path\":\"a\\u0000b\"}", "NUL");
  call_refused (s, "grep", "{\"pattern\":\"x\",\"output_mode\":\"lines\"}",
                "one of \"files_with_matches\", \"content\", \"count\"");
  call_refused (s, "list_shells", "{\"x\":1}", "takes no arguments");

  s = session ("default");
  json_decref (initialize (s, "2025-11-25"));
  call_refused (s, "execute", "{\"command\":\"x\",\"timeout\":99999}", "at most 3600");
  call_refused (s, "edit_file",
                "{\"path\":\"a\",\"old_string\":\"x\",\"new_string\":\"y\","
                "\"replace_all\":\"yes\"}",
                "true or false");
  reply = send_line (s,
                     "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{"
                     "\"name\":\"write_file\",\"arguments\":{\"path\":\"a\",\"content\":"
                     "\"x\\u0000y\"}}}",
                     &call);
  ok (reply == NULL && call, "write_file's content may hold NULs");
  sbx_mcp_call_free (call);
}

/* The session's own entry, as a server that is not MCP would use it. */
static void
test_session_call (void)
{
  session ("default");
  char *result = NULL;
  sbx_error_t *err = NULL;
  ok (sbx_mcp_session_call (session_now, "list_shells", NULL, &result, &err) == 0 && result
          && strstr (result, "No background processes.") && strstr (result, "\"isError\":false"),
      "list_shells without a sandbox makes none and lists nothing");
  free (result);
  ok (sbx_mcp_session_call (session_now, "ls", "{\"path\":\"/\"}", &result, &err) == 0 && result
          && strstr (result, "Error: no sandbox in unit tests")
          && strstr (result, "\"isError\":true"),
      "ls reports the source's failure as a result for the model");
  free (result);
  ok (sbx_mcp_session_call (session_now, "ls", "{\"dir\":1}", &result, &err) == 0 && result
          && strstr (result, "unknown argument \\\"dir\\\""),
      "arguments are checked against the schema");
  free (result);
  check_fails (sbx_mcp_session_call (session_now, "nope", NULL, &result, &err), &err, SBX_E_INVALID,
               "unknown tool nope", "an unknown tool is an error");
  check_fails (sbx_mcp_session_call (session_now, "ls", "[1]", &result, &err), &err, SBX_E_INVALID,
               "must be a JSON object", "arguments that are not an object");
}

static void
test_results (void)
{
  json_t *r = mcp_result_text (true, "bad \xff byte", strlen ("bad \xff byte"));
  is_str (json_string_value (
              json_object_get (json_array_get (json_object_get (r, "content"), 0), "text")),
          "bad \xef\xbf\xbd byte", "tool results are valid UTF-8");
  ok (json_is_true (json_object_get (r, "isError")), "isError is set");
  json_decref (r);
}

int
main (void)
{
  test_lifecycle ();
  test_versions ();
  test_tools_list ();
  test_tools_call ();
  test_session_call ();
  test_results ();
  end_session ();
  return done_testing ();
}
