/* The sessions sbxd serves, each a session of the session manager of its
 * runtime (user = session id, so a session's workspace is
 * ROOT/ID/workspace). What the manager does not keep is here: the tokens
 * (only their SHA-256 on the host, in STATE/sbxd/NAME/sessions/ID.json,
 * written before the sandbox is made), the tenant, the event log, the
 * limits, and hibernation (the sandbox stopped, the session kept; the
 * manager starts it again on the next request). */
#include "sbxd.h"

#include "sha256.h"
#include "state.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define IDLE_HANDLES 4
/* Sandboxes made, started or replaced at once: the engine serves a few
 * container starts in parallel well, a crowd of them badly. */
#define MAX_OPENING 8

struct sbxd_session
{
  char *id;
  char *tenant; /* NULL: none */
  sbxd_runtime_t *rt;
  char (*hashes)[65]; /* the tokens' SHA-256 */
  size_t n_hashes;
  char *token; /* the latest token, in memory only: what a reuse returns */
  double created, last_activity;
  sbxd_state_t state; /* reg->lock */
  int refs;           /* reg->lock; the registry's list holds one */
  int inflight;       /* reg->lock */
  int waiting;        /* reg->lock: requests waiting for their turn (an MCP session's calls) */
  sbxd_registry_t *reg;
  sbxd_session_t *next;
  pthread_mutex_t lock; /* events, idle handles, token (reg->lock: state, refs, inflight,
                         * hashes, last_activity) */
  sbxd_events_t events;
  sbx_sandbox_t *idle[IDLE_HANDLES];
  size_t n_idle;
  sbx_sandbox_usage_t last_usage; /* the last sample (lock), for the CPU between two */
  bool sampled;
  /* Held while the sandbox is made, woken or stopped, so that a wake and a
   * hibernation never cross. */
  pthread_mutex_t life;
};

struct sbxd_registry
{
  sbxd_config_t *config;
  char *dir; /* the records */
  pthread_mutex_t lock;
  sbxd_session_t *list;
  pthread_t sweeper;
  bool sweeping, stopping;
  pthread_cond_t stop_cond;
  int opening; /* open_handle calls under way (lock) */
  pthread_cond_t opened;
};

int
sbxd_fail (sbxd_fail_t *f, int status, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  free (f->detail);
  f->status = status;
  f->detail = sbx_strdup_vprintf (fmt, ap);
  va_end (ap);
  return -1;
}

void
sbxd_fail_clear (sbxd_fail_t *f)
{
  free (f->detail);
  f->detail = NULL;
  f->status = 0;
}

/* ------------------------------------------------------------ sessions */

static void
session_free (sbxd_session_t *s)
{
  for (size_t i = 0; i < s->n_idle; i++)
    sbx_sandbox_free (s->idle[i]);
  sbxd_events_clear (&s->events);
  pthread_mutex_destroy (&s->lock);
  pthread_mutex_destroy (&s->life);
  free (s->id);
  free (s->tenant);
  free (s->hashes);
  if (s->token)
    explicit_bzero (s->token, strlen (s->token));
  free (s->token);
  free (s);
}

static sbxd_session_t *
session_new (sbxd_registry_t *reg, const char *id, const char *tenant, sbxd_runtime_t *rt)
{
  sbxd_session_t *s = calloc (1, sizeof *s);
  if (s == NULL)
    return NULL;
  s->id = strdup (id);
  s->tenant = tenant ? strdup (tenant) : NULL;
  s->rt = rt;
  s->reg = reg;
  s->created = s->last_activity = sbx_unix_now ();
  pthread_mutex_init (&s->lock, NULL);
  pthread_mutex_init (&s->life, NULL);
  if (s->id == NULL || (tenant && s->tenant == NULL))
    {
      session_free (s);
      return NULL;
    }
  return s;
}

const char *
sbxd_session_id (const sbxd_session_t *s)
{
  return s->id;
}

sbxd_config_t *
sbxd_registry_config (sbxd_registry_t *reg)
{
  return reg->config;
}

/* reg->lock held. */
static sbxd_session_t *
lookup (sbxd_registry_t *reg, const char *id)
{
  for (sbxd_session_t *s = reg->list; s; s = s->next)
    if (strcmp (s->id, id) == 0)
      return s;
  return NULL;
}

/* reg->lock held: S leaves the list (its reference with it). */
static void
unlink_session (sbxd_registry_t *reg, sbxd_session_t *s)
{
  for (sbxd_session_t **p = &reg->list; *p; p = &(*p)->next)
    if (*p == s)
      {
        *p = s->next;
        s->next = NULL;
        s->state = SBXD_CLOSED;
        if (--s->refs == 0)
          session_free (s);
        return;
      }
}

sbxd_session_t *
sbxd_session_find (sbxd_registry_t *reg, const char *id)
{
  pthread_mutex_lock (&reg->lock);
  sbxd_session_t *s = lookup (reg, id);
  if (s)
    s->refs++;
  pthread_mutex_unlock (&reg->lock);
  return s;
}

sbxd_session_t *
sbxd_session_ref (sbxd_session_t *s)
{
  pthread_mutex_lock (&s->reg->lock);
  s->refs++;
  pthread_mutex_unlock (&s->reg->lock);
  return s;
}

void
sbxd_session_unref (sbxd_session_t *s)
{
  if (s == NULL)
    return;
  sbxd_registry_t *reg = s->reg;
  pthread_mutex_lock (&reg->lock);
  bool last = --s->refs == 0;
  pthread_mutex_unlock (&reg->lock);
  if (last)
    session_free (s);
}

/* Constant time in the contents, as a token comparison must be. */
bool
sbxd_same_hash (const char *a, const char *b)
{
  unsigned char diff = 0;
  for (size_t i = 0; i < 64; i++)
    diff |= (unsigned char) (a[i] ^ b[i]);
  return diff == 0;
}

