/* Sandbox lifecycle: lazy creation, re-use of named sandboxes, the host
 * folder that carries the agent, stop and removal. */
#include "runtime.h"
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#ifndef SBX_AGENT_PATH
#define SBX_AGENT_PATH "/usr/local/libexec/sbx/sbx-agent"
#endif

#define DEFAULT_WORKDIR "/workspace"
#define AGENT_START_TIMEOUT 20.0
/* A running sandbox whose socket is being made again (see listener.c). */
#define AGENT_RECONNECT_TIMEOUT 3.0
#define STOP_TIMEOUT 3
/* The engine's log of a sandbox holds at most this much (what the agent
 * says; the sandbox's own output never goes there). */
#define LOG_MAX_SIZE "1m"
#define LOG_MAX_FILES "2"
/* Capabilities a root user needs for ordinary work (package installs that
 * switch users, files owned by others); everything else is dropped. */
static const char *const kept_caps[] = { "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL",
                                         "SETGID", "SETUID", "NET_BIND_SERVICE", NULL };
/* The engine's read-only paths (setting them replaces its defaults, the
 * first five), and the agent's OOM score: root in the sandbox could
 * otherwise make the agent the OOM killer's first choice. */
static const char *const readonly_paths[]
    = { "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
        "/proc/1/oom_score_adj", "/proc/1/oom_adj", "/proc/1/task/1/oom_score_adj",
        "/proc/1/task/1/oom_adj", NULL };

char *
sbx_state_root (void)
{
  const char *env = getenv ("SBX_STATE_DIR");
  if (env && *env)
    return strdup (env);
  if (geteuid () == 0)
    return strdup ("/var/lib/sbx");
  const char *xdg = getenv ("XDG_STATE_HOME");
  if (xdg && *xdg)
    return sbx_strdup_printf ("%s/sbx", xdg);
  const char *home = getenv ("HOME");
  return sbx_strdup_printf ("%s/.local/state/sbx", home ? home : "/tmp");
}

int
sbx_mkdir_p (const char *path, mode_t mode)
{
  cleanup_free char *copy = strdup (path);
  if (copy == NULL)
    return -ENOMEM;
  for (char *p = copy + 1; *p; p++)
    if (*p == '/')
      {
        *p = '\0';
        if (mkdir (copy, mode) < 0 && errno != EEXIST)
          return -errno;
        *p = '/';
      }
  if (mkdir (copy, mode) < 0 && errno != EEXIST)
    return -errno;
  return 0;
}

static char *
state_dir_for (const char *name)
{
  cleanup_free char *root = sbx_state_root ();
  return root ? sbx_strdup_printf ("%s/sandboxes/%s", root, name) : NULL;
}

static int
remove_entry (const char *path, const struct stat *st, int type, struct FTW *ftw)
{
  (void) st, (void) ftw;
  if (type == FTW_DP)
    rmdir (path);
  else
    unlink (path);
  return 0;
}

