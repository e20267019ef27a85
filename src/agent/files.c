/* STAT, LS, READ and READ_BYTES. */
#include "agent.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>

#define DEFAULT_MAX_ENTRIES 100000
#define READ_MAX_TOTAL (16u << 20)

int
open_regular (conn_t *c, const char *path, struct stat *st)
{
  /* O_NONBLOCK: opening a FIFO must not wait for a writer. */
  int fd = open (path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0)
    {
      reply_errno (c, errno, "cannot open %s", path);
      return -1;
    }
  if (fstat (fd, st) < 0)
    reply_errno (c, errno, "cannot stat %s", path);
  else if (S_ISDIR (st->st_mode))
    reply_err (c, SBX_E_IS_DIR, "%s is a directory", path);
  else if (!S_ISREG (st->st_mode))
    reply_err (c, SBX_E_INVALID, "%s is not a regular file", path);
  else
    return fd;
  close (fd);
  return -1;
}

static void
put_data (conn_t *c, const void *data, size_t len)
{
  sbx_frame_begin (&c->out, SBX_M_DATA);
  sbx_frame_bytes (&c->out, SBX_T_DATA, data, len);
  sbx_frame_end (&c->out);
}

void
handle_stat (conn_t *c, const sbx_msg_t *m)
{
  cleanup_free char *path = req_path (c, m, SBX_T_PATH);
  if (path == NULL)
    return;
  struct stat st;
  /* What a link points to, unless it points nowhere. */
  if (stat (path, &st) < 0)
    {
      int e = errno;
      if (lstat (path, &st) < 0 || !S_ISLNK (st.st_mode))
        {
          reply_errno (c, e, "cannot stat %s", path);
          return;
        }
    }
  sbx_frame_begin (&c->out, SBX_M_OK);
  sbx_frame_int (&c->out, SBX_T_KIND, kind_of_mode (st.st_mode));
  sbx_frame_int (&c->out, SBX_T_SIZE, st.st_size);
  sbx_frame_int (&c->out, SBX_T_MODE, st.st_mode);
  sbx_frame_end (&c->out);
}

