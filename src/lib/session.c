/* Sessions: the seed's SessionManager for multi-user applications.
 *
 * A manager keeps no state of its own that matters: each session is a
 * record on the host (STATE/managers/NAME/sessions/ID.json: its user, its
 * sandbox, its workspace), written before its sandbox exists, so that any
 * process (a new manager after a crash, `sbx session ls` beside a server)
 * sees the same sessions, and what a crash left half-made is found and
 * removed. Limits are counted on the records under a lock the manager's
 * processes share; each session has its own lock (a file lock, so that
 * threads and processes both take turns), held only while its sandbox is
 * made, replaced or removed. Idle time is the activity file every sbx
 * handle touches when it works on the sandbox (channel.c), so any
 * operation, in any process, counts.
 *
 * Workspaces: ROOT/USER/workspace, mounted at the work dir. A cold
 * sandbox gets it as a bind mount. A warm sandbox (the pool) is started
 * before its user is known: its work dir is a per-sandbox slot, a host
 * folder made a shared mount point and bind-mounted into the container
 * with slave propagation; at claim time the host bind-mounts the user's
 * folder onto the slot and it appears at the work dir. That takes mount(2)
 * on the host: a pool with workspaces needs root. */
#include "sandbox.h"
#include "sha256.h"
#include "state.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>

#define DEFAULT_MANAGER "default"
#define DEFAULT_IDLE 3600.0
#define DEFAULT_REAPER_INTERVAL 60.0
/* Long enough for a sandbox to start (a runtime's build is done before). */
#define LOCK_WAIT 300.0
#define MAX_RECORD (64u << 10)
/* After a failed warm start, before the next try. */
#define POOL_RETRY_S 5
/* Sandboxes stopped at once by a shutdown. */
#define STOP_THREADS 8

struct pool_entry
{
  char *sandbox;
  char *slot; /* NULL without workspaces */
  struct pool_entry *next;
};

struct sbx_manager
{
  char *name;
  sbx_options_t opts; /* the sessions' sandbox options */
  char *workdir;      /* where the workspace goes in the sandbox */
  char *ws_root;      /* NULL: no workspaces */
  double idle;
  size_t max_sessions, max_per_user, pool_size;
  char *dir;   /* STATE/managers/NAME */
  char *locks; /* managers/NAME/locks, for sbx_lock_take */
  char *key;   /* see SBX_LABEL_MANAGER_KEY */
  /* Held by start_reaper and stop_reaper for all they do: a stop's join
     never meets a start's new thread. */
  pthread_mutex_t reaper_ctl;

  pthread_mutex_t lock; /* what follows */
  pthread_cond_t cond;
  struct pool_entry *ready;
  size_t nready, warming;
  bool stopping;
  pthread_t pool_thread;
  bool pool_running;
  pthread_t reaper_thread;
  pthread_cond_t reaper_cond; /* its own: the pool's wake-ups don't reach it */
  bool reaper_running, reaper_stop;
  double reaper_interval;
};

/* A session's record. */
struct srec
{
  char *id, *user, *sandbox; /* SANDBOX may be NULL while it is being made */
  char *workspace, *slot;    /* host paths, or NULL */
  double created;
  double idle; /* its idle timeout, as its manager said */
  bool creating;
  long pid; /* the process making it, while CREATING */
  unsigned long long start;
};

static void
srec_clear (struct srec *r)
{
  free (r->id);
  free (r->user);
  free (r->sandbox);
  free (r->workspace);
  free (r->slot);
  memset (r, 0, sizeof *r);
}

static void
srecs_free (struct srec *v, size_t n)
{
  for (size_t i = 0; i < n; i++)
    srec_clear (&v[i]);
  free (v);
}

SBX_EXPORT bool
sbx_session_id_valid (const char *id)
{
  return sbx_valid_name (id);
}

/* ------------------------------------------------------------ processes */

/* A process is its pid and its start time, so that a reused pid is not
 * taken for the process that wrote a record. */
static unsigned long long
process_start (long pid)
{
  char path[64], buf[1024];
  snprintf (path, sizeof path, "/proc/%ld/stat", pid);
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  ssize_t n = read (fd, buf, sizeof buf - 1);
  close (fd);
  if (n <= 0)
    return 0;
  buf[n] = '\0';
  /* Field 22, counted after the command's closing parenthesis. */
  char *p = strrchr (buf, ')');
  for (int field = 2; p && field < 22; field++)
    p = strchr (p + 1, ' ');
  return p ? strtoull (p + 1, NULL, 10) : 0;
}

static bool
process_alive (long pid, unsigned long long start)
{
  return pid > 0 && start > 0 && process_start (pid) == start;
}

/* -------------------------------------------------------------- records */

static char *
record_path (const sbx_manager_t *m, const char *kind, const char *id)
{
  return sbx_strdup_printf ("%s/%s/%s.json", m->dir, kind, id);
}

static char *
dup_or_null (json_t *v)
{
  const char *s = json_string_value (v);
  return s ? strdup (s) : NULL;
}

/* The record of session ID: 0, or -SBX_E_NOT_FOUND (ERR untouched) when
 * there is none, or a failure. Every field is checked: a record names
 * host paths. */
static int
record_read (const sbx_manager_t *m, const char *id, struct srec *r, sbx_error_t **err)
{
  memset (r, 0, sizeof *r);
  cleanup_free char *path = record_path (m, "sessions", id);
  if (path == NULL)
    return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  json_t *doc = sbx_json_read_file (path, MAX_RECORD);
  if (doc == NULL)
    return errno == ENOENT ? -SBX_E_NOT_FOUND
                           : sbx_error_set (err, SBX_E_IO, "the record %s cannot be read", path);
  r->id = dup_or_null (json_object_get (doc, "id"));
  r->user = dup_or_null (json_object_get (doc, "user"));
  r->sandbox = dup_or_null (json_object_get (doc, "sandbox"));
  r->workspace = dup_or_null (json_object_get (doc, "workspace"));
  r->slot = dup_or_null (json_object_get (doc, "slot"));
  r->created = json_number_value (json_object_get (doc, "created"));
  r->idle = json_number_value (json_object_get (doc, "idle"));
  r->creating = json_is_true (json_object_get (doc, "creating"));
  r->pid = (long) json_integer_value (json_object_get (doc, "pid"));
  r->start = (unsigned long long) json_integer_value (json_object_get (doc, "start"));
  json_decref (doc);
  /* A slot is this manager's, named after the sandbox; a workspace is
     ROOT/USER/workspace (and is opened step by step before any use). */
  cleanup_free char *slot = r->slot && r->sandbox
                                ? sbx_strdup_printf ("%s/slots/%s", m->dir, r->sandbox)
                                : NULL;
  size_t wl = r->workspace ? strlen (r->workspace) : 0;
  if (r->id == NULL || strcmp (r->id, id) != 0 || !sbx_valid_name (r->user)
      || (r->sandbox && !sbx_valid_name (r->sandbox))
      || (r->workspace
          && (r->workspace[0] != '/' || wl < 11 || strcmp (r->workspace + wl - 10, "/workspace")))
      || (r->slot && (slot == NULL || strcmp (r->slot, slot) != 0)) || !(r->idle >= 0))
    {
      srec_clear (r);
      return sbx_error_set (err, SBX_E_IO, "the record %s is damaged; remove it", path);
    }
  return 0;
}