static void
remove_tree (const char *dir)
{
  nftw (dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
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
    return sbx_fail_errno (err, SBX_E_IO, errno, "cannot inspect %s", run);
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
    return sbx_fail_errno (err, SBX_E_IO, errno, "cannot mount a small tmpfs on %s", run);
  return 0;
}

/* Once the agent has made its socket, the run folder turns read-only, for
 * the sandbox (whose root could otherwise remove or replace the socket) as
 * for everyone: the remount is of the tmpfs itself, which the container's
 * bind mount shares. A socket on a read-only file system still accepts
 * connections. Only root can mount; otherwise the agent repairs its socket
 * itself (listener.c). */
static void
seal_run_dir (const sbx_sandbox_t *sb)
{
  cleanup_free char *run = sbx_strdup_printf ("%s/run", sb->state_dir);
  if (run == NULL || geteuid () != 0 || run_dir_mounted (run, NULL) != 1)
    return;
  (void) mount ("sbx-run", run, "tmpfs", MS_REMOUNT | MS_RDONLY | RUN_TMPFS_FLAGS,
                RUN_TMPFS_OPTIONS);
}

/* Removes a sandbox's host folder, its run tmpfs first. */
static void
remove_state_dir (const char *dir)
{
  cleanup_free char *run = sbx_strdup_printf ("%s/run", dir);
  if (run && geteuid () == 0)
    umount2 (run, MNT_DETACH);
  remove_tree (dir);
}

static const char *
agent_source (void)
{
  const char *env = getenv ("SBX_AGENT");
  if (env && *env)
    return env;
  return SBX_AGENT_PATH;
}

/* Copies IN to DST through a temp file renamed over it, so a container
 * starting at the same moment never runs half a file. */
static int
copy_atomic (int in, const char *dst, sbx_error_t **err)
{
  cleanup_free char *tmp = sbx_strdup_printf ("%s.XXXXXX", dst);
  if (tmp == NULL)
    return sbx_fail (err, SBX_E_NOMEM, "out of memory");
  cleanup_close int out = mkostemp (tmp, O_CLOEXEC);
  if (out < 0)
    return sbx_fail_errno (err, SBX_E_IO, errno, "cannot write %s", tmp);
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
            return sbx_fail_errno (err, SBX_E_IO, e, "cannot write %s", tmp);
          }
        off += w > 0 ? w : 0;
      }
  if (n < 0 || fchmod (out, 0755) < 0 || rename (tmp, dst) < 0)
    {
      int e = errno;
      unlink (tmp);
      return sbx_fail_errno (err, SBX_E_IO, e, "cannot install the agent as %s", dst);
    }
  return 0;
}

/* One copy of each agent build (by size and mtime) serves every sandbox: a
 * host folder gets a hard link to it, so containers share its pages and
 * creating a sandbox copies nothing. */
static int
install_agent (const char *dir, sbx_error_t **err)
{
  const char *src = agent_source ();
  struct stat st;
  cleanup_close int in = open (src, O_RDONLY | O_CLOEXEC);
  if (in < 0 || fstat (in, &st) < 0)
    return sbx_fail_errno (err, SBX_E_AGENT, errno, "cannot open the sbx agent binary %s (build "
                           "it with `make`, or set SBX_AGENT to its path)", src);
  cleanup_free char *root = sbx_state_root ();
  cleanup_free char *agents = root ? sbx_strdup_printf ("%s/agents", root) : NULL;
  cleanup_free char *shared
      = agents ? sbx_strdup_printf ("%s/sbx-agent-%lld-%lld.%09ld", agents, (long long) st.st_size,
                                    (long long) st.st_mtim.tv_sec, st.st_mtim.tv_nsec)
               : NULL;
  cleanup_free char *dst = sbx_strdup_printf ("%s/agent", dir);
  if (!shared || !dst)
    return sbx_fail (err, SBX_E_NOMEM, "out of memory");
  int r;
  if (access (shared, X_OK) < 0)
    {
      if ((r = sbx_mkdir_p (agents, 0755)) < 0)
        return sbx_fail_errno (err, SBX_E_IO, -r, "cannot create %s", agents);
      if ((r = copy_atomic (in, shared, err)) < 0)
        return r;
    }
  unlink (dst);
  if (link (shared, dst) == 0)
    return 0;
  /* Another file system (SBX_STATE_DIR moved): a copy of its own. */
  if (lseek (in, 0, SEEK_SET) < 0)
    return sbx_fail_errno (err, SBX_E_IO, errno, "cannot read %s", src);
  return copy_atomic (in, dst, err);
}

/* The host folder: DIR/agent (mounted read-only at /.sbx/agent), DIR/run
 * (the socket, mounted at /.sbx/run) and DIR/info (host only). */
