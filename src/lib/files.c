/* File operations through the agent. Replies are validated and bounded here
 * before they become results. */
#include "sandbox.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define MAX_PATH_BYTES 4096
#define MAX_NAME_BYTES 255
#define MAX_READ_RESULT (16u << 20)
#define MAX_GREP_LINE 4096
#define DEFAULT_GREP_MATCHES 10000
#define MAX_RESOLVE_BATCH 32

/* The time operations have, in seconds; the agent ends them by then (a
 * listing flagged truncated, or SBX_E_TIMEOUT), whatever the content.
 * Most have the handle's file_timeout; QUICK ones answer at once. */
#define QUICK 0
#define STREAM_TIMEOUT 3600
#define WRITE_COMMIT_TIMEOUT 30

/* The time the operations bound by sbx_sandbox_set_file_timeout have. */
#define FILE_TIMEOUT (-1)

/* Ensures the sandbox, resolves PATH, and opens a request frame of TYPE
 * carrying it and, for operations that take time, their TIMEOUT (seconds,
 * or FILE_TIMEOUT). *ABS receives the resolved path, *DEADLINE when the
 * host gives up. */
static int
begin (sbx_sandbox_t *sb, uint8_t type, const char *path, double timeout, char **abs,
       double *deadline, sbx_error_t **err)
{
  if (timeout == FILE_TIMEOUT)
    timeout = sb->file_timeout;
  int r = sbx_sandbox_ensure (sb, err);
  if (r < 0)
    return r;
  if ((*abs = sbx_sandbox_path (sb, path, err)) == NULL)
    return -SBX_E_INVALID;
  sbx_frame_begin (&sb->out, type);
  sbx_frame_str (&sb->out, SBX_T_PATH, *abs);
  /* At least a millisecond: 0 would mean the agent's default. */
  if (timeout > 0)
    sbx_frame_int (&sb->out, SBX_T_TIMEOUT_MS, (int64_t) (timeout * 1000) + 1);
  *deadline = sbx_agent_deadline (timeout);
  return 0;
}

static int
send_frame (sbx_sandbox_t *sb, sbx_error_t **err)
{
  if (sbx_frame_end (&sb->out) < 0)
    {
      sbx_agent_drop_request (sb);
      return sbx_error_set (err, SBX_E_TOO_LARGE,
                            "request too large for the agent protocol (1 MiB)");
    }
  return sbx_agent_flush (sb, err);
}

/* Receives the final reply, which must be of TYPE (an ERR becomes the error). */
static int
expect (sbx_sandbox_t *sb, uint8_t type, sbx_msg_t *msg, double deadline, sbx_error_t **err)
{
  int r = sbx_agent_recv (sb, msg, deadline, err);
  if (r < 0)
    return r;
  return msg->type == type ? 0 : sbx_agent_fail (sb, msg, err);
}

SBX_EXPORT void
sbx_file_list_free (sbx_file_list_t *list)
{
  for (size_t i = 0; list && i < list->count; i++)
    {
      free (list->items[i].name);
      free (list->items[i].path);
    }
  if (list)
    {
      free (list->items);
      memset (list, 0, sizeof *list);
    }
}

SBX_EXPORT int
sbx_exists (sbx_sandbox_t *sb, const char *path, bool *exists, sbx_error_t **err)
{
  cleanup_free char *abs = NULL;
  sbx_msg_t msg;
  double deadline;
  int r = begin (sb, SBX_M_STAT, path, QUICK, &abs, &deadline, err);
  if (r == 0)
    r = send_frame (sb, err);
  if (r == 0)
    r = sbx_agent_recv (sb, &msg, deadline, err);
  if (r < 0)
    return r;
  if (msg.type == SBX_M_OK)
    {
      *exists = true;
      return 0;
    }
  int64_t code;
  if (msg.type == SBX_M_ERR && sbx_msg_int (&msg, SBX_T_CODE, &code) == 0
      && (code == SBX_E_NOT_FOUND || code == SBX_E_NOT_DIR))
    {
      *exists = false;
      return 0;
    }
  return sbx_agent_fail (sb, &msg, err);
}

SBX_EXPORT void
sbx_path_info_clear (sbx_path_info_t *info)
{
  if (info == NULL)
    return;
  free (info->path);
  memset (info, 0, sizeof *info);
}

