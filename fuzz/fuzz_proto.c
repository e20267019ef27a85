/* libFuzzer target for the agent wire codec (src/common/proto.c).
 *
 * The stream is read twice: fed at once, and fed in pieces (with
 * sbx_reader_feed, or sbx_reader_space + sbx_reader_commit). Both must give
 * the same messages and the same verdict, and every message must encode back
 * (sbx_frame_*) to the very bytes it was read from. Every field accessor is
 * checked against the fields on every message.
 *
 * Input: 4 bytes of piece sizes, used in turn (0: all that is left), 1 byte
 * of options, then the stream. */
#include "check.h"
#include "proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HEADER 5
#define OPT_SPACE 0x01     /* pieces go through space + commit */
#define OPT_WANT_MORE 0x02 /* and ask for more room than they fill */

static void
check_strdup (const sbx_field_t *f, size_t max, const char *s)
{
  if (f == NULL || f->len > max || memchr (f->data, 0, f->len) != NULL)
    {
      CHECK (s == NULL);
      return;
    }
  CHECK (s != NULL && strlen (s) == f->len && memcmp (s, f->data, f->len) == 0);
}

/* TAG through every accessor; MAX bounds the strings. */
static void
check_tag (const sbx_msg_t *m, uint8_t tag, size_t max)
{
  const sbx_field_t *first = NULL;
  for (size_t i = 0; i < m->nfields && first == NULL; i++)
    if (m->fields[i].tag == tag)
      first = &m->fields[i];
  const sbx_field_t *f = sbx_msg_field (m, tag);
  CHECK (f == first);

  int64_t v = 7, want = 0;
  int r = sbx_msg_int (m, tag, &v);
  CHECK ((r == 0) == (f != NULL && f->len == 8));
  if (r == 0)
    {
      uint64_t u = 0;
      for (int i = 0; i < 8; i++)
        u = u << 8 | f->data[i];
      want = (int64_t) u;
      CHECK (v == want);
    }
  v = 7;
  int r2 = sbx_msg_int_or (m, tag, 42, &v);
  CHECK (f == NULL ? r2 == 0 && v == 42 : r2 == r && (r < 0 || v == want));

  char *s = sbx_msg_strdup (m, tag, max);
  check_strdup (f, max, s);
  free (s);
}

/* Checks M's accessors and appends M, encoded again, to OUT. */
static void
take (const sbx_msg_t *m, size_t max, uint8_t absent, sbx_buf_t *out)
{
  CHECK (m->nfields <= SBX_PROTO_MAX_FIELDS);
  sbx_frame_begin (out, m->type);
  for (size_t i = 0; i < m->nfields; i++)
    {
      const sbx_field_t *f = &m->fields[i];
      sbx_frame_bytes (out, f->tag, f->data, f->len);
      check_tag (m, f->tag, max);
      char *s = sbx_field_strdup (f, SIZE_MAX);
      check_strdup (f, SIZE_MAX, s);
      free (s);
    }
  check_tag (m, absent, max);
  CHECK (sbx_field_strdup (NULL, SIZE_MAX) == NULL);
  CHECK (sbx_frame_end (out) == 0);
}

/* Reads every whole message held; returns the last sbx_reader_next. */
static int
drain (sbx_reader_t *r, size_t max, uint8_t absent, sbx_buf_t *out)
{
  sbx_msg_t m;
  int k;
  while ((k = sbx_reader_next (r, &m)) == 1)
    take (&m, max, absent, out);
  CHECK (k == 0 || (k == -1 && r->error != NULL));
  return k;
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  if (size < HEADER)
    return -1;
  const uint8_t *pieces = data, opts = data[4];
  const uint8_t *stream = data + HEADER;
  size_t n = size - HEADER;
  /* Limits around the lengths the stream holds, and none. */
  size_t max = opts >> 2 == 63 ? SIZE_MAX : (size_t) (opts >> 2) * 3;
  uint8_t absent = opts ^ 0x5a;

  sbx_buf_t whole_out, piece_out;
  sbx_buf_init (&whole_out);
  sbx_buf_init (&piece_out);

  sbx_reader_t whole;
  sbx_reader_init (&whole);
  CHECK (sbx_reader_feed (&whole, stream, n) == 0);
  int whole_k = drain (&whole, max, absent, &whole_out);
  /* What was read is exactly the frames taken. */
  CHECK (whole_out.len == whole.pos
         && (whole.pos == 0 || memcmp (whole_out.data, stream, whole.pos) == 0));
  if (whole_k < 0)
    CHECK (sbx_reader_next (&whole, &(sbx_msg_t){ 0 }) == -1);

  sbx_reader_t r;
  sbx_reader_init (&r);
  int k = 0;
  for (size_t off = 0, i = 0; off < n && k >= 0; i++)
    {
      size_t len = pieces[i % 4] ? pieces[i % 4] : n - off;
      if (len > n - off)
        len = n - off;
      if (opts & OPT_SPACE)
        {
          size_t want = len + (opts & OPT_WANT_MORE ? pieces[(i + 1) % 4] : 0);
          uint8_t *p = sbx_reader_space (&r, want);
          CHECK (p != NULL);
          memcpy (p, stream + off, len);
          sbx_reader_commit (&r, len);
        }
      else
        CHECK (sbx_reader_feed (&r, stream + off, len) == 0);
      off += len;
      k = drain (&r, max, absent, &piece_out);
    }
  if (n == 0)
    k = drain (&r, max, absent, &piece_out);
  CHECK (k == whole_k && r.error == whole.error);
  CHECK (piece_out.len == whole_out.len
         && (piece_out.len == 0 || memcmp (piece_out.data, whole_out.data, piece_out.len) == 0));

  sbx_reader_free (&r);
  sbx_reader_free (&whole);
  sbx_buf_free (&whole_out);
  sbx_buf_free (&piece_out);
  return 0;
}
