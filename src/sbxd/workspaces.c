/* POST /workspaces/{id}/ls and /read: a session's files read on the host,
 * with or without its sandbox (after it ended too). The sandbox writes
 * those files, so every path is resolved by the kernel beneath the
 * workspace (openat2 RESOLVE_BENEATH: a link or ".." that leads out fails),
 * without crossing a mount, and only regular files and folders are read. */
#include "sbxd.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>

/* A listing's bounds: entries, and bytes of JSON (roughly: its names and
 * paths and a row's keys); past them it is cut short, and says so. */
#define MAX_ENTRIES 100000
#define MAX_LISTING (16u << 20)
#define ROW_OVERHEAD 64

static int
open_beneath (int dfd, const char *path, int flags, uint64_t resolve)
{
  /* openat2 refuses O_NOCTTY beside O_PATH. */
  int extra = flags & O_PATH ? 0 : O_NOCTTY;
  struct open_how how = { .flags = (uint64_t) (flags | O_CLOEXEC | extra), .resolve = resolve };
  return (int) syscall (SYS_openat2, dfd, path, &how, sizeof how);
}

/* PATH made relative to the workspace: relative paths are relative to the
 * sandbox's work dir, which the workspace is; an absolute one must be in
 * the work dir. NULL (with F set) otherwise. */
static char *
relative (const char *workdir, const char *path, sbxd_fail_t *f)
{
  if (path[0] != '/')
    return strdup (*path ? path : ".");
  size_t n = strlen (workdir);
  if (strncmp (path, workdir, n) == 0 && (path[n] == '\0' || path[n] == '/'))
    return strdup (path[n] ? path + n + 1 : ".");
  sbxd_fail (f, 400, "Path '%s' is outside the workspace (%s)", path, workdir);
  return NULL;
}

static int
cmp_entries (const void *a, const void *b)
{
  json_t *x = *(json_t *const *) a, *y = *(json_t *const *) b;
  bool dx = json_is_true (json_object_get (x, "is_dir")),
       dy = json_is_true (json_object_get (y, "is_dir"));
  if (dx != dy)
    return dx ? -1 : 1;
  return strcmp (json_string_value (json_object_get (x, "name")),
                 json_string_value (json_object_get (y, "name")));
}