/* reg->lock held (a reuse may add a hash meanwhile). */
static bool
hash_ok_locked (const sbxd_session_t *s, const char *hex)
{
  bool ok = false;
  for (size_t i = 0; i < s->n_hashes; i++)
    ok |= sbxd_same_hash (hex, s->hashes[i]);
  return ok;
}

bool
sbxd_session_token_ok (const sbxd_session_t *s, const char *token)
{
  if (token == NULL)
    return false;
  char hex[65];
  sbx_sha256_hex (token, strlen (token), hex);
  pthread_mutex_lock (&s->reg->lock);
  bool ok = hash_ok_locked (s, hex);
  pthread_mutex_unlock (&s->reg->lock);
  return ok;
}

sbxd_session_t *
sbxd_session_by_token (sbxd_registry_t *reg, const char *token)
{
  if (token == NULL)
    return NULL;
  char hex[65];
  sbx_sha256_hex (token, strlen (token), hex);
  pthread_mutex_lock (&reg->lock);
  sbxd_session_t *found = NULL;
  for (sbxd_session_t *s = reg->list; s; s = s->next)
    if (s->state == SBXD_RUNNING || s->state == SBXD_HIBERNATED)
      if (hash_ok_locked (s, hex) && found == NULL)
        found = s;
  if (found)
    found->refs++;
  pthread_mutex_unlock (&reg->lock);
  return found;
}

/* ------------------------------------------------------------- records */

static char *
record_path (sbxd_registry_t *reg, const char *id)
{
  return sbx_strdup_printf ("%s/%s.json", reg->dir, id);
}

/* The session's record on the host, written whole (no token, only hashes). */
static int
record_write (sbxd_session_t *s, sbx_error_t **err)
{
  json_t *hashes = json_array ();
  pthread_mutex_lock (&s->reg->lock);
  for (size_t i = 0; hashes && i < s->n_hashes; i++)
    json_array_append_new (hashes, json_string (s->hashes[i]));
  pthread_mutex_unlock (&s->reg->lock);
  json_t *doc = json_pack ("{s:s,s:s,s:s*,s:f,s:o*}", "id", s->id, "runtime", s->rt->alias,
                           "tenant", s->tenant, "created", s->created, "token_sha256", hashes);
  if (doc == NULL)
    return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  cleanup_free char *path = record_path (s->reg, s->id);
  int r = path ? sbx_json_write_file (path, doc, err)
               : sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  json_decref (doc);
  return r;
}

/* A session's events, kept on the host from a stop to the next start
 * (not *.json: never taken for a record). */
static char *
events_path (sbxd_registry_t *reg, const char *id)
{
  return sbx_strdup_printf ("%s/%s.events", reg->dir, id);
}

static void
remove_file (const char *path)
{
  if (path && unlink (path) < 0 && errno != ENOENT)
    fprintf (stderr, "sbxd: cannot remove %s: %s\n", path, strerror (errno));
}

static void
record_remove (sbxd_registry_t *reg, const char *id)
{
  cleanup_free char *path = record_path (reg, id);
  cleanup_free char *events = events_path (reg, id);
  remove_file (path);
  remove_file (events);
}

/* At a stop: S's events, for the next sbxd to go on with. */
static void
events_save (sbxd_session_t *s)
{
  json_t *doc = sbxd_events_json (&s->events, 0);
  cleanup_free char *path = events_path (s->reg, s->id);
  sbx_error_t *err = NULL;
  if (doc && path && sbx_json_write_file (path, doc, &err) < 0)
    fprintf (stderr, "sbxd: session %s: its events are not kept: %s\n", s->id,
             sbx_error_message (err));
  sbx_error_free (err);
  json_decref (doc);
}

/* At a start: the events an earlier sbxd kept for S, then forgotten on
 * the host. A file that is not such a log is ignored. */
static void
events_load (sbxd_session_t *s)
{
  cleanup_free char *path = events_path (s->reg, s->id);
  json_t *doc = path ? sbx_json_read_file (path, 4 << 20) : NULL;
  if (doc && sbxd_events_restore (&s->events, doc) < 0)
    fprintf (stderr, "sbxd: session %s: its kept events are unreadable; dropped\n", s->id);
  json_decref (doc);
  remove_file (path);
}

/* A new token for S: its hash added (and written by the caller). */
static char *
mint_token (sbxd_session_t *s)
{
  char *token;
  unsigned char raw[32];
  if (getrandom (raw, sizeof raw, 0) != (ssize_t) sizeof raw)
    return NULL;
  /* URL-safe text, as sandboxd's tokens: 43 characters of base64url. */
  static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  token = malloc (44);
  if (token == NULL)
    return NULL;
  uint32_t acc = 0;
  int bits = 0;
  size_t o = 0;
  for (size_t i = 0; i < sizeof raw; i++)
    {
      acc = acc << 8 | raw[i];
      bits += 8;
      while (bits >= 6)
        token[o++] = digits[acc >> (bits -= 6) & 63];
    }
  if (bits > 0)
    token[o++] = digits[acc << (6 - bits) & 63];
  token[o] = '\0';
  explicit_bzero (raw, sizeof raw);
  char hex[65];
  sbx_sha256_hex (token, o, hex);
  /* Readers compare under reg->lock: the array grows under it. */
  pthread_mutex_lock (&s->reg->lock);
  char (*hashes)[65] = realloc (s->hashes, (s->n_hashes + 1) * sizeof *hashes);
  if (hashes)
    {
      s->hashes = hashes;
      memcpy (s->hashes[s->n_hashes++], hex, sizeof hex);
    }
  pthread_mutex_unlock (&s->reg->lock);
  if (hashes == NULL)
    {
      free (token);
      return NULL;
    }
  return token;
}

/* --------------------------------------------------------------- limits */

static void
count (sbxd_registry_t *reg, const char *tenant, size_t *resident, size_t *open, size_t *of_tenant)
{
  *resident = *open = 0;
  if (of_tenant)
    *of_tenant = 0;
  for (sbxd_session_t *s = reg->list; s; s = s->next)
    {
      (*open)++;
      if (s->state != SBXD_HIBERNATED)
        (*resident)++;
      if (of_tenant && tenant && s->tenant && strcmp (s->tenant, tenant) == 0)
        (*of_tenant)++;
    }
}