static int
record_write (const sbx_manager_t *m, const struct srec *r, sbx_error_t **err)
{
  cleanup_free char *path = record_path (m, "sessions", r->id);
  json_t *doc = json_pack ("{s:s, s:s, s:s?, s:s?, s:s?, s:f, s:f, s:b, s:I, s:I}", "id", r->id,
                           "user", r->user, "sandbox", r->sandbox, "workspace", r->workspace,
                           "slot", r->slot, "created", r->created, "idle", r->idle, "creating",
                           r->creating, "pid", (json_int_t) r->pid, "start", (json_int_t) r->start);
  int ret = path ? sbx_json_write_file (path, doc, err)
                 : sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  json_decref (doc);
  return ret;
}

static void
record_remove (const sbx_manager_t *m, const char *kind, const char *id)
{
  cleanup_free char *path = record_path (m, kind, id);
  if (path)
    unlink (path);
}

/* Every session's record (damaged ones are skipped). */
static int
records_scan (const sbx_manager_t *m, struct srec **out, size_t *count, sbx_error_t **err)
{
  *out = NULL;
  *count = 0;
  cleanup_free char *dir = sbx_strdup_printf ("%s/sessions", m->dir);
  DIR *d = dir ? opendir (dir) : NULL;
  if (d == NULL)
    return dir ? sbx_error_set_errno (err, SBX_E_IO, errno, "cannot read %s", dir)
               : sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  struct srec *v = NULL;
  size_t n = 0, cap = 0;
  int r = 0;
  for (struct dirent *de; r == 0 && (de = readdir (d));)
    {
      size_t len = strlen (de->d_name);
      if (len < 6 || strcmp (de->d_name + len - 5, ".json") != 0)
        continue;
      cleanup_free char *id = strndup (de->d_name, len - 5);
      if (id == NULL || !sbx_valid_name (id))
        continue;
      if (n == cap)
        {
          struct srec *nv = realloc (v, (cap = cap ? cap * 2 : 16) * sizeof *nv);
          if (nv == NULL)
            {
              r = sbx_error_set (err, SBX_E_NOMEM, "out of memory");
              break;
            }
          v = nv;
        }
      if (record_read (m, id, &v[n], NULL) == 0)
        n++;
    }
  closedir (d);
  if (r < 0)
    {
      srecs_free (v, n);
      return r;
    }
  *out = v;
  *count = n;
  return 0;
}

/* ------------------------------------------------------------ workspaces */

/* ROOT/USER/workspace, made if missing: every step a real directory (no
 * symbolic link), and *PATH its path; *MADE when ROOT/USER is new. */
