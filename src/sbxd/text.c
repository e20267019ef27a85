/* What sandboxd's read answers, made from a file's bytes, and the shape
 * of a request's JSON, checked before it is parsed: pure, so that the
 * routes on a sandbox and on a workspace share them, and fuzzed. */
#include "text.h"

#include "helpers.h"
#include "sbx.h"

#include <string.h>

char *
sbxd_read_format (const char *data, size_t len, int64_t offset, int64_t limit)
{
  /* Lines as Python's splitlines() on "\n" ends: a final newline ends the
   * last line rather than starting an empty one. */
  size_t total = 0;
  for (size_t i = 0; i < len; i++)
    if (data[i] == '\n')
      total++;
  if (len > 0 && data[len - 1] != '\n')
    total++;
  if (total == 0)
    return strdup ("");
  if ((uint64_t) offset >= total)
    return strdup ("[End of file]");
  size_t line = 0, start = 0, pos = 0;
  while (line < (size_t) offset)
    if (data[pos++] == '\n')
      line++;
  start = pos;
  size_t end_line = (uint64_t) limit > total - (size_t) offset ? total
                                                               : (size_t) offset + (size_t) limit;
  while (line < end_line && pos < len)
    {
      const char *nl = memchr (data + pos, '\n', len - pos);
      pos = nl ? (size_t) (nl - data) + 1 : len;
      line++;
    }
  size_t stop = pos > start && data[pos - 1] == '\n' ? pos - 1 : pos;
  char *slice = sbx_utf8_sanitize_copy (data + start, stop - start);
  if (slice == NULL || end_line >= total)
    return slice;
  char *out = sbx_strdup_printf ("%s\n\n[... %zu more lines. Use offset=%zu to read more.]", slice,
                                 total - end_line, end_line);
  free (slice);
  return out;
}

bool
sbxd_json_shape_ok (const char *body, size_t len, size_t max_values, size_t max_depth)
{
  size_t values = 0, depth = 0;
  for (size_t i = 0; i < len; i++)
    switch (body[i])
      {
      case '"':
        /* A string: to its closing quote, escapes skipped. */
        for (i++; i < len && body[i] != '"'; i++)
          if (body[i] == '\\')
            i++;
        break;
      case '[':
      case '{':
        if (++depth > max_depth)
          return false;
        /* fall through */
      case ',':
        if (++values > max_values)
          return false;
        break;
      case ']':
      case '}':
        if (depth > 0)
          depth--;
        break;
      default:
        break;
      }
  return true;
}