/* One RESOLVE reply into INFO. */
static int
parse_resolved (sbx_sandbox_t *sb, const sbx_msg_t *msg, sbx_path_info_t *info, sbx_error_t **err)
{
  if (msg->type != SBX_M_OK)
    return sbx_agent_fail (sb, msg, err);
  const uint8_t *p;
  size_t n;
  int64_t exists, kind = SBX_KIND_OTHER, size = 0, mode = 0, dev = 0, ino = 0, mt = 0, ct = 0;
  int r;
  if ((r = sbx_agent_bytes (sb, msg, SBX_T_PATH, MAX_PATH_BYTES, &p, &n, err)) < 0
      || (r = sbx_agent_int (sb, msg, SBX_T_EXISTS, 0, 1, &exists, err)) < 0)
    return r;
  if (exists
      && ((r = sbx_agent_int (sb, msg, SBX_T_KIND, SBX_KIND_FILE, SBX_KIND_OTHER, &kind, err)) < 0
          || (r = sbx_agent_int (sb, msg, SBX_T_SIZE, 0, INT64_MAX, &size, err)) < 0
          || (r = sbx_agent_int (sb, msg, SBX_T_MODE, 0, UINT32_MAX, &mode, err)) < 0
          || (r = sbx_agent_int (sb, msg, SBX_T_DEV, INT64_MIN, INT64_MAX, &dev, err)) < 0
          || (r = sbx_agent_int (sb, msg, SBX_T_INO, INT64_MIN, INT64_MAX, &ino, err)) < 0
          || (r = sbx_agent_int (sb, msg, SBX_T_MTIME_NS, INT64_MIN, INT64_MAX, &mt, err)) < 0
          || (r = sbx_agent_int (sb, msg, SBX_T_CTIME_NS, INT64_MIN, INT64_MAX, &ct, err)) < 0))
    return r;
  if (n == 0 || p[0] != '/' || memchr (p, 0, n))
    return sbx_agent_protocol_error (sb, "invalid path", err);
  char *path = strndup ((const char *) p, n);
  if (path == NULL)
    {
      sbx_agent_disconnect (sb);
      return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
    }
  *info = (sbx_path_info_t){ .path = path,
                             .exists = exists,
                             .is_dir = kind == SBX_KIND_DIR,
                             .is_file = exists && kind == SBX_KIND_FILE,
                             .size = (uint64_t) size,
                             .mode = (uint32_t) mode,
                             .dev = (uint64_t) dev,
                             .ino = (uint64_t) ino,
                             .mtime_ns = mt,
                             .ctime_ns = ct };
  return 0;
}

SBX_EXPORT int
sbx_resolve_many (sbx_sandbox_t *sb, const char *const *paths, size_t n, sbx_path_info_t *infos,
                  sbx_error_t **err)
{
  int r = sbx_sandbox_ensure (sb, err);
  memset (infos, 0, n * sizeof *infos);
  /* Requests go in batches, each sent before its answers are read: the
     agent answers them in order. */
  for (size_t done = 0; r == 0 && done < n;)
    {
      size_t batch = n - done < MAX_RESOLVE_BATCH ? n - done : MAX_RESOLVE_BATCH;
      for (size_t i = 0; r == 0 && i < batch; i++)
        {
          cleanup_free char *abs = sbx_sandbox_path (sb, paths[done + i], err);
          if (abs == NULL)
            {
              sbx_agent_drop_request (sb);
              r = -SBX_E_INVALID;
              break;
            }
          sbx_frame_begin (&sb->out, SBX_M_RESOLVE);
          sbx_frame_str (&sb->out, SBX_T_PATH, abs);
          if (sbx_frame_end (&sb->out) < 0)
            {
              sbx_agent_drop_request (sb);
              r = sbx_error_set (err, SBX_E_NOMEM, "out of memory");
            }
        }
      if (r == 0)
        r = sbx_agent_flush (sb, err);
      double deadline = sbx_agent_deadline (QUICK);
      for (size_t i = 0; r == 0 && i < batch; i++, done++)
        {
          sbx_msg_t msg;
          if ((r = sbx_agent_recv (sb, &msg, deadline, err)) == 0)
            r = parse_resolved (sb, &msg, &infos[done], err);
          /* The rest of the batch is still on its way: the stream is out
             of step. */
          if (r < 0 && i + 1 < batch)
            sbx_agent_disconnect (sb);
        }
    }
  if (r < 0)
    for (size_t i = 0; i < n; i++)
      sbx_path_info_clear (&infos[i]);
  return r;
}

SBX_EXPORT int
sbx_resolve (sbx_sandbox_t *sb, const char *path, sbx_path_info_t *info, sbx_error_t **err)
{
  return sbx_resolve_many (sb, &path, 1, info, err);
}

static bool
valid_name (const uint8_t *s, size_t n)
{
  if (n == 0 || n > MAX_NAME_BYTES || memchr (s, '/', n) || memchr (s, 0, n))
    return false;
  return !(n == 1 && s[0] == '.') && !(n == 2 && s[0] == '.' && s[1] == '.');
}

