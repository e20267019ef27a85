/* Sandbox options: validated when set, so a bad value fails with a sentence
 * naming it instead of reaching the engine. */
#include "runtime.h"
#include "sandbox.h"
#include "state.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <string.h>

#define MAX_LIST_ITEMS 256

SBX_EXPORT sbx_options_t *
sbx_options_new (void)
{
  sbx_options_t *o = calloc (1, sizeof *o);
  if (o == NULL)
    return NULL;
  o->memory = SBX_DEFAULT_MEMORY;
  o->pids = SBX_DEFAULT_PIDS;
  o->cpus = SBX_DEFAULT_CPUS;
  o->disk = SBX_DEFAULT_DISK;
  o->auto_remove = -1;
  return o;
}

static void
strv_free (char **v)
{
  for (char **p = v; p && *p; p++)
    free (*p);
  free (v);
}

static size_t
strv_len (char *const *v)
{
  size_t n = 0;
  while (v && v[n])
    n++;
  return n;
}

static int
strv_append (char ***v, const char *s, sbx_error_t **err)
{
  size_t n = strv_len (*v);
  if (n >= MAX_LIST_ITEMS)
    return sbx_error_set (err, SBX_E_INVALID, "too many items (at most %d)", MAX_LIST_ITEMS);
  char *copy = strdup (s);
  char **nv = copy ? realloc (*v, (n + 2) * sizeof *nv) : NULL;
  if (nv == NULL)
    {
      free (copy);
      return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
    }
  nv[n] = copy;
  nv[n + 1] = NULL;
  *v = nv;
  return 0;
}

static char **
strv_copy (char *const *v)
{
  size_t n = strv_len (v);
  char **c = calloc (n + 1, sizeof *c);
  for (size_t i = 0; c && i < n; i++)
    if ((c[i] = strdup (v[i])) == NULL)
      {
        strv_free (c);
        return NULL;
      }
  return c;
}

void
sbx_options_clear (sbx_options_t *o)
{
  free (o->image);
  free (o->name);
  free (o->workdir);
  free (o->network);
  strv_free (o->volumes);
  strv_free (o->env);
  sbx_runtime_free (o->runtime);
  free (o->slot);
  strv_free (o->labels);
  memset (o, 0, sizeof *o);
}

int
sbx_options_copy (sbx_options_t *dst, const sbx_options_t *src)
{
  *dst = *src;
  dst->image = src->image ? strdup (src->image) : NULL;
  dst->name = src->name ? strdup (src->name) : NULL;
  dst->workdir = src->workdir ? strdup (src->workdir) : NULL;
  dst->network = src->network ? strdup (src->network) : NULL;
  dst->volumes = strv_copy (src->volumes);
  dst->env = strv_copy (src->env);
  dst->runtime = src->runtime ? sbx_runtime_dup (src->runtime) : NULL;
  dst->slot = src->slot ? strdup (src->slot) : NULL;
  dst->labels = strv_copy (src->labels);
  if ((src->image && !dst->image) || (src->name && !dst->name) || (src->workdir && !dst->workdir)
      || (src->network && !dst->network) || !dst->volumes || !dst->env
      || (src->runtime && !dst->runtime) || (src->slot && !dst->slot) || !dst->labels)
    {
      sbx_options_clear (dst);
      return -1;
    }
  return 0;
}

int
sbx_options_set_slot (sbx_options_t *o, const char *dir, sbx_error_t **err)
{
  char *c = dir ? strdup (dir) : NULL;
  if (dir && c == NULL)
    return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  free (o->slot);
  o->slot = c;
  return 0;
}

int
sbx_options_add_label (sbx_options_t *o, const char *key, const char *value, sbx_error_t **err)
{
  cleanup_free char *kv = sbx_strdup_printf ("%s=%s", key, value);
  return kv ? strv_append (&o->labels, kv, err) : sbx_error_set (err, SBX_E_NOMEM, "out of memory");
}

SBX_EXPORT void
sbx_options_free (sbx_options_t *o)
{
  if (o == NULL)
    return;
  sbx_options_clear (o);
  free (o);
}

static int
replace_str (char **slot, const char *value, sbx_error_t **err)
{
  char *c = strdup (value);
  if (c == NULL)
    return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  free (*slot);
  *slot = c;
  return 0;
}

static bool
has_control_chars (const char *s)
{
  for (; *s; s++)
    if ((unsigned char) *s < 0x20 || *s == 0x7f)
      return true;
  return false;
}

SBX_EXPORT int
sbx_options_set_image (sbx_options_t *o, const char *image, sbx_error_t **err)
{
  size_t n = image ? strlen (image) : 0;
  if (n == 0 || n > 255 || has_control_chars (image) || strchr (image, ' ') || image[0] == '-')
    return sbx_error_set (err, SBX_E_INVALID,
                          "invalid image name '%s': expected something like "
                          "python:3.12-slim",
                          image ? image : "");
  return replace_str (&o->image, image, err);
}

/* Docker's container name rule, shortened so the host socket path stays
 * well under the 108-byte limit of Unix socket addresses. */
