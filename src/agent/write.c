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
#define EDIT_DEADLINE_MS 30000
/* A WRITE whose host sends nothing for this long is given up. */
#define WRITE_IDLE_MS 600000
/* Bytes written per slice. */
#define WRITE_SLICE (4u << 20)

typedef struct atomic
{
  char *target; /* the file replaced: PATH, or the file a link points to */
  char *tmp;
  int fd;
  int64_t size;
} atomic_t;

/* Replies to a failed write of PATH; past the file size cap, says so. */
static void
reply_write_error (conn_t *c, int err, const char *path)
{
  char cap[32];
  if (err == EFBIG && agent_max_file_size > 0)
    reply_err (c, SBX_E_TOO_LARGE,
               "cannot write %s: files in this sandbox are capped at %s (its disk limit, as "
               "the engine has no disk quota)",
               path, sbx_size_text (agent_max_file_size, cap));
  else if (err == EDQUOT || err == ENOSPC)
    reply_err (c, SBX_E_LIMIT,
               "cannot write %s: the sandbox's disk is full (%s); remove files "
               "or make the sandbox with a larger disk limit",
               path, strerror (err));
  else
    reply_errno (c, err, "cannot write %s", path);
}

static void
atomic_abort (atomic_t *a)
{
  if (a->fd >= 0)
    close (a->fd);
  if (a->tmp && unlink (a->tmp) < 0 && errno != ENOENT)
    agent_log ("cannot remove %s: %s", a->tmp, strerror (errno));
  free (a->tmp);
  free (a->target);
  *a = (atomic_t){ .fd = -1 };
}

/* Starts replacing PATH: creates missing parent directories and the
 * temporary file, with the mode (and owner) of the file it replaces, or
 * 0644. -1 with errno on failure (EISDIR for a directory). */
static int
atomic_open (atomic_t *a, const char *path)
{
  *a = (atomic_t){ .fd = -1 };
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
      if (sbx_mkdir_p (dir, 0755) < 0)
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
  *a = (atomic_t){ .fd = -1 };
  return 0;
}

/* ------------------------------------------------------------ WRITE */

/* WRITE{PATH} WRITE_DATA{DATA}* WRITE_END: one reply, after WRITE_END. An
 * error found early is kept until then, the data being read and dropped,
 * so the stream stays in step. */
typedef struct wjob
{
  char *path; /* NULL when the request was refused (its ERR is queued) */
  atomic_t a;
  int err;
  bool writing, ended;
  int64_t idle_until;
} wjob_t;

static void
wjob_free (wjob_t *w)
{
  atomic_abort (&w->a);
  free (w->path);
  free (w);
}

static bool
write_step (conn_t *c)
{
  wjob_t *w = c->job_data;
  if (!w->ended)
    {
      if (now_ms () < w->idle_until)
        {
          conn_wake_at (c, w->idle_until);
          return false;
        }
      /* The target stays as it was; what the host sends later would be
         out of step. */
      reply_err (c, SBX_E_TIMEOUT, "writing %s: nothing came for %d s; nothing was written",
                 w->path ? w->path : "the file", WRITE_IDLE_MS / 1000);
      conn_close (c);
    }
  else if (w->path)
    {
      int64_t size = w->a.size;
      if (w->writing && atomic_commit (&w->a) < 0)
        w->err = errno;
      if (w->err)
        reply_write_error (c, w->err, w->path);
      else
        reply_ok (c, SBX_T_SIZE, size);
    }
  wjob_free (w);
  return true;
}

static void
write_message (conn_t *c, const sbx_msg_t *m)
{
  wjob_t *w = c->job_data;
  const sbx_field_t *f;
  if (w->ended)
    conn_protocol_error (c, "a message after WRITE_END");
  else if (m->type == SBX_M_WRITE_END)
    {
      w->ended = true;
      conn_wake (c);
    }
  else if (m->type == SBX_M_WRITE_DATA && (f = sbx_msg_field (m, SBX_T_DATA)) != NULL)
    {
      w->idle_until = now_ms () + WRITE_IDLE_MS;
      if (w->writing && atomic_write (&w->a, f->data, f->len) < 0)
        {
          w->err = errno;
          w->writing = false;
          atomic_abort (&w->a);
        }
    }
  else
    /* The target stays as it was. */
    conn_protocol_error (c, "expected WRITE_DATA{DATA} or WRITE_END");
}