static int
list_dir (int fd, const char *rel, json_t **reply, bool *truncated, size_t *total, sbxd_fail_t *f)
{
  DIR *d = fdopendir (fd);
  if (d == NULL)
    {
      close (fd);
      return sbxd_fail (f, 500, "cannot read the folder: %s", strerror (errno));
    }
  size_t n = 0, cap = 0, bytes = 0;
  json_t **rows = NULL;
  int r = 0;
  *truncated = false;
  *total = 0;
  for (struct dirent *e; r == 0 && (e = readdir (d)) != NULL;)
    {
      if (strcmp (e->d_name, ".") == 0 || strcmp (e->d_name, "..") == 0)
        continue;
      ++*total;
      /* Past a bound, the rest is only counted. */
      size_t row_bytes = ROW_OVERHEAD + 2 * (strlen (rel) + 6 * strlen (e->d_name));
      if (*truncated || n == MAX_ENTRIES || bytes + row_bytes > MAX_LISTING)
        {
          *truncated = true;
          continue;
        }
      bytes += row_bytes;
      struct stat st;
      if (fstatat (dirfd (d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        continue;
      cleanup_free char *name = sbx_utf8_sanitize_copy (e->d_name, strlen (e->d_name));
      cleanup_free char *path
          = name ? (strcmp (rel, ".") == 0 ? strdup (name) : sbx_strdup_printf ("%s/%s", rel, name))
                 : NULL;
      cleanup_free char *vpath = path ? sbx_utf8_sanitize_copy (path, strlen (path)) : NULL;
      if (n == cap)
        {
          json_t **grown = realloc (rows, (cap = cap ? cap * 2 : 64) * sizeof *rows);
          if (grown == NULL)
            r = -1;
          else
            rows = grown;
        }
      json_t *row = vpath && r == 0
                        ? json_pack ("{s:s,s:s,s:b,s:I}", "name", name, "path", vpath, "is_dir",
                                     S_ISDIR (st.st_mode), "size", (json_int_t) st.st_size)
                        : NULL;
      if (row == NULL)
        r = -1;
      else
        rows[n++] = row;
    }
  closedir (d);
  if (n > 1)
    qsort (rows, n, sizeof *rows, cmp_entries);
  json_t *list = r == 0 ? json_array () : NULL;
  for (size_t i = 0; i < n; i++)
    if (list == NULL || json_array_append (list, rows[i]) < 0)
      {
        json_decref (list);
        list = NULL;
      }
  for (size_t i = 0; i < n; i++)
    json_decref (rows[i]);
  free (rows);
  if (list == NULL)
    return sbxd_fail (f, 500, "out of memory");
  *reply = list;
  return 0;
}

static int
read_file (int fd, const char *rel, size_t max, int64_t offset, int64_t limit, json_t **reply,
           sbxd_fail_t *f)
{
  cleanup_close int cfd = fd;
  struct stat st;
  if (fstat (cfd, &st) < 0)
    return sbxd_fail (f, 500, "cannot read '%s': %s", rel, strerror (errno));
  if ((uint64_t) st.st_size > max)
    return sbxd_fail (f, 400, "File '%s' is larger than %zu bytes", rel, max);
  cleanup_free char *buf = malloc (max + 1);
  if (buf == NULL)
    return sbxd_fail (f, 500, "out of memory");
  size_t len = 0;
  for (ssize_t got; len <= max; len += (size_t) got)
    {
      got = read (cfd, buf + len, max + 1 - len);
      if (got < 0 && errno == EINTR)
        {
          got = 0;
          continue;
        }
      if (got < 0)
        return sbxd_fail (f, 500, "cannot read '%s': %s", rel, strerror (errno));
      if (got == 0)
        break;
    }
  if (len > max)
    return sbxd_fail (f, 400, "File '%s' is larger than %zu bytes", rel, max);
  cleanup_free char *valid = sbx_utf8_sanitize_copy (buf, len);
  if (valid == NULL)
    return sbxd_fail (f, 500, "out of memory");
  if (memchr (buf, '\0', len) || strlen (valid) != len || memcmp (valid, buf, len) != 0)
    return sbxd_fail (f, 400, "File '%s' is not UTF-8 text", rel);
  cleanup_free char *text = sbxd_read_format (buf, len, offset, limit);
  *reply = text ? json_pack ("{s:s}", "content", text) : NULL;
  return *reply ? 0 : sbxd_fail (f, 500, "out of memory");
}

int
sbxd_workspace_op (sbxd_config_t *c, const char *id, const char *op, json_t *body, json_t **reply,
                   bool *truncated, size_t *total, sbxd_fail_t *f)
{
  *reply = NULL;
  bool is_read = strcmp (op, "read") == 0;
  sbxd_invalid_t inv = { 0 };
  const char *path = sbxd_field_str (body, "path", is_read, &inv);
  int64_t offset = is_read ? sbxd_field_int (body, "offset", 0, 0, &inv) : 0;
  int64_t limit = is_read ? sbxd_field_int (body, "limit", 2000, 1, &inv) : 0;
  if (inv.list)
    {
      *reply = inv.list;
      return sbxd_fail (f, 422, "invalid request");
    }
  if (c->workspace_root == NULL)
    return sbxd_fail (f, 409, "No workspace root is configured (sbxd --workspace-root DIR)");
  cleanup_free char *rel = relative (SBX_DEFAULT_WORKDIR, path ? path : ".", f);
  if (rel == NULL)
    return -1;
  cleanup_close int root = open (c->workspace_root, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root < 0)
    return sbxd_fail (f, 500, "cannot open the workspace root %s: %s", c->workspace_root,
                      strerror (errno));
  /* ROOT/ID/workspace: made by the manager; a link there is not followed. */
  cleanup_free char *ws_path = sbx_strdup_printf ("%s/workspace", id);
  cleanup_close int ws = ws_path ? open_beneath (root, ws_path, O_PATH | O_DIRECTORY,
                                                 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS
                                                     | RESOLVE_NO_XDEV)
                                 : -1;
  if (ws < 0)
    return sbxd_fail (f, 404, "No workspace for session %s", id);
  int fd = open_beneath (ws, rel, O_RDONLY | O_NONBLOCK,
                         RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV);
  if (fd < 0)
    {
      if (errno == EXDEV || errno == ELOOP)
        return sbxd_fail (f, 400, "Path '%s' leads out of the workspace", rel);
      return sbxd_fail (f, 404, "Not found in the workspace of %s: %s", id, rel);
    }
  struct stat st;
  if (fstat (fd, &st) < 0 || (is_read ? !S_ISREG (st.st_mode) : !S_ISDIR (st.st_mode)))
    {
      close (fd);
      return sbxd_fail (f, 404, "%s in the workspace of %s: %s",
                        is_read ? "Not a regular file" : "Not a folder", id, rel);
    }
  if (!is_read)
    return list_dir (fd, rel, reply, truncated, total, f);
  return read_file (fd, rel, c->max_read_bytes, offset, limit, reply, f);
}