static int
user_workspace (const sbx_manager_t *m, const char *user, char **path, bool *made,
                sbx_error_t **err)
{
  *path = NULL;
  *made = false;
  cleanup_close int root = open (m->ws_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root < 0)
    return sbx_error_set_errno (err, SBX_E_NOT_FOUND, errno, "the workspace root %s cannot be used",
                                m->ws_root);
  if (mkdirat (root, user, 0700) == 0)
    *made = true;
  else if (errno != EEXIST)
    return sbx_error_set_errno (err, SBX_E_IO, errno, "cannot make %s/%s", m->ws_root, user);
  cleanup_close int ufd = openat (root, user, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (ufd < 0)
    return sbx_error_set_errno (err, SBX_E_IO, errno, "%s/%s is not a folder", m->ws_root, user);
  if (mkdirat (ufd, "workspace", 0755) < 0 && errno != EEXIST)
    return sbx_error_set_errno (err, SBX_E_IO, errno, "cannot make %s/%s/workspace", m->ws_root,
                                user);
  cleanup_close int wfd = openat (ufd, "workspace",
                                  O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (wfd < 0)
    return sbx_error_set_errno (err, SBX_E_IO, errno, "%s/%s/workspace is not a folder", m->ws_root,
                                user);
  *path = sbx_strdup_printf ("%s/%s/workspace", m->ws_root, user);
  return *path ? 0 : sbx_error_set (err, SBX_E_NOMEM, "out of memory");
}

/* The workspace WS of USER, as a record names it (ROOT/USER/workspace),
 * opened one step at a time: ROOT as given, then USER and workspace each a
 * real folder (O_NOFOLLOW), so that a user folder replaced by a symbolic
 * link is refused, not followed. *USERFD (ROOT/USER) and *WSFD, each may
 * be NULL; *ROOTFD too. */
static int
workspace_open (const char *ws, const char *user, int *rootfd, int *userfd, int *wsfd,
                sbx_error_t **err)
{
  size_t n = strlen (ws), tail = strlen (user) + sizeof "//workspace" - 1;
  if (n <= tail || ws[n - tail] != '/' || strncmp (ws + n - tail + 1, user, strlen (user)) != 0
      || strcmp (ws + n - sizeof "/workspace" + 1, "/workspace") != 0)
    return sbx_error_set (err, SBX_E_IO, "the workspace %s is not ROOT/%s/workspace", ws, user);
  cleanup_free char *root = strndup (ws, n - tail);
  if (root == NULL)
    return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  cleanup_close int rfd = open (*root ? root : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  cleanup_close int ufd = rfd >= 0
                              ? openat (rfd, user, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                              : -1;
  cleanup_close int wfd
      = ufd >= 0 ? openat (ufd, "workspace", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : -1;
  if (wfd < 0)
    return sbx_error_set_errno (err, errno == ENOENT ? SBX_E_NOT_FOUND : SBX_E_IO, errno,
                                "the workspace %s cannot be used (each of its last two steps "
                                "must be a folder, not a symbolic link)",
                                ws);
  if (rootfd)
    *rootfd = steal_fd (&rfd);
  if (userfd)
    *userfd = steal_fd (&ufd);
  if (wsfd)
    *wsfd = steal_fd (&wfd);
  return 0;
}

/* A warm sandbox's slot: STATE/managers/NAME/slots/SANDBOX, a shared mount
 * point, so that what is mounted on it later reaches the container. */
static int
slot_make (const sbx_manager_t *m, const char *sandbox, char **slot, sbx_error_t **err)
{
  *slot = sbx_strdup_printf ("%s/slots/%s", m->dir, sandbox);
  if (*slot == NULL)
    return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  if (sbx_mkdir_p (*slot, 0755) < 0 || mount (*slot, *slot, NULL, MS_BIND, NULL) < 0
      || mount (NULL, *slot, NULL, MS_SHARED, NULL) < 0)
    {
      int e = errno;
      umount2 (*slot, MNT_DETACH);
      rmdir (*slot);
      return sbx_error_set_errno (err, SBX_E_IO, e, "cannot make the warm sandbox's slot %s",
                                  *slot);
    }
  return 0;
}

/* Unmounts what is on SLOT (the user's workspace, the slot itself) and
 * removes it. */
static void
slot_drop (const char *slot)
{
  if (slot == NULL)
    return;
  for (int i = 0; i < 4 && umount2 (slot, MNT_DETACH) == 0; i++)
    ;
  rmdir (slot);
}

/* The user's workspace WORKSPACE appears at the work dir of the warm
 * sandbox of SLOT (mounted through a descriptor: no symlink swapped in
 * between is followed). */
static int
slot_fill (const char *slot, const char *workspace, const char *user, sbx_error_t **err)
{
  int fd = -1;
  int r = workspace_open (workspace, user, NULL, NULL, &fd, err);
  if (r < 0)
    return r;
  cleanup_close int wfd = fd;
  char src[64];
  snprintf (src, sizeof src, "/proc/self/fd/%d", wfd);
  if (mount (src, slot, NULL, MS_BIND, NULL) < 0)
    return sbx_error_set_errno (err, SBX_E_IO, errno, "cannot mount %s on %s", workspace, slot);
  return 0;
}

/* Whether WORKSPACE is what is mounted on SLOT (it is not after a reboot). */
static bool
slot_filled (const char *slot, const char *workspace)
{
  struct stat a, b;
  return stat (slot, &a) == 0 && stat (workspace, &b) == 0 && a.st_dev == b.st_dev
         && a.st_ino == b.st_ino;
}

/* ------------------------------------------------------------- sandboxes */

/* Makes and starts the sandbox NAME for ROLE ("session" or "pool"): the
 * manager's options, the workspace as a bind mount or the slot. */
static int
make_sandbox (const sbx_manager_t *m, const char *name, const char *role, const char *workspace,
              const char *slot, sbx_sandbox_t **out, sbx_error_t **err)
{
  *out = NULL;
  sbx_options_t o;
  if (sbx_options_copy (&o, &m->opts) < 0)
    return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  cleanup_free char *volume = workspace ? sbx_strdup_printf ("%s:%s", workspace, m->workdir) : NULL;
  int r = sbx_options_set_name (&o, name, err);
  if (r == 0)
    r = sbx_options_add_label (&o, SBX_LABEL_MANAGER, m->name, err);
  if (r == 0)
    r = sbx_options_add_label (&o, SBX_LABEL_ROLE, role, err);
  if (r == 0)
    r = sbx_options_add_label (&o, SBX_LABEL_MANAGER_KEY, m->key, err);
  if (r == 0 && slot)
    r = sbx_options_set_slot (&o, slot, err);
  else if (r == 0 && workspace)
    r = volume ? sbx_options_add_volume (&o, volume, err)
               : sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  sbx_sandbox_t *sb = NULL;
  if (r == 0)
    r = sbx_sandbox_new (&o, &sb, err);
  if (r == 0)
    r = sbx_sandbox_start (sb, err);
  sbx_options_clear (&o);
  if (r < 0)
    {
      /* Whatever a failed start left (it removes its own) goes too. */
      sbx_sandbox_free (sb);
      sbx_sandbox_purge_name (name, NULL);
      return r;
    }
  *out = sb;
  return 0;
}

/* ------------------------------------------------------------------ pool */

static void
pool_entry_free (struct pool_entry *e)
{
  if (e == NULL)
    return;
  free (e->sandbox);
  free (e->slot);
  free (e);
}

/* Removes a warm sandbox for good, with its slot and record. */
static void
pool_discard (sbx_manager_t *m, struct pool_entry *e)
{
  sbx_sandbox_purge_name (e->sandbox, NULL);
  slot_drop (e->slot);
  record_remove (m, "pool", e->sandbox);
  pool_entry_free (e);
}

/* One warm sandbox made; NULL when it could not be. */
static struct pool_entry *
pool_make (sbx_manager_t *m)
{
  struct pool_entry *e = calloc (1, sizeof *e);
  if (e == NULL || (e->sandbox = sbx_random_id ("sbx-", 6)) == NULL)
    {
      free (e);
      return NULL;
    }
  sbx_error_t *err = NULL;
  cleanup_free char *path = record_path (m, "pool", e->sandbox);
  json_t *doc = json_pack ("{s:s, s:I, s:I}", "sandbox", e->sandbox, "pid", (json_int_t) getpid (),
                           "start", (json_int_t) process_start (getpid ()));
  int r = path ? sbx_json_write_file (path, doc, &err) : -SBX_E_NOMEM;
  json_decref (doc);
  if (r == 0 && m->ws_root)
    r = slot_make (m, e->sandbox, &e->slot, &err);
  sbx_sandbox_t *sb = NULL;
  if (r == 0)
    r = make_sandbox (m, e->sandbox, "pool", NULL, e->slot, &sb, &err);
  sbx_sandbox_free (sb);
  if (r < 0)
    {
      fprintf (stderr, "sbx: a warm sandbox could not be made: %s\n", sbx_error_message (err));
      sbx_error_free (err);
      pool_discard (m, e);
      return NULL;
    }
  return e;
}

static void *
pool_thread (void *arg)
{
  sbx_manager_t *m = arg;
  pthread_mutex_lock (&m->lock);
  while (!m->stopping)
    {
      if (m->nready + m->warming >= m->pool_size)
        {
          pthread_cond_wait (&m->cond, &m->lock);
          continue;
        }
      m->warming++;
      pthread_mutex_unlock (&m->lock);
      struct pool_entry *e = pool_make (m);
      pthread_mutex_lock (&m->lock);
      m->warming--;
      if (e && m->stopping)
        {
          pthread_mutex_unlock (&m->lock);
          pool_discard (m, e);
          pthread_mutex_lock (&m->lock);
        }
      else if (e)
        {
          e->next = m->ready;
          m->ready = e;
          m->nready++;
        }
      else
        {
          /* The engine refused: try again later, not in a loop. */
          struct timespec until;
          clock_gettime (CLOCK_REALTIME, &until);
          until.tv_sec += POOL_RETRY_S;
          pthread_cond_timedwait (&m->cond, &m->lock, &until);
        }
      pthread_cond_broadcast (&m->cond);
    }
  pthread_mutex_unlock (&m->lock);
  return NULL;
}

SBX_EXPORT size_t
sbx_manager_pool_ready (sbx_manager_t *m)
{
  pthread_mutex_lock (&m->lock);
  size_t n = m->nready;
  pthread_mutex_unlock (&m->lock);
  return n;
}

static struct pool_entry *
pool_take (sbx_manager_t *m)
{
  pthread_mutex_lock (&m->lock);
  struct pool_entry *e = m->ready;
  if (e)
    {
      m->ready = e->next;
      m->nready--;
      e->next = NULL;
      pthread_cond_broadcast (&m->cond); /* a refill */
    }
  pthread_mutex_unlock (&m->lock);
  return e;
}

/* ---------------------------------------------------------------- manager */

/* The manager's key, made by its first process: *KEY. */
static int
manager_key (const sbx_manager_t *m, char **key, sbx_error_t **err)
{
  cleanup_free char *path = sbx_strdup_printf ("%s/key", m->dir);
  cleanup_free char *fresh = sbx_random_id ("", 16);
  if (path == NULL || fresh == NULL)
    return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  /* Written whole under a temporary name, then linked: a reader sees no
     key or all of it, and the first process's wins. */
  cleanup_free char *tmp = sbx_strdup_printf ("%s.XXXXXX", path);
  cleanup_close int fd = tmp ? mkostemp (tmp, O_CLOEXEC) : -1; /* 0600 */
  int e = fd < 0 || sbx_write_all (fd, fresh, strlen (fresh)) < 0 || link (tmp, path) < 0 ? errno
                                                                                          : 0;
  if (fd >= 0)
    unlink (tmp);
  if (e != 0 && e != EEXIST)
    return sbx_error_set_errno (err, SBX_E_IO, e, "cannot make the manager's key %s", path);
  char buf[64] = "";
  cleanup_close int rfd = open (path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  ssize_t n = rfd >= 0 ? read (rfd, buf, sizeof buf - 1) : -1;
  if (n != 32 || strspn (buf, "0123456789abcdef") != 32)
    return sbx_error_set (err, SBX_E_IO, "the manager's key %s is damaged; remove it", path);
  buf[n] = '\0';
  *key = strdup (buf);
  return *key ? 0 : sbx_error_set (err, SBX_E_NOMEM, "out of memory");
}

/* Removes the sandbox NAME that a record names, if this manager made it
 * (its container carries the manager's key): a record is never enough to
 * remove somebody else's container. With no container of that name, only
 * what sbx keeps of it on the host goes. */
static int
purge_ours (const sbx_manager_t *m, const char *name, sbx_error_t **err)
{
  sbx_engine_t *e = NULL;
  json_t *info = NULL;
  int r = sbx_engine_get (&e, err);
  if (r < 0)
    return r;
  sbx_error_t *ierr = NULL;
  r = sbx_engine_container_inspect (e, name, &info, &ierr);
  if (r == -SBX_E_GONE)
    {
      sbx_error_free (ierr);
      return sbx_sandbox_purge_name (name, err);
    }
  if (r < 0)
    return sbx_error_propagate (err, ierr);
  const char *key = json_string_value (json_object_get (
      json_object_get (json_object_get (info, "Config"), "Labels"), SBX_LABEL_MANAGER_KEY));
  bool ours = key && m->key && strcmp (key, m->key) == 0;
  json_decref (info);
  return ours ? sbx_sandbox_purge_name (name, err) : 0;
}

/* Whether the container NAME is named by a session's record or the pool's. */
static bool
recorded (const sbx_manager_t *m, const struct srec *v, size_t n, const char *name)
{
  for (size_t i = 0; i < n; i++)
    if (v[i].sandbox && strcmp (v[i].sandbox, name) == 0)
      return true;
  cleanup_free char *path = record_path (m, "pool", name);
  return path == NULL || access (path, F_OK) == 0;
}

/* Containers of this manager that no record names: made by a request a
 * crashed process left in flight, which the engine finished after its
 * record was cleaned up. Every record is written before its container is
 * made, so the containers are listed first. */
static void
sweep_orphans (sbx_manager_t *m)
{
  sbx_engine_t *e = NULL;
  json_t *list = NULL;
  cleanup_free char *label = sbx_strdup_printf ("%s=%s", SBX_LABEL_MANAGER_KEY, m->key);
  if (label == NULL || sbx_engine_get (&e, NULL) < 0
      || sbx_engine_container_list (e, label, &list, NULL) < 0)
    return;
  struct srec *v = NULL;
  size_t n = 0;
  if (records_scan (m, &v, &n, NULL) == 0)
    for (size_t i = 0; i < json_array_size (list); i++)
      {
        json_t *c = json_array_get (list, i);
        const char *name = json_string_value (json_array_get (json_object_get (c, "Names"), 0));
        if (name && name[0] == '/')
          name++;
        if (sbx_valid_name (name) && !recorded (m, v, n, name))
          sbx_sandbox_purge_name (name, NULL);
      }
  srecs_free (v, n);
  json_decref (list);
}

/* Removes what the half-made session REC (its maker died) left. */
static void
discard_half_made (sbx_manager_t *m, const struct srec *rec)
{
  if (rec->sandbox)
    purge_ours (m, rec->sandbox, NULL);
  slot_drop (rec->slot);
  record_remove (m, "sessions", rec->id);
}

/* What a crash left half-made: sessions whose maker died before they were
 * made, and warm sandboxes whose process is gone. */
static void
recover (sbx_manager_t *m)
{
  struct srec *v = NULL;
  size_t n = 0;
  if (records_scan (m, &v, &n, NULL) == 0)
    for (size_t i = 0; i < n; i++)
      if (v[i].creating && !process_alive (v[i].pid, v[i].start))
        discard_half_made (m, &v[i]);
  srecs_free (v, n);

  cleanup_free char *dir = sbx_strdup_printf ("%s/pool", m->dir);
  DIR *d = dir ? opendir (dir) : NULL;
  for (struct dirent *de; d && (de = readdir (d));)
    {
      size_t len = strlen (de->d_name);
      cleanup_free char *name = len > 5 ? strndup (de->d_name, len - 5) : NULL;
      cleanup_free char *path = sbx_strdup_printf ("%s/%s", dir, de->d_name);
      json_t *doc = name && path && sbx_valid_name (name) ? sbx_json_read_file (path, MAX_RECORD)
                                                          : NULL;
      if (doc
          && !process_alive (
              (long) json_integer_value (json_object_get (doc, "pid")),
              (unsigned long long) json_integer_value (json_object_get (doc, "start"))))
        {
          purge_ours (m, name, NULL);
          cleanup_free char *slot = sbx_strdup_printf ("%s/slots/%s", m->dir, name);
          slot_drop (slot);
          unlink (path);
        }
      json_decref (doc);
    }
  if (d)
    closedir (d);
  sweep_orphans (m);
}

SBX_EXPORT int
sbx_manager_new (const sbx_manager_config_t *c, sbx_manager_t **out, sbx_error_t **err)
{
  *out = NULL;
  const char *name = c && c->name ? c->name : DEFAULT_MANAGER;
  if (!sbx_valid_name (name))
    return sbx_error_set (err, SBX_E_INVALID,
                          "invalid manager name '%s': use 1 to 64 letters, digits, '_', '.' or "
                          "'-', starting with a letter or digit",
                          name);
  if (c && c->sandbox && c->sandbox->name)
    return sbx_error_set (err, SBX_E_INVALID,
                          "a session manager's sandbox options take no name: each session's "
                          "sandbox gets its own");
  if (c && !(c->idle_timeout >= 0 && c->idle_timeout <= SBX_MAX_TIMEOUT))
    return sbx_error_set (err, SBX_E_INVALID, "an idle timeout of %g s is out of range",
                          c->idle_timeout);
  if (c && c->pool_size > 0 && c->workspace_root && geteuid () != 0)
    return sbx_error_set (err, SBX_E_PERMISSION,
                          "a warm pool with workspaces mounts each user's folder into a started "
                          "sandbox, which takes root; run as root, or use no pool");
  struct stat st;
  if (c && c->workspace_root
      && (c->workspace_root[0] != '/' || stat (c->workspace_root, &st) < 0
          || !S_ISDIR (st.st_mode)))
    return sbx_error_set (err, SBX_E_NOT_FOUND,
                          "the workspace root %s is not an existing folder given by its absolute "
                          "path; make it first",
                          c->workspace_root);

  sbx_manager_t *m = calloc (1, sizeof *m);
  if (m == NULL)
    return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  pthread_mutex_init (&m->lock, NULL);
  pthread_mutex_init (&m->reaper_ctl, NULL);
  pthread_cond_init (&m->reaper_cond, NULL);
  pthread_cond_init (&m->cond, NULL);
  sbx_options_t *defaults = c && c->sandbox ? NULL : sbx_options_new ();
  const sbx_options_t *o = c && c->sandbox ? c->sandbox : defaults;
  int r = o && sbx_options_copy (&m->opts, o) == 0
              ? 0
              : sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  sbx_options_free (defaults);
  m->name = strdup (name);
  m->workdir = strdup (m->opts.workdir ? m->opts.workdir : SBX_DEFAULT_WORKDIR);
  m->ws_root = c && c->workspace_root ? strdup (c->workspace_root) : NULL;
  m->idle = c && c->idle_timeout > 0 ? c->idle_timeout : DEFAULT_IDLE;
  m->max_sessions = c ? c->max_sessions : 0;
  m->max_per_user = c ? c->max_per_user : 0;
  m->pool_size = c ? c->pool_size : 0;
  m->locks = sbx_strdup_printf ("managers/%s/locks", name);
  cleanup_free char *sub = sbx_strdup_printf ("managers/%s", name);
  if (r == 0
      && (!m->name || !m->workdir || (c && c->workspace_root && !m->ws_root) || !m->locks || !sub))
    r = sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  if (r == 0)
    r = sbx_state_dir (sub, true, 0700, &m->dir, err);
  static const char *const kinds[] = { "sessions", "pool", "slots" };
  for (size_t i = 0; r == 0 && i < 3; i++)
    {
      cleanup_free char *k = sbx_strdup_printf ("%s/%s", m->dir, kinds[i]);
      if (k == NULL || (sbx_mkdir_p (k, 0700) < 0))
        r = sbx_error_set_errno (err, SBX_E_IO, errno, "cannot make %s", k ? k : m->dir);
    }
  if (r == 0)
    r = manager_key (m, &m->key, err);
  if (r == 0)
    recover (m);
  if (r == 0 && m->pool_size > 0)
    {
      if ((errno = pthread_create (&m->pool_thread, NULL, pool_thread, m)) != 0)
        r = sbx_error_set_errno (err, SBX_E_IO, errno, "cannot start the warm pool's thread");
      else
        m->pool_running = true;
    }
  if (r < 0)
    {
      sbx_manager_free (m);
      return r;
    }
  *out = m;
  return 0;
}

/* Stops the pool's thread (the caller that finds it running joins it) and
 * removes the warm sandboxes: they are this process's, none outlives it. */
static void
pool_stop (sbx_manager_t *m)
{
  pthread_mutex_lock (&m->lock);
  m->stopping = true;
  bool running = m->pool_running;
  m->pool_running = false;
  struct pool_entry *ready = m->ready;
  m->ready = NULL;
  m->nready = 0;
  pthread_cond_broadcast (&m->cond);
  pthread_mutex_unlock (&m->lock);
  if (running)
    pthread_join (m->pool_thread, NULL);
  for (struct pool_entry *e = ready, *next; e; e = next)
    {
      next = e->next;
      pool_discard (m, e);
    }
}

SBX_EXPORT void
sbx_manager_free (sbx_manager_t *m)
{
  if (m == NULL)
    return;
  sbx_manager_stop_reaper (m);
  pool_stop (m);
  sbx_options_clear (&m->opts);
  pthread_cond_destroy (&m->cond);
  pthread_mutex_destroy (&m->lock);
  pthread_mutex_destroy (&m->reaper_ctl);
  pthread_cond_destroy (&m->reaper_cond);
  free (m->name);
  free (m->workdir);
  free (m->ws_root);
  free (m->dir);
  free (m->locks);
  free (m->key);
  free (m);
}

SBX_EXPORT int
sbx_manager_delete (const char *name, sbx_error_t **err)
{
  sbx_manager_config_t c = { .name = name };
  sbx_manager_t *m = NULL;
  int r = sbx_manager_new (&c, &m, err); /* also clears what a crash left */
  if (r < 0)
    return r;
  sbx_lock_t lock;
  if ((r = sbx_lock_take (m->locks, "manager", LOCK_WAIT, NULL, NULL, &lock, err)) == 0)
    {
      struct srec *v = NULL;
      size_t n = 0;
      cleanup_free char *pool = sbx_strdup_printf ("%s/pool", m->dir);
      if ((r = records_scan (m, &v, &n, err)) == 0 && n > 0)
        r = sbx_error_set (err, SBX_E_EXISTS,
                           "manager %s has %zu session%s; end them first (`sbx session end`)",
                           m->name, n, n == 1 ? "" : "s");
      else if (r == 0 && pool && rmdir (pool) < 0 && errno != ENOENT)
        r = sbx_error_set (err, SBX_E_EXISTS,
                           "manager %s has a warm pool in a running process; free that manager "
                           "first",
                           m->name);
      srecs_free (v, n);
      /* No slot is left mounted (a user's folder on one would be removed
         with the rest): each is emptied and must go. */
      cleanup_free char *slots = sbx_strdup_printf ("%s/slots", m->dir);
      DIR *d = r == 0 && slots ? opendir (slots) : NULL;
      for (struct dirent *de; d && (de = readdir (d));)
        if (sbx_valid_name (de->d_name))
          {
            cleanup_free char *slot = sbx_strdup_printf ("%s/%s", slots, de->d_name);
            slot_drop (slot);
            if (slot && access (slot, F_OK) == 0)
              r = sbx_error_set (err, SBX_E_IO,
                                 "the slot %s could not be unmounted; nothing "
                                 "of manager %s is removed",
                                 slot, m->name);
          }
      if (d)
        closedir (d);
      if (r == 0 && sbx_remove_tree (m->dir) != 0)
        r = sbx_error_set (err, SBX_E_IO, "some of %s could not be removed", m->dir);
      sbx_lock_release (&lock);
    }
  sbx_manager_free (m);
  return r;
}

/* --------------------------------------------------------------- sessions */

/* Whether a record's session counts (made, or being made by a live
 * process). */
static bool
counts (const struct srec *r)
{
  return !r->creating || process_alive (r->pid, r->start);
}

/* Under the manager's lock: the limits, then the record of the new
 * session ID of USER, marked as being made by this process. */
static int
reserve (sbx_manager_t *m, const char *id, const char *user, struct srec *rec, sbx_error_t **err)
{
  sbx_lock_t lock;
  int r = sbx_lock_take (m->locks, "manager", LOCK_WAIT, NULL, NULL, &lock, err);
  if (r < 0)
    return r;
  struct srec *v = NULL;
  size_t n = 0, all = 0, mine = 0;
  if ((r = records_scan (m, &v, &n, err)) == 0)
    for (size_t i = 0; i < n; i++)
      if (counts (&v[i]))
        {
          all++;
          mine += strcmp (v[i].user, user) == 0;
          if (strcmp (v[i].id, id) == 0)
            r = sbx_error_set (err, SBX_E_EXISTS, "session %s exists", id);
        }
  srecs_free (v, n);
  if (r == 0 && m->max_sessions && all >= m->max_sessions)
    r = sbx_error_set (err, SBX_E_LIMIT,
                       "the session limit of %zu is reached; end an idle session (`sbx session "
                       "gc`) before starting another",
                       m->max_sessions);
  else if (r == 0 && m->max_per_user && mine >= m->max_per_user)
    r = sbx_error_set (err, SBX_E_LIMIT,
                       "user %s has %zu session%s, the most a user may have; end one first", user,
                       mine, mine == 1 ? "" : "s");
  if (r == 0)
    {
      *rec = (struct srec){ .id = strdup (id),
                            .user = strdup (user),
                            .created = sbx_unix_now (),
                            .idle = m->idle,
                            .creating = true,
                            .pid = getpid (),
                            .start = process_start (getpid ()) };
      r = rec->id && rec->user ? record_write (m, rec, err)
                               : sbx_error_set (err, SBX_E_NOMEM, "out of memory");
    }
  sbx_lock_release (&lock);
  return r;
}

/* Fails when a session other than REC uses REC's workspace: one of any
 * manager on this state root (several may share a workspace root). */
static int
workspace_shared (const sbx_manager_t *m, const struct srec *rec, sbx_error_t **err)
{
  cleanup_free char *all = sbx_strdup_printf ("%s/..", m->dir);
  DIR *d = all ? opendir (all) : NULL;
  int r = 0;
  for (struct dirent *de; r == 0 && d && (de = readdir (d));)
    {
      if (!sbx_valid_name (de->d_name))
        continue;
      sbx_manager_t other = { .dir = sbx_strdup_printf ("%s/%s", all, de->d_name) };
      struct srec *v = NULL;
      size_t n = 0;
      if (other.dir && records_scan (&other, &v, &n, NULL) == 0)
        for (size_t i = 0; r == 0 && i < n; i++)
          if ((strcmp (v[i].id, rec->id) != 0 || strcmp (de->d_name, m->name) != 0)
              && v[i].workspace && strcmp (v[i].workspace, rec->workspace) == 0 && counts (&v[i]))
            r = sbx_error_set (err, SBX_E_EXISTS,
                               "the workspace of user %s is in use by session %s (manager %s); "
                               "end that session before purging",
                               rec->user, v[i].id, de->d_name);
      srecs_free (v, n);
      free (other.dir);
    }
  if (d)
    closedir (d);
  return r;
}

/* The lock of the workspace WS, shared by every manager on this state root:
 * a purge and a new session of its user take turns. */
static int
workspace_lock (const char *ws, sbx_lock_t *lock, sbx_error_t **err)
{
  char hex[65];
  sbx_sha256_hex (ws, strlen (ws), hex);
  return sbx_lock_take ("workspace-locks", hex, LOCK_WAIT, NULL, NULL, lock, err);
}

/* Removes the workspace of the session REC, whose record is gone or going,
 * under its lock: PURGE removes it with its files, else only an empty one;
 * then ROOT/USER when empty. Refused while another session uses it. The
 * removal goes through descriptors from ROOT/USER, never through a path a
 * sandbox could change. */
static int
workspace_remove (sbx_manager_t *m, const struct srec *rec, bool purge, sbx_error_t **err)
{
  sbx_lock_t lock;
  int r = workspace_lock (rec->workspace, &lock, err);
  if (r < 0)
    return r;
  int rootfd = -1, userfd = -1;
  sbx_error_t *werr = NULL;
  if ((r = workspace_shared (m, rec, err)) == 0
      && (r = workspace_open (rec->workspace, rec->user, &rootfd, &userfd, NULL, &werr)) < 0)
    {
      /* A workspace that is not there is nothing to remove. */
      r = r == -SBX_E_NOT_FOUND ? 1 : sbx_error_propagate (err, steal_pointer (&werr));
      sbx_error_free (werr);
    }
  cleanup_close int rfd = rootfd, ufd = userfd;
  if (r == 0 && purge && sbx_remove_tree_at (ufd, "workspace") != 0)
    r = sbx_error_set (err, SBX_E_IO, "some of %s could not be removed", rec->workspace);
  else if (r == 0 && !purge)
    unlinkat (ufd, "workspace", AT_REMOVEDIR);
  if (r == 0)
    unlinkat (rfd, rec->user, AT_REMOVEDIR);
  sbx_lock_release (&lock);
  return r > 0 ? 0 : r;
}

/* Gives the reserved session REC its sandbox: a warm one claimed, else a
 * cold start. The record says so once it is made; on failure, nothing of
 * it is left. *SB, when not NULL, receives the sandbox. */
static int
give_sandbox (sbx_manager_t *m, struct srec *rec, sbx_sandbox_t **sb, sbx_error_t **err)
{
  bool new_user = false;
  int r = m->ws_root ? user_workspace (m, rec->user, &rec->workspace, &new_user, err) : 0;
  if (r == 0 && rec->workspace)
    {
      /* Named by the record before any purge of it can look (it takes the
         same lock), so that a purge refuses rather than empties it. */
      sbx_lock_t lock;
      if ((r = workspace_lock (rec->workspace, &lock, err)) == 0)
        {
          r = workspace_open (rec->workspace, rec->user, NULL, NULL, NULL, err);
          if (r == 0)
            r = record_write (m, rec, err);
          sbx_lock_release (&lock);
        }
      if (r < 0)
        {
          record_remove (m, "sessions", rec->id);
          return r;
        }
    }
  struct pool_entry *e = r == 0 ? pool_take (m) : NULL;
  if (e && (!e->slot || slot_fill (e->slot, rec->workspace, rec->user, NULL) == 0))
    {
      /* The session's record names it before the pool's forgets it. */
      rec->sandbox = steal_pointer (&e->sandbox);
      rec->slot = steal_pointer (&e->slot);
      r = record_write (m, rec, err);
      record_remove (m, "pool", rec->sandbox);
    }
  else if (e)
    pool_discard (m, steal_pointer (&e));
  pool_entry_free (e);
  if (r == 0 && rec->sandbox == NULL)
    {
      /* Cold: the record names the sandbox before it exists, so that a
         crash leaves nothing nobody knows of. */
      rec->sandbox = sbx_random_id ("sbx-", 6);
      r = rec->sandbox ? record_write (m, rec, err)
                       : sbx_error_set (err, SBX_E_NOMEM, "out of memory");
      sbx_sandbox_t *made = NULL;
      if (r == 0)
        r = make_sandbox (m, rec->sandbox, "session", rec->workspace, NULL, &made, err);
      if (r == 0 && sb)
        *sb = made;
      else
        sbx_sandbox_free (made);
    }
  else if (r == 0 && sb)
    r = sbx_sandbox_open (rec->sandbox, sb, err);
  if (r == 0)
    {
      rec->creating = false;
      r = record_write (m, rec, err);
    }
  if (r < 0)
    {
      if (sb && *sb)
        sbx_sandbox_free (*sb), *sb = NULL;
      if (rec->sandbox)
        sbx_sandbox_purge_name (rec->sandbox, NULL);
      slot_drop (rec->slot);
      record_remove (m, "sessions", rec->id);
      if (new_user && rec->workspace)
        workspace_remove (m, rec, false, NULL);
    }
  return r;
}

static int
check_user (const char *user, sbx_error_t **err)
{
  if (!sbx_valid_name (user))
    return sbx_error_set (err, SBX_E_INVALID,
                          "invalid user id '%s': use 1 to 64 letters, digits, '_', '.' or '-', "
                          "starting with a letter or digit",
                          user ? user : "");
  return 0;
}

static int
check_session_id (const char *id, sbx_error_t **err)
{
  if (!sbx_valid_name (id))
    return sbx_error_set (err, SBX_E_INVALID,
                          "invalid session id '%s': use 1 to 64 letters, digits, '_', '.' or '-', "
                          "starting with a letter or digit",
                          id ? id : "");
  return 0;
}

/* Makes session ID of USER, holding its lock. */
static int
create_locked (sbx_manager_t *m, const char *id, const char *user, sbx_sandbox_t **sb,
               sbx_error_t **err)
{
  struct srec rec = { 0 };
  int r = reserve (m, id, user, &rec, err);
  if (r == 0)
    r = give_sandbox (m, &rec, sb, err);
  srec_clear (&rec);
  return r;
}

SBX_EXPORT int
sbx_manager_create_session (sbx_manager_t *m, const char *user, char **session_id,
                            sbx_error_t **err)
{
  *session_id = NULL;
  int r = check_user (user, err);
  if (r < 0)
    return r;
  cleanup_free char *id = sbx_random_id ("s-", 8);
  if (id == NULL)
    return sbx_error_set (err, SBX_E_IO, "cannot make a session id");
  sbx_lock_t lock;
  if ((r = sbx_lock_take (m->locks, id, LOCK_WAIT, NULL, NULL, &lock, err)) < 0)
    return r;
  r = create_locked (m, id, user, NULL, err);
  sbx_lock_release (&lock);
  if (r == 0)
    *session_id = steal_pointer (&id);
  return r;
}

/* The running sandbox of the session REC, holding its lock: started when it
 * stopped, replaced (workspace kept) when its container is gone. */
static int
revive_locked (sbx_manager_t *m, struct srec *rec, sbx_sandbox_t **sb, sbx_error_t **err)
{
  sbx_error_t *oerr = NULL;
  /* The user's folder is checked again: it may have been replaced since. */
  int wr = rec->workspace ? workspace_open (rec->workspace, rec->user, NULL, NULL, NULL, err) : 0;
  if (wr < 0)
    return wr;
  if (rec->slot && rec->workspace && !slot_filled (rec->slot, rec->workspace))
    slot_fill (rec->slot, rec->workspace, rec->user, NULL); /* after a reboot */
  int r = sbx_sandbox_open (rec->sandbox, sb, &oerr);
  if (r == 0 && (r = sbx_sandbox_start (*sb, &oerr)) < 0)
    sbx_sandbox_free (*sb), *sb = NULL;
  if (r == 0 || r != -SBX_E_GONE)
    {
      sbx_error_propagate (err, oerr);
      return r;
    }
  sbx_error_free (oerr);
  /* Its container is gone: another, with the same workspace. */
  sbx_sandbox_purge_name (rec->sandbox, NULL);
  slot_drop (rec->slot);
  free (rec->sandbox), rec->sandbox = NULL;
  free (rec->slot), rec->slot = NULL;
  rec->sandbox = sbx_random_id ("sbx-", 6);
  if (rec->sandbox == NULL)
    return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  if ((r = record_write (m, rec, err)) < 0)
    return r;
  return make_sandbox (m, rec->sandbox, "session", rec->workspace, NULL, sb, err);
}

/* Session ID's sandbox, made when missing (with USER) or revived. */
static int
get_or_make (sbx_manager_t *m, const char *id, const char *user, sbx_sandbox_t **sb,
             sbx_error_t **err)
{
  *sb = NULL;
  int r = check_session_id (id, err);
  if (r < 0 || (user && (r = check_user (user, err)) < 0))
    return r;
  struct srec rec;
  /* The common case, a running sandbox, takes no lock. */
  r = record_read (m, id, &rec, err);
  if (r == 0 && !rec.creating && user && strcmp (rec.user, user) != 0)
    r = sbx_error_set (err, SBX_E_PERMISSION, "session %s belongs to another user", id);
  if (r == 0 && !rec.creating && sbx_sandbox_open (rec.sandbox, sb, NULL) == 0)
    {
      /* Connected to its agent: running. Otherwise (stopped, gone) the
         locked path revives it, checking its workspace again. */
      if ((*sb)->fd >= 0)
        {
          sbx_sandbox_touch (*sb);
          srec_clear (&rec);
          return 0;
        }
      sbx_sandbox_free (*sb);
      *sb = NULL;
    }
  srec_clear (&rec);
  if (r < 0 && r != -SBX_E_NOT_FOUND)
    return r;

  sbx_lock_t lock;
  if ((r = sbx_lock_take (m->locks, id, LOCK_WAIT, NULL, NULL, &lock, err)) < 0)
    return r;
  r = record_read (m, id, &rec, err);
  if (r == 0 && rec.creating)
    {
      /* Its maker died (it would hold the lock otherwise): what it left
         goes, and the session is made anew when asked to. */
      discard_half_made (m, &rec);
      srec_clear (&rec);
      r = -SBX_E_NOT_FOUND;
    }
  if (r == -SBX_E_NOT_FOUND && user)
    r = create_locked (m, id, user, sb, err);
  else if (r == -SBX_E_NOT_FOUND)
    r = sbx_error_set (err, SBX_E_NOT_FOUND, "session %s does not exist (see `sbx session ls`)",
                       id);
  else if (r == 0 && user && strcmp (rec.user, user) != 0)
    r = sbx_error_set (err, SBX_E_PERMISSION, "session %s belongs to another user", id);
  else if (r == 0)
    r = revive_locked (m, &rec, sb, err);
  srec_clear (&rec);
  sbx_lock_release (&lock);
  if (r == 0)
    sbx_sandbox_touch (*sb);
  return r;
}

SBX_EXPORT int
sbx_manager_get_session (sbx_manager_t *m, const char *session_id, sbx_sandbox_t **sb,
                         sbx_error_t **err)
{
  return get_or_make (m, session_id, NULL, sb, err);
}

SBX_EXPORT int
sbx_manager_get_or_create (sbx_manager_t *m, const char *session_id, const char *user,
                           sbx_sandbox_t **sb, sbx_error_t **err)
{
  if (user == NULL)
    return check_user (user, err);
  return get_or_make (m, session_id, user, sb, err);
}

/* Ends the session REC, holding its lock. */
static int
end_locked (sbx_manager_t *m, struct srec *rec, bool purge, sbx_error_t **err)
{
  int r = 0;
  /* Refused before anything is removed (and checked again at the end). */
  sbx_error_t *werr = NULL;
  if (purge && rec->workspace
      && ((r = workspace_shared (m, rec, err)) < 0
          || ((r = workspace_open (rec->workspace, rec->user, NULL, NULL, NULL, &werr)) < 0
              && r != -SBX_E_NOT_FOUND)))
    return werr ? sbx_error_propagate (err, werr) : r;
  sbx_error_free (werr);
  if (rec->sandbox && (r = purge_ours (m, rec->sandbox, err)) < 0)
    return r;
  slot_drop (rec->slot);
  record_remove (m, "sessions", rec->id);
  if (purge && rec->workspace)
    return workspace_remove (m, rec, true, err);
  return 0;
}

SBX_EXPORT int
sbx_manager_end_session (sbx_manager_t *m, const char *session_id, bool purge, sbx_error_t **err)
{
  int r = check_session_id (session_id, err);
  if (r < 0)
    return r;
  sbx_lock_t lock;
  if ((r = sbx_lock_take (m->locks, session_id, LOCK_WAIT, NULL, NULL, &lock, err)) < 0)
    return r;
  struct srec rec;
  r = record_read (m, session_id, &rec, err);
  if (r == -SBX_E_NOT_FOUND)
    r = sbx_error_set (err, SBX_E_NOT_FOUND, "session %s does not exist (see `sbx session ls`)",
                       session_id);
  else if (r == 0)
    r = end_locked (m, &rec, purge, err);
  srec_clear (&rec);
  sbx_lock_release (&lock);
  return r;
}

/* When the session REC's sandbox was last used (Unix time). */
static double
last_activity (const struct srec *rec)
{
  cleanup_free char *dir = NULL;
  struct stat st;
  if (rec->sandbox && sbx_hostdir_path (rec->sandbox, &dir, NULL) == 0)
    {
      cleanup_free char *path = sbx_strdup_printf ("%s/" SBX_ACTIVITY_FILE, dir);
      if (path && stat (path, &st) == 0)
        {
          double t = (double) st.st_mtim.tv_sec + (double) st.st_mtim.tv_nsec / 1e9;
          return t > rec->created ? t : rec->created;
        }
    }
  return rec->created;
}

SBX_EXPORT int
sbx_manager_list (sbx_manager_t *m, sbx_session_info_t **items, size_t *count, sbx_error_t **err)
{
  *items = NULL;
  *count = 0;
  struct srec *v = NULL;
  size_t n = 0;
  sbx_sandbox_info_t *boxes = NULL;
  size_t nboxes = 0;
  int r = records_scan (m, &v, &n, err);
  if (r == 0 && n > 0)
    r = sbx_sandbox_list (&boxes, &nboxes, err);
  sbx_session_info_t *out = r == 0 ? calloc (n ? n : 1, sizeof *out) : NULL;
  if (r == 0 && out == NULL)
    r = sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  for (size_t i = 0; r == 0 && i < n; i++)
    {
      const char *state = v[i].creating ? "starting" : "dead";
      for (size_t b = 0; !v[i].creating && v[i].sandbox && b < nboxes; b++)
        if (strcmp (boxes[b].id, v[i].sandbox) == 0)
          state = strcmp (boxes[b].status, "running") == 0 ? "running" : "stopped";
      out[i] = (sbx_session_info_t){ .id = steal_pointer (&v[i].id),
                                     .user = steal_pointer (&v[i].user),
                                     .sandbox = v[i].sandbox ? strdup (v[i].sandbox) : strdup (""),
                                     .created = v[i].created,
                                     .last_activity = last_activity (&v[i]),
                                     .state = strdup (state) };
      if (!out[i].sandbox || !out[i].state)
        r = sbx_error_set (err, SBX_E_NOMEM, "out of memory");
    }
  sbx_sandbox_info_list_free (boxes, nboxes);
  srecs_free (v, n);
  if (r < 0)
    {
      sbx_session_info_list_free (out, n);
      return r;
    }
  *items = out;
  *count = n;
  return 0;
}

SBX_EXPORT void
sbx_session_info_list_free (sbx_session_info_t *items, size_t count)
{
  for (size_t i = 0; items && i < count; i++)
    {
      free (items[i].id);
      free (items[i].user);
      free (items[i].sandbox);
      free (items[i].state);
    }
  free (items);
}

SBX_EXPORT int
sbx_manager_cleanup_idle (sbx_manager_t *m, double max_idle, size_t *reaped, sbx_error_t **err)
{
  if (reaped)
    *reaped = 0;
  if (max_idle < 0)
    return sbx_error_set (err, SBX_E_INVALID, "an idle time of %g s is out of range", max_idle);
  double now = sbx_unix_now ();
  struct srec *v = NULL;
  size_t n = 0;
  int r = records_scan (m, &v, &n, err);
  for (size_t i = 0; r == 0 && i < n; i++)
    {
      double limit = max_idle > 0 ? max_idle : v[i].idle > 0 ? v[i].idle : DEFAULT_IDLE;
      if (v[i].creating || now - last_activity (&v[i]) <= limit)
        continue;
      /* Under its lock, idle still: a call may have come in between. */
      sbx_lock_t lock;
      if (sbx_lock_take (m->locks, v[i].id, 0, NULL, NULL, &lock, NULL) < 0)
        continue; /* busy: not idle */
      struct srec rec;
      if (record_read (m, v[i].id, &rec, NULL) == 0 && !rec.creating
          && sbx_unix_now () - last_activity (&rec) > limit
          && end_locked (m, &rec, false, NULL) == 0 && reaped)
        (*reaped)++;
      srec_clear (&rec);
      sbx_lock_release (&lock);
    }
  srecs_free (v, n);
  return r;
}

static void *
reaper_thread (void *arg)
{
  sbx_manager_t *m = arg;
  pthread_mutex_lock (&m->lock);
  while (!m->reaper_stop)
    {
      struct timespec until;
      clock_gettime (CLOCK_REALTIME, &until);
      until.tv_sec += (time_t) m->reaper_interval;
      until.tv_nsec += (long) ((m->reaper_interval - (double) (time_t) m->reaper_interval) * 1e9);
      if (until.tv_nsec >= 1000000000L)
        until.tv_sec++, until.tv_nsec -= 1000000000L;
      /* The whole interval, unless told to stop. */
      while (!m->reaper_stop && pthread_cond_timedwait (&m->reaper_cond, &m->lock, &until) == 0)
        ;
      if (m->reaper_stop)
        break;
      pthread_mutex_unlock (&m->lock);
      sbx_error_t *err = NULL;
      if (sbx_manager_cleanup_idle (m, 0, NULL, &err) < 0)
        fprintf (stderr, "sbx: reaping idle sessions failed: %s\n", sbx_error_message (err));
      sbx_error_free (err);
      pthread_mutex_lock (&m->lock);
    }
  pthread_mutex_unlock (&m->lock);
  return NULL;
}

SBX_EXPORT int
sbx_manager_start_reaper (sbx_manager_t *m, double interval, sbx_error_t **err)
{
  if (!(interval >= 0 && interval <= 86400))
    return sbx_error_set (err, SBX_E_INVALID, "a reaper interval of %g s is out of range",
                          interval);
  pthread_mutex_lock (&m->reaper_ctl);
  pthread_mutex_lock (&m->lock);
  bool running = m->reaper_running;
  m->reaper_interval = interval > 0 ? interval : DEFAULT_REAPER_INTERVAL;
  m->reaper_stop = false;
  m->reaper_running = true;
  pthread_mutex_unlock (&m->lock);
  int e = running ? 0 : pthread_create (&m->reaper_thread, NULL, reaper_thread, m);
  if (e != 0)
    {
      pthread_mutex_lock (&m->lock);
      m->reaper_running = false;
      pthread_mutex_unlock (&m->lock);
    }
  pthread_mutex_unlock (&m->reaper_ctl);
  return e ? sbx_error_set_errno (err, SBX_E_IO, e, "cannot start the reaper's thread") : 0;
}

SBX_EXPORT void
sbx_manager_stop_reaper (sbx_manager_t *m)
{
  pthread_mutex_lock (&m->reaper_ctl);
  pthread_mutex_lock (&m->lock);
  bool running = m->reaper_running;
  m->reaper_running = false;
  m->reaper_stop = true;
  pthread_cond_broadcast (&m->reaper_cond);
  pthread_mutex_unlock (&m->lock);
  if (running)
    pthread_join (m->reaper_thread, NULL);
  pthread_mutex_unlock (&m->reaper_ctl);
}

/* Shutdown's workers share the list of sandboxes to stop. */
struct stopping
{
  pthread_mutex_t lock;
  struct srec *v;
  size_t n, next, stopped;
};

static void *
stop_worker (void *arg)
{
  struct stopping *s = arg;
  for (;;)
    {
      pthread_mutex_lock (&s->lock);
      size_t i = s->next++;
      pthread_mutex_unlock (&s->lock);
      if (i >= s->n)
        return NULL;
      if (s->v[i].creating || s->v[i].sandbox == NULL)
        continue;
      sbx_sandbox_t *sb = NULL;
      bool ok = sbx_sandbox_open (s->v[i].sandbox, &sb, NULL) == 0
                && sbx_sandbox_stop (sb, NULL) == 0;
      sbx_sandbox_free (sb);
      pthread_mutex_lock (&s->lock);
      s->stopped += ok;
      pthread_mutex_unlock (&s->lock);
    }
}

SBX_EXPORT int
sbx_manager_shutdown (sbx_manager_t *m, size_t *stopped, sbx_error_t **err)
{
  if (stopped)
    *stopped = 0;
  sbx_manager_stop_reaper (m);
  pool_stop (m);

  struct stopping s = { .lock = PTHREAD_MUTEX_INITIALIZER };
  int r = records_scan (m, &s.v, &s.n, err);
  pthread_t threads[STOP_THREADS];
  size_t started = 0;
  for (; r == 0 && started < STOP_THREADS && started < s.n; started++)
    if (pthread_create (&threads[started], NULL, stop_worker, &s) != 0)
      break;
  if (r == 0 && started == 0)
    stop_worker (&s);
  for (size_t i = 0; i < started; i++)
    pthread_join (threads[i], NULL);
  srecs_free (s.v, s.n);
  if (stopped)
    *stopped = s.stopped;
  return r;
}
