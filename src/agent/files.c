/* STAT, RESOLVE, LS, READ and READ_BYTES. Listings and reads run as jobs
 * in slices, each within its deadline: a directory of millions of entries,
 * a huge sparse file or one endless line ends the request on time, as a
 * listing flagged truncated or as ERR{TIMEOUT}. */
#include "agent.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#define DEFAULT_MAX_ENTRIES 100000
#define READ_MAX_TOTAL (16u << 20)
#define MAX_LINKS 40
#define LS_DEADLINE_MS 30000
#define READ_DEADLINE_MS 30000
#define READ_BYTES_DEADLINE_MS 60000

int
open_regular (conn_t *c, const char *path, struct stat *st)
{
  /* O_NONBLOCK: opening a FIFO must not wait for a writer, nor a file
     under a lease for its holder. */
  int fd = open (path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0)
    {
      if (errno == EWOULDBLOCK)
        reply_err (c, SBX_E_PERMISSION,
                   "cannot open %s: a process in the sandbox holds a lease "
                   "on it",
                   path);
      else if (errno == ENXIO)
        reply_err (c, SBX_E_INVALID, "%s is not a regular file (a socket)", path);
      else
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

/* ------------------------------------------------------------ RESOLVE */

/* Drops the last component of the resolved path RES (length *LEN). */
static void
pop (char *res, size_t *len)
{
  while (*len > 0 && res[*len - 1] != '/')
    (*len)--;
  if (*len > 0)
    (*len)--;
  res[*len] = '\0';
}

/* PATH with its symbolic links resolved as far as it exists, the rest
 * lexically, as `realpath -m` does, into RES (PATH_MAX bytes). -1 with
 * errno (ELOOP, ENAMETOOLONG, or what lstat said). */
static int
resolve (const char *path, char *res)
{
  /* What is left to walk: a link's target goes in front of it. */
  char rest[2 * PATH_MAX];
  size_t rest_len = strlen (path), len = 0;
  if (rest_len >= sizeof rest)
    return errno = ENAMETOOLONG, -1;
  memcpy (rest, path, rest_len + 1);
  res[0] = '\0';
  int links = 0;
  bool missing = false;
  size_t pos = 0;
  while (pos < rest_len)
    {
      while (rest[pos] == '/')
        pos++;
      if (pos >= rest_len)
        break;
      const char *comp = rest + pos;
      size_t n = strcspn (comp, "/");
      pos += n;
      if (n == 1 && comp[0] == '.')
        continue;
      if (n == 2 && comp[0] == '.' && comp[1] == '.')
        {
          pop (res, &len);
          continue;
        }
      if (len + 1 + n >= PATH_MAX)
        return errno = ENAMETOOLONG, -1;
      res[len++] = '/';
      memcpy (res + len, comp, n);
      len += n;
      res[len] = '\0';
      if (missing)
        continue;
      struct stat st;
      if (lstat (res, &st) < 0)
        {
          if (errno != ENOENT && errno != ENOTDIR)
            return -1;
          missing = true;
          continue;
        }
      if (S_ISLNK (st.st_mode))
        {
          char target[PATH_MAX];
          ssize_t t = readlink (res, target, sizeof target - 1);
          if (t < 0)
            return -1;
          if (++links > MAX_LINKS)
            return errno = ELOOP, -1;
          size_t tail = rest_len - pos;
          if ((size_t) t + tail >= sizeof rest)
            return errno = ENAMETOOLONG, -1;
          /* rest = target + what followed the link */
          memmove (rest + t, rest + pos, tail + 1);
          memcpy (rest, target, (size_t) t);
          rest_len = (size_t) t + tail;
          pos = 0;
          if (t > 0 && target[0] == '/')
            len = 0, res[0] = '\0';
          else
            pop (res, &len);
        }
      else if (!S_ISDIR (st.st_mode))
        missing = true; /* whatever follows a file is only a name */
    }
  if (len == 0)
    strcpy (res, "/");
  return 0;
}

void
handle_resolve (conn_t *c, const sbx_msg_t *m)
{
  cleanup_free char *path = req_path (c, m, SBX_T_PATH);
  if (path == NULL)
    return;
  char res[PATH_MAX];
  if (resolve (path, res) < 0)
    {
      if (errno == ELOOP)
        reply_err (c, SBX_E_INVALID,
                   "cannot resolve %s: it goes through more than %d symbolic "
                   "links (a loop)",
                   path, MAX_LINKS);
      else
        reply_errno (c, errno, "cannot resolve %s", path);
      return;
    }
  struct stat st;
  bool exists = stat (res, &st) == 0;
  sbx_frame_begin (&c->out, SBX_M_OK);
  sbx_frame_str (&c->out, SBX_T_PATH, res);
  sbx_frame_int (&c->out, SBX_T_EXISTS, exists);
  if (exists)
    {
      sbx_frame_int (&c->out, SBX_T_KIND, kind_of_mode (st.st_mode));
      sbx_frame_int (&c->out, SBX_T_SIZE, st.st_size);
      sbx_frame_int (&c->out, SBX_T_MODE, st.st_mode);
      sbx_frame_int (&c->out, SBX_T_DEV, (int64_t) st.st_dev);
      sbx_frame_int (&c->out, SBX_T_INO, (int64_t) st.st_ino);
      sbx_frame_int (&c->out, SBX_T_MTIME_NS,
                     (int64_t) st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec);
      sbx_frame_int (&c->out, SBX_T_CTIME_NS,
                     (int64_t) st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec);
    }
  sbx_frame_end (&c->out);
}

/* ------------------------------------------------------------ LS */

typedef struct ls
{
  DIR *d;
  int64_t max, count, deadline;
  int64_t limit, sent; /* bytes of names: the bound (0: none), sent so far */
  int64_t found;       /* entries seen, sent or not */
  bool full;           /* no more are sent; the rest is counted */
} ls_t;

static void
ls_free (ls_t *l)
{
  if (l->d)
    closedir (l->d);
  free (l);
}

static bool
ls_step (conn_t *c)
{
  ls_t *l = c->job_data;
  int64_t until = now_ms () + SLICE_MS;
  const char *why = NULL;
  bool truncated = false;
  for (unsigned i = 0;; i++)
    {
      if (!l->full && !conn_room (c))
        {
          c->want_room = true;
          return false;
        }
      if ((i & 63) == 63 && now_ms () >= until)
        {
          if (now_ms () < l->deadline)
            {
              conn_wake (c);
              return false;
            }
          truncated = true;
          why = "the listing ran past its time limit";
          break;
        }
      errno = 0;
      struct dirent *e = readdir (l->d);
      if (e == NULL && errno)
        {
          reply_errno (c, errno, "cannot list the directory");
          ls_free (l);
          return true;
        }
      if (e == NULL)
        break;
      if (strcmp (e->d_name, ".") == 0 || strcmp (e->d_name, "..") == 0)
        continue;
      struct stat st;
      int64_t size;
      /* Links are described by their target; dangling ones as links. */
      if (fstatat (dirfd (l->d), e->d_name, &st, 0) == 0)
        size = st.st_size;
      else if (fstatat (dirfd (l->d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
        size = 0;
      else
        continue; /* removed since readdir */
      l->found++;
      int64_t cost = (int64_t) strlen (e->d_name) + ENTRY_OVERHEAD;
      if (!l->full && (l->count == l->max || (l->limit && l->sent + cost > l->limit)))
        l->full = true;
      if (l->full)
        continue;
      sbx_frame_begin (&c->out, SBX_M_ENTRY);
      sbx_frame_str (&c->out, SBX_T_NAME, e->d_name);
      sbx_frame_int (&c->out, SBX_T_KIND, kind_of_mode (st.st_mode));
      sbx_frame_int (&c->out, SBX_T_SIZE, size);
      sbx_frame_end (&c->out);
      l->count++;
      l->sent += cost;
    }
  sbx_frame_begin (&c->out, SBX_M_END);
  sbx_frame_int (&c->out, SBX_T_TRUNCATED, truncated || l->full);
  sbx_frame_int (&c->out, SBX_T_COUNT, l->found);
  if (why)
    sbx_frame_str (&c->out, SBX_T_MESSAGE, why);
  sbx_frame_end (&c->out);
  ls_free (l);
  return true;
}

static void
ls_abort (conn_t *c)
{
  ls_free (c->job_data);
}

static const job_ops_t ls_ops = { ls_step, NULL, ls_abort };

void
handle_ls (conn_t *c, const sbx_msg_t *m)
{
  int64_t max = 0, limit = 0, deadline;
  cleanup_free char *path = req_path (c, m, SBX_T_PATH);
  if (path == NULL || req_int (c, m, SBX_T_MAX_RESULTS, 0, INT64_MAX, &max) < 0
      || req_int (c, m, SBX_T_LIMIT, 0, INT64_MAX, &limit) < 0
      || req_deadline (c, m, LS_DEADLINE_MS, &deadline) < 0)
    return;
  int fd = open (path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NONBLOCK);
  DIR *d = fd >= 0 ? fdopendir (fd) : NULL;
  ls_t *l = d ? calloc (1, sizeof *l) : NULL;
  if (l == NULL)
    {
      int e = errno;
      if (d)
        closedir (d);
      else if (fd >= 0)
        close (fd);
      reply_errno (c, e, "cannot list %s", path);
      return;
    }
  *l = (ls_t){
    .d = d, .max = max ? max : DEFAULT_MAX_ENTRIES, .deadline = deadline, .limit = limit
  };
  conn_start_job (c, &ls_ops, l);
}

/* ------------------------------------------------------------ READ */

/* Where READ is within the file. */
typedef struct lines
{
  int fd;
  int64_t deadline;
  char *path;
  bool first;            /* the first block is yet to come */
  int64_t offset, limit; /* the request */
  int64_t skipped;       /* lines skipped so far */
  int64_t count;         /* lines started in the reply */
  bool in_line;          /* the last byte sent was not a '\n' */
  size_t total;          /* bytes sent */
  bool more;             /* a line remains after the reply; reading stops */
} lines_t;

static void
lines_free (lines_t *l)
{
  close_fd (&l->fd);
  free (l->path);
  free (l);
}

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

static bool
read_step (conn_t *c)
{
  lines_t *l = c->job_data;
  int64_t until = now_ms () + SLICE_MS;
  char buf[SBX_PROTO_CHUNK];
  while (!l->more)
    {
      if (!conn_room (c))
        {
          c->want_room = true;
          return false;
        }
      if (now_ms () >= l->deadline)
        {
          reply_err (c, SBX_E_TIMEOUT,
                     "reading %s took longer than its time limit; read a "
                     "smaller range, or stream the file with read_bytes",
                     l->path);
          lines_free (l);
          return true;
        }
      if (now_ms () >= until)
        {
          conn_wake (c);
          return false;
        }
      /* Whole blocks, so the first one holds the full binary probe. */
      ssize_t n = read_full (l->fd, buf, sizeof buf);
      if (n < 0)
        {
          reply_errno (c, errno, "cannot read %s", l->path);
          lines_free (l);
          return true;
        }
      if (l->first && looks_binary (buf, (size_t) n))
        {
          reply_err (c, SBX_E_NOT_TEXT, "%s is binary; read it with read_bytes", l->path);
          lines_free (l);
          return true;
        }
      l->first = false;
      if (n == 0)
        break;
      const char *run;
      size_t len = select_lines (l, buf, buf + n, &run);
      if (len)
        put_data (c, run, len);
    }
  sbx_frame_begin (&c->out, SBX_M_END);
  sbx_frame_int (&c->out, SBX_T_COUNT, l->count);
  sbx_frame_int (&c->out, SBX_T_MORE, l->more);
  sbx_frame_end (&c->out);
  lines_free (l);
  return true;
}

static void
read_abort (conn_t *c)
{
  lines_free (c->job_data);
}

static const job_ops_t read_ops = { read_step, NULL, read_abort };

void
handle_read (conn_t *c, const sbx_msg_t *m)
{
  lines_t l = { .fd = -1, .first = true };
  cleanup_free char *path = req_path (c, m, SBX_T_PATH);
  if (path == NULL || req_int (c, m, SBX_T_OFFSET, 0, INT64_MAX, &l.offset) < 0
      || req_int (c, m, SBX_T_LIMIT, 1, INT64_MAX, &l.limit) < 0
      || req_deadline (c, m, READ_DEADLINE_MS, &l.deadline) < 0)
    return;
  struct stat st;
  if ((l.fd = open_regular (c, path, &st)) < 0)
    return;
  lines_t *job = malloc (sizeof *job);
  if (job == NULL)
    {
      close (l.fd);
      reply_err (c, SBX_E_IO, "out of memory");
      return;
    }
  l.path = steal_pointer (&path);
  *job = l;
  conn_start_job (c, &read_ops, job);
}

/* ------------------------------------------------------------ READ_BYTES */

typedef struct bytes
{
  int fd;
  int64_t deadline, limit, total;
  char *path;
} bytes_t;

static void
bytes_free (bytes_t *b)
{
  close_fd (&b->fd);
  free (b->path);
  free (b);
}

static bool
read_bytes_step (conn_t *c)
{
  bytes_t *b = c->job_data;
  int64_t until = now_ms () + SLICE_MS;
  char buf[SBX_PROTO_CHUNK];
  for (;;)
    {
      if (!conn_room (c))
        {
          c->want_room = true;
          return false;
        }
      if (now_ms () >= b->deadline)
        {
          reply_err (c, SBX_E_TIMEOUT, "reading %s took longer than its time limit", b->path);
          break;
        }
      if (now_ms () >= until)
        {
          conn_wake (c);
          return false;
        }
      /* The limit holds even if the file grows meanwhile. */
      size_t want = sizeof buf;
      if (b->limit && (uint64_t) (b->limit - b->total) < want)
        want = (size_t) (b->limit - b->total);
      ssize_t n = want ? read_full (b->fd, buf, want) : 0;
      if (n < 0)
        {
          reply_errno (c, errno, "cannot read %s", b->path);
          break;
        }
      if (n == 0)
        {
          sbx_frame_begin (&c->out, SBX_M_END);
          sbx_frame_int (&c->out, SBX_T_SIZE, b->total);
          sbx_frame_end (&c->out);
          break;
        }
      put_data (c, buf, (size_t) n);
      b->total += n;
    }
  bytes_free (b);
  return true;
}

static void
read_bytes_abort (conn_t *c)
{
  bytes_free (c->job_data);
}

static const job_ops_t read_bytes_ops = { read_bytes_step, NULL, read_bytes_abort };

void
handle_read_bytes (conn_t *c, const sbx_msg_t *m)
{
  int64_t limit = 0, deadline;
  cleanup_free char *path = req_path (c, m, SBX_T_PATH);
  if (path == NULL || req_int (c, m, SBX_T_LIMIT, 0, INT64_MAX, &limit) < 0
      || req_deadline (c, m, READ_BYTES_DEADLINE_MS, &deadline) < 0)
    return;
  struct stat st;
  int fd = open_regular (c, path, &st);
  if (fd < 0)
    return;
  if (limit && st.st_size > limit)
    {
      reply_err (c, SBX_E_TOO_LARGE, "%s is %lld bytes, more than the limit of %lld bytes", path,
                 (long long) st.st_size, (long long) limit);
      close (fd);
      return;
    }
  bytes_t *b = malloc (sizeof *b);
  if (b == NULL)
    {
      close (fd);
      reply_err (c, SBX_E_IO, "out of memory");
      return;
    }
  *b = (bytes_t){ .fd = fd, .deadline = deadline, .limit = limit, .path = steal_pointer (&path) };
  conn_start_job (c, &read_bytes_ops, b);
}