void
sbxd_registry_counts (sbxd_registry_t *reg, size_t *resident, size_t *open)
{
  pthread_mutex_lock (&reg->lock);
  count (reg, NULL, resident, open, NULL);
  pthread_mutex_unlock (&reg->lock);
}

/* reg->lock held: the running session idle longest, if idle long enough
 * and with nothing in flight; marked hibernated (the caller stops it). */
static sbxd_session_t *
pick_hibernation (sbxd_registry_t *reg, const sbxd_session_t *except)
{
  if (reg->config->evict_idle_after <= 0)
    return NULL;
  double now = sbx_unix_now ();
  sbxd_session_t *best = NULL;
  for (sbxd_session_t *s = reg->list; s; s = s->next)
    if (s != except && s->state == SBXD_RUNNING && s->inflight == 0
        && now - s->last_activity >= reg->config->evict_idle_after
        && (best == NULL || s->last_activity < best->last_activity))
      best = s;
  if (best)
    {
      best->state = SBXD_HIBERNATED;
      best->refs++;
    }
  return best;
}

/* Stops the sandbox of S, marked hibernated: its files stay in its
 * workspace, its token and events here. */
static void
hibernate (sbxd_session_t *s)
{
  pthread_mutex_lock (&s->life);
  /* A request may have woken it since it was picked: then it stays up. */
  pthread_mutex_lock (&s->reg->lock);
  bool still = s->state == SBXD_HIBERNATED && s->inflight == 0;
  pthread_mutex_unlock (&s->reg->lock);
  if (!still)
    {
      pthread_mutex_unlock (&s->life);
      sbxd_session_unref (s);
      return;
    }
  pthread_mutex_lock (&s->lock);
  sbx_sandbox_t *sb = s->n_idle ? s->idle[--s->n_idle] : NULL;
  while (s->n_idle)
    sbx_sandbox_free (s->idle[--s->n_idle]);
  pthread_mutex_unlock (&s->lock);
  sbx_error_t *err = NULL;
  int r = sb ? 0 : sbx_manager_get_session (s->rt->manager, s->id, &sb, &err);
  if (r == 0)
    r = sbx_sandbox_stop (sb, &err);
  if (r < 0)
    fprintf (stderr, "sbxd: hibernating session %s: %s\n", s->id, sbx_error_message (err));
  else
    fprintf (stderr, "sbxd: session %s hibernated (idle %.0f s)\n", s->id,
             sbx_unix_now () - s->last_activity);
  sbx_error_free (err);
  sbx_sandbox_free (sb);
  pthread_mutex_unlock (&s->life);
  sbxd_session_unref (s);
}

/* --------------------------------------------------------- create / get */

static json_t *
opt_count (int64_t v)
{
  return v >= 0 ? json_integer (v) : json_null ();
}

/* SessionUsage, sampled now through an idle handle of the session's (so
 * that it neither wakes the session nor counts as its activity); null
 * when there is none, or the engine does not answer. */
static json_t *
usage_doc (sbxd_session_t *s)
{
  pthread_mutex_lock (&s->lock);
  sbx_sandbox_t *sb = s->n_idle ? s->idle[--s->n_idle] : NULL;
  pthread_mutex_unlock (&s->lock);
  if (sb == NULL)
    return json_null ();
  sbx_sandbox_usage_t u;
  sbx_error_t *err = NULL;
  int r = sbx_sandbox_usage (sb, &u, &err);
  sbx_error_free (err);
  pthread_mutex_lock (&s->lock);
  if (s->n_idle < IDLE_HANDLES)
    s->idle[s->n_idle++] = sb, sb = NULL;
  double cpu = r == 0 && s->sampled ? sbx_sandbox_cpu_percent (&s->last_usage, &u) : -1;
  if (r == 0)
    s->last_usage = u, s->sampled = true;
  pthread_mutex_unlock (&s->lock);
  sbx_sandbox_free (sb);
  if (r < 0)
    return json_null ();
  return json_pack ("{s:o,s:o,s:o,s:o}", "memory_bytes", opt_count (u.memory_bytes),
                    "memory_limit_bytes", opt_count (u.memory_limit_bytes), "cpu_percent",
                    cpu >= 0 ? json_real (cpu) : json_null (), "pids", opt_count (u.pids));
}

json_t *
sbxd_session_info (sbxd_session_t *s, bool usage)
{
  pthread_mutex_lock (&s->reg->lock);
  double now = sbx_unix_now ();
  bool running = s->state == SBXD_RUNNING;
  json_t *info = json_pack ("{s:s,s:s,s:s?,s:b,s:s,s:f,s:f,s:f,s:n}", "session_id", s->id,
                            "runtime", s->rt->alias, "tenant", s->tenant, "alive", running, "state",
                            running ? "running" : "hibernated", "created_at", s->created,
                            "last_activity", s->last_activity, "idle_seconds",
                            now > s->last_activity ? now - s->last_activity : 0.0, "usage");
  pthread_mutex_unlock (&s->reg->lock);
  /* A hibernated session has none: it is not woken to say so. */
  if (info && usage && running)
    json_object_set_new (info, "usage", usage_doc (s));
  return info;
}

json_t *
sbxd_session_list (sbxd_registry_t *reg, bool usage)
{
  /* Referenced under the lock, described outside it (a sample asks the engine). */
  size_t n = 0, cap = 0;
  sbxd_session_t **all = NULL;
  pthread_mutex_lock (&reg->lock);
  for (sbxd_session_t *s = reg->list; s; s = s->next)
    if (s->state != SBXD_OPENING)
      {
        if (n == cap)
          {
            sbxd_session_t **grown = realloc (all, (cap = cap ? cap * 2 : 16) * sizeof *all);
            if (grown == NULL)
              break;
            all = grown;
          }
        s->refs++;
        all[n++] = s;
      }
  pthread_mutex_unlock (&reg->lock);
  json_t *list = json_array ();
  for (size_t i = 0; i < n; i++)
    {
      if (list)
        json_array_append_new (list, sbxd_session_info (all[i], usage));
      sbxd_session_unref (all[i]);
    }
  free (all);
  sbxd_config_t *c = reg->config;
  return json_pack (
      "{s:o*,s:o,s:o,s:o}", "sessions", list, "limit",
      c->max_sessions ? json_integer ((json_int_t) c->max_sessions) : json_null (), "open_limit",
      c->max_open_sessions ? json_integer ((json_int_t) c->max_open_sessions) : json_null (),
      "tenant_limit",
      c->max_per_tenant ? json_integer ((json_int_t) c->max_per_tenant) : json_null ());
}

