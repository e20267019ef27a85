/* The host <-> agent wire protocol. Shared by libsbx and the agent.
 *
 * The codec does no I/O: bytes go in with sbx_reader_feed() and whole
 * messages come out of sbx_reader_next(); messages are built into an
 * sbx_buf_t that the caller writes wherever it likes.
 *
 * Frame:  u32 body_len (big endian) | body
 * Body:   u8 type | field*
 * Field:  u8 tag | u32 len (big endian) | len bytes
 *
 * Integers are fields of exactly 8 bytes, big endian, two's complement.
 * A tag may repeat (e.g. SBX_T_ENV). Both sides reject frames larger than
 * SBX_PROTO_MAX_BODY, more than SBX_PROTO_MAX_FIELDS fields, and fields that
 * overrun the body.
 *
 * Requests on one connection are answered in order, one at a time (a host
 * may send the next before the answer to the last has come). Each request is
 * answered by zero or more streamed frames (OUTPUT, ENTRY, DATA, MATCH,
 * BG_INFO, ALIVE) and exactly one final frame (EXIT, END, OK or ERR). ALIVE
 * may come at any point of an answer: the agent sends it every
 * SBX_PROTO_ALIVE_MS while a request is in progress, so that the host can
 * tell a long operation from an agent that stopped answering.
 *
 * Requests that can take long carry an optional TIMEOUT_MS: the agent ends
 * them by then (a listing flagged TRUNCATED, or ERR{TIMEOUT}); without it,
 * the agent's own default for the operation applies.
 */
#ifndef SBX_PROTO_H
#define SBX_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SBX_PROTO_VERSION 2
#define SBX_PROTO_MAX_BODY (1u << 20)
#define SBX_PROTO_MAX_FIELDS 64
#define SBX_PROTO_CHUNK (64u * 1024)
#define SBX_PROTO_ALIVE_MS 2000

/* Where the agent lives inside every container. */
#define SBX_AGENT_DIR "/.sbx"
#define SBX_AGENT_BIN SBX_AGENT_DIR "/agent"
#define SBX_AGENT_RUN_DIR SBX_AGENT_DIR "/run"
#define SBX_AGENT_SOCKET_NAME "agent.sock"

enum sbx_msg_type
{
  /* requests, host -> agent */
  SBX_M_HELLO = 1, /* VERSION                        -> OK{VERSION, PID} */
  SBX_M_EXEC = 2,  /* COMMAND CWD ENV* TIMEOUT_MS MAX_OUTPUT FLAGS
                           -> OUTPUT* EXIT  (or ERR before anything runs)
                           with SBX_F_STDIN the host then sends STDIN* STDIN_EOF */
  SBX_M_STDIN = 3, /* DATA */
  SBX_M_STDIN_EOF = 4,
  SBX_M_CANCEL = 5,   /* during EXEC: kill the process tree now */
  SBX_M_STAT = 10,    /* PATH                           -> OK{KIND SIZE MODE} or ERR */
  SBX_M_RESOLVE = 20, /* PATH -> OK{PATH EXISTS [KIND SIZE MODE DEV INO MTIME_NS CTIME_NS]}
                           PATH with its symbolic links resolved as far as it
                           exists (the rest kept as given, as `realpath -m`);
                           the stat fields describe it when EXISTS */
  SBX_M_LS = 11,   /* PATH MAX_RESULTS [LIMIT]       -> ENTRY{NAME KIND SIZE}* END{TRUNCATED COUNT}
                           LIMIT bounds the bytes of names sent; COUNT is how
                           many entries there are, sent or not */
  SBX_M_READ = 12, /* PATH OFFSET LIMIT              -> DATA* END{COUNT MORE}
                           DATA holds the selected lines, each ending in '\n'
                           (the last one may lack it); COUNT is the number of lines;
                           MORE is 1 when lines remain after them */
  SBX_M_READ_BYTES = 13, /* PATH LIMIT(max bytes, 0 = any) -> DATA* END{SIZE} */
  SBX_M_WRITE = 14, /* PATH, then WRITE_DATA* WRITE_END -> OK{SIZE} or ERR (one reply, after END) */
  SBX_M_WRITE_DATA = 15, /* DATA */
  SBX_M_WRITE_END = 16,
  SBX_M_EDIT = 17,     /* PATH OLD NEW FLAGS(ALL)        -> OK{COUNT} or ERR{COUNT} */
  SBX_M_GLOB = 18,     /* PATTERN PATH MAX_RESULTS [LIMIT]
                           -> ENTRY{PATH KIND SIZE}* END{TRUNCATED COUNT}, as LS */
  SBX_M_GREP = 19,     /* PATTERN PATH [GLOB] FLAGS(HIDDEN, ICASE, LIST) MAX_RESULTS [LIMIT]
                           [PATHS] -> MATCH{PATH LINE_NO LINE}* END{TRUNCATED}
                           LIMIT bounds the bytes of paths and lines sent; with
                           PATHS (NUL-separated absolute paths) those files are
                           searched instead of PATH's tree; with LIST, nothing
                           is read: ENTRY{PATH}* names the files a search would
                           read */
  SBX_M_BG_START = 30, /* COMMAND CWD ENV*               -> OK{ID PID} */
  SBX_M_BG_READ = 31,  /* ID                             -> DATA* BG_INFO END */
  SBX_M_BG_KILL = 32,  /* ID                             -> OK */
  SBX_M_BG_LIST = 33,  /*                                -> BG_INFO* END */
  SBX_M_KILL_ALL = 34, /* every process but the agent    -> OK{COUNT} */

