/* Codec for the host <-> agent protocol (see proto.h). No I/O here. */
#include "proto.h"

#include <stdlib.h>
#include <string.h>

#define FRAME_PREFIX 4u
#define FIELD_HEADER 5u

static void
put_u32 (uint8_t *p, uint32_t v)
{
  p[0] = v >> 24;
  p[1] = v >> 16;
  p[2] = v >> 8;
  p[3] = v;
}

static uint32_t
get_u32 (const uint8_t *p)
{
  return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

void
sbx_buf_init (sbx_buf_t *b)
{
  memset (b, 0, sizeof *b);
}

void
sbx_buf_free (sbx_buf_t *b)
{
  free (b->data);
  sbx_buf_init (b);
}

void
sbx_buf_reset (sbx_buf_t *b)
{
  b->len = 0;
  b->frame_start = 0;
  b->failed = false;
}

static bool
buf_reserve (sbx_buf_t *b, size_t extra)
{
  if (b->failed)
    return false;
  if (extra > SIZE_MAX / 2 - b->len)
    {
      b->failed = true;
      return false;
    }
  size_t need = b->len + extra;
  if (need <= b->cap)
    return true;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < need)
    cap *= 2;
  uint8_t *p = realloc (b->data, cap);
  if (p == NULL)
    {
      b->failed = true;
      return false;
    }
  b->data = p;
  b->cap = cap;
  return true;
}

void
sbx_buf_append (sbx_buf_t *b, const void *data, size_t len)
{
  if (!buf_reserve (b, len))
    return;
  if (len)
    memcpy (b->data + b->len, data, len);
  b->len += len;
}

void
sbx_frame_begin (sbx_buf_t *b, uint8_t type)
{
  if (!buf_reserve (b, FRAME_PREFIX + 1))
    return;
  b->frame_start = b->len;
  b->len += FRAME_PREFIX;
  b->data[b->len++] = type;
}

void
sbx_frame_bytes (sbx_buf_t *b, uint8_t tag, const void *data, size_t len)
{
  if (len > SBX_PROTO_MAX_BODY)
    {
      b->failed = true;
      return;
    }
  if (!buf_reserve (b, FIELD_HEADER + len))
    return;
  b->data[b->len] = tag;
  put_u32 (b->data + b->len + 1, (uint32_t) len);
  b->len += FIELD_HEADER;
  if (len)
    memcpy (b->data + b->len, data, len);
  b->len += len;
}

void
sbx_frame_str (sbx_buf_t *b, uint8_t tag, const char *s)
{
  sbx_frame_bytes (b, tag, s, strlen (s));
}

void
sbx_frame_int (sbx_buf_t *b, uint8_t tag, int64_t v)
{
  uint8_t raw[8];
  uint64_t u = (uint64_t) v;
  for (int i = 7; i >= 0; i--, u >>= 8)
    raw[i] = (uint8_t) u;
  sbx_frame_bytes (b, tag, raw, sizeof raw);
}

int
sbx_frame_end (sbx_buf_t *b)
{
  if (b->failed)
    return -1;
  size_t body = b->len - b->frame_start - FRAME_PREFIX;
  if (body > SBX_PROTO_MAX_BODY)
    {
      b->failed = true;
      return -1;
    }
  put_u32 (b->data + b->frame_start, (uint32_t) body);
  return 0;
}

void
sbx_reader_init (sbx_reader_t *r)
{
  memset (r, 0, sizeof *r);
}

void
sbx_reader_free (sbx_reader_t *r)
{
  free (r->buf);
  sbx_reader_init (r);
}