json_t *
sbxd_session_events (sbxd_session_t *s, int64_t after)
{
  pthread_mutex_lock (&s->lock);
  json_t *doc = sbxd_events_json (&s->events, after);
  pthread_mutex_unlock (&s->lock);
  return doc;
}

/* A handle of the manager's on S's sandbox (started or replaced as need
 * be), with the service's ceiling on its file operations. */
static int
open_handle (sbxd_session_t *s, bool create, sbx_sandbox_t **sb, sbxd_fail_t *f)
{
  sbx_error_t *err = NULL;
  sbxd_registry_t *reg = s->reg;
  pthread_mutex_lock (&reg->lock);
  while (reg->opening >= MAX_OPENING)
    pthread_cond_wait (&reg->opened, &reg->lock);
  reg->opening++;
  pthread_mutex_unlock (&reg->lock);
  pthread_mutex_lock (&s->life);
  int r = create ? sbx_manager_get_or_create (s->rt->manager, s->id, s->id, sb, &err)
                 : sbx_manager_get_session (s->rt->manager, s->id, sb, &err);
  pthread_mutex_unlock (&s->life);
  pthread_mutex_lock (&reg->lock);
  reg->opening--;
  pthread_cond_signal (&reg->opened);
  pthread_mutex_unlock (&reg->lock);
  if (r == 0)
    r = sbx_sandbox_set_file_timeout (*sb, s->reg->config->execute_timeout, &err);
  if (r == 0)
    return 0;
  if (*sb)
    {
      sbx_sandbox_free (*sb);
      *sb = NULL;
    }
  if (sbx_error_code (err) == SBX_E_NOT_FOUND)
    sbxd_fail (f, 404, "Session not found: %s (ended by its idle timeout)", s->id);
  else if (sbx_error_code (err) == SBX_E_TIMEOUT)
    sbxd_fail (f, 504, "Operation exceeded the %.0fs service ceiling",
               s->reg->config->execute_timeout);
  else
    sbxd_fail (f, 502, "Could not start sandbox: %s", sbx_error_message (err));
  sbx_error_free (err);
  return -1;
}

/* Makes room for one more running session: hibernates one when allowed.
 * reg->lock held; *VICTIM gets the session to stop once unlocked. */
static int
make_room (sbxd_registry_t *reg, const sbxd_session_t *except, const char *what,
           sbxd_session_t **victim, sbxd_fail_t *f)
{
  size_t resident, open;
  count (reg, NULL, &resident, &open, NULL);
  *victim = NULL;
  if (reg->config->max_sessions == 0 || resident < reg->config->max_sessions)
    return 0;
  *victim = pick_hibernation (reg, except);
  if (*victim)
    return 0;
  if (reg->config->evict_idle_after <= 0)
    return sbxd_fail (f, 429,
                      "%s: %zu sessions are running, the limit. End a session first (sbxd "
                      "--evict-idle-after SECONDS hibernates idle ones instead).",
                      what, resident);
  return sbxd_fail (f, 429,
                    "%s: %zu sessions are running, the limit, and none has been idle for "
                    "%.0f s to hibernate. End a session or retry later.",
                    what, resident, reg->config->evict_idle_after);
}

/* reg->lock held: whether S runs or awaits as many requests as it may.
 * One session's token must not take every worker. */
static bool
over_inflight (const sbxd_session_t *s)
{
  return s->inflight + s->waiting >= (int) s->reg->config->max_inflight;
}

static int
fail_inflight (const sbxd_session_t *s, sbxd_fail_t *f)
{
  return sbxd_fail (f, 429,
                    "Session %s has %u requests running or waiting, its limit: wait for one to "
                    "end (sbxd --max-inflight N)",
                    s->id, s->reg->config->max_inflight);
}

int
sbxd_session_wait_begin (sbxd_session_t *s, sbxd_fail_t *f)
{
  pthread_mutex_lock (&s->reg->lock);
  bool over = over_inflight (s);
  if (!over)
    s->waiting++;
  pthread_mutex_unlock (&s->reg->lock);
  return over ? fail_inflight (s, f) : 0;
}

void
sbxd_session_wait_end (sbxd_session_t *s)
{
  pthread_mutex_lock (&s->reg->lock);
  s->waiting--;
  pthread_mutex_unlock (&s->reg->lock);
}

/* RESERVED: the caller counts among the waiting (sbxd_session_wait_begin),
 * and now runs in their place. */
