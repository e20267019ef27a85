/* Unit tests for the wire codec (src/common/proto.c), fed with raw bytes. */
#include "proto.h"
#include "tap.h"

#include <stdint.h>

/* Appends a raw frame: big-endian length prefix, then BODY. */
static void
raw_frame (sbx_buf_t *b, uint32_t len_prefix, const void *body, size_t n)
{
  uint8_t p[4] = { len_prefix >> 24, len_prefix >> 16, len_prefix >> 8, len_prefix };
  sbx_buf_append (b, p, 4);
  sbx_buf_append (b, body, n);
}

/* A reader fed with all of B at once; the next message lands in *M. */
static int
parse_all (sbx_reader_t *r, const sbx_buf_t *b, sbx_msg_t *m)
{
  sbx_reader_init (r);
  if (sbx_reader_feed (r, b->data, b->len) < 0)
    return -2;
  return sbx_reader_next (r, m);
}

static void
test_round_trip (void)
{
  sbx_buf_t b;
  sbx_buf_init (&b);
  static const uint8_t bin[] = { 0, 1, 2, 0xff, '\n', 0 };
  sbx_frame_begin (&b, SBX_M_EXEC);
  sbx_frame_str (&b, SBX_T_COMMAND, "echo hi");
  sbx_frame_bytes (&b, SBX_T_DATA, bin, sizeof bin);
  sbx_frame_bytes (&b, SBX_T_PATH, NULL, 0);
  sbx_frame_int (&b, SBX_T_TIMEOUT_MS, 0);
  sbx_frame_int (&b, SBX_T_SIZE, INT64_MAX);
  sbx_frame_int (&b, SBX_T_OFFSET, INT64_MIN);
  sbx_frame_int (&b, SBX_T_COUNT, -1);
  sbx_frame_int (&b, SBX_T_LIMIT, 0x0102030405060708);
  sbx_frame_str (&b, SBX_T_ENV, "A=1");
  sbx_frame_str (&b, SBX_T_ENV, "B=2");
  ok (sbx_frame_end (&b) == 0 && !b.failed, "frame built");

  sbx_reader_t r;
  sbx_msg_t m;
  is_int (parse_all (&r, &b, &m), 1, "one message parsed");
  is_int (m.type, SBX_M_EXEC, "type kept");
  is_int (m.nfields, 10, "all fields present");
  char *cmd = sbx_msg_strdup (&m, SBX_T_COMMAND, 100);
  is_str (cmd, "echo hi", "string field");
  free (cmd);
  const sbx_field_t *f = sbx_msg_field (&m, SBX_T_DATA);
  ok (f && f->len == sizeof bin && memcmp (f->data, bin, sizeof bin) == 0, "binary field");
  f = sbx_msg_field (&m, SBX_T_PATH);
  ok (f && f->len == 0, "empty field");
  char *empty = sbx_msg_strdup (&m, SBX_T_PATH, 0);
  is_str (empty, "", "empty string field");
  free (empty);
  int64_t v;
  ok (sbx_msg_int (&m, SBX_T_TIMEOUT_MS, &v) == 0 && v == 0, "int 0");
  ok (sbx_msg_int (&m, SBX_T_SIZE, &v) == 0 && v == INT64_MAX, "int max");
  ok (sbx_msg_int (&m, SBX_T_OFFSET, &v) == 0 && v == INT64_MIN, "int min");
  ok (sbx_msg_int (&m, SBX_T_COUNT, &v) == 0 && v == -1, "int -1");
  ok (sbx_msg_int (&m, SBX_T_LIMIT, &v) == 0 && v == 0x0102030405060708, "int byte order");
  ok (sbx_msg_int (&m, SBX_T_COMMAND, &v) == -1, "a 7-byte field is not an int");
  ok (sbx_msg_int (&m, SBX_T_PID, &v) == -1, "an absent int is an error");
  ok (sbx_msg_int_or (&m, SBX_T_PID, 42, &v) == 0 && v == 42, "int_or: default when absent");
  ok (sbx_msg_int_or (&m, SBX_T_DATA, 42, &v) == -1, "int_or: malformed is still an error");
  int envs = 0;
  for (size_t i = 0; i < m.nfields; i++)
    if (m.fields[i].tag == SBX_T_ENV)
      {
        char *e = sbx_field_strdup (&m.fields[i], 16);
        envs += e && strcmp (e, envs ? "B=2" : "A=1") == 0;
        free (e);
      }
  is_int (envs, 2, "repeated tags kept in order");
  is_int (sbx_reader_next (&r, &m), 0, "nothing more");
  sbx_reader_free (&r);
  sbx_buf_free (&b);
}