static int
prepare_state_dir (sbx_sandbox_t *sb, sbx_error_t **err)
{
  int r = sbx_mkdir_p (sb->state_dir, 0700);
  if (r < 0)
    return sbx_fail_errno (err, SBX_E_IO, -r, "cannot create the sandbox folder %s", sb->state_dir);
  cleanup_free char *run = sbx_strdup_printf ("%s/run", sb->state_dir);
  if (run == NULL)
    return sbx_fail (err, SBX_E_NOMEM, "out of memory");
  if (mkdir (run, 0755) < 0 && errno != EEXIST)
    return sbx_fail_errno (err, SBX_E_IO, errno, "cannot create %s", run);
  if ((r = limit_run_dir (run, err)) < 0)
    return r;
  return install_agent (sb->state_dir, err);
}

/* DIR/info caches what a later process needs to reach the agent without
 * asking the engine: the agent's pid (to check the peer) and the workdir. */
static void
write_info (const sbx_sandbox_t *sb)
{
  cleanup_free char *tmp = sbx_strdup_printf ("%s/.info.tmp", sb->state_dir);
  cleanup_free char *dst = sbx_strdup_printf ("%s/info", sb->state_dir);
  if (!tmp || !dst)
    return;
  FILE *f = fopen (tmp, "we");
  if (f == NULL)
    return;
  fprintf (f, "pid=%ld\nauto_remove=%d\nmemory=%lld\nworkdir=%s\nimage=%s\n", (long) sb->agent_pid,
           sb->auto_remove, (long long) sb->opts.memory, sb->workdir, sb->image);
  if (fclose (f) == 0)
    rename (tmp, dst);
}

static int
read_info (sbx_sandbox_t *sb)
{
  cleanup_free char *path = sbx_strdup_printf ("%s/info", sb->state_dir);
  FILE *f = path ? fopen (path, "re") : NULL;
  if (f == NULL)
    return -1;
  char line[4200];
  long pid = 0;
  int auto_remove = 0;
  long long memory = 0;
  while (fgets (line, sizeof line, f))
    {
      line[strcspn (line, "\n")] = '\0';
      if (sscanf (line, "pid=%ld", &pid) == 1 || sscanf (line, "auto_remove=%d", &auto_remove) == 1
          || sscanf (line, "memory=%lld", &memory) == 1)
        continue;
      if (strncmp (line, "workdir=", 8) == 0)
        free (sb->workdir), sb->workdir = strdup (line + 8);
      else if (strncmp (line, "image=", 6) == 0)
        free (sb->image), sb->image = strdup (line + 6);
    }
  fclose (f);
  sb->agent_pid = pid;
  sb->auto_remove = auto_remove;
  sb->opts.memory = memory;
  return pid > 0 && sb->workdir && sb->image ? 0 : -1;
}

static sbx_sandbox_t *
sandbox_alloc (void)
{
  sbx_sandbox_t *sb = calloc (1, sizeof *sb);
  if (sb == NULL)
    return NULL;
  sb->fd = -1;
  sb->file_timeout = SBX_DEFAULT_FILE_TIMEOUT;
  sbx_reader_init (&sb->reader);
  sbx_buf_init (&sb->out);
  return sb;
}

SBX_EXPORT void
sbx_sandbox_free (sbx_sandbox_t *sb)
{
  if (sb == NULL)
    return;
  sbx_agent_disconnect (sb);
  sbx_buf_free (&sb->out);
  sbx_engine_free (sb->engine);
  sbx_options_clear (&sb->opts);
  free (sb->id);
  free (sb->image);
  free (sb->workdir);
  free (sb->state_dir);
  free (sb);
}

