/* Newline-delimited JSON-RPC 2.0, as MCP's stdio transport uses it: framing,
 * parsing and validation, replies. Pure: bytes in, messages out. */
#include "mcp.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- framing */

void
mcp_lines_init (struct mcp_lines *l, size_t max)
{
  memset (l, 0, sizeof *l);
  l->max = max;
}

void
mcp_lines_free (struct mcp_lines *l)
{
  free (l->buf);
  memset (l, 0, sizeof *l);
}

int
mcp_lines_push (struct mcp_lines *l, const void *data, size_t n)
{
  const char *p = data;
  if (l->skipping)
    {
      /* The rest of a line already reported as too long. */
      const char *nl = memchr (p, '\n', n);
      if (nl == NULL)
        return 0;
      l->skipping = false;
      n -= (size_t) (nl + 1 - p);
      p = nl + 1;
    }
  if (l->start > 0)
    {
      memmove (l->buf, l->buf + l->start, l->len - l->start);
      l->len -= l->start;
      l->start = 0;
    }
  if (l->len + n > l->cap)
    {
      size_t cap = l->cap ? l->cap : 4096;
      while (cap < l->len + n)
        cap *= 2;
      char *b = realloc (l->buf, cap);
      if (b == NULL)
        return -1;
      l->buf = b;
      l->cap = cap;
    }
  if (n > 0)
    memcpy (l->buf + l->len, p, n);
  l->len += n;
  return 0;
}

static bool
is_blank (const char *s, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
      return false;
  return true;
}

int
mcp_lines_next (struct mcp_lines *l, bool eof, const char **line, size_t *len)
{
  for (;;)
    {
      size_t held = l->len - l->start;
      if (held == 0)
        return 0; /* BUF is NULL until a first byte comes */
      char *s = l->buf + l->start;
      char *nl = held > l->scanned ? memchr (s + l->scanned, '\n', held - l->scanned) : NULL;
      size_t n;
      if (nl)
        {
          n = (size_t) (nl - s);
          l->start += n + 1;
          l->scanned = 0;
        }
      else
        {
          l->scanned = held;
          if (held > l->max)
            {
              /* Drop what is held and the rest of the line when it comes. */
              l->len = l->start = l->scanned = 0;
              l->skipping = true;
              return MCP_LINE_TOO_LONG;
            }
          if (!eof || held == 0)
            return 0;
          n = held;
          l->start = l->len;
          l->scanned = 0;
        }
      if (n > l->max)
        return MCP_LINE_TOO_LONG;
      if (n > 0 && s[n - 1] == '\r')
        n--;
      /* Blank lines carry no message; skip them rather than call them
       * errors. */
      if (is_blank (s, n))
        continue;
      *line = s;
      *len = n;
      return 1;
    }
}

/* ---------------------------------------------------------------- parsing */