static int
session_get (sbxd_registry_t *reg, sbxd_session_t *s, bool reserved, sbx_sandbox_t **sb,
             sbxd_fail_t *f)
{
  *sb = NULL;
  sbxd_session_t *victim = NULL;
  bool waking = false;
  pthread_mutex_lock (&reg->lock);
  int r = 0;
  if (reserved)
    s->waiting--;
  if (s->state == SBXD_CLOSED || s->state == SBXD_CLOSING)
    r = sbxd_fail (f, 404, "Session not found: %s", s->id);
  else if (s->state == SBXD_OPENING)
    r = sbxd_fail (f, 409, "Session is opening: %s", s->id);
  else if (!reserved && over_inflight (s))
    r = fail_inflight (s, f);
  else if (s->state == SBXD_HIBERNATED)
    {
      char what[128];
      snprintf (what, sizeof what, "Cannot wake session %s", s->id);
      r = make_room (reg, s, what, &victim, f);
      waking = r == 0;
      if (r == 0)
        s->state = SBXD_RUNNING;
    }
  if (r == 0)
    {
      s->inflight++;
      s->last_activity = sbx_unix_now ();
    }
  pthread_mutex_unlock (&reg->lock);
  if (victim)
    hibernate (victim);
  if (r < 0)
    return r;
  if (waking)
    {
      /* After a hibernation still stopping it (it holds LIFE): its handles
       * are stale; the manager starts the sandbox again. */
      pthread_mutex_lock (&s->life);
      pthread_mutex_lock (&s->lock);
      while (s->n_idle)
        sbx_sandbox_free (s->idle[--s->n_idle]);
      pthread_mutex_unlock (&s->lock);
      pthread_mutex_unlock (&s->life);
    }
  pthread_mutex_lock (&s->lock);
  if (s->n_idle)
    *sb = s->idle[--s->n_idle];
  pthread_mutex_unlock (&s->lock);
  if (*sb == NULL && open_handle (s, false, sb, f) < 0)
    {
      sbxd_session_put (s, NULL, true);
      if (f->status == 404)
        {
          pthread_mutex_lock (&reg->lock);
          if (s->state != SBXD_CLOSED)
            unlink_session (reg, s);
          pthread_mutex_unlock (&reg->lock);
          record_remove (reg, s->id);
        }
      return -1;
    }
  return 0;
}

int
sbxd_session_get (sbxd_registry_t *reg, sbxd_session_t *s, sbx_sandbox_t **sb, sbxd_fail_t *f)
{
  return session_get (reg, s, false, sb, f);
}

int
sbxd_session_get_reserved (sbxd_registry_t *reg, sbxd_session_t *s, sbx_sandbox_t **sb,
                           sbxd_fail_t *f)
{
  return session_get (reg, s, true, sb, f);
}

void
sbxd_session_put (sbxd_session_t *s, sbx_sandbox_t *sb, bool broken)
{
  pthread_mutex_lock (&s->lock);
  if (sb && !broken && s->n_idle < IDLE_HANDLES)
    s->idle[s->n_idle++] = sb, sb = NULL;
  /* A lost sandbox: every handle on it is stale; the next get replaces it. */
  while (broken && s->n_idle)
    sbx_sandbox_free (s->idle[--s->n_idle]);
  pthread_mutex_unlock (&s->lock);
  sbx_sandbox_free (sb);
  pthread_mutex_lock (&s->reg->lock);
  s->inflight--;
  s->last_activity = sbx_unix_now ();
  pthread_mutex_unlock (&s->reg->lock);
}

void
sbxd_session_event (sbxd_session_t *s, const char *op, const char *target, bool ok,
                    const char *detail, double started)
{
  double now = sbx_now ();
  pthread_mutex_lock (&s->lock);
  if (sbxd_events_add (&s->events, sbx_unix_now (), op, target, ok, detail, (now - started) * 1000)
      < 0)
    fprintf (stderr, "sbxd: out of memory logging an event of session %s\n", s->id);
  pthread_mutex_unlock (&s->lock);
}

static json_t *
created_doc (sbxd_session_t *s, const char *token)
{
  return json_pack ("{s:o,s:s}", "session", sbxd_session_info (s, false), "token", token);
}

/* reuse=true: the session's token (a new one after a restart, which kept
 * only hashes), the session woken if need be. */
static int
attach (sbxd_registry_t *reg, sbxd_session_t *s, json_t **info, sbxd_fail_t *f)
{
  sbx_sandbox_t *sb = NULL;
  if (sbxd_session_get (reg, s, &sb, f) < 0)
    return -1;
  sbxd_session_put (s, sb, false);
  pthread_mutex_lock (&s->lock);
  cleanup_free char *token = s->token ? strdup (s->token) : NULL;
  int r = 0;
  if (s->token == NULL)
    {
      sbx_error_t *err = NULL;
      token = mint_token (s);
      s->token = token ? strdup (token) : NULL;
      if (token == NULL || s->token == NULL || record_write (s, &err) < 0)
        r = sbxd_fail (f, 500, "Could not record a token for %s: %s", s->id,
                       err ? sbx_error_message (err) : "out of memory");
      sbx_error_free (err);
    }
  pthread_mutex_unlock (&s->lock);
  if (r == 0 && token == NULL)
    r = sbxd_fail (f, 500, "out of memory");
  if (r < 0)
    return r;
  *info = created_doc (s, token);
  return *info ? 0 : sbxd_fail (f, 500, "out of memory");
}

static char *
allowed_runtimes (sbxd_config_t *c)
{
  char *out = strdup ("");
  for (size_t i = 0; out && i < c->n_runtimes; i++)
    {
      char *next = sbx_strdup_printf ("%s%s%s", out, i ? ", " : "", c->runtimes[i].alias);
      free (out);
      out = next;
    }
  return out;
}