static int
list_append (sbx_file_list_t *list, size_t *cap, char *name, char *path, bool is_dir, uint64_t size)
{
  if (list->count == *cap)
    {
      size_t ncap = *cap ? *cap * 2 : 64;
      sbx_file_info_t *n = realloc (list->items, ncap * sizeof *n);
      if (n == NULL)
        return -1;
      list->items = n;
      *cap = ncap;
    }
  list->items[list->count++] = (sbx_file_info_t){ name, path, is_dir, size };
  return 0;
}

/* Receives the next reply of an ITEM* END stream: 1 with an item of TYPE in
 * *MSG; 0 at END, whose TRUNCATED flag is ORed into *TRUNCATED and whose
 * COUNT (when TOTAL is not NULL; -1 when absent) goes to *TOTAL; <0 on error
 * (any other reply, an ERR included, becomes the error). */
static int
recv_item (sbx_sandbox_t *sb, uint8_t type, sbx_msg_t *msg, bool *truncated, int64_t *total,
           double deadline, sbx_error_t **err)
{
  int r = sbx_agent_recv (sb, msg, deadline, err);
  if (r < 0)
    return r;
  if (msg->type == SBX_M_END)
    {
      int64_t trunc = 0, count = -1;
      if (sbx_msg_int_or (msg, SBX_T_TRUNCATED, 0, &trunc) < 0
          || sbx_msg_int_or (msg, SBX_T_COUNT, -1, &count) < 0 || count < -1)
        return sbx_agent_fail (sb, msg, err);
      *truncated |= trunc != 0;
      if (total)
        *total = count;
      return 0;
    }
  if (msg->type != type)
    return sbx_agent_fail (sb, msg, err);
  return 1;
}

/* A listing's bounds, filled in from its options. */
typedef struct bounds
{
  size_t max_entries, max_bytes;
  size_t bytes; /* what the entries kept cost so far */
} bounds_t;

static bounds_t
list_bounds (const sbx_list_opts_t *o)
{
  return (bounds_t){
    .max_entries = o && o->max_entries ? o->max_entries : SBX_DEFAULT_MAX_ENTRIES,
    .max_bytes = o && o->max_bytes ? o->max_bytes : SBX_DEFAULT_MAX_LIST_BYTES,
  };
}

/* The bounds go to the agent too, which then sends no more. */
static void
frame_bounds (sbx_sandbox_t *sb, const bounds_t *b)
{
  sbx_frame_int (&sb->out, SBX_T_MAX_RESULTS, (int64_t) b->max_entries);
  sbx_frame_int (&sb->out, SBX_T_LIMIT, (int64_t) b->max_bytes);
}

/* Whether one more entry of COST bytes fits; counts it when it does. */
static bool
fits (bounds_t *b, size_t count, size_t cost)
{
  if (count >= b->max_entries || cost > b->max_bytes - b->bytes)
    return false;
  b->bytes += cost;
  return true;
}

/* Reads ENTRY* END. With BASE, entries carry NAME and paths are BASE/NAME;
 * without, entries carry an absolute PATH. Entries past the bounds are
 * dropped (the agent should not send them: it is not trusted to). */
static int
collect_entries (sbx_sandbox_t *sb, const char *base, bounds_t *b, sbx_file_list_t *out,
                 double deadline, sbx_error_t **err)
{
  size_t cap = 0;
  int64_t total = -1;
  for (;;)
    {
      sbx_msg_t msg;
      int r = recv_item (sb, SBX_M_ENTRY, &msg, &out->truncated, &total, deadline, err);
      if (r == 0)
        out->total = total >= (int64_t) out->count ? (size_t) total : out->count;
      if (r <= 0)
        return r;
      int64_t kind, size;
      const uint8_t *s;
      size_t n;
      if ((r = sbx_agent_int (sb, &msg, SBX_T_KIND, SBX_KIND_FILE, SBX_KIND_OTHER, &kind, err)) < 0
          || (r = sbx_agent_int (sb, &msg, SBX_T_SIZE, 0, INT64_MAX, &size, err)) < 0
          || (r = sbx_agent_bytes (sb, &msg, base ? SBX_T_NAME : SBX_T_PATH,
                                   base ? MAX_NAME_BYTES : MAX_PATH_BYTES, &s, &n, err))
                 < 0)
        return r;
      size_t path_len = base ? strlen (base) + 1 + n : n;
      if (!fits (b, out->count, sizeof (sbx_file_info_t) + n + 1 + path_len + 1))
        {
          out->truncated = true;
          continue;
        }
      char *name, *path;
      if (base)
        {
          if (!valid_name (s, n))
            return sbx_agent_protocol_error (sb, "invalid file name", err);
          name = strndup ((const char *) s, n);
          path = name ? sbx_strdup_printf ("%s%s%s", base, strcmp (base, "/") ? "/" : "", name)
                      : NULL;
        }
      else
        {
          if (n == 0 || s[0] != '/' || memchr (s, 0, n))
            return sbx_agent_protocol_error (sb, "invalid path", err);
          path = strndup ((const char *) s, n);
          const char *slash = path ? strrchr (path, '/') : NULL;
          name = slash ? strdup (slash + 1) : NULL;
        }
      if (!name || !path || list_append (out, &cap, name, path, kind == SBX_KIND_DIR, size) < 0)
        {
          free (name);
          free (path);
          sbx_agent_disconnect (sb);
          return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
        }
    }
}

