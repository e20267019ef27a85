/* A sandbox's folder on the host, below sbx's state root and named after
 * the sandbox (never after anything the engine or an image says):
 *
 *   agent        the agent binary (a hard link to one shared copy), mounted
 *                read-only at /.sbx/agent
 *   run/         the agent's socket, mounted at /.sbx/run: a tiny tmpfs of
 *                its own, sealed read-only once the agent listens (as root)
 *   record.json  what sbx knows of the sandbox, host-only: a container that
 *                carries sbx's labels but no record with its id is not one of
 *                sbx's sandboxes, and nothing destructive is done to it
 *   activity     host-only, empty: its modification time is when the
 *                sandbox was last used (sbx_sandbox_touch) */
#include "sandbox.h"
#include "state.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

#ifndef SBX_AGENT_PATH
#define SBX_AGENT_PATH "/usr/local/libexec/sbx/sbx-agent"
#endif

#define MAX_RECORD (64u << 10)

int
sbx_hostdir_path (const char *name, char **dir, sbx_error_t **err)
{
  if (!sbx_valid_name (name))
    return sbx_error_set (err, SBX_E_INVALID, "invalid sandbox name '%s'", name ? name : "");
  cleanup_free char *sub = sbx_strdup_printf ("sandboxes/%s", name);
  if (sub == NULL)
    return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  return sbx_state_dir (sub, false, 0700, dir, err);
}

/* The run folder is writable from inside the sandbox (the agent makes its
 * socket there). As root, sbx gives it a tiny tmpfs of its own, so that a
 * sandbox cannot fill the host's disk through it; other users cannot mount,
 * and rely on the disk's own limits. */
#define RUN_TMPFS_OPTIONS "size=64k,nr_inodes=64,mode=0755"

#define RUN_TMPFS_FLAGS (MS_NOSUID | MS_NODEV | MS_NOEXEC)

/* Whether RUN has a mount of its own (sbx's tmpfs); -1 when it cannot tell. */
static int
run_dir_mounted (const char *run, sbx_error_t **err)
{
  struct stat here, parent;
  cleanup_free char *up = sbx_strdup_printf ("%s/..", run);
  if (up == NULL || stat (run, &here) < 0 || stat (up, &parent) < 0)
    return sbx_error_set_errno (err, SBX_E_IO, errno, "cannot inspect %s", run);
  return here.st_dev != parent.st_dev;
}

static int
limit_run_dir (const char *run, sbx_error_t **err)
{
  if (geteuid () != 0)
    return 0;
  int r = run_dir_mounted (run, err);
  if (r < 0)
    return r;
  /* Mounted already (a named sandbox started again): writable again, so
     that the agent can make its socket. */
  unsigned long flags = r ? MS_REMOUNT | RUN_TMPFS_FLAGS : RUN_TMPFS_FLAGS;
  if (mount ("sbx-run", run, "tmpfs", flags, RUN_TMPFS_OPTIONS) < 0)
    return sbx_error_set_errno (err, SBX_E_IO, errno, "cannot mount a small tmpfs on %s", run);
  return 0;
}

/* Once the agent has made its socket, the run folder turns read-only, for
 * the sandbox (whose root could otherwise remove or replace the socket) as
 * for everyone: the remount is of the tmpfs itself, which the container's
 * bind mount shares. A socket on a read-only file system still accepts
 * connections. Only root can mount; otherwise the agent repairs its socket
 * itself (listener.c). */
void
sbx_hostdir_seal (const char *dir)
{
  cleanup_free char *run = sbx_strdup_printf ("%s/run", dir);
  if (run == NULL || geteuid () != 0 || run_dir_mounted (run, NULL) != 1)
    return;
  (void) mount ("sbx-run", run, "tmpfs", MS_REMOUNT | MS_RDONLY | RUN_TMPFS_FLAGS,
                RUN_TMPFS_OPTIONS);
}

void
sbx_hostdir_remove (const char *dir)
{
  cleanup_free char *run = sbx_strdup_printf ("%s/run", dir);
  if (run && geteuid () == 0)
    umount2 (run, MNT_DETACH);
  sbx_remove_tree (dir);
}