static void invalid (struct mcp_msg *msg, int code, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

static void
invalid (struct mcp_msg *msg, int code, const char *fmt, ...)
{
  va_list ap;
  msg->kind = MCP_MSG_INVALID;
  msg->code = code;
  va_start (ap, fmt);
  vsnprintf (msg->message, sizeof msg->message, fmt, ap);
  va_end (ap);
}

void
mcp_msg_parse (const char *data, size_t len, struct mcp_msg *msg)
{
  json_error_t jerr;
  memset (msg, 0, sizeof *msg);
  /* jansson rejects invalid UTF-8, a parse error as it should be. "\u0000"
   * is valid JSON (a file's content may hold NULs): it is allowed here, and
   * the tools refuse it where a C string is needed. */
  msg->doc = json_loadb (data, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
  if (msg->doc == NULL)
    {
      invalid (msg, MCP_PARSE_ERROR, "Parse error: %s (line %d, column %d)", jerr.text, jerr.line,
               jerr.column);
      return;
    }
  if (json_is_array (msg->doc))
    {
      invalid (msg, MCP_INVALID_REQUEST,
               "Invalid Request: batches are not supported; send one "
               "message per line");
      return;
    }
  if (!json_is_object (msg->doc))
    {
      invalid (msg, MCP_INVALID_REQUEST, "Invalid Request: a message must be a JSON object");
      return;
    }

  json_t *id = json_object_get (msg->doc, "id");
  json_t *version = json_object_get (msg->doc, "jsonrpc");
  json_t *method = json_object_get (msg->doc, "method");
  json_t *params = json_object_get (msg->doc, "params");
  /* MCP ids are strings or numbers, never null. An id that can't be echoed
   * makes the reply's id null, as JSON-RPC says. */
  if (id && !json_is_string (id) && !json_is_number (id))
    {
      invalid (msg, MCP_INVALID_REQUEST, "Invalid Request: id must be a string or a number");
      return;
    }
  msg->id = id;
  if (!json_is_string (version) || strcmp (json_string_value (version), "2.0") != 0)
    {
      invalid (msg, MCP_INVALID_REQUEST, "Invalid Request: \"jsonrpc\" must be \"2.0\"");
      return;
    }
  if (method == NULL)
    {
      if (id && (json_object_get (msg->doc, "result") || json_object_get (msg->doc, "error")))
        msg->kind = MCP_MSG_RESPONSE;
      else
        invalid (msg, MCP_INVALID_REQUEST, "Invalid Request: a request needs a \"method\"");
      return;
    }
  /* A NUL would cut the name: "ping\u0000junk" must not be read as ping. */
  if (!json_is_string (method)
      || strlen (json_string_value (method)) != json_string_length (method))
    {
      invalid (msg, MCP_INVALID_REQUEST,
               "Invalid Request: \"method\" must be a string without NUL characters");
      return;
    }
  msg->method = json_string_value (method);
  if (params && !json_is_object (params))
    {
      invalid (msg, MCP_INVALID_PARAMS, "Invalid params: \"params\" of %s must be an object",
               msg->method);
      if (id == NULL)
        msg->kind = MCP_MSG_NOTIFICATION; /* a notification is never answered */
      return;
    }
  msg->params = params;
  msg->kind = id ? MCP_MSG_REQUEST : MCP_MSG_NOTIFICATION;
}

void
mcp_msg_clear (struct mcp_msg *msg)
{
  json_decref (msg->doc);
  memset (msg, 0, sizeof *msg);
}

/* ---------------------------------------------------------------- replies */

static json_t *
envelope (json_t *id)
{
  return json_pack ("{s:s, s:O}", "jsonrpc", "2.0", "id", id ? id : json_null ());
}

json_t *
mcp_reply_result (json_t *id, json_t *result)
{
  json_t *r = result ? envelope (id) : NULL;
  if (r == NULL || json_object_set_new (r, "result", result) < 0)
    {
      json_decref (r);
      if (r == NULL)
        json_decref (result);
      return NULL;
    }
  return r;
}

json_t *
mcp_reply_error (json_t *id, int code, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  char *text = sbx_strdup_vprintf (fmt, ap);
  va_end (ap);
  json_t *r = envelope (id);
  /* Messages may quote what the client sent: keep them valid UTF-8. */
  char *clean = text ? sbx_utf8_sanitize_copy (text, strlen (text)) : NULL;
  json_t *err = clean ? json_pack ("{s:i, s:s}", "code", code, "message", clean) : NULL;
  free (text);
  free (clean);
  if (r == NULL || err == NULL || json_object_set_new (r, "error", err) < 0)
    {
      json_decref (r);
      return NULL;
    }
  return r;
}

char *
mcp_encode (json_t *msg, size_t *len)
{
  /* Compact: no raw newline can appear in it (strings are escaped), so a
   * message is one line of the stdio transport. UTF-8 as MCP expects: every
   * string in MSG is valid UTF-8 by construction. */
  char *s = msg ? json_dumps (msg, JSON_COMPACT) : NULL;
  json_decref (msg);
  if (s)
    *len = strlen (s);
  return s;
}