static int
cmp_ls (const void *a, const void *b)
{
  const sbx_file_info_t *x = a, *y = b;
  if (x->is_dir != y->is_dir)
    return x->is_dir ? -1 : 1;
  return strcmp (x->name, y->name);
}

static int
cmp_path (const void *a, const void *b)
{
  return strcmp (((const sbx_file_info_t *) a)->path, ((const sbx_file_info_t *) b)->path);
}

/* Sends the listing request being built (when R is 0) and collects its
 * entries, sorted with CMP; OUT is empty on failure. */
static int
list_request (sbx_sandbox_t *sb, int r, const char *root, bounds_t *b, double deadline,
              int (*cmp) (const void *, const void *), sbx_file_list_t *out, sbx_error_t **err)
{
  if (r == 0)
    r = send_frame (sb, err);
  if (r == 0)
    r = collect_entries (sb, root, b, out, deadline, err);
  if (r < 0)
    {
      sbx_file_list_free (out);
      return r;
    }
  if (out->count > 1)
    qsort (out->items, out->count, sizeof *out->items, cmp);
  return 0;
}

SBX_EXPORT int
sbx_ls (sbx_sandbox_t *sb, const char *path, const sbx_list_opts_t *opts, sbx_file_list_t *out,
        sbx_error_t **err)
{
  cleanup_free char *abs = NULL;
  double deadline = 0;
  bounds_t b = list_bounds (opts);
  memset (out, 0, sizeof *out);
  int r = begin (sb, SBX_M_LS, path, FILE_TIMEOUT, &abs, &deadline, err);
  if (r == 0)
    frame_bounds (sb, &b);
  return list_request (sb, r, abs, &b, deadline, cmp_ls, out, err);
}

SBX_EXPORT int
sbx_glob (sbx_sandbox_t *sb, const char *pattern, const char *path, const sbx_list_opts_t *opts,
          sbx_file_list_t *out, sbx_error_t **err)
{
  cleanup_free char *abs = NULL;
  bounds_t b = list_bounds (opts);
  memset (out, 0, sizeof *out);
  if (pattern == NULL || !*pattern)
    return sbx_error_set (err, SBX_E_PATTERN, "empty glob pattern");
  /* An absolute pattern searches from the root, whatever PATH says. */
  if (pattern[0] == '/')
    path = "/";
  double deadline = 0;
  int r = begin (sb, SBX_M_GLOB, path, FILE_TIMEOUT, &abs, &deadline, err);
  if (r == 0)
    {
      sbx_frame_str (&sb->out, SBX_T_PATTERN, pattern);
      frame_bounds (sb, &b);
    }
  return list_request (sb, r, NULL, &b, deadline, cmp_path, out, err);
}

/* Numbers the lines the agent returned as "%6zu\t<line>\n". */
static int
number_lines (const sbx_buf_t *raw, size_t offset, int64_t count, bool more, size_t limit,
              char **text, sbx_error_t **err)
{
  sbx_buf_t out;
  sbx_buf_init (&out);
  size_t lines = 0, pos = 0;
  while (pos < raw->len)
    {
      const uint8_t *start = raw->data + pos;
      const uint8_t *nl = memchr (start, '\n', raw->len - pos);
      size_t len = nl ? (size_t) (nl - start) : raw->len - pos;
      char num[32];
      int w = snprintf (num, sizeof num, "%6zu\t", offset + ++lines);
      sbx_buf_append (&out, num, w);
      sbx_buf_append (&out, start, len);
      sbx_buf_append (&out, "\n", 1);
      pos += len + (nl != NULL);
    }
  if ((int64_t) lines != count || lines > limit)
    {
      sbx_buf_free (&out);
      return sbx_error_set (err, SBX_E_PROTOCOL, "the agent's line count does not match its data");
    }
  if (more)
    {
      char note[128];
      int w = snprintf (note, sizeof note, "... more lines follow; read on with offset=%zu\n",
                        offset + lines);
      sbx_buf_append (&out, note, w);
    }
  sbx_buf_append (&out, "", 1);
  if (out.failed)
    {
      sbx_buf_free (&out);
      return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
    }
  *text = (char *) out.data;
  return 0;
}