int
sbxd_session_create (sbxd_registry_t *reg, const char *id, const char *runtime, const char *tenant,
                     bool reuse, json_t **info, sbxd_fail_t *f)
{
  *info = NULL;
  sbxd_config_t *c = reg->config;
  sbxd_runtime_t *rt = sbxd_config_runtime (c, runtime);
  if (rt == NULL)
    {
      cleanup_free char *allowed = allowed_runtimes (c);
      return sbxd_fail (f, 400, "Unknown runtime '%s'. Allowed: %s", runtime,
                        allowed ? allowed : "");
    }
  cleanup_free char *made_id = NULL;
  if (id == NULL)
    {
      made_id = sbx_random_id ("s-", 8);
      if (made_id == NULL)
        return sbxd_fail (f, 500, "no randomness for a session id");
      id = made_id;
    }
  sbxd_session_t *victim = NULL, *closing = NULL;
  pthread_mutex_lock (&reg->lock);
  sbxd_session_t *s = lookup (reg, id);
  if (s)
    {
      int r = 0;
      if (s->state == SBXD_OPENING)
        r = sbxd_fail (f, 409, "Session is opening: %s", id);
      else if (s->state == SBXD_CLOSING)
        r = sbxd_fail (f, 409, "Session is closing: %s", id);
      else if (!reuse)
        r = sbxd_fail (f, 409, "Session exists: %s", id);
      else if (runtime && strcmp (runtime, s->rt->alias) != 0)
        r = sbxd_fail (f, 409, "Session %s runs the runtime '%s', not '%s'", id, s->rt->alias,
                       runtime);
      else
        s->refs++;
      pthread_mutex_unlock (&reg->lock);
      if (r < 0)
        return r;
      r = attach (reg, s, info, f);
      sbxd_session_unref (s);
      return r;
    }
  size_t resident, open, of_tenant;
  count (reg, tenant, &resident, &open, &of_tenant);
  int r = 0;
  if (tenant && c->max_per_tenant && of_tenant >= c->max_per_tenant)
    r = sbxd_fail (f, 429, "Tenant '%s' has %zu sessions, its limit. End one first.", tenant,
                   of_tenant);
  else if (c->max_open_sessions && open >= c->max_open_sessions)
    {
      /* At the open ceiling, the longest-hibernated session ends for good. */
      for (sbxd_session_t *o = reg->list; o; o = o->next)
        if (o->state == SBXD_HIBERNATED && o->inflight == 0
            && (closing == NULL || o->last_activity < closing->last_activity))
          closing = o;
      if (closing == NULL)
        r = sbxd_fail (f, 429,
                       "Open session limit of %zu reached, none hibernated to close. "
                       "End a session first.",
                       c->max_open_sessions);
    }
  if (r == 0)
    r = make_room (reg, NULL, "Session limit reached", &victim, f);
  /* Only once this create goes ahead does a hibernated session end for it. */
  if (r == 0 && closing)
    {
      closing->state = SBXD_CLOSING;
      closing->refs++;
    }
  else
    closing = NULL;
  if (r == 0)
    {
      s = session_new (reg, id, tenant, rt);
      if (s == NULL)
        r = sbxd_fail (f, 500, "out of memory");
    }
  if (r == 0)
    {
      s->state = SBXD_OPENING;
      s->refs = 2; /* the list's and ours */
      s->next = reg->list;
      reg->list = s;
    }
  pthread_mutex_unlock (&reg->lock);
  if (closing)
    {
      sbx_error_t *err = NULL;
      if (sbx_manager_end_session (closing->rt->manager, closing->id, false, &err) < 0
          && sbx_error_code (err) != SBX_E_NOT_FOUND)
        fprintf (stderr, "sbxd: closing session %s: %s\n", closing->id, sbx_error_message (err));
      sbx_error_free (err);
      record_remove (reg, closing->id);
      pthread_mutex_lock (&reg->lock);
      unlink_session (reg, closing);
      pthread_mutex_unlock (&reg->lock);
      sbxd_session_unref (closing);
    }
  if (victim)
    hibernate (victim);
  if (r < 0)
    return r;

  sbx_error_t *err = NULL;
  cleanup_free char *token = mint_token (s);
  if (token == NULL)
    r = sbxd_fail (f, 500, "no randomness or memory for a token");
  else if (record_write (s, &err) < 0)
    r = sbxd_fail (f, 500, "Could not record session %s: %s", id, sbx_error_message (err));
  sbx_error_free (err);
  sbx_sandbox_t *sb = NULL;
  if (r == 0 && open_handle (s, true, &sb, f) < 0)
    r = -1;
  pthread_mutex_lock (&reg->lock);
  if (r < 0)
    unlink_session (reg, s);
  else
    {
      s->state = SBXD_RUNNING;
      s->last_activity = sbx_unix_now (); /* idle from now: its start took a while */
    }
  pthread_mutex_unlock (&reg->lock);
  if (r < 0)
    {
      record_remove (reg, id);
      sbxd_session_unref (s);
      return r;
    }
  /* Running already: a reuse may have set a token, requests may hold handles. */
  pthread_mutex_lock (&s->lock);
  if (s->token == NULL)
    s->token = strdup (token);
  if (s->n_idle < IDLE_HANDLES)
    s->idle[s->n_idle++] = sb, sb = NULL;
  pthread_mutex_unlock (&s->lock);
  sbx_sandbox_free (sb);
  *info = created_doc (s, token);
  sbxd_session_unref (s);
  return *info ? 0 : sbxd_fail (f, 500, "out of memory");
}

int
sbxd_session_delete (sbxd_registry_t *reg, sbxd_session_t *s, bool purge, sbxd_fail_t *f)
{
  pthread_mutex_lock (&reg->lock);
  sbxd_state_t was = s->state;
  if (was == SBXD_CLOSED || was == SBXD_CLOSING || was == SBXD_OPENING)
    {
      pthread_mutex_unlock (&reg->lock);
      return was == SBXD_OPENING ? sbxd_fail (f, 409, "Session is opening: %s", s->id)
                                 : sbxd_fail (f, 404, "Session not found: %s", s->id);
    }
  /* Closing, it keeps its id until its sandbox is gone: a create of the
   * same id meanwhile is refused (409), not ended by this. */
  s->state = SBXD_CLOSING;
  pthread_mutex_unlock (&reg->lock);
  pthread_mutex_lock (&s->lock);
  while (s->n_idle)
    sbx_sandbox_free (s->idle[--s->n_idle]);
  pthread_mutex_unlock (&s->lock);
  sbx_error_t *err = NULL;
  pthread_mutex_lock (&s->life);
  int r = sbx_manager_end_session (s->rt->manager, s->id, purge, &err);
  pthread_mutex_unlock (&s->life);
  if (r < 0 && sbx_error_code (err) != SBX_E_NOT_FOUND)
    {
      /* Nothing is lost: the session stays as it was, its record with it. */
      pthread_mutex_lock (&reg->lock);
      s->state = was;
      pthread_mutex_unlock (&reg->lock);
      r = sbxd_fail (f, sbx_error_code (err) == SBX_E_EXISTS ? 409 : 502,
                     "Could not end session %s: %s", s->id, sbx_error_message (err));
      sbx_error_free (err);
      return r;
    }
  sbx_error_free (err);
  record_remove (reg, s->id);
  pthread_mutex_lock (&reg->lock);
  unlink_session (reg, s);
  pthread_mutex_unlock (&reg->lock);
  return 0;
}

