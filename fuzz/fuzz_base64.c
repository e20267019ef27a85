/* libFuzzer target for the base64 codec (src/common/base64.c) and sbxd's
 * read format (src/sbxd/text.c), both fed bytes a client or a sandbox
 * controls.
 *
 * base64: a text that decodes must be the encoding of what it decodes to
 * (the decoder is strict: one text per byte string); any bytes encode,
 * and decode back to themselves.
 * JSON's shape: a text within its bounds parses into no more values.
 * read: the input's first 2 bytes are the offset and the limit; the answer
 * is valid UTF-8 without NUL, and no longer than the input (plus the
 * replacement characters and the hint). */
#include "check.h"
#include "base64.h"
#include "text.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
valid_utf8 (const unsigned char *s, size_t n)
{
  for (size_t i = 0; i < n;)
    {
      unsigned char c = s[i];
      size_t len = c < 0x80             ? 1
                   : (c & 0xe0) == 0xc0 ? 2
                   : (c & 0xf0) == 0xe0 ? 3
                   : (c & 0xf8) == 0xf0 ? 4
                                        : 0;
      if (len == 0 || i + len > n || c == 0)
        return 0;
      for (size_t k = 1; k < len; k++)
        if ((s[i + k] & 0xc0) != 0x80)
          return 0;
      i += len;
    }
  return 1;
}

/* Arrays, objects and their members or elements in DOC: at most twice what
 * the scan counts (its brackets and commas). */
static size_t
count_values (json_t *doc)
{
  size_t n = 0;
  size_t i;
  const char *key;
  json_t *v;
  if (json_is_array (doc))
    json_array_foreach (doc, i, v)
      n += 1 + count_values (v);
  else if (json_is_object (doc))
    json_object_foreach (doc, key, v)
      n += 1 + count_values (v);
  return n + (json_is_array (doc) || json_is_object (doc));
}

int LLVMFuzzerTestOneInput (const unsigned char *data, size_t size);

int
LLVMFuzzerTestOneInput (const unsigned char *data, size_t size)
{
  unsigned char *dec = NULL;
  size_t len = 0;
  const char *why = NULL;
  int r = sbx_base64_decode ((const char *) data, size, &dec, &len, &why);
  CHECK (r == 0 || (r == -1 && why && dec == NULL));
  if (r == 0)
    {
      char *enc = sbx_base64_encode (dec, len);
      CHECK (enc && strlen (enc) == size && memcmp (enc, data, size) == 0);
      free (enc);
      free (dec);
    }
  char *enc = sbx_base64_encode (data, size);
  CHECK (enc != NULL);
  CHECK (sbx_base64_decode (enc, strlen (enc), &dec, &len, &why) == 0 && len == size
         && memcmp (dec, data, size) == 0);
  free (enc);
  free (dec);

  if (size >= 2)
    {
      char *text = sbxd_read_format ((const char *) data + 2, size - 2, data[0], data[1] + 1);
      CHECK (text != NULL);
      size_t n = strlen (text);
      CHECK (valid_utf8 ((const unsigned char *) text, n));
      CHECK (n <= 3 * (size - 2) + 80);
      free (text);
    }

  /* A shape within bounds parses into no more values than it allows. */
  if (sbxd_json_shape_ok ((const char *) data, size, 64, 8))
    {
      json_t *doc = json_loadb ((const char *) data, size, JSON_DECODE_ANY, NULL);
      CHECK (doc == NULL || count_values (doc) <= 2 * 64);
      json_decref (doc);
    }
  CHECK (sbxd_json_shape_ok ((const char *) data, size, SIZE_MAX, SIZE_MAX));
  return 0;
}
