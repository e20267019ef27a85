/* Sandbox lifecycle: lazy creation, re-use of named sandboxes (created
 * once whatever the races, refused when asked with other options), stop and
 * removal. Only containers whose host record (hostdir.c) names their id are
 * treated as sandboxes: labels alone, which any image can carry, are not
 * enough. A failed create or start removes what it made. */
#include "runtime.h"
#include "sandbox.h"
#include "usage.h"
#include "state.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define AGENT_START_TIMEOUT 20.0
/* A running sandbox whose socket is being made again (see listener.c). */
#define AGENT_RECONNECT_TIMEOUT 3.0
/* How long a create waits for another process creating the same name. */
#define NAME_LOCK_WAIT 120.0
#define STOP_TIMEOUT 3
/* The engine's log of a sandbox holds at most this much (what the agent
 * says; the sandbox's own output never goes there). */
#define LOG_MAX_SIZE "1m"
#define LOG_MAX_FILES "2"
/* Capabilities a root user needs for ordinary work (package installs that
 * switch users, files owned by others); everything else is dropped. */
static const char *const kept_caps[] = { "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID",
                                         "KILL",  "SETGID",       "SETUID", "NET_BIND_SERVICE",
                                         NULL };
/* The engine's read-only paths (setting them replaces its defaults, the
 * first five), and the agent's OOM score: root in the sandbox could
 * otherwise make the agent the OOM killer's first choice. */
static const char *const readonly_paths[] = { "/proc/bus",
                                              "/proc/fs",
                                              "/proc/irq",
                                              "/proc/sys",
                                              "/proc/sysrq-trigger",
                                              "/proc/1/oom_score_adj",
                                              "/proc/1/oom_adj",
                                              "/proc/1/task/1/oom_score_adj",
                                              "/proc/1/task/1/oom_adj",
                                              NULL };

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
  sbx_options_clear (&sb->opts);
  free (sb->id);
  free (sb->image);
  free (sb->workdir);
  free (sb->state_dir);
  free (sb->notice);
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
      return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
    }
  sbx_options_free (defaults);
  sb->memory = sb->opts.memory;
  sb->auto_remove = sb->opts.auto_remove >= 0 ? sb->opts.auto_remove : sb->opts.name == NULL;
  sb->workdir = strdup (sb->opts.workdir ? sb->opts.workdir : SBX_DEFAULT_WORKDIR);
  if (sb->workdir == NULL)
    {
      sbx_sandbox_free (sb);
      return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
    }
  *out = sb;
  return 0;
}

static int
engine (sbx_sandbox_t *sb, sbx_error_t **err)
{
  return sb->engine ? 0 : sbx_engine_get (&sb->engine, err);
}

/* Replaces *SLOT with a copy of V; false when out of memory. */
static bool
set_str (char **slot, const char *v)
{
  char *c = strdup (v);
  if (c == NULL)
    return false;
  free (*slot);
  *slot = c;
  return true;
}

/* The record's facts into the handle. */
static int
take_record (sbx_sandbox_t *sb, const sbx_record_t *rec, sbx_error_t **err)
{
  if (!set_str (&sb->workdir, rec->workdir) || !set_str (&sb->image, rec->image))
    return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  sb->auto_remove = rec->auto_remove;
  sb->memory = rec->memory;
  sb->agent_pid = rec->pid;
  return 0;
}

/* Fills the handle from a container's inspect document, once its host
 * record confirms it is one of sbx's sandboxes. *REC (may be NULL) keeps
 * the record. */