/* Collects DATA* until END, calling CB (or appending to BUF when CB is NULL)
 * with at most MAX bytes in all. */
static int
collect_data (sbx_sandbox_t *sb, sbx_buf_t *buf, sbx_data_cb cb, void *ud, uint64_t max,
              sbx_msg_t *end, double deadline, sbx_error_t **err)
{
  uint64_t total = 0;
  for (;;)
    {
      int r = sbx_agent_recv (sb, end, deadline, err);
      if (r < 0)
        return r;
      if (end->type == SBX_M_END)
        return 0;
      if (end->type != SBX_M_DATA)
        return sbx_agent_fail (sb, end, err);
      const uint8_t *data;
      size_t len;
      if ((r = sbx_agent_bytes (sb, end, SBX_T_DATA, SBX_PROTO_CHUNK, &data, &len, err)) < 0)
        return r;
      total += len;
      if (total > max)
        return sbx_agent_protocol_error (sb, "more data than was asked for", err);
      if (cb == NULL)
        sbx_buf_append (buf, data, len);
      else if (cb (data, len, ud) != 0)
        {
          /* Draining could take forever (a file that keeps growing): drop
           * the connection instead. */
          sbx_agent_disconnect (sb);
          return sbx_error_set (err, SBX_E_INVALID, "reading was stopped by the caller");
        }
    }
}

SBX_EXPORT int
sbx_read (sbx_sandbox_t *sb, const char *path, size_t offset, size_t limit, char **text,
          sbx_error_t **err)
{
  cleanup_free char *abs = NULL;
  if (limit == 0)
    limit = SBX_DEFAULT_READ_LIMIT;
  if (offset > INT64_MAX / 2 || limit > INT64_MAX / 2)
    return sbx_error_set (err, SBX_E_INVALID, "offset or limit out of range");
  double deadline;
  int r = begin (sb, SBX_M_READ, path, FILE_TIMEOUT, &abs, &deadline, err);
  if (r == 0)
    {
      sbx_frame_int (&sb->out, SBX_T_OFFSET, (int64_t) offset);
      sbx_frame_int (&sb->out, SBX_T_LIMIT, (int64_t) limit);
      r = send_frame (sb, err);
    }
  sbx_buf_t raw;
  sbx_buf_init (&raw);
  sbx_msg_t end;
  int64_t count, more;
  if (r == 0)
    r = collect_data (sb, &raw, NULL, NULL, MAX_READ_RESULT, &end, deadline, err);
  if (r == 0 && ((r = sbx_agent_int (sb, &end, SBX_T_COUNT, 0, (int64_t) limit, &count, err)) == 0)
      && (r = sbx_agent_int (sb, &end, SBX_T_MORE, 0, 1, &more, err)) == 0)
    r = raw.failed ? sbx_error_set (err, SBX_E_NOMEM, "out of memory")
                   : number_lines (&raw, offset, count, more, limit, text, err);
  sbx_buf_free (&raw);
  return r;
}

static int
read_bytes_request (sbx_sandbox_t *sb, const char *path, uint64_t limit, double timeout,
                    double *deadline, sbx_error_t **err)
{
  cleanup_free char *abs = NULL;
  int r = begin (sb, SBX_M_READ_BYTES, path, timeout, &abs, deadline, err);
  if (r == 0)
    {
      sbx_frame_int (&sb->out, SBX_T_LIMIT, (int64_t) limit);
      r = send_frame (sb, err);
    }
  return r;
}

SBX_EXPORT int
sbx_read_bytes (sbx_sandbox_t *sb, const char *path, void **data, size_t *len, sbx_error_t **err)
{
  sbx_buf_t buf;
  sbx_msg_t end;
  double deadline;
  sbx_buf_init (&buf);
  int r = read_bytes_request (sb, path, SBX_DEFAULT_MAX_READ_BYTES, FILE_TIMEOUT, &deadline, err);
  if (r == 0)
    r = collect_data (sb, &buf, NULL, NULL, SBX_DEFAULT_MAX_READ_BYTES, &end, deadline, err);
  if (r == 0)
    {
      sbx_buf_append (&buf, "", 1);
      if (buf.failed)
        r = sbx_error_set (err, SBX_E_NOMEM, "out of memory");
    }
  if (r < 0)
    {
      sbx_buf_free (&buf);
      return r;
    }
  *len = buf.len - 1;
  *data = buf.data;
  return 0;
}

