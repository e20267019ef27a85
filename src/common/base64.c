#include "base64.h"

#include <stdint.h>
#include <stdlib.h>

static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *
sbx_base64_encode (const void *data, size_t n)
{
  const unsigned char *s = data;
  if (n > (SIZE_MAX - 1) / 4 * 3 - 2)
    return NULL;
  char *out = malloc ((n + 2) / 3 * 4 + 1), *o = out;
  if (out == NULL)
    return NULL;
  for (size_t i = 0; i < n; i += 3)
    {
      uint32_t v = (uint32_t) s[i] << 16 | (i + 1 < n ? (uint32_t) s[i + 1] << 8 : 0)
                   | (i + 2 < n ? s[i + 2] : 0);
      *o++ = digits[v >> 18 & 63];
      *o++ = digits[v >> 12 & 63];
      *o++ = i + 1 < n ? digits[v >> 6 & 63] : '=';
      *o++ = i + 2 < n ? digits[v & 63] : '=';
    }
  *o = '\0';
  return out;
}

static int
digit_value (unsigned char c)
{
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '+')
    return 62;
  if (c == '/')
    return 63;
  return -1;
}

int
sbx_base64_decode (const char *text, size_t len, unsigned char **out, size_t *out_len,
                   const char **why)
{
  *out = NULL;
  *out_len = 0;
  if (len % 4 != 0)
    {
      *why = "its length is not a multiple of 4";
      return -1;
    }
  size_t pad = len >= 1 && text[len - 1] == '=' ? (len >= 2 && text[len - 2] == '=' ? 2 : 1) : 0;
  unsigned char *buf = malloc (len / 4 * 3 + 1);
  if (buf == NULL)
    return -2;
  size_t o = 0;
  for (size_t i = 0; i < len; i += 4)
    {
      bool last = i + 4 == len;
      size_t data_chars = last ? 4 - pad : 4;
      uint32_t v = 0;
      for (size_t k = 0; k < 4; k++)
        {
          int d = k < data_chars ? digit_value ((unsigned char) text[i + k]) : 0;
          if (d < 0)
            {
              free (buf);
              *why = text[i + k] == '=' ? "it has padding before its end"
                                        : "it holds a character outside the base64 alphabet";
              return -1;
            }
          v = v << 6 | (uint32_t) d;
        }
      /* Bits past the data must be zero: "QQ==" and "QR==" may not both mean "A". */
      if ((data_chars == 2 && (v & 0xffff)) || (data_chars == 3 && (v & 0xff)))
        {
          free (buf);
          *why = "its last character has bits set past the data";
          return -1;
        }
      buf[o++] = (unsigned char) (v >> 16);
      if (data_chars > 2)
        buf[o++] = (unsigned char) (v >> 8);
      if (data_chars > 3)
        buf[o++] = (unsigned char) v;
    }
  buf[o] = '\0';
  *out = buf;
  *out_len = o;
  return 0;
}
