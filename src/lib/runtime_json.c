/* Runtimes in JSON: the definition files users write (the seed's
 * RuntimeConfig fields, plus an offline flavour), read and written. Pure. */
#include "runtime.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* A definition file is small; a bigger one is a mistake. */
#define MAX_FILE ((size_t) 1 << 20)

static const char *const top_fields[]
    = { "name",           "description", "image",    "base_image",  "packages", "package_manager",
        "setup_commands", "env_vars",    "work_dir", "cache_image", "offline",  NULL };
/* What a flavour may change; the rest belongs to the runtime. */
static const char *const offline_fields[] = { "description", "image",           "base_image",
                                              "packages",    "package_manager", "setup_commands",
                                              NULL };

static bool
in_list (const char *const *list, const char *s)
{
  for (; *list; list++)
    if (strcmp (*list, s) == 0)
      return true;
  return false;
}

static int
json_type_error (const char *where, const char *field, const char *what, sbx_error_t **err)
{
  return sbx_error_set (err, SBX_E_INVALID, "invalid runtime definition: field '%s%s' must be %s",
                        where, field, what);
}

/* A string field (or null, when NULLABLE) as *VALUE (NULL when absent). */
static int
json_get_string (json_t *obj, const char *where, const char *field, bool nullable,
                 const char **value, sbx_error_t **err)
{
  json_t *v = json_object_get (obj, field);
  *value = NULL;
  if (v == NULL || (nullable && json_is_null (v)))
    return 0;
  if (!json_is_string (v))
    return json_type_error (where, field, nullable ? "a string or null" : "a string", err);
  *value = json_string_value (v);
  return 0;
}

/* Each string of an array field through ADD. */
static int
json_each_string (json_t *obj, const char *where, const char *field, struct runtime_def *d,
                  int (*add) (struct runtime_def *, const char *, const char *, sbx_error_t **),
                  sbx_error_t **err)
{
  json_t *v = json_object_get (obj, field);
  if (v == NULL)
    return 0;
  if (!json_is_array (v))
    return json_type_error (where, field, "an array of strings", err);
  size_t i;
  json_t *item;
  json_array_foreach (v, i, item)
    {
      if (!json_is_string (item))
        return json_type_error (where, field, "an array of strings", err);
      int r = add (d, where, json_string_value (item), err);
      if (r < 0)
        return r;
    }
  return 0;
}

static int
def_from_json (struct runtime_def *d, json_t *obj, const char *where, sbx_error_t **err)
{
  const char *s;
  int r = json_get_string (obj, where, "description", false, &s, err);
  if (r == 0 && s)
    r = sbx_runtime_def_set_description (d, where, s, err);
  if (r == 0 && (r = json_get_string (obj, where, "image", true, &s, err)) == 0 && s)
    r = sbx_runtime_def_set_image (d, where, "image", &d->image, s, err);
  if (r == 0 && (r = json_get_string (obj, where, "base_image", true, &s, err)) == 0 && s)
    r = sbx_runtime_def_set_image (d, where, "base_image", &d->base_image, s, err);
  if (r == 0 && (r = json_get_string (obj, where, "package_manager", false, &s, err)) == 0 && s)
    r = sbx_runtime_def_set_pm (d, where, s, err);
  if (r == 0)
    r = json_each_string (obj, where, "packages", d, sbx_runtime_def_add_package, err);
  if (r == 0)
    r = json_each_string (obj, where, "setup_commands", d, sbx_runtime_def_add_setup, err);
  return r;
}

static int
check_fields (json_t *obj, const char *const *known, const char *where, sbx_error_t **err)
{
  const char *key;
  json_t *v;
  json_object_foreach (obj, key, v)
    if (!in_list (known, key))
      return sbx_error_set (err, SBX_E_INVALID,
                            "invalid runtime definition: unknown field '%s%s' "
                            "(the fields are %s)",
                            where, key,
                            *where ? "description, image, base_image, packages, package_manager, "
                                     "setup_commands"
                                   : "name, description, image, base_image, packages, "
                                     "package_manager, setup_commands, env_vars, work_dir, "
                                     "cache_image, offline");
  return 0;
}

static int
runtime_from_object (json_t *obj, sbx_runtime_t **out, sbx_error_t **err)
{
  if (!json_is_object (obj))
    return sbx_error_set (err, SBX_E_INVALID,
                          "invalid runtime definition: it must be a JSON object "
                          "such as {\"name\": \"ml-env\", \"base_image\": \"python:3.12-slim\", "
                          "\"packages\": [\"pandas\"]}");
  int r = check_fields (obj, top_fields, "", err);
  if (r < 0)
    return r;
  json_t *name = json_object_get (obj, "name");
  if (name == NULL)
    return sbx_error_set (err, SBX_E_INVALID,
                          "invalid runtime definition: the field 'name' is "
                          "missing");
  if (!json_is_string (name))
    return json_type_error ("", "name", "a string", err);

  sbx_runtime_t *rt = NULL;
  r = sbx_runtime_new (json_string_value (name), &rt, err);
  if (r == 0)
    r = def_from_json (&rt->def[0], obj, "", err);

  json_t *env = json_object_get (obj, "env_vars");
  if (r == 0 && env && !json_is_object (env))
    r = json_type_error ("", "env_vars", "an object of strings", err);
  const char *key;
  json_t *v;
  if (r == 0 && env)
    json_object_foreach (env, key, v)
      {
        if (!json_is_string (v))
          r = sbx_error_set (err, SBX_E_INVALID,
                             "invalid runtime definition: env_vars.%s must be a "
                             "string",
                             key);
        if (r == 0)
          r = sbx_runtime_set_env (rt, key, json_string_value (v), err);
        if (r < 0)
          break;
      }

  const char *workdir = NULL;
  if (r == 0 && (r = json_get_string (obj, "", "work_dir", false, &workdir, err)) == 0 && workdir)
    r = sbx_runtime_set_workdir (rt, workdir, err);

  json_t *cache = json_object_get (obj, "cache_image");
  if (r == 0 && cache && !json_is_boolean (cache))
    r = json_type_error ("", "cache_image", "true or false", err);
  if (r == 0 && cache)
    rt->cache = json_is_true (cache);

  json_t *offline = json_object_get (obj, "offline");
  if (r == 0 && offline && !json_is_null (offline))
    {
      if (!json_is_object (offline))
        r = json_type_error ("", "offline", "an object", err);
      if (r == 0)
        r = check_fields (offline, offline_fields, "offline.", err);
      if (r == 0)
        r = def_from_json (&rt->def[1], offline, "offline.", err);
      rt->has_offline = true;
    }
  if (r == 0)
    r = sbx_runtime_validate (rt, err);
  if (r < 0)
    {
      sbx_runtime_free (rt);
      return r;
    }
  *out = rt;
  return 0;
}

