/* Depth-first directory walks that run in slices, shared by GLOB and GREP,
 * and GLOB itself.
 *
 * The walk keeps its own stack of open directories (no recursion, so it
 * can stop after any entry and go on at the next slice). Directories are
 * read with getdents64 into a small buffer per level, symbolic links to
 * directories are never followed, and both the depth and the number of
 * entries visited are bounded. */
#include "agent.h"
#include "glob.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define WALK_MAX_ENTRIES 2000000ul
#define WALK_MAX_DEPTH 256
#define DEFAULT_MAX_RESULTS 100000
#define GLOB_DEADLINE_MS 30000

struct walk_level
{
  int fd;
  size_t len; /* of w->path for this directory, its trailing '/' included */
  ssize_t n, off;
  char buf[4096] __attribute__ ((aligned (8)));
};

int
walk_open_root (conn_t *c, const char *root)
{
  int fd = open (root, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0)
    reply_errno (c, errno, "cannot search %s", root);
  return fd;
}

/* Kernel file systems that a walk from "/" would only get lost in. */
static bool
is_pseudo_fs (const char *name)
{
  return strcmp (name, "proc") == 0 || strcmp (name, "sys") == 0 || strcmp (name, "dev") == 0;
}

/* Enters the directory FD, whose path fills w->path up to LEN (with its
 * trailing '/'); closes FD when it cannot. */
static bool
push (walk_t *w, int fd, size_t len)
{
  struct walk_level *v = realloc (w->levels, (size_t) (w->depth + 1) * sizeof *v);
  if (v == NULL)
    {
      close (fd);
      return false;
    }
  w->levels = v;
  v[w->depth++] = (struct walk_level){ .fd = fd, .len = len };
  return true;
}

void
walk_start (walk_t *w, int dirfd, const char *root)
{
  size_t len = strlen (root);
  while (len > 1 && root[len - 1] == '/')
    len--;
  w->levels = NULL;
  w->depth = 0;
  if (len + 2 > sizeof w->path)
    {
      close (dirfd);
      return;
    }
  memcpy (w->path, root, len);
  if (w->path[len - 1] != '/')
    w->path[len++] = '/';
  w->path[len] = '\0';
  w->rel_off = len;
  push (w, dirfd, len);
}

void
walk_end (walk_t *w)
{
  while (w->depth > 0)
    close (w->levels[--w->depth].fd);
  free (w->levels);
  w->levels = NULL;
}