static int
adopt_container (sbx_sandbox_t *sb, json_t *info, sbx_record_t *rec_out, sbx_error_t **err)
{
  const char *name = json_string_value (json_object_get (info, "Name"));
  const char *id = json_string_value (json_object_get (info, "Id"));
  if (name && name[0] == '/')
    name++;
  const char *shown = sbx_valid_name (name) ? name : sb->id;
  cleanup_free char *dir = NULL;
  sbx_record_t rec;
  if (!sbx_valid_name (name) || sbx_hostdir_path (name, &dir, NULL) < 0
      || sbx_record_read (dir, &rec) < 0)
    return sbx_error_set (err, SBX_E_EXISTS,
                          "container %s exists but is not a sandbox of sbx's (no "
                          "record of it on this host); choose another name",
                          shown);
  if (id == NULL || strcmp (rec.id, id) != 0)
    {
      sbx_record_clear (&rec);
      return sbx_error_set (err, SBX_E_EXISTS,
                            "container %s exists but is not the sandbox sbx made "
                            "under that name (another container id); choose another name",
                            shown);
    }
  int r = take_record (sb, &rec, err);
  if (r == 0 && (!set_str (&sb->id, name) || !set_str (&sb->state_dir, dir)))
    r = sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  if (r == 0)
    sb->agent_pid
        = (pid_t) json_integer_value (json_object_get (json_object_get (info, "State"), "Pid"));
  if (r == 0 && rec_out)
    *rec_out = rec;
  else
    sbx_record_clear (&rec);
  return r;
}