  /* replies, agent -> host */
  SBX_M_OK = 64,
  SBX_M_ERR = 65,    /* CODE (an sbx_errc) MESSAGE [COUNT] */
  SBX_M_OUTPUT = 66, /* STREAM DATA */
  SBX_M_EXIT = 67,   /* EXIT_CODE FLAGS(TIMED_OUT TRUNCATED OOM) */
  SBX_M_ENTRY = 68,
  SBX_M_DATA = 69, /* DATA */
  SBX_M_END = 70,
  SBX_M_MATCH = 71,
  SBX_M_BG_INFO = 72, /* ID COMMAND PID FLAGS(RUNNING) EXIT_CODE DROPPED */
  SBX_M_ALIVE = 73,   /* a request is still in progress */
};

enum sbx_tag
{
  SBX_T_VERSION = 1,      /* int */
  SBX_T_COMMAND = 2,      /* bytes */
  SBX_T_CWD = 3,          /* bytes, absolute path */
  SBX_T_ENV = 4,          /* bytes "K=V", repeated */
  SBX_T_TIMEOUT_MS = 5,   /* int, 0 = none */
  SBX_T_MAX_OUTPUT = 6,   /* int, bytes forwarded before draining */
  SBX_T_FLAGS = 7,        /* int, SBX_F_* bits */
  SBX_T_STREAM = 8,       /* int, 1 stdout, 2 stderr */
  SBX_T_DATA = 9,         /* bytes */
  SBX_T_EXIT_CODE = 10,   /* int */
  SBX_T_PATH = 11,        /* bytes, absolute path */
  SBX_T_NAME = 12,        /* bytes */
  SBX_T_KIND = 13,        /* int, enum sbx_kind */
  SBX_T_SIZE = 14,        /* int */
  SBX_T_OFFSET = 15,      /* int */
  SBX_T_LIMIT = 16,       /* int */
  SBX_T_OLD = 17,         /* bytes */
  SBX_T_NEW = 18,         /* bytes */
  SBX_T_COUNT = 19,       /* int */
  SBX_T_PATTERN = 20,     /* bytes */
  SBX_T_GLOB = 21,        /* bytes */
  SBX_T_LINE_NO = 22,     /* int, 1-based */
  SBX_T_LINE = 23,        /* bytes, no newline */
  SBX_T_CODE = 24,        /* int, sbx_errc */
  SBX_T_MESSAGE = 25,     /* bytes */
  SBX_T_ID = 26,          /* bytes */
  SBX_T_PID = 27,         /* int */
  SBX_T_MODE = 28,        /* int, st_mode */
  SBX_T_MORE = 29,        /* int, 0 or 1 */
  SBX_T_TRUNCATED = 30,   /* int, 0 or 1 */
  SBX_T_MAX_RESULTS = 31, /* int, 0 = the agent's default */
  SBX_T_DROPPED = 32,     /* int, bytes */
  SBX_T_EXISTS = 33,      /* int, 0 or 1 */
  SBX_T_DEV = 34,         /* int */
  SBX_T_INO = 35,         /* int */
  SBX_T_MTIME_NS = 36,    /* int, nanoseconds since the epoch */
  SBX_T_CTIME_NS = 37,    /* int */
  SBX_T_PATHS = 38,       /* bytes, NUL-separated paths */
};