/* An executable sbx-agent in DIR or its parent: *PATH, malloc'd. */
static bool
agent_near (const char *dir, char **path)
{
  static const char *const near[] = { "%s/sbx-agent", "%s/../sbx-agent" };
  for (size_t i = 0; i < sizeof near / sizeof near[0]; i++)
    {
      cleanup_free char *p = sbx_strdup_printf (near[i], dir);
      if (p && access (p, X_OK) == 0)
        {
          *path = steal_pointer (&p);
          return true;
        }
    }
  return false;
}

/* The agent binary: $SBX_AGENT; else the one beside this library's code
 * or the running program (an uninstalled build: build/sbx-agent next to
 * build/libsbx.so and build/sbx, or one folder up from build/tests/); else
 * the installed one. *PATH is malloc'd. */
static int
agent_source (char **path, sbx_error_t **err)
{
  const char *env = getenv ("SBX_AGENT");
  if (env && *env)
    return (*path = strdup (env)) ? 0 : sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  char where[2][PATH_MAX] = { "", "" };
  Dl_info info;
  if (dladdr ((void *) agent_source, &info) && info.dli_fname && strchr (info.dli_fname, '/')
      && realpath (info.dli_fname, where[0]) == NULL)
    where[0][0] = '\0';
  ssize_t n = readlink ("/proc/self/exe", where[1], sizeof where[1] - 1);
  where[1][n > 0 ? n : 0] = '\0';
  for (size_t i = 0; i < 2; i++)
    {
      char *slash = strrchr (where[i], '/');
      if (slash)
        *slash = '\0';
      if (slash && agent_near (where[i], path))
        return 0;
    }
  if (access (SBX_AGENT_PATH, X_OK) == 0)
    return (*path = strdup (SBX_AGENT_PATH)) ? 0
                                             : sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  return sbx_error_set (err, SBX_E_AGENT,
                        "cannot find the sbx agent: not installed as %s, nor beside this program "
                        "or libsbx; install sbx (`make install`), build it (`make`), or set "
                        "SBX_AGENT to its path",
                        SBX_AGENT_PATH);
}

/* Copies IN to DST through a temp file renamed over it, so a container
 * starting at the same moment never runs half a file. */
static int
copy_atomic (int in, const char *dst, sbx_error_t **err)
{
  cleanup_free char *tmp = sbx_strdup_printf ("%s.XXXXXX", dst);
  if (tmp == NULL)
    return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  cleanup_close int out = mkostemp (tmp, O_CLOEXEC);
  if (out < 0)
    return sbx_error_set_errno (err, SBX_E_IO, errno, "cannot write %s", tmp);
  char buf[65536];
  ssize_t n;
  while ((n = read (in, buf, sizeof buf)) > 0)
    for (ssize_t off = 0; off < n;)
      {
        ssize_t w = write (out, buf + off, n - off);
        if (w < 0 && errno != EINTR)
          {
            int e = errno;
            unlink (tmp);
            return sbx_error_set_errno (err, SBX_E_IO, e, "cannot write %s", tmp);
          }
        off += w > 0 ? w : 0;
      }
  if (n < 0 || fchmod (out, 0755) < 0 || rename (tmp, dst) < 0)
    {
      int e = errno;
      unlink (tmp);
      return sbx_error_set_errno (err, SBX_E_IO, e, "cannot install the agent as %s", dst);
    }
  return 0;
}

/* One copy of each agent build (by size and mtime) serves every sandbox: a
 * host folder gets a hard link to it, so containers share its pages and
 * creating a sandbox copies nothing. */