static int
refresh_from_engine (sbx_sandbox_t *sb, bool *running, sbx_record_t *rec, sbx_error_t **err)
{
  json_t *info = NULL;
  int r = engine (sb, err);
  if (r == 0)
    r = sbx_engine_container_inspect (sb->engine, sb->id, &info, err);
  if (r == 0)
    r = adopt_container (sb, info, rec, err);
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

/* A bind mount; the engine refuses one whose source is missing, where the
 * older Binds form would create it on the host. */
static json_t *
bind_mount (const char *source, const char *target, bool read_only)
{
  return json_pack ("{s:s, s:s, s:s, s:b}", "Type", "bind", "Source", source, "Target", target,
                    "ReadOnly", read_only);
}

/* Whether the engine's storage driver takes a size per container: -1
 * unknown, 0 no (learnt from a create it refused), 1 yes. One per process,
 * as is the engine (DOCKER_HOST); a wrong guess costs one refused create. */
static int storage_quota = -1;

/* The container's config; with QUOTA, the disk limit is the engine's
 * storage quota, otherwise the agent caps files and /tmp is a tmpfs. */
static json_t *
container_config (sbx_sandbox_t *sb, bool quota)
{
  const sbx_options_t *o = &sb->opts;
  json_t *mounts = json_array ();
  cleanup_free char *agent = sbx_strdup_printf ("%s/agent", sb->state_dir);
  cleanup_free char *run = sbx_strdup_printf ("%s/run", sb->state_dir);
  if (mounts == NULL || agent == NULL || run == NULL)
    {
      json_decref (mounts);
      return NULL;
    }
  json_array_append_new (mounts, bind_mount (agent, SBX_AGENT_BIN, true));
  json_array_append_new (mounts, bind_mount (run, SBX_AGENT_RUN_DIR, false));
  for (char **v = o->volumes; v && *v; v++)
    {
      /* "HOST:CONTAINER[:ro]", validated by sbx_options_add_volume. */
      cleanup_free char *spec = strdup (*v);
      char *ctr = spec ? strchr (spec, ':') : NULL;
      if (ctr == NULL)
        {
          json_decref (mounts);
          return NULL;
        }
      *ctr++ = '\0';
      char *mode = strchr (ctr, ':');
      if (mode)
        *mode++ = '\0';
      json_array_append_new (mounts, bind_mount (spec, ctr, mode && strcmp (mode, "ro") == 0));
    }
  /* A warm sandbox's slot: what the host mounts on it later (the user's
     workspace, at claim time) appears at the work dir. */
  json_t *slot = o->slot ? bind_mount (o->slot, sb->workdir, false) : NULL;
  if (slot)
    {
      json_object_set_new (slot, "BindOptions", json_pack ("{s:s}", "Propagation", "rslave"));
      json_array_append_new (mounts, slot);
    }

  json_t *host = json_pack ("{s:o, s:s, s:[s], s:o, s:[s], s:I, s:I, s:I, s:I, s:b, s:o, "
                            "s:{s:s, s:{s:s, s:s}}}",
                            "Mounts", mounts, "NetworkMode", o->network ? o->network : "none",
                            "CapDrop", "ALL", "CapAdd", string_array (kept_caps), "SecurityOpt",
                            "no-new-privileges", "PidsLimit", (json_int_t) o->pids, "Memory",
                            (json_int_t) o->memory, "MemorySwap", (json_int_t) o->memory,
                            "NanoCpus", (json_int_t) (o->cpus * 1e9), "Init", 0, "ReadonlyPaths",
                            string_array (readonly_paths), "LogConfig", "Type", "json-file",
                            "Config", "max-size", LOG_MAX_SIZE, "max-file", LOG_MAX_FILES);
  char size[32];
  snprintf (size, sizeof size, "%lld", (long long) o->disk);
  json_t *entrypoint = json_pack ("[s, s, s]", SBX_AGENT_BIN, "--workdir", sb->workdir);
  if (host && quota)
    json_object_set_new (host, "StorageOpt", json_pack ("{s:s}", "size", size));
  else if (host && entrypoint)
    {
      cleanup_free char *tmp
          = sbx_strdup_printf ("rw,nosuid,nodev,mode=1777,size=%lld",
                               (long long) (o->disk < o->memory ? o->disk : o->memory));
      json_object_set_new (host, "Tmpfs", json_pack ("{s:s}", "/tmp", tmp ? tmp : "size=1m"));
      json_array_append_new (entrypoint, json_string ("--max-file-size"));
      json_array_append_new (entrypoint, json_string (size));
    }
  /* Labels say what a container is for `sbx ps` and the docker CLI; sbx
   * trusts only its host record. */
  /* A session manager's labels are set empty unless given, so that an
   * image (one committed from a session's container, say) can't pass its
   * own on to a sandbox. */
  json_t *labels = json_pack ("{s:s, s:s, s:s, s:s, s:s, s:s}", SBX_LABEL_MANAGED, "1",
                              SBX_LABEL_VERSION, SBX_VERSION, SBX_LABEL_NAMED, o->name ? "1" : "0",
                              SBX_LABEL_MANAGER, "", SBX_LABEL_ROLE, "", SBX_LABEL_MANAGER_KEY, "");
  for (char **l = o->labels; labels && l && *l; l++)
    {
      const char *eq = strchr (*l, '=');
      cleanup_free char *key = eq ? strndup (*l, (size_t) (eq - *l)) : NULL;
      if (key)
        json_object_set_new (labels, key, json_string (eq + 1));
    }
  return json_pack ("{s:s, s:o, s:[], s:s, s:o, s:o, s:o, s:b, s:b}", "Image", sb->image,
                    "Entrypoint", entrypoint, "Cmd", "WorkingDir", sb->workdir, "Env",
                    string_array ((const char *const *) o->env), "Labels", labels, "HostConfig",
                    host, "Tty", 0, "OpenStdin", 0);
}

/* Adds a sentence to what sbx_sandbox_notice says (once each). */
static void notice_add (sbx_sandbox_t *sb, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

static void
notice_add (sbx_sandbox_t *sb, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  cleanup_free char *text = NULL;
  if (vasprintf (&text, fmt, ap) < 0)
    text = NULL;
  va_end (ap);
  if (text == NULL || (sb->notice && strstr (sb->notice, text)))
    return;
  char *joined = sb->notice ? sbx_strdup_printf ("%s; %s", sb->notice, text) : strdup (text);
  if (joined)
    {
      free (sb->notice);
      sb->notice = joined;
    }
}

/* Creates the container; its disk limit is a storage quota where the
 * engine has them, and capped files otherwise (said in sb->notice). */
static int
create_with_disk_limit (sbx_sandbox_t *sb, char **cid, sbx_error_t **err)
{
  bool quota = __atomic_load_n (&storage_quota, __ATOMIC_RELAXED) != 0;
  for (;;)
    {
      json_t *config = container_config (sb, quota);
      if (config == NULL)
        return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
      sbx_error_t *cerr = NULL;
      int r = sbx_engine_container_create (sb->engine, sb->id, config, cid, &cerr);
      json_decref (config);
      if (r < 0 && quota && strstr (sbx_error_message (cerr), "storage-opt"))
        {
          sbx_error_free (cerr);
          __atomic_store_n (&storage_quota, 0, __ATOMIC_RELAXED);
          quota = false;
          continue;
        }
      if (r == 0 && quota)
        __atomic_store_n (&storage_quota, 1, __ATOMIC_RELAXED);
      if (r == 0 && !quota)
        {
          char disk[32], tmp[32];
          notice_add (
              sb,
              "the engine's storage driver has no quota for a container's disk (overlay2 "
              "needs xfs with pquota): instead of a %s disk limit, each file is capped at %s "
              "and /tmp at %s",
              sbx_size_text (sb->opts.disk, disk), disk,
              sbx_size_text (sb->opts.disk < sb->opts.memory ? sb->opts.disk : sb->opts.memory,
                             tmp));
        }
      if (r < 0)
        sbx_error_propagate (err, cerr);
      return r;
    }
}

static int
resolve_image (sbx_sandbox_t *sb, sbx_error_t **err)
{
  if (sb->image)
    return 0;
  if (sb->opts.image && strcmp (sb->opts.image, SBX_SEED_IMAGE) == 0)
    {
      /* The seed's documents name it in every example: where it cannot be
         had, sbx's base image stands in, and the notice says so. */
      int r = sbx_image_default (&sb->image, NULL, err);
      if (r == 0 && strcmp (sb->image, SBX_SEED_IMAGE) != 0)
        notice_add (sb, "%s is not here and could not be pulled: sbx's base image %s stands in",
                    SBX_SEED_IMAGE, sb->image);
      return r;
    }
  if (sb->opts.image)
    return (sb->image = strdup (sb->opts.image))
               ? 0
               : sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  if (sb->opts.runtime)
    return sbx_runtime_resolve (sb->engine, sb->opts.runtime, NULL, NULL, &sb->image, NULL, err);
  const char *reason;
  return sbx_image_default (&sb->image, &reason, err);
}

/* ------------------------------------------------------------ options */

/* What the caller asked for, in a form kept in the record: a named sandbox
 * used again must be asked for the same. Defaults count as asked. */
static json_t *
options_request (const sbx_options_t *o, const char *workdir)
{
  return json_pack (
      "{s:s, s:s, s:s, s:o, s:o, s:s, s:I, s:f, s:I, s:I}", "image", o->image ? o->image : "",
      "runtime", o->runtime ? sbx_runtime_name (o->runtime) : "", "network",
      o->network ? o->network : "none", "volumes", string_array ((const char *const *) o->volumes),
      "env", string_array ((const char *const *) o->env), "workdir", workdir, "memory",
      (json_int_t) o->memory, "cpus", o->cpus, "pids", (json_int_t) o->pids, "disk",
      (json_int_t) o->disk);
}

/* One option as a user reads it. */
static char *
option_text (const char *key, json_t *v)
{
  if (json_is_integer (v) && (strcmp (key, "memory") == 0 || strcmp (key, "disk") == 0))
    {
      char size[32];
      return strdup (sbx_size_text (json_integer_value (v), size));
    }
  if (json_is_integer (v))
    return sbx_strdup_printf ("%lld", (long long) json_integer_value (v));
  if (json_is_real (v))
    return sbx_strdup_printf ("%g", json_real_value (v));
  if (json_is_string (v))
    return sbx_strdup_printf ("%s", *json_string_value (v) ? json_string_value (v) : "(default)");
  if (json_is_array (v) && json_array_size (v) == 0)
    return strdup ("(none)");
  char *t = json_dumps (v, JSON_COMPACT);
  return t ? t : strdup ("?");
}

/* "network bridge (asked: none), memory 512 MiB (asked: 1024 MiB)", or NULL
 * when HAD and WANT agree. */
static char *
differences (json_t *had, json_t *want)
{
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream (&text, &len);
  if (f == NULL)
    return strdup ("(out of memory)");
  bool any = false;
  const char *key;
  json_t *w;
  json_object_foreach (want, key, w)
    {
      json_t *h = json_object_get (had, key);
      if (h && json_equal (h, w))
        continue;
      cleanup_free char *ht = h ? option_text (key, h) : strdup ("(unknown)");
      cleanup_free char *wt = option_text (key, w);
      fprintf (f, "%s%s %s (asked: %s)", any ? ", " : "", key, ht ? ht : "?", wt ? wt : "?");
      any = true;
    }
  fclose (f);
  if (!any)
    {
      free (text);
      return NULL;
    }
  return text;
}

/* ------------------------------------------------------------ create, start */

static int
wait_for_agent (sbx_sandbox_t *sb, double timeout, sbx_error_t **err)
{
  double deadline = sbx_now () + timeout, next_check = sbx_now () + 0.25;
  struct timespec pause = { 0, 500000 };
  for (;;)
    {
      sbx_agent_reach_t reach;
      int r = sbx_agent_try_connect (sb, &reach, err);
      if (r < 0 || reach == SBX_AGENT_CONNECTED)
        return r;
      bool running = true;
      if (reach == SBX_AGENT_IMPOSTOR || sbx_now () > next_check)
        {
          /* The container may have restarted (new pid) or died. */
          if ((r = refresh_from_engine (sb, &running, NULL, err)) < 0)
            return r;
          next_check = sbx_now () + 0.25;
          if (!running)
            return sbx_error_set (err, SBX_E_AGENT,
                                  "sandbox %s exited before its agent answered; see "
                                  "`docker logs %s`",
                                  sb->id, sb->id);
          if ((r = sbx_agent_try_connect (sb, &reach, err)) < 0 || reach == SBX_AGENT_CONNECTED)
            return r;
          if (reach == SBX_AGENT_IMPOSTOR)
            return sbx_error_set (
                err, SBX_E_AGENT,
                "something else answers on the agent socket of "
                "sandbox %s, not its agent: a process in the sandbox replaced it. "
                "sbx refuses to talk to it; remove the sandbox",
                sb->id);
        }
      if (sbx_now () > deadline)
        return sbx_error_set (err, SBX_E_AGENT,
                              "the agent of sandbox %s did not answer within %.0f s; "
                              "see `docker logs %s`",
                              sb->id, timeout, sb->id);
      nanosleep (&pause, NULL);
      if (pause.tv_nsec < 16000000)
        pause.tv_nsec *= 2;
    }
}

/* Starts the (created) container and connects to its agent; its record
 * then holds the agent's pid. */
static int
start_container (sbx_sandbox_t *sb, sbx_record_t *rec, sbx_error_t **err)
{
  bool running;
  int r = sbx_hostdir_prepare (sb->state_dir, err);
  if (r == 0)
    r = sbx_engine_container_start (sb->engine, sb->id, err);
  if (r == 0)
    r = refresh_from_engine (sb, &running, NULL, err);
  if (r == 0)
    r = wait_for_agent (sb, AGENT_START_TIMEOUT, err);
  if (r == 0)
    {
      sbx_hostdir_seal (sb->state_dir);
      rec->pid = sb->agent_pid;
      if (sbx_record_write (sb->state_dir, rec, NULL) < 0)
        rec->pid = 0; /* only the fast path of sbx_sandbox_open is lost */
    }
  return r;
}

/* Removes what a failed create made: the container and the host folder. */
static void
undo_create (sbx_sandbox_t *sb, bool container)
{
  sbx_agent_disconnect (sb);
  if (container)
    sbx_engine_container_remove (sb->engine, sb->id, NULL);
  sbx_hostdir_remove (sb->state_dir);
  /* The handle knows no sandbox again: a later operation tries anew and
     says the real cause, not that a sandbox never made is gone. */
  free (sb->id), sb->id = NULL;
  free (sb->state_dir), sb->state_dir = NULL;
}

/* Each volume's host path exists (the engine checks too, with a vaguer
 * message): a missing one is never made. */
static int
check_volumes (const sbx_options_t *o, sbx_error_t **err)
{
  for (char **v = o->volumes; v && *v; v++)
    {
      cleanup_free char *host = strndup (*v, strcspn (*v, ":"));
      struct stat st;
      if (host == NULL)
        return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
      if (stat (host, &st) < 0)
        return sbx_error_set_errno (
            err, errno == ENOENT ? SBX_E_NOT_FOUND : SBX_E_IO, errno,
            "volume %s: its host path %s cannot be used (sbx creates nothing "
            "on the host; make it first)",
            *v, host);
    }
  return 0;
}

/* Creates and starts a sandbox named NAME; everything it made goes again
 * when it fails. */
static int
create_and_start (sbx_sandbox_t *sb, const char *name, sbx_error_t **err)
{
  int r = check_volumes (&sb->opts, err);
  sb->memory = sb->opts.memory;
  if (r == 0)
    r = resolve_image (sb, err);
  if (r < 0)
    return r;
  free (sb->state_dir);
  sb->state_dir = NULL;
  if (!set_str (&sb->id, name))
    return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  if ((r = sbx_hostdir_path (name, &sb->state_dir, err)) < 0
      || (r = sbx_hostdir_prepare (sb->state_dir, err)) < 0)
    {
      if (sb->state_dir)
        sbx_hostdir_remove (sb->state_dir);
      return r;
    }
  cleanup_free char *cid = NULL;
  sbx_error_t *cerr = NULL;
  r = create_with_disk_limit (sb, &cid, &cerr);
  if (r == -SBX_E_IMAGE_MISSING)
    {
      /* Not present locally: one pull, then one more try. */
      sbx_error_t *perr = NULL;
      sbx_error_free (cerr), cerr = NULL;
      if (sbx_engine_image_pull (sb->engine, sb->image, NULL, NULL, &perr) == 0)
        r = create_with_disk_limit (sb, &cid, &cerr);
      else
        r = sbx_error_set (&cerr, SBX_E_IMAGE_MISSING,
                           "image %s is not present and could not be "
                           "pulled (%s); pick an image that exists, or build sbx's own base image "
                           "with `sbx image bootstrap`",
                           sb->image, sbx_error_message (perr));
      sbx_error_free (perr);
    }
  if (r < 0)
    {
      undo_create (sb, false);
      sbx_error_propagate (err, cerr);
      return r;
    }
  /* Its own copies: starting refreshes the handle's. */
  sbx_record_t rec = { .id = steal_pointer (&cid),
                       .workdir = strdup (sb->workdir),
                       .image = strdup (sb->image),
                       .auto_remove = sb->auto_remove,
                       .memory = sb->memory,
                       .options = options_request (&sb->opts, sb->workdir) };
  r = rec.options && rec.workdir && rec.image ? sbx_record_write (sb->state_dir, &rec, err)
                                              : sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  if (r == 0)
    r = start_container (sb, &rec, err);
  sbx_record_clear (&rec);
  if (r < 0)
    undo_create (sb, true);
  return r;
}

/* A named sandbox: made once, whatever other processes ask for the same
 * name at the same time (they take turns on a lock, and find it made);
 * used again only with the options it was made with, unless the caller
 * asked to replace it. */
static int
ensure_named (sbx_sandbox_t *sb, sbx_error_t **err)
{
  const char *name = sb->opts.name;
  sbx_lock_t lock;
  int r = sbx_lock_take ("locks", name, NAME_LOCK_WAIT, NULL, NULL, &lock, err);
  if (r < 0)
    return r;
  if (!set_str (&sb->id, name))
    {
      sbx_lock_release (&lock);
      return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
    }
  bool running = false;
  sbx_record_t rec = { 0 };
  sbx_error_t *ierr = NULL;
  r = refresh_from_engine (sb, &running, &rec, &ierr);
  if (r == -SBX_E_GONE)
    {
      sbx_error_free (ierr);
      r = create_and_start (sb, name, err);
      sbx_lock_release (&lock);
      return r;
    }
  if (r < 0)
    {
      sbx_error_propagate (err, ierr);
      sbx_lock_release (&lock);
      return r;
    }
  json_t *want = options_request (&sb->opts,
                                  sb->opts.workdir ? sb->opts.workdir : SBX_DEFAULT_WORKDIR);
  cleanup_free char *diff = want ? differences (rec.options, want) : strdup ("(out of memory)");
  json_decref (want);
  if (diff && sb->opts.replace)
    {
      /* The old one goes, its files with it: the caller asked for that. */
      sbx_agent_disconnect (sb);
      r = sbx_engine_container_remove (sb->engine, sb->id, err);
      if (r == 0)
        {
          sbx_hostdir_remove (sb->state_dir);
          free (sb->image), sb->image = NULL;
          free (sb->workdir);
          sb->workdir = strdup (sb->opts.workdir ? sb->opts.workdir : SBX_DEFAULT_WORKDIR);
          sb->auto_remove = sb->opts.auto_remove >= 0 ? sb->opts.auto_remove : false;
          r = sb->workdir ? create_and_start (sb, name, err)
                          : sbx_error_set (err, SBX_E_NOMEM, "out of memory");
        }
    }
  else if (diff)
    r = sbx_error_set (err, SBX_E_EXISTS,
                       "sandbox %s exists with other options: %s; use it as it "
                       "is (the same options), replace it (--replace, sbx_options_set_replace), or "
                       "remove it first (`sbx rm %s`)",
                       name, diff, name);
  else if (running)
    r = wait_for_agent (sb, AGENT_RECONNECT_TIMEOUT, err);
  else
    /* A stopped sandbox: it keeps its container and files whatever happens. */
    r = start_container (sb, &rec, err);
  sbx_record_clear (&rec);
  sbx_lock_release (&lock);
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
  if (sb->id == NULL && sb->opts.name)
    return ensure_named (sb, err);
  if (sb->id == NULL)
    {
      cleanup_free char *name = sbx_random_id ("sbx-", 6);
      return name ? create_and_start (sb, name, err)
                  : sbx_error_set (err, SBX_E_IO, "cannot make a random sandbox name");
    }
  /* A sandbox this handle knows: running, or stopped since. */
  bool running = false;
  sbx_record_t rec = { 0 };
  if ((r = refresh_from_engine (sb, &running, &rec, err)) == 0)
    r = running ? wait_for_agent (sb, AGENT_RECONNECT_TIMEOUT, err)
                : start_container (sb, &rec, err);
  sbx_record_clear (&rec);
  return r;
}

SBX_EXPORT int
sbx_sandbox_open (const char *id, sbx_sandbox_t **out, sbx_error_t **err)
{
  /* A name, or the engine's id (hex) of the container. */
  size_t n = id ? strlen (id) : 0;
  if (id == NULL || (!sbx_valid_name (id) && !(n <= 64 && strspn (id, "0123456789abcdef") == n)))
    return sbx_error_set (err, SBX_E_INVALID, "invalid sandbox id '%s'", id ? id : "");
  sbx_sandbox_t *sb = sandbox_alloc ();
  if (sb == NULL || (sb->id = strdup (id)) == NULL)
    {
      sbx_sandbox_free (sb);
      return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
    }
  /* Fast path: the host record says how to reach and check the agent, so
   * a running sandbox costs no engine round trip. */
  sbx_record_t rec;
  if (sbx_hostdir_path (id, &sb->state_dir, NULL) == 0
      && sbx_record_read (sb->state_dir, &rec) == 0)
    {
      int r = rec.pid > 0 ? take_record (sb, &rec, NULL) : -1;
      sbx_record_clear (&rec);
      sbx_agent_reach_t reach = SBX_AGENT_NOT_YET;
      if (r == 0 && sbx_agent_try_connect (sb, &reach, NULL) == 0 && reach == SBX_AGENT_CONNECTED)
        {
          *out = sb;
          return 0;
        }
    }
  bool running;
  sbx_error_t *ierr = NULL;
  int r = refresh_from_engine (sb, &running, NULL, &ierr);
  if (r < 0)
    {
      /* Say it in the words of someone asking for a sandbox by id. */
      if (r == -SBX_E_GONE)
        sbx_error_set (err, SBX_E_GONE, "sandbox %s does not exist (see `sbx ps`)", id);
      else
        sbx_error_propagate (err, steal_pointer (&ierr));
      sbx_error_free (ierr);
      sbx_sandbox_free (sb);
      return r;
    }
  *out = sb;
  return 0;
}

int
sbx_sandbox_purge_name (const char *name, sbx_error_t **err)
{
  if (!sbx_valid_name (name))
    return sbx_error_set (err, SBX_E_INVALID, "invalid sandbox name '%s'", name ? name : "");
  sbx_engine_t *e = NULL;
  int r = sbx_engine_get (&e, err);
  if (r == 0)
    r = sbx_engine_container_remove (e, name, err);
  cleanup_free char *dir = NULL;
  if (r == 0 && sbx_hostdir_path (name, &dir, NULL) == 0)
    sbx_hostdir_remove (dir);
  return r;
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
  /* The folder is the one its (validated) name gives, never a label's. */
  if (r == 0 && sb->state_dir)
    sbx_hostdir_remove (sb->state_dir);
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
sbx_sandbox_usage (sbx_sandbox_t *sb, sbx_sandbox_usage_t *usage, sbx_error_t **err)
{
  sbx_usage_from_stats (NULL, usage);
  if (sb->id == NULL)
    return sbx_error_set (err, SBX_E_INVALID, "the sandbox has not started");
  json_t *stats = NULL;
  int r = engine (sb, err);
  if (r == 0)
    r = sbx_engine_container_stats (sb->engine, sb->id, &stats, err);
  if (r == 0)
    sbx_usage_from_stats (stats, usage);
  json_decref (stats);
  return r;
}

SBX_EXPORT int
sbx_sandbox_set_file_timeout (sbx_sandbox_t *sb, double seconds, sbx_error_t **err)
{
  int r = sbx_timeout_check (seconds, err);
  if (r == 0 && seconds == 0)
    r = sbx_error_set (err, SBX_E_INVALID, "file operations need a time limit above 0 s");
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
sbx_sandbox_notice (const sbx_sandbox_t *sb)
{
  return sb->notice;
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
      sbx_error_set (err, SBX_E_INVALID, "path too long (at most 4096 bytes)");
      return NULL;
    }
  char *out = sbx_path_resolve (sb->workdir, path);
  if (out == NULL)
    sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  return out;
}

SBX_EXPORT int
sbx_sandbox_list (sbx_sandbox_info_t **items, size_t *count, sbx_error_t **err)
{
  sbx_engine_t *e = NULL;
  json_t *list = NULL;
  int r = sbx_engine_get (&e, err);
  if (r == 0)
    r = sbx_engine_container_list (e, SBX_LABEL_MANAGED, &list, err);
  if (r < 0)
    return r;
  size_t n = json_array_size (list);
  sbx_sandbox_info_t *v = calloc (n + 1, sizeof *v);
  if (v == NULL)
    {
      json_decref (list);
      return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
    }
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    {
      json_t *c = json_array_get (list, i);
      const char *name = json_string_value (json_array_get (json_object_get (c, "Names"), 0));
      if (name && name[0] == '/')
        name++;
      /* Only those whose host record names this container: labels come
         from images too. */
      cleanup_free char *dir = NULL;
      sbx_record_t rec;
      if (!sbx_valid_name (name) || sbx_hostdir_path (name, &dir, NULL) < 0
          || sbx_record_read (dir, &rec) < 0)
        continue;
      const char *cid = json_string_value (json_object_get (c, "Id"));
      bool ours = cid && strcmp (rec.id, cid) == 0;
      bool named = !rec.auto_remove;
      sbx_record_clear (&rec);
      if (!ours)
        continue;
      time_t created = (time_t) json_integer_value (json_object_get (c, "Created"));
      struct tm tm;
      char when[32] = "";
      if (gmtime_r (&created, &tm))
        strftime (when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
      v[k].id = strdup (name);
      v[k].image = strdup (json_string_value (json_object_get (c, "Image")) ?: "");
      v[k].status = strdup (json_string_value (json_object_get (c, "State")) ?: "");
      v[k].created = strdup (when);
      v[k].named = named;
      if (!v[k].id || !v[k].image || !v[k].status || !v[k].created)
        {
          sbx_sandbox_info_list_free (v, k + 1);
          json_decref (list);
          return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
        }
      k++;
    }
  json_decref (list);
  *items = v;
  *count = k;
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
