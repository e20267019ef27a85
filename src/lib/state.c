/* sbx's state on the host: one root for everything sbx keeps (sandbox
 * folders, the shared agent copy, build locks, the pull cache), and the
 * lock files that processes share. */
#include "state.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>

#define LOCK_POLL_NS 20000000L

static char *
absolute_env (const char *name)
{
  const char *v = getenv (name);
  return v && v[0] == '/' ? (char *) v : NULL;
}

int
sbx_state_root (char **root, sbx_error_t **err)
{
  const char *env = getenv ("SBX_STATE_DIR"), *xdg, *home;
  if (env && *env)
    {
      if (env[0] != '/')
        return sbx_error_set (err, SBX_E_INVALID, "SBX_STATE_DIR=%s is not an absolute path", env);
      *root = strdup (env);
    }
  else if (geteuid () == 0)
    *root = strdup ("/var/lib/sbx");
  else if ((xdg = absolute_env ("XDG_STATE_HOME")) != NULL)
    *root = sbx_strdup_printf ("%s/sbx", xdg);
  else if ((home = absolute_env ("HOME")) != NULL)
    *root = sbx_strdup_printf ("%s/.local/state/sbx", home);
  else
    return sbx_error_set (err, SBX_E_INVALID,
                          "cannot tell where sbx keeps its state: set "
                          "SBX_STATE_DIR (or HOME) to an absolute path");
  return *root ? 0 : sbx_error_set (err, SBX_E_NOMEM, "out of memory");
}

int
sbx_state_dir (const char *sub, bool create, mode_t mode, char **path, sbx_error_t **err)
{
  cleanup_free char *root = NULL;
  int r = sbx_state_root (&root, err);
  if (r < 0)
    return r;
  cleanup_free char *p = sbx_strdup_printf ("%s/%s", root, sub);
  if (p == NULL)
    return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  if (create && sbx_mkdir_p (p, mode) < 0)
    return sbx_error_set_errno (err, SBX_E_IO, errno,
                                "cannot create %s; set SBX_STATE_DIR to a "
                                "writable folder",
                                p);
  *path = steal_pointer (&p);
  return 0;
}

bool
sbx_valid_name (const char *s)
{
  size_t n = s ? strlen (s) : 0;
  if (n == 0 || n > 64 || !isalnum ((unsigned char) s[0]))
    return false;
  for (size_t i = 1; i < n; i++)
    if (!isalnum ((unsigned char) s[i]) && !strchr ("_.-", s[i]))
      return false;
  return true;
}

/* Deeper than this, a tree is left (and counted as not removed): each
 * level holds a descriptor. */
#define REMOVE_MAX_DEPTH 200

/* Removes NAME in the folder DFD and all below it; how many entries could
 * not be removed. Each folder is opened relative to its parent with
 * O_NOFOLLOW and checked to be the one stat saw, and each entry is removed
 * relative to its folder's descriptor: a tree changed meanwhile (a folder
 * swapped for a symbolic link by a sandbox) never leads it elsewhere. It
 * does not cross into another file system (a mount point is left). */