static void
write_abort (conn_t *c)
{
  wjob_free (c->job_data);
}

static const job_ops_t write_ops = { write_step, write_message, write_abort };

void
handle_write (conn_t *c, const sbx_msg_t *m)
{
  wjob_t *w = calloc (1, sizeof *w);
  if (w == NULL)
    {
      /* The data that follows cannot be kept in step. */
      reply_err (c, SBX_E_IO, "out of memory");
      conn_close (c);
      return;
    }
  w->a = (atomic_t){ .fd = -1 };
  w->path = req_path (c, m, SBX_T_PATH);
  if (w->path && atomic_open (&w->a, w->path) < 0)
    w->err = errno;
  w->writing = w->path && !w->err;
  w->idle_until = now_ms () + WRITE_IDLE_MS;
  conn_start_job (c, &write_ops, w);
  /* Nothing to do until data comes. */
  c->runnable = false;
  conn_wake_at (c, w->idle_until);
}

/* ------------------------------------------------------------ EDIT */

typedef struct edit
{
  char *path;
  int fd;
  int64_t deadline;
  char *buf;        /* the file, read in slices */
  size_t size, len; /* as stat said; read so far */
  char *old, *new;
  size_t old_len, new_len;
  bool all;
  int64_t count;
  atomic_t a;  /* open once the file is read and checked */
  size_t done; /* bytes of buf written out */
} edit_t;

static void
edit_free (edit_t *e)
{
  close_fd (&e->fd);
  atomic_abort (&e->a);
  free (e->path);
  free (e->buf);
  free (e->old);
  free (e->new);
  free (e);
}

/* Reads on; 1 when the whole file is in, 0 to go on, -1 after an ERR. */
static int
edit_read (conn_t *c, edit_t *e, int64_t until)
{
  while (now_ms () < until)
    {
      /* One byte more than the size: a file that grew is noticed. */
      size_t want = e->size + 1 - e->len;
      if (want > (1u << 20))
        want = 1u << 20;
      ssize_t n = read_full (e->fd, e->buf + e->len, want);
      if (n < 0)
        {
          reply_errno (c, errno, "cannot read %s", e->path);
          return -1;
        }
      e->len += (size_t) n;
      if (e->len > e->size)
        {
          reply_err (c, SBX_E_IO, "%s changed while being read; try again", e->path);
          return -1;
        }
      if ((size_t) n < want)
        return 1;
    }
  return 0;
}

/* Counts the matches and checks them; 0, or -1 after an ERR. */
static int
edit_check (conn_t *c, edit_t *e)
{
  const char *end = e->buf + e->len;
  for (const char *p = e->buf, *q; (q = memmem (p, (size_t) (end - p), e->old, e->old_len));
       p = q + e->old_len)
    e->count++;
  if (e->count == 0)
    reply_err_count (c, SBX_E_EDIT_NO_MATCH, 0, "the old text was not found");
  else if (e->count > 1 && !e->all)
    reply_err_count (c, SBX_E_EDIT_AMBIGUOUS, e->count, "the old text occurs more than once");
  else if ((int64_t) e->len + e->count * ((int64_t) e->new_len - (int64_t) e->old_len)
           > EDIT_MAX_SIZE)
    reply_err (c, SBX_E_TOO_LARGE, "the edited %s would exceed %u MiB", e->path,
               EDIT_MAX_SIZE >> 20);
  else if (atomic_open (&e->a, e->path) < 0)
    reply_write_error (c, errno, e->path);
  else
    return 0;
  return -1;
}

/* Writes on; 1 when all is written and committed, 0 to go on, -1 after an
 * ERR. */