static void
test_strdup_limits (void)
{
  sbx_buf_t b;
  sbx_buf_init (&b);
  sbx_frame_begin (&b, SBX_M_STAT);
  sbx_frame_bytes (&b, SBX_T_PATH, "/a\0b", 4);
  sbx_frame_str (&b, SBX_T_NAME, "abcdef");
  sbx_frame_end (&b);
  sbx_reader_t r;
  sbx_msg_t m;
  is_int (parse_all (&r, &b, &m), 1, "parsed");
  ok (sbx_msg_strdup (&m, SBX_T_PATH, 100) == NULL, "strdup rejects an embedded NUL");
  ok (sbx_msg_strdup (&m, SBX_T_NAME, 5) == NULL, "strdup rejects a field over MAX");
  char *s = sbx_msg_strdup (&m, SBX_T_NAME, 6);
  is_str (s, "abcdef", "strdup accepts exactly MAX");
  free (s);
  ok (sbx_msg_strdup (&m, SBX_T_CWD, 100) == NULL, "strdup of an absent field");
  ok (sbx_field_strdup (NULL, 100) == NULL, "field_strdup (NULL)");
  sbx_reader_free (&r);
  sbx_buf_free (&b);
}

static void
test_byte_by_byte (void)
{
  sbx_buf_t b;
  sbx_buf_init (&b);
  sbx_frame_begin (&b, SBX_M_OUTPUT);
  sbx_frame_int (&b, SBX_T_STREAM, 2);
  sbx_frame_str (&b, SBX_T_DATA, "hello");
  sbx_frame_end (&b);
  sbx_reader_t r;
  sbx_msg_t m;
  sbx_reader_init (&r);
  int early = 0, got = 0;
  for (size_t i = 0; i < b.len; i++)
    {
      sbx_reader_feed (&r, b.data + i, 1);
      int n = sbx_reader_next (&r, &m);
      if (i + 1 < b.len)
        early += n != 0;
      else
        got = n;
    }
  is_int (early, 0, "no message before the last byte");
  is_int (got, 1, "message after the last byte");
  int64_t stream;
  const sbx_field_t *f = sbx_msg_field (&m, SBX_T_DATA);
  ok (sbx_msg_int (&m, SBX_T_STREAM, &stream) == 0 && stream == 2 && f && f->len == 5
          && memcmp (f->data, "hello", 5) == 0,
      "fields intact");
  sbx_reader_free (&r);
  sbx_buf_free (&b);
}

static void
test_several_frames (void)
{
  sbx_buf_t b;
  sbx_buf_init (&b);
  for (int i = 0; i < 3; i++)
    {
      sbx_frame_begin (&b, SBX_M_ENTRY);
      sbx_frame_int (&b, SBX_T_SIZE, i);
      sbx_frame_end (&b);
    }
  sbx_frame_begin (&b, SBX_M_END);
  sbx_frame_end (&b);
  sbx_reader_t r;
  sbx_msg_t m;
  sbx_reader_init (&r);
  sbx_reader_feed (&r, b.data, b.len);
  int seen = 0;
  int64_t v;
  for (int i = 0; i < 3; i++)
    seen += sbx_reader_next (&r, &m) == 1 && m.type == SBX_M_ENTRY
            && sbx_msg_int (&m, SBX_T_SIZE, &v) == 0 && v == i;
  is_int (seen, 3, "three entries from one feed, in order");
  ok (sbx_reader_next (&r, &m) == 1 && m.type == SBX_M_END && m.nfields == 0,
      "a frame with a type and no fields");
  is_int (sbx_reader_next (&r, &m), 0, "then nothing");
  sbx_reader_free (&r);
  sbx_buf_free (&b);
}