static int
install_agent (const char *dir, sbx_error_t **err)
{
  cleanup_free char *src = NULL;
  int r = agent_source (&src, err);
  if (r < 0)
    return r;
  struct stat st;
  cleanup_close int in = open (src, O_RDONLY | O_CLOEXEC);
  if (in < 0 || fstat (in, &st) < 0)
    return sbx_error_set_errno (err, SBX_E_AGENT, errno,
                                "cannot open the sbx agent binary %s "
                                "(build it with `make`, or set SBX_AGENT to its path)",
                                src);
  cleanup_free char *agents = NULL;
  if ((r = sbx_state_dir ("agents", true, 0755, &agents, err)) < 0)
    return r;
  cleanup_free char *shared = sbx_strdup_printf ("%s/sbx-agent-%lld-%lld.%09ld", agents,
                                                 (long long) st.st_size,
                                                 (long long) st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
  cleanup_free char *dst = sbx_strdup_printf ("%s/agent", dir);
  if (!shared || !dst)
    return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  if (access (shared, X_OK) < 0 && (r = copy_atomic (in, shared, err)) < 0)
    return r;
  unlink (dst);
  if (link (shared, dst) == 0)
    return 0;
  /* Another file system (SBX_STATE_DIR moved): a copy of its own. */
  if (lseek (in, 0, SEEK_SET) < 0)
    return sbx_error_set_errno (err, SBX_E_IO, errno, "cannot read %s", src);
  return copy_atomic (in, dst, err);
}

int
sbx_hostdir_prepare (const char *dir, sbx_error_t **err)
{
  if (sbx_mkdir_p (dir, 0700) < 0)
    return sbx_error_set_errno (err, SBX_E_IO, errno, "cannot create the sandbox folder %s", dir);
  cleanup_free char *run = sbx_strdup_printf ("%s/run", dir);
  if (run == NULL)
    return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  if (mkdir (run, 0755) < 0 && errno != EEXIST)
    return sbx_error_set_errno (err, SBX_E_IO, errno, "cannot create %s", run);
  int r = limit_run_dir (run, err);
  return r < 0 ? r : install_agent (dir, err);
}

/* ------------------------------------------------------------ the record */

void
sbx_record_clear (sbx_record_t *rec)
{
  free (rec->id);
  free (rec->workdir);
  free (rec->image);
  json_decref (rec->options);
  memset (rec, 0, sizeof *rec);
}

int
sbx_record_write (const char *dir, const sbx_record_t *rec, sbx_error_t **err)
{
  json_t *doc = json_pack ("{s:s, s:s, s:s, s:b, s:I, s:I, s:O}", "id", rec->id, "workdir",
                           rec->workdir, "image", rec->image, "auto_remove", rec->auto_remove,
                           "memory", (json_int_t) rec->memory, "pid", (json_int_t) rec->pid,
                           "options", rec->options);
  cleanup_free char *dst = sbx_strdup_printf ("%s/record.json", dir);
  int r = dst && doc ? sbx_json_write_file (dst, doc, err)
                     : sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  json_decref (doc);
  return r;
}

/* A container id: 64 lowercase hex digits. */
static bool
valid_id (const char *s)
{
  return s && strlen (s) == 64 && strspn (s, "0123456789abcdef") == 64;
}

int
sbx_record_read (const char *dir, sbx_record_t *rec)
{
  memset (rec, 0, sizeof *rec);
  cleanup_free char *path = sbx_strdup_printf ("%s/record.json", dir);
  json_t *doc = path ? sbx_json_read_file (path, MAX_RECORD) : NULL;
  const char *id = json_string_value (json_object_get (doc, "id"));
  const char *workdir = json_string_value (json_object_get (doc, "workdir"));
  const char *image = json_string_value (json_object_get (doc, "image"));
  json_t *options = json_object_get (doc, "options");
  json_int_t pid = json_integer_value (json_object_get (doc, "pid"));
  if (!valid_id (id) || workdir == NULL || workdir[0] != '/' || image == NULL
      || !json_is_object (options) || pid < 0 || pid > INT32_MAX)
    {
      json_decref (doc);
      return -1;
    }
  rec->id = strdup (id);
  rec->workdir = strdup (workdir);
  rec->image = strdup (image);
  rec->options = json_incref (options);
  rec->auto_remove = json_is_true (json_object_get (doc, "auto_remove"));
  rec->memory = json_integer_value (json_object_get (doc, "memory"));
  rec->pid = (pid_t) pid;
  json_decref (doc);
  if (!rec->id || !rec->workdir || !rec->image)
    {
      sbx_record_clear (rec);
      return -1;
    }
  return 0;
}