/* -------------------------------------------------------------- sweeper */

/* Ends idle sessions (the manager's reaper rule: each session's idle
 * timeout), then forgets those the manager no longer has. */
static void
sweep (sbxd_registry_t *reg)
{
  sbxd_config_t *c = reg->config;
  for (size_t i = 0; i < c->n_runtimes; i++)
    {
      sbx_manager_t *m = c->runtimes[i].manager;
      sbx_error_t *err = NULL;
      size_t reaped = 0;
      if (sbx_manager_cleanup_idle (m, 0, &reaped, &err) < 0)
        fprintf (stderr, "sbxd: reaping idle sessions: %s\n", sbx_error_message (err));
      sbx_error_free (err);
      err = NULL;
      sbx_session_info_t *items = NULL;
      size_t n = 0;
      double listed = sbx_unix_now ();
      if (sbx_manager_list (m, &items, &n, &err) < 0)
        {
          fprintf (stderr, "sbxd: listing sessions: %s\n", sbx_error_message (err));
          sbx_error_free (err);
          continue;
        }
      pthread_mutex_lock (&reg->lock);
      for (sbxd_session_t *s = reg->list, *next; s; s = next)
        {
          next = s->next;
          /* A session made while the list was taken is not in it. */
          if (s->rt != &c->runtimes[i] || (s->state != SBXD_RUNNING && s->state != SBXD_HIBERNATED)
              || s->inflight || s->created >= listed - 1)
            continue;
          bool known = false;
          for (size_t k = 0; k < n && !known; k++)
            known = strcmp (items[k].id, s->id) == 0;
          if (!known)
            {
              fprintf (stderr, "sbxd: session %s ended (idle)\n", s->id);
              record_remove (reg, s->id);
              unlink_session (reg, s);
            }
        }
      pthread_mutex_unlock (&reg->lock);
      sbx_session_info_list_free (items, n);
    }
}

static void *
sweeper_main (void *arg)
{
  sbxd_registry_t *reg = arg;
  double interval = reg->config->idle_timeout / 10;
  interval = interval < 1 ? 1 : interval > 60 ? 60 : interval;
  pthread_mutex_lock (&reg->lock);
  while (!reg->stopping)
    {
      struct timespec ts;
      clock_gettime (CLOCK_REALTIME, &ts);
      ts.tv_sec += (time_t) interval;
      ts.tv_nsec += (long) ((interval - (double) (time_t) interval) * 1e9);
      if (ts.tv_nsec >= 1000000000L)
        ts.tv_sec++, ts.tv_nsec -= 1000000000L;
      pthread_cond_timedwait (&reg->stop_cond, &reg->lock, &ts);
      if (reg->stopping)
        break;
      pthread_mutex_unlock (&reg->lock);
      sweep (reg);
      pthread_mutex_lock (&reg->lock);
    }
  pthread_mutex_unlock (&reg->lock);
  return NULL;
}

/* ------------------------------------------------------------- recovery */

/* Sessions of an earlier sbxd of this name: each record whose session its
 * manager still has comes back, with its tokens' hashes. */
static int
recover (sbxd_registry_t *reg, sbx_error_t **err)
{
  sbxd_config_t *c = reg->config;
  DIR *d = opendir (reg->dir);
  if (d == NULL)
    return sbx_error_set_errno (err, SBX_E_IO, errno, "cannot read %s", reg->dir);
  size_t recovered = 0, dropped = 0;
  for (struct dirent *e; (e = readdir (d)) != NULL;)
    {
      size_t len = strlen (e->d_name);
      if (len < 6 || strcmp (e->d_name + len - 5, ".json") != 0)
        continue;
      cleanup_free char *id = strndup (e->d_name, len - 5);
      cleanup_free char *path = id ? record_path (reg, id) : NULL;
      json_t *doc = path && sbx_session_id_valid (id) ? sbx_json_read_file (path, 64 << 10) : NULL;
      const char *rid = NULL, *alias = NULL, *tenant = NULL;
      double created = 0;
      json_t *hashes = NULL;
      sbxd_runtime_t *rt = NULL;
      if (doc == NULL
          || json_unpack (doc, "{s:s,s:s,s?s,s:F,s:o}", "id", &rid, "runtime", &alias, "tenant",
                          &tenant, "created", &created, "token_sha256", &hashes)
                 < 0
          || strcmp (rid, id) != 0 || (rt = sbxd_config_runtime (c, alias)) == NULL
          || !json_is_array (hashes) || json_array_size (hashes) == 0
          || json_array_size (hashes) > 1024)
        {
          fprintf (stderr, "sbxd: dropping the record %s: %s\n", e->d_name,
                   doc ? "not a session of this configuration" : "unreadable");
          json_decref (doc);
          if (id && sbx_session_id_valid (id))
            record_remove (reg, id);
          dropped++;
          continue;
        }
      sbx_error_t *gerr = NULL;
      sbx_session_info_t *items = NULL;
      size_t n = 0;
      const char *state = NULL;
      double last = created;
      if (sbx_manager_list (rt->manager, &items, &n, &gerr) == 0)
        for (size_t k = 0; k < n; k++)
          if (strcmp (items[k].id, id) == 0)
            state = items[k].state, last = items[k].last_activity;
      sbx_error_free (gerr);
      sbxd_session_t *s = state ? session_new (reg, id, tenant, rt) : NULL;
      bool ok = s != NULL;
      if (s)
        {
          s->hashes = calloc (json_array_size (hashes), sizeof *s->hashes);
          for (size_t k = 0; s->hashes && k < json_array_size (hashes); k++)
            {
              const char *h = json_string_value (json_array_get (hashes, k));
              if (h == NULL || strlen (h) != 64)
                ok = false;
              else
                memcpy (s->hashes[s->n_hashes++], h, 65);
            }
          ok = ok && s->hashes;
          s->created = created;
          s->last_activity = last;
          s->state = strcmp (state, "stopped") == 0 ? SBXD_HIBERNATED : SBXD_RUNNING;
          s->refs = 1;
        }
      sbx_session_info_list_free (items, n);
      json_decref (doc);
      if (!ok)
        {
          if (s)
            session_free (s);
          record_remove (reg, id);
          dropped++;
          continue;
        }
      events_load (s);
      s->next = reg->list;
      reg->list = s;
      recovered++;
    }
  closedir (d);
  if (recovered || dropped)
    fprintf (stderr, "sbxd: %zu sessions found again, %zu records dropped\n", recovered, dropped);
  return 0;
}

