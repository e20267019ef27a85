/* Unit tests for the MCP server's JSON-RPC layer (src/mcp/jsonrpc.c): bytes
 * in, lines and validated messages out. */
#include "mcp.h"
#include "tap.h"

/* Feeds TEXT in pieces of STEP bytes; returns the lines joined by '|'. */
static char *
split (const char *text, size_t step, size_t max)
{
  static char out[4096];
  struct mcp_lines l;
  mcp_lines_init (&l, max);
  out[0] = '\0';
  size_t n = strlen (text);
  for (size_t off = 0; off <= n; off += step)
    {
      size_t k = off + step <= n ? step : n - off;
      bool eof = off + step > n;
      mcp_lines_push (&l, text + off, k);
      const char *line;
      size_t len;
      int r;
      while ((r = mcp_lines_next (&l, eof, &line, &len)) != 0)
        {
          if (r == MCP_LINE_TOO_LONG)
            strcat (out, "<too long>|");
          else
            {
              strncat (out, line, len);
              strcat (out, "|");
            }
        }
      if (eof)
        break;
    }
  mcp_lines_free (&l);
  return out;
}

static void
test_framing (void)
{
  const char *text = "{\"a\":1}\n{\"b\":2}\r\n\n   \n{\"c\":3}";
  for (size_t step = 1; step <= 8; step++)
    is_str (split (text, step, 100), "{\"a\":1}|{\"b\":2}|{\"c\":3}|",
            "lines split right when fed %zu byte(s) at a time", step);
  is_str (split ("short\n0123456789abcdef\nok\n", 3, 10), "short|<too long>|ok|",
          "a line past the limit is dropped and reported once, fed in pieces");
  is_str (split ("short\n0123456789abcdef\nok\n", 100, 10), "short|<too long>|ok|",
          "a line past the limit is dropped and reported once, fed at once");
  is_str (split ("0123456789abcdefghij", 4, 10), "<too long>|",
          "an endless line is dropped while it comes");
  is_str (split ("", 1, 10), "", "nothing in, nothing out");
}

/* Found by fuzz_jsonrpc: asking a splitter that never held a byte for a
 * line did arithmetic on its NULL buffer. */
static void
test_framing_empty (void)
{
  struct mcp_lines l;
  const char *line = NULL;
  size_t len = 0;
  mcp_lines_init (&l, 10);
  is_int (mcp_lines_next (&l, false, &line, &len), 0, "no line before any byte");
  is_int (mcp_lines_next (&l, true, &line, &len), 0, "  nor at the end of an empty stream");
  mcp_lines_free (&l);
}

/* Parses TEXT and checks the kind and, for invalid messages, the code. */
static void
parse_is (const char *text, enum mcp_msg_kind kind, int code, const char *what)
{
  struct mcp_msg m;
  mcp_msg_parse (text, strlen (text), &m);
  if (!ok (m.kind == kind && (kind != MCP_MSG_INVALID || m.code == code), "%s", what))
    diag ("kind %d code %d message '%s'", m.kind, m.code, m.message);
  mcp_msg_clear (&m);
}