int
walk_step (walk_t *w, int64_t until)
{
  for (unsigned i = 0; w->depth > 0; i++)
    {
      if ((i & 63) == 63 && now_ms () >= until)
        return 1;
      struct walk_level *l = &w->levels[w->depth - 1];
      if (l->off >= l->n)
        {
          /* The raw call: not every libc wraps getdents64 (musl does not). */
          l->n = syscall (SYS_getdents64, l->fd, l->buf, sizeof l->buf);
          l->off = 0;
          if (l->n < 0 && errno == EINTR)
            continue;
          if (l->n <= 0)
            {
              /* The end, or a directory that cannot be read: skipped. */
              close (l->fd);
              w->depth--;
              continue;
            }
        }
      const struct dirent64 *d = (const struct dirent64 *) (l->buf + l->off);
      l->off += d->d_reclen;
      const char *name = d->d_name;
      if (name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0')))
        continue;
      if (++w->visited > WALK_MAX_ENTRIES)
        {
          w->truncated = true;
          return 0;
        }
      size_t nlen = strlen (name), len = l->len;
      /* Hidden entries are skipped on request; paths longer than the host
         accepts are skipped always. */
      if ((!w->hidden && name[0] == '.') || len + nlen + 2 > sizeof w->path)
        continue;
      memcpy (w->path + len, name, nlen + 1);
      unsigned char type = d->d_type;
      if (type == DT_UNKNOWN)
        {
          struct stat st;
          if (fstatat (l->fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
          type = IFTODT (st.st_mode);
        }
      if (type != DT_DIR)
        {
          int r = w->visit (w, l->fd, name, type);
          if (r != 0)
            return r < 0 ? -1 : 1;
          continue;
        }
      /* rel_off is 1 only when the walk started at "/". */
      if ((w->depth == 1 && w->rel_off == 1 && is_pseudo_fs (name))
          || (w->enter && !w->enter (w, w->path + w->rel_off)))
        continue;
      if (w->depth > WALK_MAX_DEPTH)
        {
          w->truncated = true;
          continue;
        }
      int sub = openat (l->fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
      if (sub < 0)
        continue;
      w->path[len + nlen] = '/';
      w->path[len + nlen + 1] = '\0';
      push (w, sub, len + nlen + 1);
    }
  return 0;
}

/* ------------------------------------------------------------ GLOB */

typedef struct glob_job
{
  conn_t *c;
  sbx_glob_t *g;
  int64_t max, count, deadline;
  int64_t limit, sent; /* bytes of paths: the bound (0: none), sent so far */
  int64_t found;       /* matches, sent or not */
  bool full;           /* no more are sent; the rest is counted */
  walk_t w;
} glob_job_t;

static bool
glob_enter (walk_t *w, const char *rel)
{
  const glob_job_t *gj = w->data;
  return sbx_glob_could_match_below (gj->g, rel);
}

static int
glob_visit (walk_t *w, int dirfd, const char *name, unsigned char type)
{
  (void) type;
  glob_job_t *gj = w->data;
  struct stat st;
  /* Files and links to files; not dangling links or links to directories. */
  if (!sbx_glob_match (gj->g, w->path + w->rel_off) || fstatat (dirfd, name, &st, 0) < 0
      || S_ISDIR (st.st_mode))
    return 0;
  gj->found++;
  int64_t cost = (int64_t) strlen (w->path) + ENTRY_OVERHEAD;
  if (!gj->full && (gj->count == gj->max || (gj->limit && gj->sent + cost > gj->limit)))
    gj->full = true;
  if (gj->full)
    return 0;
  gj->count++;
  gj->sent += cost;
  sbx_frame_begin (&gj->c->out, SBX_M_ENTRY);
  sbx_frame_str (&gj->c->out, SBX_T_PATH, w->path);
  sbx_frame_int (&gj->c->out, SBX_T_KIND, kind_of_mode (st.st_mode));
  sbx_frame_int (&gj->c->out, SBX_T_SIZE, st.st_size);
  sbx_frame_end (&gj->c->out);
  /* Pauses when the host is behind. */
  return conn_room (gj->c) ? 0 : 1;
}

static void
glob_free (glob_job_t *gj)
{
  walk_end (&gj->w);
  sbx_glob_free (gj->g);
  free (gj);
}

static bool
glob_step (conn_t *c)
{
  glob_job_t *gj = c->job_data;
  if (!gj->full && !conn_room (c))
    {
      c->want_room = true;
      return false;
    }
  int64_t now = now_ms ();
  bool late = now >= gj->deadline;
  int r = late ? 1 : walk_step (&gj->w, now + SLICE_MS);
  if (r > 0 && !late)
    {
      if (conn_room (c))
        conn_wake (c);
      else
        c->want_room = true;
      return false;
    }
  sbx_frame_begin (&c->out, SBX_M_END);
  sbx_frame_int (&c->out, SBX_T_TRUNCATED, gj->w.truncated || gj->full || late);
  sbx_frame_int (&c->out, SBX_T_COUNT, gj->found);
  if (late)
    sbx_frame_str (&c->out, SBX_T_MESSAGE, "the search ran past its time limit");
  sbx_frame_end (&c->out);
  glob_free (gj);
  return true;
}

static void
glob_abort (conn_t *c)
{
  glob_free (c->job_data);
}

static const job_ops_t glob_ops = { glob_step, NULL, glob_abort };

void
handle_glob (conn_t *c, const sbx_msg_t *m)
{
  int64_t max = 0, limit = 0, deadline;
  cleanup_free char *path = req_path (c, m, SBX_T_PATH);
  cleanup_free char *pattern = path ? req_str (c, m, SBX_T_PATTERN, SBX_PROTO_MAX_BODY) : NULL;
  if (pattern == NULL || req_int (c, m, SBX_T_MAX_RESULTS, 0, INT64_MAX, &max) < 0
      || req_int (c, m, SBX_T_LIMIT, 0, INT64_MAX, &limit) < 0
      || req_deadline (c, m, GLOB_DEADLINE_MS, &deadline) < 0)
    return;
  glob_job_t *gj = calloc (1, sizeof *gj);
  if (gj == NULL)
    {
      reply_err (c, SBX_E_IO, "out of memory");
      return;
    }
  *gj = (glob_job_t){
    .c = c, .max = max ? max : DEFAULT_MAX_RESULTS, .deadline = deadline, .limit = limit
  };
  const char *error;
  if (sbx_glob_compile (pattern, &gj->g, &error) < 0)
    {
      reply_err (c, SBX_E_PATTERN, "%s", error);
      free (gj);
      return;
    }
  int dfd = walk_open_root (c, path);
  if (dfd < 0)
    {
      sbx_glob_free (gj->g);
      free (gj);
      return;
    }
  /* '*' matches dotfiles, so the walk sees everything. */
  gj->w = (walk_t){ .hidden = true, .enter = glob_enter, .visit = glob_visit, .data = gj };
  walk_start (&gj->w, dfd, path);
  conn_start_job (c, &glob_ops, gj);
}