enum sbx_flag
{
  SBX_F_SEPARATE = 1 << 0,  /* EXEC: stdout and stderr on separate pipes */
  SBX_F_STDIN = 1 << 1,     /* EXEC: the host sends stdin */
  SBX_F_ALL = 1 << 2,       /* EDIT: replace all */
  SBX_F_HIDDEN = 1 << 3,    /* GREP: include hidden files */
  SBX_F_ICASE = 1 << 4,     /* GREP: ignore case */
  SBX_F_TIMED_OUT = 1 << 5, /* EXIT */
  SBX_F_TRUNCATED = 1 << 6, /* EXIT */
  SBX_F_OOM = 1 << 7,       /* EXIT */
  SBX_F_RUNNING = 1 << 8,   /* BG_INFO */
  SBX_F_LIST = 1 << 9,      /* GREP: name the files, read nothing */
};

enum sbx_kind
{
  SBX_KIND_FILE = 0,
  SBX_KIND_DIR = 1,
  SBX_KIND_SYMLINK = 2,
  SBX_KIND_OTHER = 3
};

/* ------------------------------------------------------------ building */

typedef struct sbx_buf
{
  uint8_t *data;
  size_t len;
  size_t cap;
  size_t frame_start; /* offset of the open frame's length prefix */
  bool failed;        /* allocation failed or a frame grew too large */
} sbx_buf_t;

void sbx_buf_init (sbx_buf_t *b);
void sbx_buf_free (sbx_buf_t *b);
/* Drops the content, keeps the allocation. */
void sbx_buf_reset (sbx_buf_t *b);
void sbx_buf_append (sbx_buf_t *b, const void *data, size_t len);

void sbx_frame_begin (sbx_buf_t *b, uint8_t type);
void sbx_frame_bytes (sbx_buf_t *b, uint8_t tag, const void *data, size_t len);
void sbx_frame_str (sbx_buf_t *b, uint8_t tag, const char *s);
void sbx_frame_int (sbx_buf_t *b, uint8_t tag, int64_t v);
/* Closes the frame; returns -1 (and sets b->failed) if it exceeds the limits. */
int sbx_frame_end (sbx_buf_t *b);

/* ------------------------------------------------------------ reading */

typedef struct sbx_field
{
  uint8_t tag;
  uint32_t len;
  const uint8_t *data;
} sbx_field_t;

typedef struct sbx_msg
{
  uint8_t type;
  size_t nfields;
  sbx_field_t fields[SBX_PROTO_MAX_FIELDS];
} sbx_msg_t;

typedef struct sbx_reader
{
  uint8_t *buf;
  size_t len; /* bytes held */
  size_t pos; /* start of unread bytes */
  size_t cap;
  const char *error; /* static description once the stream is invalid */
} sbx_reader_t;

void sbx_reader_init (sbx_reader_t *r);
void sbx_reader_free (sbx_reader_t *r);
/* Appends bytes; returns -1 when out of memory. */
int sbx_reader_feed (sbx_reader_t *r, const void *data, size_t len);
/* Room for WANT more bytes, to receive into without a copy: fill some of
 * it, then sbx_reader_commit() what was filled. NULL when out of memory. */
uint8_t *sbx_reader_space (sbx_reader_t *r, size_t want);
void sbx_reader_commit (sbx_reader_t *r, size_t len);
/* 1: *MSG holds a message whose fields point into the reader and stay valid
 *    until the next feed or next call; 0: more bytes needed; -1: the stream
 *    is invalid (r->error says why) and stays so. */
int sbx_reader_next (sbx_reader_t *r, sbx_msg_t *msg);

/* First field with TAG, or NULL. */
const sbx_field_t *sbx_msg_field (const sbx_msg_t *m, uint8_t tag);
/* 0 and *V on success; -1 if absent or not 8 bytes. */
int sbx_msg_int (const sbx_msg_t *m, uint8_t tag, int64_t *v);
/* Like sbx_msg_int, but absent means DEFLT. */
int sbx_msg_int_or (const sbx_msg_t *m, uint8_t tag, int64_t deflt, int64_t *v);
/* Copies a bytes field into a new NUL-terminated string; NULL if absent, if
 * longer than MAX, if it holds a NUL byte, or when out of memory. */
char *sbx_msg_strdup (const sbx_msg_t *m, uint8_t tag, size_t max);
/* The same for one given field (e.g. each of a repeated tag); F may be NULL. */
char *sbx_field_strdup (const sbx_field_t *f, size_t max);

#endif
