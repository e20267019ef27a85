/* libFuzzer target for what the MCP server does with its input, short of
 * running a tool (src/mcp/jsonrpc.c, protocol.c, catalog.c): the stream
 * split into lines (mcp_lines_*, with a maximum), each line parsed
 * (mcp_msg_parse) and handled by one connection (sbx_mcp_conn_handle:
 * initialize, tools/list, the argument checks of tools/call).
 *
 * Checked: the lines are those of a model (split at '\n', one '\r' before it
 * dropped, blank lines skipped, one MCP_LINE_TOO_LONG per line over the
 * maximum), however the stream is cut; parses are consistent; every reply is
 * one line of JSON (so valid UTF-8) that echoes the request's id.
 *
 * Input: 1 byte for the maximum line, 1 byte of session options, 4 bytes of
 * piece sizes used in turn (0: all that is left), then the stream. */
#include "check.h"
#include "mcp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HEADER 6

static sbx_mcp_perms_t *presets[4];

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  (void) argc, (void) argv;
  for (int i = 0; i < 4; i++)
    if (sbx_mcp_perms_load (sbx_mcp_perms_presets ()[i], &presets[i], NULL) < 0)
      abort ();
  return 0;
}

/* Calls are checked, never run: no sandbox. */
static int
no_sandbox (void *userdata, bool create, sbx_sandbox_t **sb, sbx_error_t **err)
{
  (void) userdata, (void) create, (void) err;
  *sb = NULL;
  abort ();
}

/* The model of the framing: the next event after *POS in the N bytes at S
 * (1 and the line at *OFF, *LEN; MCP_LINE_TOO_LONG; 0 at the end). */
static int
model_next (const char *s, size_t n, size_t max, size_t *pos, size_t *off, size_t *len)
{
  while (*pos < n)
    {
      const char *nl = memchr (s + *pos, '\n', n - *pos);
      size_t start = *pos, l = nl ? (size_t) (nl - (s + start)) : n - start;
      *pos = start + l + (nl != NULL);
      if (l > max)
        return MCP_LINE_TOO_LONG;
      if (l > 0 && s[start + l - 1] == '\r')
        l--;
      size_t blank = 0;
      while (blank < l && memchr (" \t\r", s[start + blank], 3))
        blank++;
      if (blank == l)
        continue;
      *off = start;
      *len = l;
      return 1;
    }
  return 0;
}

/* A reply must be one line of JSON-RPC whose id is ID (null when NULL). */
static void
check_reply (const char *line, json_t *id)
{
  size_t n = strlen (line);
  CHECK (n > 0 && memchr (line, '\n', n) == NULL);
  json_error_t jerr;
  json_t *back = json_loadb (line, n, JSON_ALLOW_NUL, &jerr);
  CHECK (back != NULL);
  CHECK (json_equal (json_object_get (back, "id"), id ? id : json_null ()));
  const char *v = json_string_value (json_object_get (back, "jsonrpc"));
  CHECK (v != NULL && strcmp (v, "2.0") == 0);
  CHECK ((json_object_get (back, "result") == NULL) != (json_object_get (back, "error") == NULL));
  json_decref (back);
}

static void
handle (sbx_mcp_conn_t *c, const char *line, size_t len)
{
  struct mcp_msg m;
  mcp_msg_parse (line, len, &m);
  switch (m.kind)
    {
    case MCP_MSG_REQUEST:
      CHECK (m.id && m.method && (m.params == NULL || json_is_object (m.params)));
      break;
    case MCP_MSG_NOTIFICATION:
      CHECK (m.id == NULL && m.method);
      break;
    case MCP_MSG_RESPONSE:
      CHECK (m.id && m.method == NULL);
      break;
    case MCP_MSG_INVALID:
      CHECK (m.code < 0 && m.message[0] && memchr (m.message, 0, sizeof m.message));
      break;
    default:
      CHECK (!"a kind");
    }

  char *reply = NULL;
  sbx_mcp_call_t *call = NULL;
  CHECK (sbx_mcp_conn_handle (c, line, len, &reply, &call, NULL) == 0);
  if (call)
    {
      CHECK (m.kind == MCP_MSG_REQUEST && reply == NULL);
      CHECK (mcp_tool_find (sbx_mcp_call_tool (call)) != NULL);
      sbx_mcp_call_free (call);
    }
  else if (m.kind == MCP_MSG_REQUEST || m.kind == MCP_MSG_INVALID)
    {
      CHECK (reply != NULL);
      check_reply (reply, m.id);
    }
  else
    CHECK (reply == NULL);
  free (reply);
  mcp_msg_clear (&m);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  if (size < HEADER)
    return -1;
  /* Short maxima, to cut lines, or the server's own. */
  size_t max = data[0] & 0x80 ? MCP_MAX_MESSAGE : (size_t) data[0] * 4 + 1;
  sbx_mcp_session_opts_t so = {
    .perms = presets[data[1] & 3],
    .network = data[1] & 4,
    .workdir = data[1] & 8 ? "/fuzz" : NULL,
    .sandbox = no_sandbox,
  };
  sbx_mcp_session_t *s = NULL;
  sbx_mcp_conn_t *c = NULL;
  CHECK (sbx_mcp_session_new (&so, &s, NULL) == 0 && sbx_mcp_conn_new (s, &c, NULL) == 0);
  const uint8_t *pieces = data + 2;
  const char *stream = (const char *) data + HEADER;
  size_t n = size - HEADER;

  struct mcp_lines l;
  mcp_lines_init (&l, max);
  size_t model = 0;
  for (size_t off = 0, i = 0; off < n || i == 0; i++)
    {
      size_t piece = pieces[i % 4] ? pieces[i % 4] : n - off;
      if (piece > n - off)
        piece = n - off;
      CHECK (mcp_lines_push (&l, stream + off, piece) == 0);
      off += piece;
      bool eof = off == n;
      const char *line;
      size_t len, want_off = 0, want_len = 0;
      int k;
      while ((k = mcp_lines_next (&l, eof, &line, &len)) != 0)
        {
          int want = model_next (stream, n, max, &model, &want_off, &want_len);
          CHECK (k == want);
          if (k != 1)
            continue;
          CHECK (len == want_len && memcmp (line, stream + want_off, len) == 0);
          handle (c, line, len);
        }
    }
  size_t unused_off, unused_len;
  CHECK (model_next (stream, n, max, &model, &unused_off, &unused_len) == 0);
  mcp_lines_free (&l);
  sbx_mcp_conn_free (c);
  sbx_mcp_session_free (s);
  return 0;
}