SBX_EXPORT int
sbx_runtime_from_json (const char *text, sbx_runtime_t **out, sbx_error_t **err)
{
  *out = NULL;
  if (text == NULL)
    return sbx_error_set (err, SBX_E_INVALID, "no runtime definition was given");
  json_error_t jerr;
  /* Duplicate keys would let one definition mean two things. */
  json_t *obj = json_loads (text, JSON_REJECT_DUPLICATES, &jerr);
  if (obj == NULL)
    return sbx_error_set (err, SBX_E_INVALID,
                          "invalid runtime definition: not valid JSON at line %d, "
                          "column %d: %s",
                          jerr.line, jerr.column, jerr.text);
  int r = runtime_from_object (obj, out, err);
  json_decref (obj);
  return r;
}

SBX_EXPORT int
sbx_runtime_load_file (const char *path, sbx_runtime_t **out, sbx_error_t **err)
{
  *out = NULL;
  if (path == NULL || *path == '\0')
    return sbx_error_set (err, SBX_E_INVALID, "no runtime file was given");
  FILE *f = fopen (path, "re");
  if (f == NULL)
    return sbx_error_set_errno (err, errno == ENOENT ? SBX_E_NOT_FOUND : SBX_E_IO, errno,
                                "cannot open the runtime file %s", path);
  cleanup_free char *buf = malloc (MAX_FILE + 1);
  size_t n = buf ? fread (buf, 1, MAX_FILE + 1, f) : 0;
  bool failed = buf && ferror (f);
  fclose (f);
  if (buf == NULL)
    return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  if (failed)
    return sbx_error_set (err, SBX_E_IO, "cannot read the runtime file %s", path);
  if (n > MAX_FILE)
    return sbx_error_set (err, SBX_E_TOO_LARGE, "the runtime file %s is larger than 1 MiB", path);
  buf[n] = '\0';
  if (memchr (buf, '\0', n))
    return sbx_error_set (err, SBX_E_INVALID,
                          "the runtime file %s holds a NUL byte: it is not JSON", path);
  sbx_error_t *perr = NULL;
  int r = sbx_runtime_from_json (buf, out, &perr);
  if (r < 0)
    {
      /* Say which file, keeping the parser's sentence. */
      sbx_error_set (err, sbx_error_code (perr), "%s: %s", path, sbx_error_message (perr));
      sbx_error_free (perr);
    }
  return r;
}

static json_t *
strv_json (char *const *v, size_t n)
{
  json_t *a = json_array ();
  for (size_t i = 0; a && i < n; i++)
    if (json_array_append_new (a, json_string (v[i])) < 0)
      {
        json_decref (a);
        return NULL;
      }
  return a;
}

static json_t *
def_json (const struct runtime_def *d, json_t *into)
{
  if (into == NULL
      || json_object_set_new (into, "description",
                              json_string (d->description ? d->description : ""))
      || json_object_set_new (into, "image", d->image ? json_string (d->image) : json_null ())
      || json_object_set_new (into, "base_image",
                              d->base_image ? json_string (d->base_image) : json_null ())
      || json_object_set_new (into, "packages", strv_json (d->packages, d->npackages))
      || json_object_set_new (into, "package_manager", json_string (sbx_runtime_pm_names[d->pm]))
      || json_object_set_new (into, "setup_commands", strv_json (d->setup, d->nsetup)))
    {
      json_decref (into);
      return NULL;
    }
  return into;
}

SBX_EXPORT int
sbx_runtime_to_json (const sbx_runtime_t *rt, char **text, sbx_error_t **err)
{
  *text = NULL;
  json_t *env = json_object ();
  for (size_t i = 0; env && i < rt->nenv; i++)
    if (json_object_set_new (env, rt->env_keys[i], json_string (rt->env_values[i])) < 0)
      {
        json_decref (env);
        env = NULL;
      }
  json_t *obj = json_pack ("{s:s}", "name", rt->name);
  obj = def_json (&rt->def[0], obj);
  if (obj == NULL || env == NULL || json_object_set_new (obj, "env_vars", env) < 0
      || json_object_set_new (obj, "work_dir", json_string (rt->workdir)) < 0
      || json_object_set_new (obj, "cache_image", json_boolean (rt->cache)) < 0
      || (rt->has_offline
          && json_object_set_new (obj, "offline", def_json (&rt->def[1], json_object ())) < 0))
    {
      json_decref (obj);
      return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
    }
  *text = json_dumps (obj, JSON_INDENT (2) | JSON_PRESERVE_ORDER);
  json_decref (obj);
  return *text ? 0 : sbx_error_set (err, SBX_E_NOMEM, "out of memory");
}