static void
test_bounded_buffer (void)
{
  /* Feeding and consuming many frames keeps the buffer small. */
  sbx_buf_t b;
  sbx_buf_init (&b);
  sbx_frame_begin (&b, SBX_M_DATA);
  sbx_frame_bytes (&b, SBX_T_DATA, "0123456789", 10);
  sbx_frame_end (&b);
  sbx_reader_t r;
  sbx_msg_t m;
  sbx_reader_init (&r);
  int got = 0;
  for (int i = 0; i < 10000; i++)
    {
      sbx_reader_feed (&r, b.data, b.len);
      got += sbx_reader_next (&r, &m) == 1;
    }
  is_int (got, 10000, "10000 frames read");
  ok (r.cap <= 8192, "reader buffer stayed small (%zu bytes)", r.cap);
  sbx_reader_free (&r);
  sbx_buf_free (&b);
}

static void
test_invalid_streams (void)
{
  sbx_buf_t b;
  sbx_reader_t r;
  sbx_msg_t m;

  sbx_buf_init (&b);
  raw_frame (&b, SBX_PROTO_MAX_BODY + 1, "", 0);
  is_int (parse_all (&r, &b, &m), -1, "oversized length prefix is rejected at once");
  ok (r.error && strstr (r.error, "larger"), "with an error (%s)", r.error ? r.error : "");
  sbx_reader_feed (&r, "\0\0\0\1\1", 5);
  is_int (sbx_reader_next (&r, &m), -1, "and the stream stays invalid");
  sbx_reader_free (&r);
  sbx_buf_free (&b);

  sbx_buf_init (&b);
  raw_frame (&b, 0xffffffff, "", 0);
  is_int (parse_all (&r, &b, &m), -1, "length 0xffffffff rejected");
  sbx_reader_free (&r);
  sbx_buf_free (&b);

  sbx_buf_init (&b);
  raw_frame (&b, 0, "", 0);
  is_int (parse_all (&r, &b, &m), -1, "zero-length body rejected");
  ok (r.error != NULL, "with an error (%s)", r.error ? r.error : "");
  sbx_reader_free (&r);
  sbx_buf_free (&b);

  /* A field claims 100 bytes in an 8-byte body. */
  sbx_buf_init (&b);
  static const uint8_t overrun[] = { SBX_M_STAT, SBX_T_PATH, 0, 0, 0, 100, 'a', 'b' };
  raw_frame (&b, sizeof overrun, overrun, sizeof overrun);
  is_int (parse_all (&r, &b, &m), -1, "field overrunning its frame rejected");
  ok (r.error && strstr (r.error, "overrun"), "with an error");
  diag ("reader error: %s", r.error ? r.error : "(none)");
  sbx_reader_free (&r);
  sbx_buf_free (&b);

  /* A field header cut short by the end of the body. */
  sbx_buf_init (&b);
  static const uint8_t cut[] = { SBX_M_STAT, SBX_T_PATH, 0, 0 };
  raw_frame (&b, sizeof cut, cut, sizeof cut);
  is_int (parse_all (&r, &b, &m), -1, "truncated field header rejected");
  sbx_reader_free (&r);
  sbx_buf_free (&b);

  /* Fields: 64 are fine, 65 are too many. */
  for (int n = SBX_PROTO_MAX_FIELDS; n <= SBX_PROTO_MAX_FIELDS + 1; n++)
    {
      sbx_buf_init (&b);
      sbx_frame_begin (&b, SBX_M_EXEC);
      for (int i = 0; i < n; i++)
        sbx_frame_str (&b, SBX_T_ENV, "A=1");
      sbx_frame_end (&b);
      int res = parse_all (&r, &b, &m);
      if (n == SBX_PROTO_MAX_FIELDS)
        ok (res == 1 && m.nfields == (size_t) n, "%d fields accepted", n);
      else
        ok (res == -1 && r.error && strstr (r.error, "too many"), "%d fields rejected", n);
      sbx_reader_free (&r);
      sbx_buf_free (&b);
    }
}

