/* WRITE and EDIT. Both replace a file atomically: the new content goes to
 * a temporary file in the same directory, which is then renamed over the
 * target, so readers see the old file or the new one, never a mix. There
 * is no fsync: the point is atomicity towards readers, not durability
 * across a crash of the machine (the sandbox is disposable). */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#define EDIT_MAX_SIZE (64u << 20)

typedef struct atomic {
  char *target;  /* the file replaced: PATH, or the file a link points to */
  char *tmp;
  int fd;
  int64_t size;
} atomic_t;

static void
atomic_abort (atomic_t *a)
{
  if (a->fd >= 0)
    close (a->fd);
  if (a->tmp && unlink (a->tmp) < 0 && errno != ENOENT)
    agent_log ("cannot remove %s: %s", a->tmp, strerror (errno));
  free (a->tmp);
  free (a->target);
  *a = (atomic_t) { .fd = -1 };
}

/* Starts replacing PATH: creates missing parent directories and the
 * temporary file, with the mode (and owner) of the file it replaces, or
 * 0644. -1 with errno on failure (EISDIR for a directory). */
static int
atomic_open (atomic_t *a, const char *path)
{
  *a = (atomic_t) { .fd = -1 };
  struct stat st;
  /* Writing through a link writes the file it points to; a dangling link
     is replaced by the file. */
  if (lstat (path, &st) == 0 && S_ISLNK (st.st_mode))
    a->target = realpath (path, NULL);
  if (a->target == NULL && (a->target = strdup (path)) == NULL)
    return -1;
  mode_t mode = 0644;
  bool exists = stat (a->target, &st) == 0;
  if (!exists && errno != ENOENT)
    goto fail;
  if (exists && S_ISDIR (st.st_mode))
    {
      errno = EISDIR;
      goto fail;
    }
  exists = exists && S_ISREG (st.st_mode);
  if (exists)
    mode = st.st_mode & 07777;

  const char *slash = strrchr (a->target, '/');
  int dirlen = (int) (slash - a->target);
  if (slash[1] == '\0')
    {
      errno = EISDIR;
      goto fail;
    }
  if (!exists && dirlen > 0)
    {
      char dir[4096];
      snprintf (dir, sizeof dir, "%.*s", dirlen, a->target);
      if (mkdir_p (dir, 0755) < 0)
        goto fail;
    }
  /* The name is cut so that it stays within NAME_MAX. */
  if (asprintf (&a->tmp, "%.*s/.%.200s.sbx-XXXXXX", dirlen, a->target, slash + 1) < 0)
    {
      a->tmp = NULL;
      goto fail;
    }
  if ((a->fd = mkostemp (a->tmp, O_CLOEXEC)) < 0)
    {
      free (a->tmp);
      a->tmp = NULL;
      goto fail;
    }
  /* Only root may give a file away: otherwise the new file stays ours. */
  if (exists && fchown (a->fd, st.st_uid, st.st_gid) < 0 && errno != EPERM)
    goto fail;
  /* After fchown, which clears set-id bits; and regardless of the umask. */
  if (fchmod (a->fd, mode) < 0)
    goto fail;
  return 0;
fail:;
  int e = errno;
  atomic_abort (a);
  errno = e;
  return -1;
}

static int
atomic_write (atomic_t *a, const void *data, size_t len)
{
  if (sbx_write_all (a->fd, data, len) < 0)
    return -1;
  a->size += (int64_t) len;
  return 0;
}

static int
atomic_commit (atomic_t *a)
{
  int fd = a->fd;
  a->fd = -1;
  if (close (fd) < 0 || rename (a->tmp, a->target) < 0)
    {
      int e = errno;
      atomic_abort (a);
      errno = e;
      return -1;
    }
  free (a->tmp);
  free (a->target);
  *a = (atomic_t) { .fd = -1 };
  return 0;
}

static void
reply_size (conn_t *c, uint8_t tag, int64_t v)
{
  sbx_frame_begin (&c->out, SBX_M_OK);
  sbx_frame_int (&c->out, tag, v);
  sbx_frame_end (&c->out);
}

/* WRITE{PATH} WRITE_DATA{DATA}* WRITE_END: one reply, after WRITE_END. An
 * error found early is kept until then, the data being read and dropped,
 * so the stream stays in step. */
