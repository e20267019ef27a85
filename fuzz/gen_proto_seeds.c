/* Writes the seed corpus of fuzz_proto (fuzz/corpus/proto/), built with the
 * codec's own encoder so that valid frames are exactly what the wire holds.
 * Run once, when the protocol changes:
 *
 *   cc -Isrc/common -o /tmp/gen fuzz/gen_proto_seeds.c src/common/proto.c
 *   /tmp/gen fuzz/corpus/proto
 *
 * Each seed is fuzz_proto's input: 4 bytes of piece sizes, 1 byte of
 * options, then the stream. */
#include "proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *dir;

static void
seed (const char *name, const char *pieces, uint8_t opts, const sbx_buf_t *b)
{
  char path[512];
  snprintf (path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen (path, "wb");
  if (f == NULL || fwrite (pieces, 1, 4, f) != 4 || fputc (opts, f) == EOF
      || (b->len && fwrite (b->data, 1, b->len, f) != b->len) || fclose (f) != 0)
    {
      perror (path);
      exit (1);
    }
}

/* The bytes of a frame prefix or field header, raw. */
static void
raw_u32 (sbx_buf_t *b, uint32_t v)
{
  uint8_t p[4] = { v >> 24, v >> 16, v >> 8, v };
  sbx_buf_append (b, p, 4);
}

int
main (int argc, char **argv)
{
  if (argc != 2)
    return 2;
  dir = argv[1];
  sbx_buf_t b;
  sbx_buf_init (&b);

  sbx_frame_begin (&b, SBX_M_HELLO);
  sbx_frame_int (&b, SBX_T_VERSION, SBX_PROTO_VERSION);
  sbx_frame_end (&b);
  seed ("hello", "\0\0\0\0", 0xfc, &b);

  sbx_buf_reset (&b);
  sbx_frame_begin (&b, SBX_M_EXEC);
  sbx_frame_str (&b, SBX_T_COMMAND, "python3 -c 'print(1)'");
  sbx_frame_str (&b, SBX_T_CWD, "/workspace");
  sbx_frame_str (&b, SBX_T_ENV, "A=1");
  sbx_frame_str (&b, SBX_T_ENV, "PATH=/usr/bin");
  sbx_frame_int (&b, SBX_T_TIMEOUT_MS, 30000);
  sbx_frame_int (&b, SBX_T_MAX_OUTPUT, 1 << 20);
  sbx_frame_int (&b, SBX_T_FLAGS, SBX_F_SEPARATE | SBX_F_STDIN);
  sbx_frame_end (&b);
  sbx_frame_begin (&b, SBX_M_STDIN);
  sbx_frame_bytes (&b, SBX_T_DATA, "in\0put", 6);
  sbx_frame_end (&b);
  sbx_frame_begin (&b, SBX_M_STDIN_EOF);
  sbx_frame_end (&b);
  seed ("exec-pieces", "\1\2\3\4", 0x01 | 40 << 2, &b);
  seed ("exec-space", "\5\0\11\0", 0x03 | 10 << 2, &b);

  sbx_buf_reset (&b);
  sbx_frame_begin (&b, SBX_M_OUTPUT);
  sbx_frame_int (&b, SBX_T_STREAM, 1);
  sbx_frame_bytes (&b, SBX_T_DATA, "hello\n", 6);
  sbx_frame_end (&b);
  sbx_frame_begin (&b, SBX_M_ALIVE);
  sbx_frame_end (&b);
  sbx_frame_begin (&b, SBX_M_OUTPUT);
  sbx_frame_int (&b, SBX_T_STREAM, 2);
  sbx_frame_bytes (&b, SBX_T_DATA, "\xff\xfe\0err", 6);
  sbx_frame_end (&b);
  sbx_frame_begin (&b, SBX_M_EXIT);
  sbx_frame_int (&b, SBX_T_EXIT_CODE, -1);
  sbx_frame_int (&b, SBX_T_FLAGS, SBX_F_TIMED_OUT | SBX_F_TRUNCATED | SBX_F_OOM);
  sbx_frame_end (&b);
  seed ("exec-replies", "\7\0\0\0", 0x02 | 2 << 2, &b);

  sbx_buf_reset (&b);
  for (int i = 0; i < 3; i++)
    {
      sbx_frame_begin (&b, SBX_M_ENTRY);
      sbx_frame_str (&b, SBX_T_NAME, i == 0 ? "a.py" : i == 1 ? "dir" : "link");
      sbx_frame_int (&b, SBX_T_KIND, i);
      sbx_frame_int (&b, SBX_T_SIZE, INT64_MAX - i);
      sbx_frame_end (&b);
    }
  sbx_frame_begin (&b, SBX_M_END);
  sbx_frame_int (&b, SBX_T_TRUNCATED, 1);
  sbx_frame_int (&b, SBX_T_COUNT, 3);
  sbx_frame_end (&b);
  seed ("ls-replies", "\1\0\0\0", 0x01 | 3 << 2, &b);

  sbx_buf_reset (&b);
  sbx_frame_begin (&b, SBX_M_GREP);
  sbx_frame_str (&b, SBX_T_PATTERN, "def [a-z]+\\(");
  sbx_frame_str (&b, SBX_T_PATH, "/workspace");
  sbx_frame_str (&b, SBX_T_GLOB, "**/*.py");
  sbx_frame_int (&b, SBX_T_FLAGS, SBX_F_HIDDEN | SBX_F_ICASE);
  sbx_frame_int (&b, SBX_T_MAX_RESULTS, 0);
  sbx_frame_int (&b, SBX_T_LIMIT, 65536);
  sbx_frame_bytes (&b, SBX_T_PATHS, "/a\0/b/c\0/d", 10);
  sbx_frame_end (&b);
  sbx_frame_begin (&b, SBX_M_MATCH);
  sbx_frame_str (&b, SBX_T_PATH, "/workspace/a.py");
  sbx_frame_int (&b, SBX_T_LINE_NO, 12);
  sbx_frame_str (&b, SBX_T_LINE, "def main():");
  sbx_frame_end (&b);
  seed ("grep", "\0\0\0\0", 0x00 | 63 << 2, &b);

  sbx_buf_reset (&b);
  sbx_frame_begin (&b, SBX_M_ERR);
  sbx_frame_int (&b, SBX_T_CODE, 4);
  sbx_frame_str (&b, SBX_T_MESSAGE, "no such file: /workspace/x");
  sbx_frame_int (&b, SBX_T_COUNT, 2);
  sbx_frame_end (&b);
  sbx_frame_begin (&b, SBX_M_BG_INFO);
  sbx_frame_str (&b, SBX_T_ID, "bg-1");
  sbx_frame_str (&b, SBX_T_COMMAND, "sleep 100");
  sbx_frame_int (&b, SBX_T_PID, 42);
  sbx_frame_int (&b, SBX_T_FLAGS, SBX_F_RUNNING);
  sbx_frame_int (&b, SBX_T_EXIT_CODE, 0);
  sbx_frame_int (&b, SBX_T_DROPPED, 0);
  sbx_frame_end (&b);
  seed ("err-bginfo", "\3\0\0\0", 0x01 | 8 << 2, &b);

  /* Integers of the wrong size, empty and absent fields. */
  sbx_buf_reset (&b);
  sbx_frame_begin (&b, SBX_M_READ);
  sbx_frame_bytes (&b, SBX_T_OFFSET, "\0\0\0\0\0\0\1", 7);
  sbx_frame_bytes (&b, SBX_T_LIMIT, "\0\0\0\0\0\0\0\0\1", 9);
  sbx_frame_bytes (&b, SBX_T_PATH, "", 0);
  sbx_frame_end (&b);
  seed ("odd-ints", "\2\0\0\0", 0x00 | 0 << 2, &b);

  /* The most fields a frame may have. */
  sbx_buf_reset (&b);
  sbx_frame_begin (&b, SBX_M_WRITE_DATA);
  for (int i = 0; i < SBX_PROTO_MAX_FIELDS; i++)
    sbx_frame_bytes (&b, (uint8_t) i, "x", (size_t) (i % 2));
  sbx_frame_end (&b);
  seed ("max-fields", "\0\0\0\0", 0x00 | 1 << 2, &b);

  /* Invalid streams, each after a valid frame. */
  sbx_buf_reset (&b);
  sbx_frame_begin (&b, SBX_M_OK);
  sbx_frame_end (&b);
  size_t valid = b.len;

  raw_u32 (&b, 0);
  seed ("bad-empty-frame", "\0\0\0\0", 0, &b);

  b.len = valid;
  raw_u32 (&b, SBX_PROTO_MAX_BODY + 1);
  seed ("bad-too-large", "\2\0\0\0", 0, &b);

  b.len = valid;
  raw_u32 (&b, 4);
  sbx_buf_append (&b, "\x45\x09\0\0", 4);
  seed ("bad-truncated-header", "\0\0\0\0", 0, &b);

  b.len = valid;
  raw_u32 (&b, 7);
  sbx_buf_append (&b, "\x45\x09\0\0\0\x09x", 7);
  seed ("bad-overrun", "\3\0\0\0", 0x01, &b);

  b.len = valid;
  raw_u32 (&b, 1 + 5 * (SBX_PROTO_MAX_FIELDS + 1));
  sbx_buf_append (&b, "\x45", 1);
  for (int i = 0; i <= SBX_PROTO_MAX_FIELDS; i++)
    sbx_buf_append (&b, "\x09\0\0\0\0", 5);
  seed ("bad-too-many-fields", "\0\0\0\0", 0, &b);

  /* A frame that never completes: more bytes are wanted. */
  b.len = valid;
  raw_u32 (&b, 100);
  sbx_buf_append (&b, "\x46\x09\0\0\0\x5f", 6);
  seed ("partial", "\1\0\0\0", 0x03, &b);

  sbx_buf_free (&b);
  return 0;
}