void
handle_ls (conn_t *c, const sbx_msg_t *m)
{
  int64_t max = 0;
  cleanup_free char *path = req_path (c, m, SBX_T_PATH);
  if (path == NULL || req_int (c, m, SBX_T_MAX_RESULTS, 0, INT64_MAX, &max) < 0)
    return;
  if (max == 0)
    max = DEFAULT_MAX_ENTRIES;
  int fd = open (path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *d = fd >= 0 ? fdopendir (fd) : NULL;
  if (d == NULL)
    {
      int e = errno;
      if (fd >= 0)
        close (fd);
      reply_errno (c, e, "cannot list %s", path);
      return;
    }
  int64_t count = 0;
  bool truncated = false;
  for (;;)
    {
      errno = 0;
      struct dirent *e = readdir (d);
      if (e == NULL && errno)
        {
          reply_errno (c, errno, "cannot list %s", path);
          closedir (d);
          return;
        }
      if (e == NULL)
        break;
      if (strcmp (e->d_name, ".") == 0 || strcmp (e->d_name, "..") == 0)
        continue;
      struct stat st;
      int64_t size;
      /* Links are described by their target; dangling ones as links. */
      if (fstatat (dirfd (d), e->d_name, &st, 0) == 0)
        size = st.st_size;
      else if (fstatat (dirfd (d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
        size = 0;
      else
        continue;  /* removed since readdir */
      if (count == max)
        {
          truncated = true;
          break;
        }
      sbx_frame_begin (&c->out, SBX_M_ENTRY);
      sbx_frame_str (&c->out, SBX_T_NAME, e->d_name);
      sbx_frame_int (&c->out, SBX_T_KIND, kind_of_mode (st.st_mode));
      sbx_frame_int (&c->out, SBX_T_SIZE, size);
      sbx_frame_end (&c->out);
      count++;
      if (conn_pending (c) < 0)
        break;
    }
  closedir (d);
  sbx_frame_begin (&c->out, SBX_M_END);
  sbx_frame_int (&c->out, SBX_T_TRUNCATED, truncated);
  sbx_frame_end (&c->out);
}

/* Where READ is within the file. */
typedef struct lines {
  int64_t offset, limit;  /* the request */
  int64_t skipped;        /* lines skipped so far */
  int64_t count;          /* lines started in the reply */
  bool in_line;           /* the last byte sent was not a '\n' */
  size_t total;           /* bytes sent */
  bool more;              /* a line remains after the reply; reading stops */
} lines_t;

/* Skips and selects lines in one block; returns the selected run. */
static size_t
select_lines (lines_t *l, const char *p, const char *end, const char **run)
{
  *run = NULL;
  while (p < end && l->skipped < l->offset)
    {
      const char *nl = memchr (p, '\n', (size_t) (end - p));
      if (nl == NULL)
        return 0;
      p = nl + 1;
      l->skipped++;
    }
  *run = p;
  while (p < end)
    {
      if ((!l->in_line && l->count == l->limit) || l->total == READ_MAX_TOTAL)
        {
          l->more = true;
          break;
        }
      const char *nl = memchr (p, '\n', (size_t) (end - p));
      size_t len = nl ? (size_t) (nl + 1 - p) : (size_t) (end - p);
      if (len > READ_MAX_TOTAL - l->total)
        len = READ_MAX_TOTAL - l->total;
      if (!l->in_line)
        l->count++;
      l->in_line = p[len - 1] != '\n';
      l->total += len;
      p += len;
    }
  return (size_t) (p - *run);
}

void
handle_read (conn_t *c, const sbx_msg_t *m)
{
  lines_t l = { 0 };
  cleanup_free char *path = req_path (c, m, SBX_T_PATH);
  if (path == NULL || req_int (c, m, SBX_T_OFFSET, 0, INT64_MAX, &l.offset) < 0
      || req_int (c, m, SBX_T_LIMIT, 1, INT64_MAX, &l.limit) < 0)
    return;
  struct stat st;
  cleanup_close int fd = open_regular (c, path, &st);
  if (fd < 0)
    return;
  char buf[SBX_PROTO_CHUNK];
  for (bool first = true; !l.more; first = false)
    {
      /* Whole blocks, so the first one holds the full binary probe. */
      ssize_t n = read_full (fd, buf, sizeof buf);
      if (n < 0)
        {
          reply_errno (c, errno, "cannot read %s", path);
          return;
        }
      if (first && looks_binary (buf, (size_t) n))
        {
          reply_err (c, SBX_E_NOT_TEXT, "%s is binary; read it with read_bytes", path);
          return;
        }
      if (n == 0)
        break;
      const char *run;
      size_t len = select_lines (&l, buf, buf + n, &run);
      if (len)
        put_data (c, run, len);
      if (conn_pending (c) < 0)
        return;
    }
  sbx_frame_begin (&c->out, SBX_M_END);
  sbx_frame_int (&c->out, SBX_T_COUNT, l.count);
  sbx_frame_int (&c->out, SBX_T_MORE, l.more);
  sbx_frame_end (&c->out);
}

void
handle_read_bytes (conn_t *c, const sbx_msg_t *m)
{
  int64_t limit = 0;
  cleanup_free char *path = req_path (c, m, SBX_T_PATH);
  if (path == NULL || req_int (c, m, SBX_T_LIMIT, 0, INT64_MAX, &limit) < 0)
    return;
  struct stat st;
  cleanup_close int fd = open_regular (c, path, &st);
  if (fd < 0)
    return;
  if (limit && st.st_size > limit)
    {
      reply_err (c, SBX_E_TOO_LARGE, "%s is %lld bytes, more than the limit of %lld bytes", path,
                 (long long) st.st_size, (long long) limit);
      return;
    }
  char buf[SBX_PROTO_CHUNK];
  int64_t total = 0;
  for (;;)
    {
      /* The limit holds even if the file grows meanwhile. */
      size_t want = sizeof buf;
      if (limit && (uint64_t) (limit - total) < want)
        want = (size_t) (limit - total);
      ssize_t n = want ? read_full (fd, buf, want) : 0;
      if (n < 0)
        {
          reply_errno (c, errno, "cannot read %s", path);
          return;
        }
      if (n == 0)
        break;
      put_data (c, buf, (size_t) n);
      total += n;
      if (conn_pending (c) < 0)
        return;
    }
  sbx_frame_begin (&c->out, SBX_M_END);
  sbx_frame_int (&c->out, SBX_T_SIZE, total);
  sbx_frame_end (&c->out);
}