void
handle_write (conn_t *c, const sbx_msg_t *m)
{
  cleanup_free char *path = req_path (c, m, SBX_T_PATH);
  atomic_t a = { .fd = -1 };
  int err = 0;
  if (path && atomic_open (&a, path) < 0)
    err = errno;
  bool writing = path && !err;
  for (;;)
    {
      sbx_msg_t d;
      const sbx_field_t *f = NULL;
      int r = conn_recv (c, &d);
      if (r > 0 && d.type == SBX_M_WRITE_END)
        break;
      if (r > 0 && d.type == SBX_M_WRITE_DATA && (f = sbx_msg_field (&d, SBX_T_DATA)) != NULL)
        {
          if (writing && atomic_write (&a, f->data, f->len) < 0)
            {
              err = errno;
              writing = false;
              atomic_abort (&a);
            }
          continue;
        }
      /* The host went away or broke the stream: the target stays as it was. */
      atomic_abort (&a);
      if (r > 0 || c->rd.error)
        conn_protocol_error (c, r > 0 ? "expected WRITE_DATA{DATA} or WRITE_END" : c->rd.error);
      return;
    }
  if (path == NULL)
    return;  /* the ERR is queued already */
  int64_t size = a.size;
  if (writing && atomic_commit (&a) < 0)
    err = errno;
  if (err)
    reply_errno (c, err, "cannot write %s", path);
  else
    reply_size (c, SBX_T_SIZE, size);
}

/* Reads all of FD (whose size was SIZE) into a new buffer. */
static char *
slurp (conn_t *c, int fd, const char *path, size_t size, size_t *len)
{
  char *buf = malloc (size + 1);
  if (buf == NULL)
    {
      reply_err (c, SBX_E_IO, "out of memory reading %s", path);
      return NULL;
    }
  ssize_t n = read_full (fd, buf, size + 1);
  if (n < 0)
    reply_errno (c, errno, "cannot read %s", path);
  else if ((size_t) n > size)
    reply_err (c, SBX_E_IO, "%s changed while being read; try again", path);
  else
    {
      *len = (size_t) n;
      return buf;
    }
  free (buf);
  return NULL;
}

void
handle_edit (conn_t *c, const sbx_msg_t *m)
{
  int64_t flags = 0;
  cleanup_free char *path = req_path (c, m, SBX_T_PATH);
  if (path == NULL || req_int (c, m, SBX_T_FLAGS, 0, INT32_MAX, &flags) < 0)
    return;
  const sbx_field_t *old = sbx_msg_field (m, SBX_T_OLD), *new = sbx_msg_field (m, SBX_T_NEW);
  if (old == NULL || new == NULL || old->len == 0)
    {
      reply_err (c, SBX_E_INVALID, "edit needs a non-empty old text and a new text");
      return;
    }
  struct stat st;
  cleanup_close int fd = open_regular (c, path, &st);
  if (fd < 0)
    return;
  if (st.st_size > EDIT_MAX_SIZE)
    {
      reply_err (c, SBX_E_TOO_LARGE, "%s is %lld bytes; edit handles files up to %u MiB", path,
                 (long long) st.st_size, EDIT_MAX_SIZE >> 20);
      return;
    }
  size_t len;
  cleanup_free char *buf = slurp (c, fd, path, (size_t) st.st_size, &len);
  if (buf == NULL)
    return;
  const char *end = buf + len;
  int64_t count = 0;
  for (const char *p = buf, *q; (q = memmem (p, (size_t) (end - p), old->data, old->len));
       p = q + old->len)
    count++;
  if (count == 0)
    {
      reply_err_count (c, SBX_E_EDIT_NO_MATCH, 0, "the old text was not found");
      return;
    }
  if (count > 1 && !(flags & SBX_F_ALL))
    {
      reply_err_count (c, SBX_E_EDIT_AMBIGUOUS, count, "the old text occurs more than once");
      return;
    }
  if ((int64_t) len + count * ((int64_t) new->len - (int64_t) old->len) > EDIT_MAX_SIZE)
    {
      reply_err (c, SBX_E_TOO_LARGE, "the edited %s would exceed %u MiB", path,
                 EDIT_MAX_SIZE >> 20);
      return;
    }
  atomic_t a;
  if (atomic_open (&a, path) < 0)
    {
      reply_errno (c, errno, "cannot write %s", path);
      return;
    }
  const char *p = buf, *q;
  int r = 0;
  while (r == 0 && (q = memmem (p, (size_t) (end - p), old->data, old->len)))
    {
      r = atomic_write (&a, p, (size_t) (q - p)) < 0 || atomic_write (&a, new->data, new->len) < 0;
      p = q + old->len;
    }
  if (r == 0 && (atomic_write (&a, p, (size_t) (end - p)) < 0 || atomic_commit (&a) < 0))
    r = 1;
  if (r)
    {
      int e = errno;
      atomic_abort (&a);
      reply_errno (c, e, "cannot write %s", path);
      return;
    }
  reply_size (c, SBX_T_COUNT, count);
}