/* ----------------------------------------------------------- open/close */

/* The session manager of runtime RT: "NAME-ALIAS" (malloc'd). */
static char *
manager_name (const sbxd_config_t *c, const sbxd_runtime_t *rt)
{
  return sbx_strdup_printf ("%s-%s", c->name, rt->alias);
}

static int
open_managers (sbxd_config_t *c, sbx_error_t **err)
{
  for (size_t i = 0; i < c->n_runtimes; i++)
    {
      sbxd_runtime_t *rt = &c->runtimes[i];
      cleanup_free char *name = manager_name (c, rt);
      if (name == NULL)
        return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
      if (!sbx_session_id_valid (name))
        return sbx_error_set (err, SBX_E_INVALID,
                              "the manager name '%s' (--name and the runtime's alias) is longer "
                              "than 64 characters",
                              name);
      sbx_manager_config_t mc = {
        .name = name,
        .sandbox = rt->opts,
        .workspace_root = c->workspace_root,
        .idle_timeout = c->idle_timeout > 0 ? c->idle_timeout : SBX_MAX_TIMEOUT,
        .pool_size = i == 0 ? c->pool_size : 0,
      };
      if (sbx_manager_new (&mc, &rt->manager, err) < 0)
        return sbx_error_wrap (err, -SBX_E_INVALID, "runtime '%s'", rt->alias);
    }
  return 0;
}

int
sbxd_registry_open (sbxd_config_t *config, sbxd_registry_t **out, sbx_error_t **err)
{
  sbxd_registry_t *reg = calloc (1, sizeof *reg);
  if (reg == NULL)
    return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  reg->config = config;
  pthread_mutex_init (&reg->lock, NULL);
  pthread_cond_init (&reg->stop_cond, NULL);
  pthread_cond_init (&reg->opened, NULL);
  cleanup_free char *sub = sbx_strdup_printf ("sbxd/%s/sessions", config->name);
  int r = sub ? sbx_state_dir (sub, true, 0700, &reg->dir, err)
              : sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  if (r == 0)
    r = open_managers (config, err);
  if (r == 0)
    r = recover (reg, err);
  if (r == 0)
    {
      if (pthread_create (&reg->sweeper, NULL, sweeper_main, reg) != 0)
        r = sbx_error_set (err, SBX_E_NOMEM, "cannot start the sweeper thread");
      else
        reg->sweeping = true;
    }
  if (r < 0)
    {
      sbxd_registry_close (reg, false);
      return r;
    }
  *out = reg;
  return 0;
}

/* The managers' state and the records' folder, once no session is left. */
static void
forget_instance (sbxd_registry_t *reg)
{
  sbxd_config_t *c = reg->config;
  for (size_t i = 0; i < c->n_runtimes; i++)
    {
      sbxd_runtime_t *rt = &c->runtimes[i];
      if (rt->manager == NULL)
        continue;
      sbx_manager_free (rt->manager);
      rt->manager = NULL;
      cleanup_free char *name = manager_name (c, rt);
      sbx_error_t *err = NULL;
      if (name && sbx_manager_delete (name, &err) < 0 && sbx_error_code (err) != SBX_E_NOT_FOUND)
        fprintf (stderr, "sbxd: %s\n", sbx_error_message (err));
      sbx_error_free (err);
    }
  /* rmdir: removed only when empty (a record written meanwhile stays). */
  if (rmdir (reg->dir) == 0)
    {
      char *up = strrchr (reg->dir, '/');
      if (up)
        {
          *up = '\0';
          rmdir (reg->dir);
        }
    }
}

void
sbxd_registry_close (sbxd_registry_t *reg, bool stop)
{
  pthread_mutex_lock (&reg->lock);
  reg->stopping = true;
  pthread_cond_broadcast (&reg->stop_cond);
  pthread_mutex_unlock (&reg->lock);
  if (reg->sweeping)
    pthread_join (reg->sweeper, NULL);
  sbxd_config_t *c = reg->config;
  for (size_t i = 0; stop && i < c->n_runtimes; i++)
    {
      sbx_error_t *err = NULL;
      size_t stopped = 0;
      if (c->runtimes[i].manager
          && sbx_manager_shutdown (c->runtimes[i].manager, &stopped, &err) < 0)
        fprintf (stderr, "sbxd: stopping the sessions of '%s': %s\n", c->runtimes[i].alias,
                 sbx_error_message (err));
      else if (c->runtimes[i].manager)
        fprintf (stderr, "sbxd: %zu sessions of '%s' stopped\n", stopped, c->runtimes[i].alias);
      sbx_error_free (err);
    }
  bool empty = reg->list == NULL;
  for (sbxd_session_t *s = reg->list, *next; s; s = next)
    {
      next = s->next;
      if (s->state == SBXD_RUNNING || s->state == SBXD_HIBERNATED)
        events_save (s);
      session_free (s);
    }
  /* An instance that leaves no session leaves nothing on the host. */
  if (empty && reg->dir)
    forget_instance (reg);
  free (reg->dir);
  pthread_mutex_destroy (&reg->lock);
  pthread_cond_destroy (&reg->stop_cond);
  pthread_cond_destroy (&reg->opened);
  free (reg);
}
