/* Depth-first directory walks, shared by GLOB and GREP, and GLOB itself.
 *
 * Directories are read with getdents64 into a small buffer per level (a
 * DIR stream would cost 32 KiB per level), symbolic links to directories
 * are never followed, and both the depth and the number of entries visited
 * are bounded. */
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

int
walk_open_root (conn_t *c, const char *root)
{
  int fd = open (root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
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

/* Walks DFD, whose path (with a trailing '/') fills w->path up to LEN. */
static int
walk_dir (walk_t *w, int dfd, size_t len, int depth)
{
  char buf[4096] __attribute__ ((aligned (8)));
  for (;;)
    {
      /* The raw call: not every libc wraps getdents64 (musl does not). */
      ssize_t n = syscall (SYS_getdents64, dfd, buf, sizeof buf);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return 0;  /* the end, or a directory that cannot be read: skipped */
      for (ssize_t off = 0; off < n;)
        {
          const struct dirent64 *d = (const struct dirent64 *) (buf + off);
          off += d->d_reclen;
          const char *name = d->d_name;
          if (name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0')))
            continue;
          if (++w->visited > WALK_MAX_ENTRIES)
            {
              w->truncated = true;
              return -1;
            }
          size_t nlen = strlen (name);
          /* Hidden entries are skipped on request; paths longer than the
             host accepts are skipped always. */
          if ((!w->hidden && name[0] == '.') || len + nlen + 2 > sizeof w->path)
            continue;
          memcpy (w->path + len, name, nlen + 1);
          unsigned char type = d->d_type;
          if (type == DT_UNKNOWN)
            {
              struct stat st;
              if (fstatat (dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                continue;
              type = IFTODT (st.st_mode);
            }
          if (type != DT_DIR)
            {
              if (w->visit (w, dfd, name, type) < 0)
                return -1;
              continue;
            }
          /* rel_off is 1 only when the walk started at "/". */
          if ((depth == 0 && w->rel_off == 1 && is_pseudo_fs (name)) || depth >= WALK_MAX_DEPTH
              || (w->enter && !w->enter (w, w->path + w->rel_off)))
            continue;
          int sub = openat (dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
          if (sub < 0)
            continue;
          w->path[len + nlen] = '/';
          w->path[len + nlen + 1] = '\0';
          int r = walk_dir (w, sub, len + nlen + 1, depth + 1);
          close (sub);
          if (r < 0)
            return r;
        }
    }
}

int
walk_run (walk_t *w, int dirfd, const char *root)
{
  size_t len = strlen (root);
  while (len > 1 && root[len - 1] == '/')
    len--;
  int r = 0;
  if (len + 2 <= sizeof w->path)
    {
      memcpy (w->path, root, len);
      if (w->path[len - 1] != '/')
        w->path[len++] = '/';
      w->path[len] = '\0';
      w->rel_off = len;
      r = walk_dir (w, dirfd, len, 0);
    }
  close (dirfd);
  return r;
}

/* ------------------------------------------------------------ GLOB */

typedef struct glob_walk {
  conn_t *c;
  sbx_glob_t *g;
  int64_t max, count;
} glob_walk_t;

static bool
glob_enter (walk_t *w, const char *rel)
{
  const glob_walk_t *gw = w->data;
  return sbx_glob_could_match_below (gw->g, rel);
}

static int
glob_visit (walk_t *w, int dirfd, const char *name, unsigned char type)
{
  (void) type;
  glob_walk_t *gw = w->data;
  struct stat st;
  /* Files and links to files; not dangling links or links to directories. */
  if (!sbx_glob_match (gw->g, w->path + w->rel_off) || fstatat (dirfd, name, &st, 0) < 0
      || S_ISDIR (st.st_mode))
    return 0;
  if (gw->count == gw->max)
    {
      w->truncated = true;
      return -1;
    }
  gw->count++;
  sbx_frame_begin (&gw->c->out, SBX_M_ENTRY);
  sbx_frame_str (&gw->c->out, SBX_T_PATH, w->path);
  sbx_frame_int (&gw->c->out, SBX_T_KIND, kind_of_mode (st.st_mode));
  sbx_frame_int (&gw->c->out, SBX_T_SIZE, st.st_size);
  sbx_frame_end (&gw->c->out);
  return conn_pending (gw->c);
}

void
handle_glob (conn_t *c, const sbx_msg_t *m)
{
  glob_walk_t gw = { .c = c };
  cleanup_free char *path = req_path (c, m, SBX_T_PATH);
  cleanup_free char *pattern = path ? req_str (c, m, SBX_T_PATTERN, SBX_PROTO_MAX_BODY) : NULL;
  if (pattern == NULL || req_int (c, m, SBX_T_MAX_RESULTS, 0, INT64_MAX, &gw.max) < 0)
    return;
  if (gw.max == 0)
    gw.max = DEFAULT_MAX_RESULTS;
  const char *error;
  if (sbx_glob_compile (pattern, &gw.g, &error) < 0)
    {
      reply_err (c, SBX_E_PATTERN, "%s", error);
      return;
    }
  int dfd = walk_open_root (c, path);
  if (dfd >= 0)
    {
      /* '*' matches dotfiles, so the walk sees everything. */
      walk_t w = { .hidden = true, .enter = glob_enter, .visit = glob_visit, .data = &gw };
      walk_run (&w, dfd, path);
      sbx_frame_begin (&c->out, SBX_M_END);
      sbx_frame_int (&c->out, SBX_T_TRUNCATED, w.truncated);
      sbx_frame_end (&c->out);
    }
  sbx_glob_free (gw.g);
}
