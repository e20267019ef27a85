/* Small helpers: UTF-8 sanitising, formatting, clocks. */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* Length of the valid UTF-8 sequence at S (at most N bytes), or 0. */
static size_t
utf8_seq_len (const unsigned char *s, size_t n)
{
  unsigned char c = s[0];
  size_t len;
  uint32_t cp;
  if (c < 0x80)
    return 1;
  if (c >= 0xc2 && c <= 0xdf)
    len = 2, cp = c & 0x1f;
  else if (c >= 0xe0 && c <= 0xef)
    len = 3, cp = c & 0x0f;
  else if (c >= 0xf0 && c <= 0xf4)
    len = 4, cp = c & 0x07;
  else
    return 0;
  if (n < len)
    return 0;
  for (size_t i = 1; i < len; i++)
    {
      if ((s[i] & 0xc0) != 0x80)
        return 0;
      cp = cp << 6 | (s[i] & 0x3f);
    }
  /* Overlong forms, surrogates, and beyond U+10FFFF are invalid. */
  if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff))
      || (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  return len;
}

bool
sbx_utf8_valid (const char *s, size_t n)
{
  const unsigned char *p = (const unsigned char *) s;
  for (size_t i = 0; i < n;)
    {
      size_t l = utf8_seq_len (p + i, n - i);
      if (l == 0)
        return false;
      i += l;
    }
  return true;
}

/* The copy both sanitisers make; REPLACE_NUL also turns NULs into U+FFFD so
 * that the result is a C string holding all of the input. */
static char *
sanitize (const char *s, size_t n, bool replace_nul)
{
  const unsigned char *p = (const unsigned char *) s;
  /* Each invalid byte becomes 3 bytes at most. */
  if (n > (SIZE_MAX - 1) / 3)
    return NULL;
  char *out = malloc (n * 3 + 1);
  if (out == NULL)
    return NULL;
  size_t o = 0;
  for (size_t i = 0; i < n;)
    {
      size_t l = replace_nul && p[i] == 0 ? 0 : utf8_seq_len (p + i, n - i);
      if (l == 0)
        {
          memcpy (out + o, "\xef\xbf\xbd", 3);
          o += 3;
          i++;
          continue;
        }
      memcpy (out + o, p + i, l);
      o += l;
      i += l;
    }
  out[o] = '\0';
  return out;
}

char *
sbx_utf8_sanitize (const char *s, size_t n)
{
  return sanitize (s, n, false);
}

SBX_EXPORT char *
sbx_utf8_sanitize_copy (const char *s, size_t n)
{
  return sanitize (s, n, true);
}

char *
sbx_random_id (const char *prefix, size_t bytes)
{
  unsigned char r[32];
  if (bytes > sizeof r || getrandom (r, bytes, 0) != (ssize_t) bytes)
    return NULL;
  size_t n = strlen (prefix);
  char *id = malloc (n + 2 * bytes + 1);
  if (id == NULL)
    return NULL;
  memcpy (id, prefix, n);
  for (size_t i = 0; i < bytes; i++)
    snprintf (id + n + 2 * i, 3, "%02x", r[i]);
  return id;
}