static void
test_frame_limits (void)
{
  sbx_buf_t b;
  sbx_buf_init (&b);
  static uint8_t big[SBX_PROTO_MAX_BODY];

  /* type byte + field header + payload = exactly the maximum body */
  sbx_frame_begin (&b, SBX_M_DATA);
  sbx_frame_bytes (&b, SBX_T_DATA, big, SBX_PROTO_MAX_BODY - 6);
  is_int (sbx_frame_end (&b), 0, "a body of exactly SBX_PROTO_MAX_BODY is allowed");
  sbx_reader_t r;
  sbx_msg_t m;
  is_int (parse_all (&r, &b, &m), 1, "and read back");
  sbx_reader_free (&r);

  sbx_buf_reset (&b);
  sbx_frame_begin (&b, SBX_M_DATA);
  sbx_frame_bytes (&b, SBX_T_DATA, big, SBX_PROTO_MAX_BODY - 5);
  is_int (sbx_frame_end (&b), -1, "one byte more is refused");
  ok (b.failed, "and the buffer is marked failed");
  sbx_frame_begin (&b, SBX_M_END);
  is_int (sbx_frame_end (&b), -1, "failure is sticky until reset");
  sbx_buf_reset (&b);
  ok (!b.failed && b.len == 0, "reset clears it");

  sbx_frame_begin (&b, SBX_M_DATA);
  sbx_frame_bytes (&b, SBX_T_DATA, big, SBX_PROTO_MAX_BODY + 1);
  ok (b.failed, "a single field over the limit fails at once");
  sbx_buf_free (&b);
}

/* Receiving in place (sbx_reader_space + commit), as the host does, in
 * pieces that cut a frame and leave consumed bytes to compact. */
static void
test_space_commit (void)
{
  sbx_buf_t b;
  sbx_buf_init (&b);
  for (int i = 0; i < 3; i++)
    {
      sbx_frame_begin (&b, SBX_M_OUTPUT);
      sbx_frame_int (&b, SBX_T_STREAM, i);
      sbx_frame_str (&b, SBX_T_DATA, "in place");
      sbx_frame_end (&b);
    }
  sbx_reader_t r;
  sbx_msg_t m;
  sbx_reader_init (&r);
  size_t fed = 0, got = 0;
  int64_t sum = 0, stream;
  bool space_ok = true;
  while (fed < b.len)
    {
      size_t n = b.len - fed < 7 ? b.len - fed : 7;
      uint8_t *p = sbx_reader_space (&r, 65536);
      space_ok = space_ok && p != NULL;
      if (p == NULL)
        break;
      memcpy (p, b.data + fed, n);
      sbx_reader_commit (&r, n);
      fed += n;
      while (sbx_reader_next (&r, &m) == 1)
        {
          const sbx_field_t *f = sbx_msg_field (&m, SBX_T_DATA);
          if (sbx_msg_int (&m, SBX_T_STREAM, &stream) == 0 && f && f->len == 8
              && memcmp (f->data, "in place", 8) == 0)
            got++, sum += stream;
        }
    }
  ok (space_ok, "room to receive into, each time");
  is_int ((int) got, 3, "three messages received in place, 7 bytes at a time");
  is_int ((int) sum, 0 + 1 + 2, "in order");
  ok (r.cap <= 2 * 65536 + 4096, "the buffer stays bounded (%zu bytes)", r.cap);
  sbx_reader_free (&r);
  sbx_buf_free (&b);
}

/* Found by fuzz_proto: a reader that never held a byte answered a feed of
 * none, or room for none, as if out of memory. */
static void
test_empty_feed (void)
{
  sbx_reader_t r;
  sbx_msg_t m;
  sbx_reader_init (&r);
  is_int (sbx_reader_feed (&r, "", 0), 0, "a new reader takes a feed of no bytes");
  is_int (sbx_reader_next (&r, &m), 0, "  and wants more");
  sbx_reader_free (&r);
  sbx_reader_init (&r);
  ok (sbx_reader_space (&r, 0) != NULL, "a new reader has room for no bytes");
  sbx_reader_commit (&r, 0);
  is_int (sbx_reader_next (&r, &m), 0, "  and wants more");
  sbx_reader_free (&r);
}

int
main (void)
{
  test_round_trip ();
  test_empty_feed ();
  test_space_commit ();
  test_strdup_limits ();
  test_byte_by_byte ();
  test_several_frames ();
  test_bounded_buffer ();
  test_invalid_streams ();
  test_frame_limits ();
  return done_testing ();
}