static void
test_parse (void)
{
  parse_is ("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}", MCP_MSG_REQUEST, 0,
            "a request with a numeric id");
  parse_is ("{\"jsonrpc\":\"2.0\",\"id\":\"x\",\"method\":\"tools/list\",\"params\":{}}",
            MCP_MSG_REQUEST, 0, "a request with a string id and params");
  parse_is ("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}", MCP_MSG_NOTIFICATION,
            0, "a notification");
  parse_is ("{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{}}", MCP_MSG_RESPONSE, 0, "a response");
  parse_is ("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"params\":{\"s\":\"a\\u0000b\"}}",
            MCP_MSG_REQUEST, 0, "\\u0000 in a string is valid JSON");

  parse_is ("{\"jsonrpc\":\"2.0\",\"id\":1,", MCP_MSG_INVALID, MCP_PARSE_ERROR, "truncated JSON");
  parse_is ("not json at all", MCP_MSG_INVALID, MCP_PARSE_ERROR, "not JSON");
  parse_is ("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xff\"}", MCP_MSG_INVALID, MCP_PARSE_ERROR,
            "invalid UTF-8");
  parse_is ("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"} x", MCP_MSG_INVALID,
            MCP_PARSE_ERROR, "trailing garbage");
  parse_is ("[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]", MCP_MSG_INVALID,
            MCP_INVALID_REQUEST, "a batch");
  parse_is ("42", MCP_MSG_INVALID, MCP_INVALID_REQUEST, "a number");
  parse_is ("{\"id\":1,\"method\":\"ping\"}", MCP_MSG_INVALID, MCP_INVALID_REQUEST,
            "no jsonrpc member");
  parse_is ("{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"ping\"}", MCP_MSG_INVALID,
            MCP_INVALID_REQUEST, "jsonrpc 1.0");
  parse_is ("{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"ping\"}", MCP_MSG_INVALID,
            MCP_INVALID_REQUEST, "a null id");
  parse_is ("{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"ping\"}", MCP_MSG_INVALID,
            MCP_INVALID_REQUEST, "an object id");
  parse_is ("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":5}", MCP_MSG_INVALID, MCP_INVALID_REQUEST,
            "a method that is not a string");
  parse_is ("{\"jsonrpc\":\"2.0\",\"id\":1}", MCP_MSG_INVALID, MCP_INVALID_REQUEST,
            "no method, no result");
  parse_is ("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":[1]}", MCP_MSG_INVALID,
            MCP_INVALID_PARAMS, "params as an array");
  parse_is ("{\"jsonrpc\":\"2.0\",\"method\":\"x\",\"params\":3}", MCP_MSG_NOTIFICATION, 0,
            "a notification with bad params stays a notification (never answered)");

  struct mcp_msg m;
  const char *t = "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"ping\",\"params\":[]}";
  mcp_msg_parse (t, strlen (t), &m);
  ok (m.id && json_integer_value (m.id) == 7, "an invalid request keeps its id for the reply");
  mcp_msg_clear (&m);
}

/* The encoded reply, for comparison. */
static char *
encoded (json_t *msg)
{
  static char buf[1024];
  size_t len = 0;
  char *line = mcp_encode (msg, &len);
  snprintf (buf, sizeof buf, "%s", line ? line : "(null)");
  ok (line && len == strlen (line) && !memchr (line, '\n', len),
      "the encoding holds no newline (one line of the stdio transport)");
  free (line);
  return buf;
}

static void
test_replies (void)
{
  json_t *id = json_integer (4);
  is_str (encoded (mcp_reply_result (id, json_pack ("{s:b}", "ok", 1))),
          "{\"jsonrpc\":\"2.0\",\"id\":4,\"result\":{\"ok\":true}}", "a result echoes the id");
  is_str (encoded (mcp_reply_error (NULL, MCP_PARSE_ERROR, "Parse error: %s", "x")),
          "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32700,\"message\":\"Parse "
          "error: x\"}}",
          "an error without id has a null id");
  is_str (encoded (mcp_reply_error (id, MCP_METHOD_NOT_FOUND, "Method not found: %s", "a\xff")),
          "{\"jsonrpc\":\"2.0\",\"id\":4,\"error\":{\"code\":-32601,\"message\":\"Method not "
          "found: a\xef\xbf\xbd\"}}",
          "an error message quoting invalid UTF-8 stays valid UTF-8");
  json_decref (id);
  id = json_string ("req-1");
  is_str (encoded (mcp_reply_result (id, json_object ())),
          "{\"jsonrpc\":\"2.0\",\"id\":\"req-1\",\"result\":{}}", "a string id is echoed");
  json_decref (id);
}

int
main (void)
{
  test_framing ();
  test_framing_empty ();
  test_parse ();
  test_replies ();
  return done_testing ();
}