SBX_EXPORT int
sbx_sandbox_new (const sbx_options_t *opts, sbx_sandbox_t **out, sbx_error_t **err)
{
  sbx_sandbox_t *sb = sandbox_alloc ();
  sbx_options_t *defaults = opts ? NULL : sbx_options_new ();
  if (sb == NULL || (opts == NULL && defaults == NULL)
      || sbx_options_copy (&sb->opts, opts ? opts : defaults) < 0)
    {
      free (sb);
      sbx_options_free (defaults);
      return sbx_fail (err, SBX_E_NOMEM, "out of memory");
    }
  sbx_options_free (defaults);
  sb->auto_remove = sb->opts.auto_remove >= 0 ? sb->opts.auto_remove : sb->opts.name == NULL;
  sb->workdir = strdup (sb->opts.workdir ? sb->opts.workdir : DEFAULT_WORKDIR);
  if (sb->workdir == NULL)
    {
      sbx_sandbox_free (sb);
      return sbx_fail (err, SBX_E_NOMEM, "out of memory");
    }
  *out = sb;
  return 0;
}

static int
engine (sbx_sandbox_t *sb, sbx_error_t **err)
{
  return sb->engine ? 0 : sbx_engine_open (&sb->engine, err);
}

/* Fills the handle from a container's inspect document. */
static int
adopt_container (sbx_sandbox_t *sb, json_t *info, sbx_error_t **err)
{
  json_t *config = json_object_get (info, "Config");
  json_t *labels = json_object_get (config, "Labels");
  const char *name = json_string_value (json_object_get (info, "Name"));
  const char *state_dir = json_string_value (json_object_get (labels, SBX_LABEL_STATE_DIR));
  const char *workdir = json_string_value (json_object_get (labels, SBX_LABEL_WORKDIR));
  const char *image = json_string_value (json_object_get (config, "Image"));
  if (!json_object_get (labels, SBX_LABEL_MANAGED) || !state_dir || !workdir || !name || !image)
    return sbx_fail (err, SBX_E_EXISTS, "container %s exists but was not made by sbx; choose "
                     "another name", name ? name + (name[0] == '/') : sb->id);
  json_t *host = json_object_get (info, "HostConfig");
  free (sb->id);
  free (sb->state_dir);
  free (sb->workdir);
  free (sb->image);
  sb->id = strdup (name + (name[0] == '/'));
  sb->state_dir = strdup (state_dir);
  sb->workdir = strdup (workdir);
  sb->image = strdup (image);
  sb->opts.memory = json_integer_value (json_object_get (host, "Memory"));
  sb->auto_remove = !json_is_string (json_object_get (labels, SBX_LABEL_NAMED))
                    || strcmp (json_string_value (json_object_get (labels, SBX_LABEL_NAMED)), "1");
  sb->agent_pid = json_integer_value (json_object_get (json_object_get (info, "State"), "Pid"));
  if (!sb->id || !sb->state_dir || !sb->workdir || !sb->image)
    return sbx_fail (err, SBX_E_NOMEM, "out of memory");
  return 0;
}

static int
refresh_from_engine (sbx_sandbox_t *sb, bool *running, sbx_error_t **err)
{
  json_t *info = NULL;
  int r = engine (sb, err);
  if (r == 0)
    r = sbx_engine_container_inspect (sb->engine, sb->id, &info, err);
  if (r == 0)
    r = adopt_container (sb, info, err);
  if (r == 0)
    *running = json_is_true (json_object_get (json_object_get (info, "State"), "Running"));
  json_decref (info);
  return r;
}

static json_t *
string_array (const char *const *v)
{
  json_t *a = json_array ();
  for (; v && *v; v++)
    json_array_append_new (a, json_string (*v));
  return a;
}