SBX_EXPORT int
sbx_read_stream (sbx_sandbox_t *sb, const char *path, sbx_data_cb cb, void *userdata,
                 sbx_error_t **err)
{
  sbx_msg_t end;
  double deadline;
  int r = read_bytes_request (sb, path, 0, STREAM_TIMEOUT, &deadline, err);
  return r < 0 ? r : collect_data (sb, NULL, cb, userdata, UINT64_MAX, &end, deadline, err);
}

/* WRITE, then the content as WRITE_DATA frames produced by NEXT, then
 * WRITE_END; one reply at the end. */
typedef ssize_t (*chunk_source) (void *ctx, void *buf, size_t cap);

static int
write_from (sbx_sandbox_t *sb, const char *path, chunk_source next, void *ctx, sbx_error_t **err)
{
  cleanup_free char *abs = NULL;
  double deadline;
  int r = begin (sb, SBX_M_WRITE, path, QUICK, &abs, &deadline, err);
  /* A frame that cannot be closed fails in send_frame, which says why. */
  if (r == 0 && sbx_frame_end (&sb->out) < 0)
    r = send_frame (sb, err);
  char chunk[SBX_PROTO_CHUNK];
  ssize_t n = 0;
  /* The frames go out together, a few chunks at a time: the agent reads
     all of a WRITE as it comes. */
  while (r == 0 && (n = next (ctx, chunk, sizeof chunk)) > 0)
    {
      sbx_frame_begin (&sb->out, SBX_M_WRITE_DATA);
      sbx_frame_bytes (&sb->out, SBX_T_DATA, chunk, n);
      r = sbx_frame_end (&sb->out) < 0         ? send_frame (sb, err)
          : sb->out.len >= 4 * SBX_PROTO_CHUNK ? sbx_agent_flush (sb, err)
                                               : 0;
    }
  if (r < 0)
    return r;
  if (n < 0)
    {
      /* Tell the agent to drop the half-written temp file. */
      sbx_agent_disconnect (sb);
      return sbx_error_set_errno (err, SBX_E_IO, (int) -n,
                                  "cannot read the content for %s; nothing "
                                  "was written",
                                  abs);
    }
  sbx_frame_begin (&sb->out, SBX_M_WRITE_END);
  sbx_msg_t msg;
  if ((r = send_frame (sb, err)) < 0
      || (r = expect (sb, SBX_M_OK, &msg, sbx_agent_deadline (WRITE_COMMIT_TIMEOUT), err)) < 0)
    return r;
  return 0;
}

typedef struct
{
  const char *data;
  size_t len, off;
} mem_source_t;

static ssize_t
mem_next (void *ctx, void *buf, size_t cap)
{
  mem_source_t *m = ctx;
  size_t n = m->len - m->off < cap ? m->len - m->off : cap;
  memcpy (buf, m->data + m->off, n);
  m->off += n;
  return (ssize_t) n;
}

static ssize_t
fd_next (void *ctx, void *buf, size_t cap)
{
  int fd = *(int *) ctx;
  size_t got = 0;
  /* Fill whole chunks so a pipe doesn't turn into many tiny frames. */
  while (got < cap)
    {
      ssize_t n = read (fd, (char *) buf + got, cap - got);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return -errno;
      if (n == 0)
        break;
      got += n;
    }
  return (ssize_t) got;
}

SBX_EXPORT int
sbx_write (sbx_sandbox_t *sb, const char *path, const void *data, size_t len, sbx_error_t **err)
{
  if (data == NULL && len)
    return sbx_error_set (err, SBX_E_INVALID, "no content given");
  mem_source_t m = { data, len, 0 };
  return write_from (sb, path, mem_next, &m, err);
}

SBX_EXPORT int
sbx_write_fd (sbx_sandbox_t *sb, const char *path, int fd, sbx_error_t **err)
{
  return write_from (sb, path, fd_next, &fd, err);
}