uint8_t *
sbx_reader_space (sbx_reader_t *r, size_t want)
{
  if (r->pos > 0 && r->pos == r->len)
    r->pos = r->len = 0;
  /* Compact once consumed bytes dominate, so the buffer stays bounded by
     about one frame plus one feed. */
  if (r->pos > 0 && r->pos >= r->len - r->pos)
    {
      memmove (r->buf, r->buf + r->pos, r->len - r->pos);
      r->len -= r->pos;
      r->pos = 0;
    }
  if (want > SIZE_MAX / 2 - r->len)
    return NULL;
  /* A first call allocates even for no bytes: NULL means out of memory. */
  if (r->buf == NULL || r->len + want > r->cap)
    {
      size_t cap = r->cap ? r->cap : 4096;
      while (cap < r->len + want)
        cap *= 2;
      uint8_t *p = realloc (r->buf, cap);
      if (p == NULL)
        return NULL;
      r->buf = p;
      r->cap = cap;
    }
  return r->buf + r->len;
}

void
sbx_reader_commit (sbx_reader_t *r, size_t len)
{
  r->len += len;
}

int
sbx_reader_feed (sbx_reader_t *r, const void *data, size_t len)
{
  uint8_t *p = sbx_reader_space (r, len);
  if (p == NULL)
    return -1;
  if (len)
    memcpy (p, data, len);
  sbx_reader_commit (r, len);
  return 0;
}

static int
reader_fail (sbx_reader_t *r, const char *why)
{
  r->error = why;
  return -1;
}

int
sbx_reader_next (sbx_reader_t *r, sbx_msg_t *msg)
{
  if (r->error)
    return -1;
  size_t avail = r->len - r->pos;
  if (avail < FRAME_PREFIX)
    return 0;
  const uint8_t *p = r->buf + r->pos;
  uint32_t body = get_u32 (p);
  if (body == 0)
    return reader_fail (r, "empty frame");
  if (body > SBX_PROTO_MAX_BODY)
    return reader_fail (r, "frame larger than the protocol allows");
  if (avail - FRAME_PREFIX < body)
    return 0;

  const uint8_t *q = p + FRAME_PREFIX;
  const uint8_t *end = q + body;
  msg->type = *q++;
  msg->nfields = 0;
  while (q < end)
    {
      if ((size_t) (end - q) < FIELD_HEADER)
        return reader_fail (r, "truncated field header");
      if (msg->nfields == SBX_PROTO_MAX_FIELDS)
        return reader_fail (r, "too many fields in a frame");
      sbx_field_t *f = &msg->fields[msg->nfields++];
      f->tag = q[0];
      f->len = get_u32 (q + 1);
      q += FIELD_HEADER;
      if (f->len > (size_t) (end - q))
        return reader_fail (r, "field overruns its frame");
      f->data = q;
      q += f->len;
    }
  r->pos += FRAME_PREFIX + body;
  return 1;
}

const sbx_field_t *
sbx_msg_field (const sbx_msg_t *m, uint8_t tag)
{
  for (size_t i = 0; i < m->nfields; i++)
    if (m->fields[i].tag == tag)
      return &m->fields[i];
  return NULL;
}

int
sbx_msg_int (const sbx_msg_t *m, uint8_t tag, int64_t *v)
{
  const sbx_field_t *f = sbx_msg_field (m, tag);
  if (f == NULL || f->len != 8)
    return -1;
  uint64_t u = 0;
  for (int i = 0; i < 8; i++)
    u = u << 8 | f->data[i];
  *v = (int64_t) u;
  return 0;
}

int
sbx_msg_int_or (const sbx_msg_t *m, uint8_t tag, int64_t deflt, int64_t *v)
{
  if (sbx_msg_field (m, tag) == NULL)
    {
      *v = deflt;
      return 0;
    }
  return sbx_msg_int (m, tag, v);
}

char *
sbx_msg_strdup (const sbx_msg_t *m, uint8_t tag, size_t max)
{
  return sbx_field_strdup (sbx_msg_field (m, tag), max);
}

char *
sbx_field_strdup (const sbx_field_t *f, size_t max)
{
  if (f == NULL || f->len > max || memchr (f->data, 0, f->len) != NULL)
    return NULL;
  char *s = malloc (f->len + 1);
  if (s == NULL)
    return NULL;
  memcpy (s, f->data, f->len);
  s[f->len] = '\0';
  return s;
}