static json_t *
container_config (sbx_sandbox_t *sb)
{
  const sbx_options_t *o = &sb->opts;
  json_t *binds = json_array ();
  json_array_append_new (binds, json_sprintf ("%s/agent:" SBX_AGENT_BIN ":ro", sb->state_dir));
  json_array_append_new (binds, json_sprintf ("%s/run:" SBX_AGENT_RUN_DIR, sb->state_dir));
  for (char **v = o->volumes; v && *v; v++)
    json_array_append_new (binds, json_string (*v));

  json_t *host = json_pack ("{s:o, s:s, s:[s], s:o, s:[s], s:I, s:I, s:I, s:I, s:b, s:o, "
                            "s:{s:s, s:{s:s, s:s}}}",
                            "Binds", binds, "NetworkMode", o->network ? o->network : "none",
                            "CapDrop", "ALL", "CapAdd", string_array (kept_caps), "SecurityOpt",
                            "no-new-privileges", "PidsLimit", (json_int_t) o->pids, "Memory",
                            (json_int_t) o->memory, "MemorySwap", (json_int_t) o->memory,
                            "NanoCpus", (json_int_t) (o->cpus * 1e9), "Init", 0,
                            "ReadonlyPaths", string_array (readonly_paths), "LogConfig", "Type",
                            "json-file", "Config", "max-size", LOG_MAX_SIZE, "max-file",
                            LOG_MAX_FILES);
  json_t *labels = json_pack ("{s:s, s:s, s:s, s:s, s:s}", SBX_LABEL_MANAGED, "1", SBX_LABEL_VERSION,
                              SBX_VERSION, SBX_LABEL_STATE_DIR, sb->state_dir, SBX_LABEL_WORKDIR,
                              sb->workdir, SBX_LABEL_NAMED, o->name ? "1" : "0");
  return json_pack ("{s:s, s:[s, s, s], s:[], s:s, s:o, s:o, s:o, s:b, s:b}", "Image", sb->image,
                    "Entrypoint", SBX_AGENT_BIN, "--workdir", sb->workdir, "Cmd", "WorkingDir",
                    sb->workdir, "Env", string_array ((const char *const *) o->env), "Labels",
                    labels, "HostConfig", host, "Tty", 0, "OpenStdin", 0);
}