static int
edit_write (conn_t *c, edit_t *e, int64_t until)
{
  const char *end = e->buf + e->len;
  while (now_ms () < until)
    {
      const char *p = e->buf + e->done;
      const char *q = memmem (p, (size_t) (end - p), e->old, e->old_len);
      size_t plain = q ? (size_t) (q - p) : (size_t) (end - p);
      if (plain > WRITE_SLICE)
        {
          q = NULL;
          plain = WRITE_SLICE;
        }
      if (atomic_write (&e->a, p, plain) < 0 || (q && atomic_write (&e->a, e->new, e->new_len) < 0))
        goto fail;
      e->done += plain + (q ? e->old_len : 0);
      if (e->done == e->len)
        {
          if (atomic_commit (&e->a) < 0)
            goto fail;
          return 1;
        }
    }
  return 0;
fail:
  reply_write_error (c, errno, e->path);
  return -1;
}

static bool
edit_step (conn_t *c)
{
  edit_t *e = c->job_data;
  int64_t until = now_ms () + SLICE_MS;
  int r = 0;
  if (now_ms () >= e->deadline)
    {
      reply_err (c, SBX_E_TIMEOUT,
                 "editing %s took longer than its time limit; nothing was "
                 "changed",
                 e->path);
      r = -1;
    }
  else if (e->fd >= 0)
    {
      if ((r = edit_read (c, e, until)) > 0)
        {
          close_fd (&e->fd);
          r = edit_check (c, e);
        }
    }
  else if ((r = edit_write (c, e, until)) > 0)
    reply_ok (c, SBX_T_COUNT, e->count);
  if (r == 0)
    {
      conn_wake (c);
      return false;
    }
  edit_free (e);
  return true;
}

static void
edit_abort (conn_t *c)
{
  edit_free (c->job_data);
}

static const job_ops_t edit_ops = { edit_step, NULL, edit_abort };

void
handle_edit (conn_t *c, const sbx_msg_t *m)
{
  int64_t flags = 0, deadline;
  cleanup_free char *path = req_path (c, m, SBX_T_PATH);
  if (path == NULL || req_int (c, m, SBX_T_FLAGS, 0, INT32_MAX, &flags) < 0
      || req_deadline (c, m, EDIT_DEADLINE_MS, &deadline) < 0)
    return;
  const sbx_field_t *old = sbx_msg_field (m, SBX_T_OLD), *new = sbx_msg_field (m, SBX_T_NEW);
  if (old == NULL || new == NULL || old->len == 0)
    {
      reply_err (c, SBX_E_INVALID, "edit needs a non-empty old text and a new text");
      return;
    }
  struct stat st;
  int fd = open_regular (c, path, &st);
  if (fd < 0)
    return;
  if (st.st_size > EDIT_MAX_SIZE)
    {
      reply_err (c, SBX_E_TOO_LARGE, "%s is %lld bytes; edit handles files up to %u MiB", path,
                 (long long) st.st_size, EDIT_MAX_SIZE >> 20);
      close (fd);
      return;
    }
  edit_t *e = calloc (1, sizeof *e);
  if (e == NULL || (e->buf = malloc ((size_t) st.st_size + 1)) == NULL
      || (e->old = malloc (old->len)) == NULL || (e->new = malloc (new->len + 1)) == NULL)
    {
      if (e)
        {
          free (e->buf);
          free (e->old);
          free (e);
        }
      close (fd);
      reply_err (c, SBX_E_IO, "out of memory editing %s", path);
      return;
    }
  memcpy (e->old, old->data, old->len);
  memcpy (e->new, new->data, new->len);
  e->old_len = old->len;
  e->new_len = new->len;
  e->fd = fd;
  e->a = (atomic_t){ .fd = -1 };
  e->size = (size_t) st.st_size;
  e->all = flags & SBX_F_ALL;
  e->deadline = deadline;
  e->path = steal_pointer (&path);
  conn_start_job (c, &edit_ops, e);
}