SBX_EXPORT int
sbx_edit (sbx_sandbox_t *sb, const char *path, const char *old_text, const char *new_text,
          bool replace_all, size_t *occurrences, sbx_error_t **err)
{
  cleanup_free char *abs = NULL;
  if (old_text == NULL || !*old_text || new_text == NULL)
    return sbx_error_set (err, SBX_E_INVALID, "edit needs a non-empty old text and a new text");
  double deadline;
  int r = begin (sb, SBX_M_EDIT, path, FILE_TIMEOUT, &abs, &deadline, err);
  if (r < 0)
    return r;
  sbx_frame_str (&sb->out, SBX_T_OLD, old_text);
  sbx_frame_str (&sb->out, SBX_T_NEW, new_text);
  sbx_frame_int (&sb->out, SBX_T_FLAGS, replace_all ? SBX_F_ALL : 0);
  sbx_msg_t msg;
  if ((r = send_frame (sb, err)) < 0 || (r = sbx_agent_recv (sb, &msg, deadline, err)) < 0)
    return r;
  int64_t count = 0;
  if (msg.type == SBX_M_OK)
    {
      if ((r = sbx_agent_int (sb, &msg, SBX_T_COUNT, 1, INT64_MAX, &count, err)) < 0)
        return r;
      if (occurrences)
        *occurrences = (size_t) count;
      return 0;
    }
  /* Compose the sentence here: the counts are checked, the words are ours. */
  int64_t code = 0;
  sbx_msg_int (&msg, SBX_T_CODE, &code);
  if (msg.type == SBX_M_ERR && code == SBX_E_EDIT_NO_MATCH)
    return sbx_error_set (err, SBX_E_EDIT_NO_MATCH,
                          "the old text was not found in %s; read the file "
                          "and copy the text exactly, including whitespace",
                          abs);
  if (msg.type == SBX_M_ERR && code == SBX_E_EDIT_AMBIGUOUS
      && sbx_msg_int (&msg, SBX_T_COUNT, &count) == 0 && count > 1)
    {
      if (occurrences)
        *occurrences = (size_t) count;
      return sbx_error_set (err, SBX_E_EDIT_AMBIGUOUS,
                            "the old text occurs %lld times in %s; add "
                            "surrounding lines to make it unique, or replace all occurrences",
                            (long long) count, abs);
    }
  return sbx_agent_fail (sb, &msg, err);
}

SBX_EXPORT void
sbx_grep_result_free (sbx_grep_result_t *res)
{
  for (size_t i = 0; res && i < res->count; i++)
    {
      free (res->items[i].path);
      free (res->items[i].line);
    }
  if (res)
    {
      free (res->items);
      memset (res, 0, sizeof *res);
    }
}

static int
cmp_match (const void *a, const void *b)
{
  const sbx_grep_match_t *x = a, *y = b;
  int c = strcmp (x->path, y->path);
  return c ? c : (x->line_number > y->line_number) - (x->line_number < y->line_number);
}

static int
collect_matches (sbx_sandbox_t *sb, bounds_t *b, sbx_grep_result_t *out, size_t *cap,
                 double deadline, sbx_error_t **err)
{
  for (;;)
    {
      sbx_msg_t msg;
      int r = recv_item (sb, SBX_M_MATCH, &msg, &out->truncated, NULL, deadline, err);
      if (r <= 0)
        return r;
      const uint8_t *p, *l;
      size_t pn, ln;
      int64_t no;
      if ((r = sbx_agent_bytes (sb, &msg, SBX_T_PATH, MAX_PATH_BYTES, &p, &pn, err)) < 0
          || (r = sbx_agent_bytes (sb, &msg, SBX_T_LINE, MAX_GREP_LINE, &l, &ln, err)) < 0
          || (r = sbx_agent_int (sb, &msg, SBX_T_LINE_NO, 1, INT64_MAX, &no, err)) < 0)
        return r;
      if (pn == 0 || p[0] != '/' || memchr (p, 0, pn))
        return sbx_agent_protocol_error (sb, "invalid path", err);
      if (!fits (b, out->count, sizeof (sbx_grep_match_t) + pn + 1 + ln + 1))
        {
          out->truncated = true;
          continue;
        }
      if (out->count == *cap)
        {
          size_t ncap = *cap ? *cap * 2 : 64;
          sbx_grep_match_t *n = realloc (out->items, ncap * sizeof *n);
          if (n == NULL)
            {
              sbx_agent_disconnect (sb);
              return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
            }
          out->items = n;
          *cap = ncap;
        }
      sbx_grep_match_t *m = &out->items[out->count];
      m->path = strndup ((const char *) p, pn);
      /* Lines may hold NULs or invalid UTF-8; keep them printable. */
      m->line = malloc (ln + 1);
      if (!m->path || !m->line)
        {
          free (m->path);
          free (m->line);
          sbx_agent_disconnect (sb);
          return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
        }
      for (size_t i = 0; i < ln; i++)
        m->line[i] = l[i] ? (char) l[i] : ' ';
      m->line[ln] = '\0';
      m->line_number = (uint64_t) no;
      out->count++;
    }
}

/* Opens a GREP request in sb->out: the pattern, path, glob and flags of O,
 * with EXTRA flags, and the bounds left in B. */