static int
remove_at (int dfd, const char *name, dev_t dev, int depth)
{
  struct stat st, opened;
  if (fstatat (dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return errno == ENOENT ? 0 : 1;
  if (!S_ISDIR (st.st_mode))
    return unlinkat (dfd, name, 0) < 0 && errno != ENOENT;
  if (st.st_dev != dev || depth > REMOVE_MAX_DEPTH)
    return 1;
  int fd = openat (dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return errno == ENOENT ? 0 : 1;
  DIR *d = NULL;
  if (fstat (fd, &opened) < 0 || opened.st_dev != st.st_dev || opened.st_ino != st.st_ino
      || (d = fdopendir (fd)) == NULL)
    {
      close (fd);
      return 1;
    }
  int failures = 0;
  for (struct dirent *de; (de = readdir (d));)
    if (strcmp (de->d_name, ".") != 0 && strcmp (de->d_name, ".."))
      failures += remove_at (dirfd (d), de->d_name, dev, depth + 1);
  closedir (d);
  if (unlinkat (dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
    failures++;
  return failures;
}

int
sbx_remove_tree_at (int dfd, const char *name)
{
  struct stat st;
  if (fstatat (dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return errno == ENOENT ? 0 : -1;
  return remove_at (dfd, name, st.st_dev, 0);
}

int
sbx_remove_tree (const char *path)
{
  cleanup_free char *copy = strdup (path);
  char *slash = copy ? strrchr (copy, '/') : NULL;
  if (slash == NULL || slash[1] == '\0')
    return -1;
  *slash = '\0';
  /* The path up to its last folder is the caller's to trust. */
  cleanup_close int dfd = open (slash == copy ? "/" : copy, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    return errno == ENOENT ? 0 : -1;
  return sbx_remove_tree_at (dfd, slash + 1);
}

void
sbx_lock_release (sbx_lock_t *l)
{
  if (l->fd >= 0)
    {
      unlink (l->path);
      close (l->fd);
    }
  free (l->path);
  l->fd = -1;
  l->path = NULL;
}

int
sbx_lock_take (const char *dir, const char *name, double wait, void (*waiting) (void *ud), void *ud,
               sbx_lock_t *l, sbx_error_t **err)
{
  *l = (sbx_lock_t) SBX_LOCK_INIT;
  cleanup_free char *folder = NULL;
  int r = sbx_state_dir (dir, true, 0755, &folder, err);
  if (r < 0)
    return r;
  cleanup_free char *path = sbx_strdup_printf ("%s/%s.lock", folder, name);
  if (path == NULL)
    return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  double give_up = sbx_now () + wait;
  bool waited = false;
  for (;;)
    {
      int fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
      if (fd < 0)
        return sbx_error_set_errno (err, SBX_E_IO, errno, "cannot open the lock %s", path);
      while (flock (fd, LOCK_EX | LOCK_NB) < 0)
        {
          int e = errno;
          if ((e != EWOULDBLOCK && e != EINTR) || sbx_now () >= give_up)
            {
              close (fd);
              if (e == EWOULDBLOCK)
                return sbx_error_set (err, SBX_E_TIMEOUT,
                                      "another sbx process held %s for more than "
                                      "%.0f s",
                                      path, wait);
              return sbx_error_set_errno (err, SBX_E_IO, e, "cannot lock %s", path);
            }
          if (!waited && waiting)
            waiting (ud);
          waited = true;
          struct timespec pause = { 0, LOCK_POLL_NS };
          nanosleep (&pause, NULL);
        }
      /* The previous holder removes the file when done: a lock on a file
       * that is no longer at PATH protects nothing, so take the new one. */
      struct stat held, now;
      if (fstat (fd, &held) == 0 && stat (path, &now) == 0 && held.st_ino == now.st_ino
          && held.st_dev == now.st_dev)
        {
          l->fd = fd;
          l->path = steal_pointer (&path);
          return 0;
        }
      close (fd);
    }
}

int
sbx_json_write_file (const char *path, json_t *doc, sbx_error_t **err)
{
  cleanup_free char *tmp = sbx_strdup_printf ("%s.XXXXXX", path);
  cleanup_free char *text = doc ? json_dumps (doc, JSON_COMPACT) : NULL;
  if (tmp == NULL || text == NULL)
    return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  cleanup_close int fd = mkostemp (tmp, O_CLOEXEC);
  if (fd < 0)
    return sbx_error_set_errno (err, SBX_E_IO, errno, "cannot write %s", tmp);
  if (sbx_write_all (fd, text, strlen (text)) < 0 || fchmod (fd, 0644) < 0
      || rename (tmp, path) < 0)
    {
      int e = errno;
      unlink (tmp);
      return sbx_error_set_errno (err, SBX_E_IO, e, "cannot write %s", path);
    }
  return 0;
}

json_t *
sbx_json_read_file (const char *path, size_t max)
{
  cleanup_close int fd = open (path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  struct stat st;
  if (fd < 0)
    return NULL;
  if (fstat (fd, &st) < 0 || !S_ISREG (st.st_mode) || (size_t) st.st_size > max)
    {
      errno = EINVAL;
      return NULL;
    }
  /* One read: json_loadfd reads a byte at a time. */
  cleanup_free char *buf = malloc ((size_t) st.st_size + 1);
  ssize_t n = buf ? pread (fd, buf, (size_t) st.st_size + 1, 0) : -1;
  json_t *doc = n == st.st_size ? json_loadb (buf, (size_t) n, JSON_REJECT_DUPLICATES, NULL) : NULL;
  if (doc == NULL)
    errno = EINVAL;
  return doc;
}