SBX_EXPORT int
sbx_options_set_name (sbx_options_t *o, const char *name, sbx_error_t **err)
{
  if (name == NULL || !sbx_valid_name (name))
    return sbx_error_set (
        err, SBX_E_INVALID,
        "invalid sandbox name '%s': use 1 to 64 letters, digits, '_', '.' or '-', "
        "starting with a letter or digit",
        name ? name : "");
  return replace_str (&o->name, name, err);
}

/* An absolute container path without "..", control characters, ':' or ','
 * (which would change the meaning of a bind specification). */
static bool
valid_container_path (const char *p)
{
  if (p[0] != '/' || strlen (p) > 1024 || has_control_chars (p) || strpbrk (p, ":,"))
    return false;
  for (const char *s = p; (s = strstr (s, "..")) != NULL; s += 2)
    if (s[-1] == '/' && (s[2] == '/' || s[2] == '\0'))
      return false;
  return true;
}

static bool
under_agent_dir (const char *p)
{
  size_t n = strlen (SBX_AGENT_DIR);
  return strcmp (p, "/") == 0
         || (strncmp (p, SBX_AGENT_DIR, n) == 0 && (p[n] == '/' || p[n] == '\0'));
}

SBX_EXPORT int
sbx_options_set_workdir (sbx_options_t *o, const char *dir, sbx_error_t **err)
{
  if (dir == NULL || !valid_container_path (dir) || under_agent_dir (dir))
    return sbx_error_set (err, SBX_E_INVALID,
                          "invalid work dir '%s': it must be an absolute path in the container, "
                          "without '..', ':' or ',', and not / or under " SBX_AGENT_DIR,
                          dir ? dir : "");
  return replace_str (&o->workdir, dir, err);
}

SBX_EXPORT int
sbx_options_add_volume (sbx_options_t *o, const char *spec, sbx_error_t **err)
{
  cleanup_free char *copy = spec ? strdup (spec) : NULL;
  if (copy == NULL)
    return sbx_error_set (err, SBX_E_INVALID, "a volume needs the form HOST:CONTAINER[:ro]");
  char *host = copy, *ctr = strchr (copy, ':'), *mode = NULL;
  if (ctr)
    {
      *ctr++ = '\0';
      if ((mode = strchr (ctr, ':')) != NULL)
        *mode++ = '\0';
    }
  if (ctr == NULL || host[0] != '/' || has_control_chars (host) || strchr (host, ',')
      || !valid_container_path (ctr) || under_agent_dir (ctr)
      || (mode && strcmp (mode, "ro") != 0 && strcmp (mode, "rw") != 0))
    return sbx_error_set (err, SBX_E_INVALID,
                          "invalid volume '%s': use HOST:CONTAINER or HOST:CONTAINER:ro with "
                          "absolute paths (the container path may not be / or under " SBX_AGENT_DIR
                          ")",
                          spec);
  return strv_append (&o->volumes, spec, err);
}

/* The seed's rule for environment keys. */
static bool
valid_env_key (const char *k, size_t n)
{
  if (n == 0 || !(isalpha ((unsigned char) k[0]) || k[0] == '_'))
    return false;
  for (size_t i = 1; i < n; i++)
    if (!(isalnum ((unsigned char) k[i]) || k[i] == '_'))
      return false;
  return true;
}

int
sbx_validate_env (const char *kv, sbx_error_t **err)
{
  const char *eq = kv ? strchr (kv, '=') : NULL;
  if (eq == NULL || !valid_env_key (kv, eq - kv))
    return sbx_error_set (err, SBX_E_INVALID,
                          "invalid environment variable '%s': use KEY=VALUE with KEY matching "
                          "[A-Za-z_][A-Za-z0-9_]*",
                          kv ? kv : "");
  if (strchr (eq, '\n') || strlen (kv) > 32768)
    return sbx_error_set (err, SBX_E_INVALID,
                          "invalid environment variable '%.*s': the value may not "
                          "contain newlines or exceed 32 KiB",
                          (int) (eq - kv), kv);
  return 0;
}

SBX_EXPORT int
sbx_options_add_env (sbx_options_t *o, const char *kv, sbx_error_t **err)
{
  int r = sbx_validate_env (kv, err);
  return r < 0 ? r : strv_append (&o->env, kv, err);
}

SBX_EXPORT int
sbx_options_set_memory (sbx_options_t *o, int64_t bytes, sbx_error_t **err)
{
  /* The engine refuses less than 6 MiB. */
  if (bytes < (6LL << 20))
    return sbx_error_set (err, SBX_E_INVALID, "memory limit %lld bytes is too small: at least 6m",
                          (long long) bytes);
  o->memory = bytes;
  return 0;
}

SBX_EXPORT int
sbx_options_set_disk (sbx_options_t *o, int64_t bytes, sbx_error_t **err)
{
  /* Room for what a shell and a few files need; a file of an exabyte means
     no limit anyway. */
  if (bytes < (16LL << 20) || bytes > (1LL << 50))
    return sbx_error_set (err, SBX_E_INVALID,
                          "disk limit %lld bytes is out of range: use 16m to 1p",
                          (long long) bytes);
  o->disk = bytes;
  return 0;
}