static int
grep_begin (sbx_sandbox_t *sb, const char *pattern, const sbx_grep_opts_t *o, int64_t extra,
            const bounds_t *b, size_t count, double *deadline, sbx_error_t **err)
{
  cleanup_free char *abs = NULL;
  int r = begin (sb, SBX_M_GREP, o->path, FILE_TIMEOUT, &abs, deadline, err);
  if (r < 0)
    return r;
  sbx_frame_str (&sb->out, SBX_T_PATTERN, pattern);
  if (o->glob && *o->glob)
    sbx_frame_str (&sb->out, SBX_T_GLOB, o->glob);
  sbx_frame_int (&sb->out, SBX_T_FLAGS,
                 (o->include_hidden ? SBX_F_HIDDEN : 0) | (o->ignore_case ? SBX_F_ICASE : 0)
                     | extra);
  sbx_frame_int (&sb->out, SBX_T_MAX_RESULTS, (int64_t) (b->max_entries - count));
  sbx_frame_int (&sb->out, SBX_T_LIMIT, (int64_t) (b->max_bytes - b->bytes) + 1);
  return 0;
}

static bounds_t
grep_bounds (const sbx_grep_opts_t *o)
{
  return (bounds_t){ .max_entries = o->max_matches ? o->max_matches : DEFAULT_GREP_MATCHES,
                     .max_bytes = o->max_bytes ? o->max_bytes : SBX_DEFAULT_MAX_LIST_BYTES };
}

/* Searches O->files: their absolute paths go out in batches (a frame holds
 * at most 1 MiB), the matches add up within the bounds. */
static int
grep_files (sbx_sandbox_t *sb, const char *pattern, const sbx_grep_opts_t *o, bounds_t *b,
            sbx_grep_result_t *out, size_t *cap, sbx_error_t **err)
{
  sbx_buf_t batch;
  sbx_buf_init (&batch);
  int r = 0;
  for (const char *const *f = o->files; r == 0 && !out->truncated; f++)
    {
      if (*f)
        {
          cleanup_free char *abs = sbx_sandbox_path (sb, *f, err);
          if (abs == NULL)
            {
              r = -SBX_E_INVALID;
              break;
            }
          sbx_buf_append (&batch, abs, strlen (abs) + 1);
          if (batch.failed)
            {
              r = sbx_error_set (err, SBX_E_NOMEM, "out of memory");
              break;
            }
        }
      if (batch.len == 0 && *f == NULL)
        break;
      if (*f && batch.len < SBX_PROTO_MAX_BODY / 4)
        continue;
      double deadline;
      if ((r = grep_begin (sb, pattern, o, 0, b, out->count, &deadline, err)) == 0)
        {
          sbx_frame_bytes (&sb->out, SBX_T_PATHS, batch.data, batch.len);
          if ((r = send_frame (sb, err)) == 0)
            r = collect_matches (sb, b, out, cap, deadline, err);
        }
      sbx_buf_reset (&batch);
      if (*f == NULL)
        break;
    }
  sbx_buf_free (&batch);
  return r;
}

SBX_EXPORT int
sbx_grep (sbx_sandbox_t *sb, const char *pattern, const sbx_grep_opts_t *opts,
          sbx_grep_result_t *out, sbx_error_t **err)
{
  sbx_grep_opts_t none = { 0 };
  const sbx_grep_opts_t *o = opts ? opts : &none;
  bounds_t b = grep_bounds (o);
  size_t cap = 0;
  memset (out, 0, sizeof *out);
  if (pattern == NULL || !*pattern)
    return sbx_error_set (err, SBX_E_PATTERN, "empty search pattern");
  int r = sbx_sandbox_ensure (sb, err);
  double deadline;
  if (r == 0 && o->files)
    r = grep_files (sb, pattern, o, &b, out, &cap, err);
  else if (r == 0 && (r = grep_begin (sb, pattern, o, 0, &b, 0, &deadline, err)) == 0
           && (r = send_frame (sb, err)) == 0)
    r = collect_matches (sb, &b, out, &cap, deadline, err);
  if (r < 0)
    {
      sbx_grep_result_free (out);
      return r;
    }
  if (out->count > 1)
    qsort (out->items, out->count, sizeof *out->items, cmp_match);
  return 0;
}

SBX_EXPORT int
sbx_grep_files (sbx_sandbox_t *sb, const sbx_grep_opts_t *opts, sbx_file_list_t *out,
                sbx_error_t **err)
{
  sbx_grep_opts_t none = { 0 };
  const sbx_grep_opts_t *o = opts ? opts : &none;
  bounds_t b = grep_bounds (o);
  double deadline = 0;
  memset (out, 0, sizeof *out);
  /* Any pattern: nothing is read. */
  int r = grep_begin (sb, "x", o, SBX_F_LIST, &b, 0, &deadline, err);
  return list_request (sb, r, NULL, &b, deadline, cmp_path, out, err);
}