static char *
random_name (void)
{
  unsigned char r[6];
  if (getrandom (r, sizeof r, 0) != sizeof r)
    return NULL;
  return sbx_strdup_printf ("sbx-%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3], r[4], r[5]);
}

static int
resolve_image (sbx_sandbox_t *sb, sbx_error_t **err)
{
  if (sb->image)
    return 0;
  if (sb->opts.image)
    return (sb->image = strdup (sb->opts.image)) ? 0 : sbx_fail (err, SBX_E_NOMEM, "out of memory");
  if (sb->opts.runtime)
    return sbx_runtime_resolve (sb->engine, sb->opts.runtime, NULL, NULL, &sb->image, NULL, err);
  const char *reason;
  return sbx_image_default (&sb->image, &reason, err);
}

static int
create_container (sbx_sandbox_t *sb, sbx_error_t **err)
{
  int r = resolve_image (sb, err);
  if (r < 0)
    return r;
  free (sb->id);
  sb->id = sb->opts.name ? strdup (sb->opts.name) : random_name ();
  free (sb->state_dir);
  sb->state_dir = sb->id ? state_dir_for (sb->id) : NULL;
  if (!sb->id || !sb->state_dir)
    return sbx_fail (err, SBX_E_NOMEM, "out of memory");
  if ((r = prepare_state_dir (sb, err)) < 0)
    return r;
  json_t *config = container_config (sb);
  if (config == NULL)
    return sbx_fail (err, SBX_E_NOMEM, "out of memory");
  cleanup_free char *cid = NULL;
  sbx_error_t *cerr = NULL;
  r = sbx_engine_container_create (sb->engine, sb->id, config, &cid, &cerr);
  if (r == -SBX_E_IMAGE_MISSING)
    {
      /* Not present locally: one pull, then one more try. */
      sbx_error_t *perr = NULL;
      if (sbx_engine_image_pull (sb->engine, sb->image, NULL, NULL, &perr) == 0)
        {
          sbx_error_free (cerr), cerr = NULL;
          r = sbx_engine_container_create (sb->engine, sb->id, config, &cid, &cerr);
        }
      else
        {
          sbx_error_free (cerr), cerr = NULL;
          r = sbx_fail (&cerr, SBX_E_IMAGE_MISSING, "image %s is not present and could not be "
                        "pulled (%s); pick an image that exists, or build sbx's own base image "
                        "with `sbx image bootstrap`", sb->image, sbx_error_message (perr));
          sbx_error_free (perr);
        }
    }
  json_decref (config);
  if (r < 0)
    {
      remove_state_dir (sb->state_dir);
      if (err && !*err)
        *err = cerr;
      else
        sbx_error_free (cerr);
      return r;
    }
  return 0;
}

static int
wait_for_agent (sbx_sandbox_t *sb, double timeout, sbx_error_t **err)
{
  double deadline = sbx_now () + timeout, next_check = sbx_now () + 0.25;
  struct timespec pause = { 0, 500000 };
  for (;;)
    {
      int r = sbx_agent_try_connect (sb, err);
      if (r == 0 || (r != -EAGAIN && r != -EPERM))
        return r;
      bool running = true;
      if (r == -EPERM || sbx_now () > next_check)
        {
          /* The container may have restarted (new pid) or died. */
          if ((r = refresh_from_engine (sb, &running, err)) < 0)
            return r;
          next_check = sbx_now () + 0.25;
          if (!running)
            return sbx_fail (err, SBX_E_AGENT, "sandbox %s exited before its agent answered; see "
                             "`docker logs %s`", sb->id, sb->id);
          r = sbx_agent_try_connect (sb, err);
          if (r == 0 || (r != -EAGAIN && r != -EPERM))
            return r;
          if (r == -EPERM)
            return sbx_fail (err, SBX_E_AGENT, "something else answers on the agent socket of "
                             "sandbox %s, not its agent: a process in the sandbox replaced it. "
                             "sbx refuses to talk to it; remove the sandbox", sb->id);
        }
      if (sbx_now () > deadline)
        return sbx_fail (err, SBX_E_AGENT, "the agent of sandbox %s did not answer within %.0f s; "
                         "see `docker logs %s`",
                         sb->id, timeout, sb->id);
      nanosleep (&pause, NULL);
      if (pause.tv_nsec < 16000000)
        pause.tv_nsec *= 2;
    }
}

static int
start_container (sbx_sandbox_t *sb, sbx_error_t **err)
{
  bool running;
  int r = sbx_engine_container_start (sb->engine, sb->id, err);
  if (r == 0)
    r = refresh_from_engine (sb, &running, err);
  if (r == 0)
    r = wait_for_agent (sb, AGENT_START_TIMEOUT, err);
  if (r == 0)
    {
      seal_run_dir (sb);
      write_info (sb);
    }
  return r;
}

int
sbx_sandbox_ensure (sbx_sandbox_t *sb, sbx_error_t **err)
{
  if (sb->fd >= 0)
    return 0;
  int r = engine (sb, err);
  if (r < 0)
    return r;
  bool running = false;
  if (sb->id || sb->opts.name)
    {
      if (sb->id == NULL && (sb->id = strdup (sb->opts.name)) == NULL)
        return sbx_fail (err, SBX_E_NOMEM, "out of memory");
      sbx_error_t *ierr = NULL;
      r = refresh_from_engine (sb, &running, &ierr);
      if (r == -SBX_E_GONE && sb->opts.name && sb->state_dir == NULL)
        sbx_error_free (ierr), r = 1; /* a new named sandbox */
      else if (r < 0)
        {
          if (err && !*err)
            *err = ierr;
          else
            sbx_error_free (ierr);
          return r;
        }
    }
  if (sb->id == NULL || r == 1)
    {
      if ((r = create_container (sb, err)) < 0)
        return r;
    }
  else if (running)
    {
      r = wait_for_agent (sb, AGENT_RECONNECT_TIMEOUT, err);
      if (r == 0)
        write_info (sb);
      return r;
    }
  else if ((r = prepare_state_dir (sb, err)) < 0)
    return r; /* a stopped sandbox: its host folder may be gone */
  return start_container (sb, err);
}

SBX_EXPORT int
sbx_sandbox_open (const char *id, sbx_sandbox_t **out, sbx_error_t **err)
{
  if (id == NULL || !*id || strchr (id, '/') || strlen (id) > 128)
    return sbx_fail (err, SBX_E_INVALID, "invalid sandbox id '%s'", id ? id : "");
  sbx_sandbox_t *sb = sandbox_alloc ();
  if (sb == NULL || (sb->id = strdup (id)) == NULL || (sb->state_dir = state_dir_for (id)) == NULL)
    {
      sbx_sandbox_free (sb);
      return sbx_fail (err, SBX_E_NOMEM, "out of memory");
    }
  /* Fast path: the host folder says how to reach and check the agent, so
   * a running sandbox costs no engine round trip. */
  if (read_info (sb) == 0 && sbx_agent_try_connect (sb, NULL) == 0)
    {
      *out = sb;
      return 0;
    }
  bool running;
  sbx_error_t *ierr = NULL;
  int r = refresh_from_engine (sb, &running, &ierr);
  if (r < 0)
    {
      /* Say it in the words of someone asking for a sandbox by id. */
      if (r == -SBX_E_GONE)
        sbx_fail (err, SBX_E_GONE, "sandbox %s does not exist (see `sbx ps`)", id);
      else if (err && *err == NULL)
        *err = steal_pointer (&ierr);
      sbx_error_free (ierr);
      sbx_sandbox_free (sb);
      return r;
    }
  *out = sb;
  return 0;
}

SBX_EXPORT int
sbx_sandbox_start (sbx_sandbox_t *sb, sbx_error_t **err)
{
  return sbx_sandbox_ensure (sb, err);
}

SBX_EXPORT bool
sbx_sandbox_is_alive (sbx_sandbox_t *sb)
{
  if (sb->id == NULL || engine (sb, NULL) < 0)
    return false;
  json_t *info = NULL;
  if (sbx_engine_container_inspect (sb->engine, sb->id, &info, NULL) < 0)
    return false;
  bool running = json_is_true (json_object_get (json_object_get (info, "State"), "Running"));
  json_decref (info);
  return running;
}

SBX_EXPORT int
sbx_sandbox_remove (sbx_sandbox_t *sb, sbx_error_t **err)
{
  sbx_agent_disconnect (sb);
  if (sb->id == NULL)
    return 0;
  int r = engine (sb, err);
  if (r == 0)
    r = sbx_engine_container_remove (sb->engine, sb->id, err);
  if (r == 0 && sb->state_dir)
    remove_state_dir (sb->state_dir);
  return r;
}

SBX_EXPORT int
sbx_sandbox_stop (sbx_sandbox_t *sb, sbx_error_t **err)
{
  if (sb->auto_remove)
    return sbx_sandbox_remove (sb, err);
  sbx_agent_disconnect (sb);
  if (sb->id == NULL)
    return 0;
  int r = engine (sb, err);
  return r < 0 ? r : sbx_engine_container_stop (sb->engine, sb->id, STOP_TIMEOUT, err);
}

SBX_EXPORT int
sbx_sandbox_set_file_timeout (sbx_sandbox_t *sb, double seconds, sbx_error_t **err)
{
  int r = sbx_timeout_check (seconds, err);
  if (r == 0 && seconds == 0)
    r = sbx_fail (err, SBX_E_INVALID, "file operations need a time limit above 0 s");
  if (r == 0)
    sb->file_timeout = seconds;
  return r;
}

SBX_EXPORT const char *
sbx_sandbox_id (const sbx_sandbox_t *sb)
{
  return sb->id;
}

SBX_EXPORT const char *
sbx_sandbox_image (const sbx_sandbox_t *sb)
{
  return sb->image;
}

SBX_EXPORT const char *
sbx_sandbox_workdir (const sbx_sandbox_t *sb)
{
  return sb->workdir;
}

SBX_EXPORT char *
sbx_path_resolve (const char *base, const char *path)
{
  if (path == NULL || !*path)
    path = ".";
  cleanup_free char *joined = path[0] == '/' ? strdup (path)
                                             : sbx_strdup_printf ("%s/%s", base, path);
  char *out = joined ? malloc (strlen (joined) + 2) : NULL;
  if (out == NULL)
    return NULL;
  /* Lexical normalisation: "." and empty segments vanish, ".." pops. */
  size_t o = 0;
  char *save = NULL;
  for (char *seg = strtok_r (joined, "/", &save); seg; seg = strtok_r (NULL, "/", &save))
    {
      if (strcmp (seg, ".") == 0)
        continue;
      if (strcmp (seg, "..") == 0)
        {
          while (o > 0 && out[o - 1] != '/')
            o--;
          if (o > 0)
            o--;
          continue;
        }
      out[o++] = '/';
      size_t n = strlen (seg);
      memcpy (out + o, seg, n);
      o += n;
    }
  if (o == 0)
    out[o++] = '/';
  out[o] = '\0';
  return out;
}

char *
sbx_sandbox_path (const sbx_sandbox_t *sb, const char *path, sbx_error_t **err)
{
  if (path && strlen (path) > 4096)
    {
      sbx_fail (err, SBX_E_INVALID, "path too long (at most 4096 bytes)");
      return NULL;
    }
  char *out = sbx_path_resolve (sb->workdir, path);
  if (out == NULL)
    sbx_fail (err, SBX_E_NOMEM, "out of memory");
  return out;
}

SBX_EXPORT int
sbx_sandbox_list (sbx_sandbox_info_t **items, size_t *count, sbx_error_t **err)
{
  sbx_engine_t *e = NULL;
  json_t *list = NULL;
  int r = sbx_engine_open (&e, err);
  if (r == 0)
    r = sbx_engine_container_list (e, SBX_LABEL_MANAGED, &list, err);
  sbx_engine_free (e);
  if (r < 0)
    return r;
  size_t n = json_array_size (list);
  sbx_sandbox_info_t *v = calloc (n + 1, sizeof *v);
  if (v == NULL)
    {
      json_decref (list);
      return sbx_fail (err, SBX_E_NOMEM, "out of memory");
    }
  for (size_t i = 0; i < n; i++)
    {
      json_t *c = json_array_get (list, i);
      const char *name = json_string_value (json_array_get (json_object_get (c, "Names"), 0));
      const char *named = json_string_value (
          json_object_get (json_object_get (c, "Labels"), SBX_LABEL_NAMED));
      time_t created = (time_t) json_integer_value (json_object_get (c, "Created"));
      struct tm tm;
      char when[32] = "";
      if (gmtime_r (&created, &tm))
        strftime (when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
      v[i].id = strdup (name ? name + (name[0] == '/') : "");
      v[i].image = strdup (json_string_value (json_object_get (c, "Image")) ?: "");
      v[i].status = strdup (json_string_value (json_object_get (c, "State")) ?: "");
      v[i].created = strdup (when);
      v[i].named = named && strcmp (named, "1") == 0;
    }
  json_decref (list);
  *items = v;
  *count = n;
  return 0;
}

SBX_EXPORT void
sbx_sandbox_info_list_free (sbx_sandbox_info_t *items, size_t count)
{
  for (size_t i = 0; items && i < count; i++)
    {
      free (items[i].id);
      free (items[i].image);
      free (items[i].status);
      free (items[i].created);
    }
  free (items);
}