SBX_EXPORT int
sbx_options_set_cpus (sbx_options_t *o, double cpus, sbx_error_t **err)
{
  if (!isfinite (cpus) || cpus < 0.01 || cpus > 1024)
    return sbx_error_set (err, SBX_E_INVALID, "invalid CPU limit %g: use a number such as 0.5 or 2",
                          cpus);
  o->cpus = cpus;
  return 0;
}

SBX_EXPORT int
sbx_options_set_pids (sbx_options_t *o, int64_t pids, sbx_error_t **err)
{
  /* The agent and a shell need a few processes of their own. */
  if (pids < 8 || pids > 4194304)
    return sbx_error_set (err, SBX_E_INVALID, "invalid pids limit %lld: use 8 or more",
                          (long long) pids);
  o->pids = pids;
  return 0;
}

SBX_EXPORT int
sbx_options_set_network (sbx_options_t *o, const char *mode, sbx_error_t **err)
{
  if (mode == NULL || !*mode)
    return sbx_error_set (err, SBX_E_INVALID,
                          "empty network mode: use none, bridge or a network name");
  if (strcmp (mode, "host") == 0 || strncmp (mode, "container:", 10) == 0)
    return sbx_error_set (err, SBX_E_INVALID,
                          "network mode '%s' would share a network namespace outside the sandbox; "
                          "use none, bridge or a network name",
                          mode);
  if (!sbx_valid_name (mode))
    return sbx_error_set (err, SBX_E_INVALID,
                          "invalid network '%s': use none, bridge or a network name", mode);
  return replace_str (&o->network, mode, err);
}

SBX_EXPORT void
sbx_options_set_replace (sbx_options_t *o, bool replace)
{
  o->replace = replace;
}

SBX_EXPORT void
sbx_options_set_auto_remove (sbx_options_t *o, bool auto_remove)
{
  o->auto_remove = auto_remove;
}

/* A runtime brings its work dir and environment; --workdir and --env given
 * after it override them. */
SBX_EXPORT int
sbx_options_set_runtime (sbx_options_t *opts, const sbx_runtime_t *rt, sbx_error_t **err)
{
  int r = rt ? sbx_runtime_validate (rt, err)
             : sbx_error_set (err, SBX_E_INVALID, "no runtime was given");
  if (r < 0)
    return r;
  sbx_runtime_t *copy = sbx_runtime_dup (rt);
  if (copy == NULL)
    return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  r = sbx_options_set_workdir (opts, rt->workdir, err);
  for (size_t i = 0; r == 0 && i < rt->nenv; i++)
    {
      cleanup_free char *kv = sbx_strdup_printf ("%s=%s", rt->env_keys[i], rt->env_values[i]);
      r = kv ? sbx_options_add_env (opts, kv, err)
             : sbx_error_set (err, SBX_E_NOMEM, "out of memory");
    }
  if (r < 0)
    {
      sbx_runtime_free (copy);
      return r;
    }
  free (opts->image);
  opts->image = NULL;
  sbx_runtime_free (opts->runtime);
  opts->runtime = copy;
  return 0;
}

SBX_EXPORT int
sbx_timeout_check (double seconds, sbx_error_t **err)
{
  if (!(seconds >= 0 && seconds <= SBX_MAX_TIMEOUT))
    return sbx_error_set (err, SBX_E_INVALID,
                          "a timeout of %g s is out of range: give 0 for none, or "
                          "up to %.0f s (30 days)",
                          seconds, SBX_MAX_TIMEOUT);
  return 0;
}

SBX_EXPORT int
sbx_parse_size (const char *text, int64_t *bytes, sbx_error_t **err)
{
  char *end;
  errno = 0;
  double v = text ? strtod (text, &end) : 0;
  if (text == NULL || end == text || errno || !isfinite (v) || v < 0)
    goto bad;
  double mult = 1;
  switch (tolower ((unsigned char) *end))
    {
    case '\0':
      break;
    case 'b':
      mult = 1;
      end++;
      break;
    case 'k':
      mult = 1024.0;
      end++;
      break;
    case 'm':
      mult = 1024.0 * 1024;
      end++;
      break;
    case 'g':
      mult = 1024.0 * 1024 * 1024;
      end++;
      break;
    case 't':
      mult = 1024.0 * 1024 * 1024 * 1024;
      end++;
      break;
    case 'p':
      mult = 1024.0 * 1024 * 1024 * 1024 * 1024;
      end++;
      break;
    default:
      goto bad;
    }
  if (mult > 1 && (*end == 'b' || *end == 'B' || (*end == 'i' && (end[1] == 'b' || end[1] == 'B'))))
    end += *end == 'i' ? 2 : 1;
  if (*end != '\0' || v * mult > 9.0e18)
    goto bad;
  *bytes = (int64_t) (v * mult);
  return 0;
bad:
  return sbx_error_set (err, SBX_E_INVALID,
                        "invalid size '%s': use a number with an optional unit, "
                        "such as 512m or 2g",
                        text ? text : "");
}
