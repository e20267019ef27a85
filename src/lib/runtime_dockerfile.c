/* The Dockerfile a runtime's flavour builds from, and the tag its image
 * gets: a hash of what makes the image. Pure. */
#include "runtime.h"
#include "sha256.h"

#include <stdio.h>
#include <string.h>

/* A JSON array of strings as one line (ASCII, so nothing depends on how the
 * Dockerfile's reader decodes bytes). */
static int
print_exec (FILE *f, const char *const *head, char *const *tail, size_t ntail)
{
  json_t *a = json_array ();
  for (const char *const *p = head; a && *p; p++)
    if (json_array_append_new (a, json_string (*p)) < 0)
      json_decref (a), a = NULL;
  for (size_t i = 0; a && i < ntail; i++)
    if (json_array_append_new (a, json_string (tail[i])) < 0)
      json_decref (a), a = NULL;
  char *text = a ? json_dumps (a, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
  json_decref (a);
  if (text == NULL)
    return -1;
  /* json_dumps' compact arrays have no spaces: add them for people. */
  fputs ("RUN ", f);
  bool in_string = false, escaped = false;
  for (const char *p = text; *p; p++)
    {
      fputc (*p, f);
      if (escaped)
        escaped = false;
      else if (*p == '\\')
        escaped = true;
      else if (*p == '"')
        in_string = !in_string;
      else if (*p == ',' && !in_string)
        fputc (' ', f);
    }
  fputc ('\n', f);
  free (text);
  return 0;
}

/* ENV KEY="VALUE": inside the Dockerfile's double quotes only '\', '"' and
 * '$' mean something, so escaping those three keeps the value literal. */
static void
print_env (FILE *f, const char *key, const char *value)
{
  fprintf (f, "ENV %s=\"", key);
  for (const char *p = value; *p; p++)
    {
      if (*p == '\\' || *p == '"' || *p == '$')
        fputc ('\\', f);
      fputc (*p, f);
    }
  fputs ("\"\n", f);
}

static int
cmp_index_by_key (const void *a, const void *b, void *keys)
{
  char **k = keys;
  return strcmp (k[*(const size_t *) a], k[*(const size_t *) b]);
}

static int
render_dockerfile (const sbx_runtime_t *rt, sbx_runtime_flavour flavour,
                   const struct runtime_def *d, bool site_ca, char **out)
{
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream (&text, &len);
  if (f == NULL)
    return -1;
  int r = 0;
  /* A first comment line of the form "# key=value" would be a parser
   * directive; this one has no '=' (and the name cannot hold one). */
  fprintf (f, "# sbx runtime %s, %s flavour: generated from its definition\n", rt->name,
           sbx_runtime_flavour_name (flavour));
  fprintf (f, "FROM %s\n", d->base_image);
  if (site_ca)
    {
      /* Build steps fetch packages; behind a TLS-inspecting proxy they need
       * the CA certificates the host trusts (see runtime_build.c). Node's
       * own builds read NODE_EXTRA_CA_CERTS, the rest the system's store. */
      fputs ("COPY [\"" SBX_SITE_CA_FILE "\", \"/usr/local/share/ca-certificates/" SBX_SITE_CA_FILE
             "\"]\n",
             f);
      r |= print_exec (
          f,
          (const char *const[]){ "sh", "-c",
                                 "if command -v update-ca-certificates >/dev/null 2>&1; then "
                                 "update-ca-certificates; fi",
                                 NULL },
          NULL, 0);
      print_env (f, "NODE_EXTRA_CA_CERTS", "/usr/local/share/ca-certificates/" SBX_SITE_CA_FILE);
    }
  /* Sorted, so that the same variables in another order are the same
   * image. Set before the steps: package managers read their settings from
   * the environment (PIP_INDEX_URL, NPM_CONFIG_REGISTRY, ...). */
  size_t order[SBX_RUNTIME_MAX_ENV];
  for (size_t i = 0; i < rt->nenv; i++)
    order[i] = i;
  qsort_r (order, rt->nenv, sizeof order[0], cmp_index_by_key, rt->env_keys);
  for (size_t i = 0; i < rt->nenv; i++)
    print_env (f, rt->env_keys[order[i]], rt->env_values[order[i]]);
  /* Before the steps: setup commands run there, and npm installs there. */
  fprintf (f, "WORKDIR %s\n", rt->workdir);
  for (size_t i = 0; i < d->nsetup; i++)
    r |= print_exec (f, (const char *const[]){ "sh", "-c", NULL }, &d->setup[i], 1);
  if (d->npackages > 0)
    switch (d->pm)
      {
      case PM_PIP:
        r |= print_exec (f, (const char *const[]){ "pip", "install", "--no-cache-dir", NULL },
                         d->packages, d->npackages);
        break;
      case PM_NPM:
        /* Into the work dir (a package.json appears there): require() and
         * import resolve from it, and npx finds the tools. */
        r |= print_exec (f,
                         (const char *const[]){ "npm", "install", "--no-audit", "--no-fund",
                                                "--no-update-notifier", NULL },
                         d->packages, d->npackages);
        break;
      case PM_APT:
        /* The packages arrive as "$@": the shell never parses them. */
        r |= print_exec (f,
                         (const char *const[]){
                             "sh", "-c",
                             "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y "
                             "--no-install-recommends \"$@\" && rm -rf /var/lib/apt/lists/*",
                             "sh", NULL },
                         d->packages, d->npackages);
        break;
      case PM_CARGO:
        r |= print_exec (f, (const char *const[]){ "cargo", "install", NULL }, d->packages,
                         d->npackages);
        break;
      }
  if (fclose (f) != 0 || r != 0)
    {
      free (text);
      return -1;
    }
  *out = text;
  return 0;
}

void
sbx_runtime_plan_clear (struct sbx_runtime_plan *p)
{
  free (p->image);
  free (p->base);
  free (p->dockerfile);
  memset (p, 0, sizeof *p);
}

int
sbx_runtime_plan (const sbx_runtime_t *rt, sbx_runtime_flavour flavour, const char *site_ca,
                  size_t site_ca_len, struct sbx_runtime_plan *plan, sbx_error_t **err)
{
  memset (plan, 0, sizeof *plan);
  if (flavour != SBX_FLAVOUR_SEED && flavour != SBX_FLAVOUR_OFFLINE)
    return sbx_error_set (err, SBX_E_INVALID,
                          "internal error: a plan is for the seed or the offline "
                          "flavour");
  if (flavour == SBX_FLAVOUR_OFFLINE && !rt->has_offline)
    return sbx_error_set (err, SBX_E_INVALID, "runtime %s has no offline flavour", rt->name);
  int r = sbx_runtime_validate (rt, err);
  if (r < 0)
    return r;
  plan->flavour = flavour;
  const struct runtime_def *d = &rt->def[flavour == SBX_FLAVOUR_OFFLINE];
  if (d->base_image == NULL)
    {
      if (d->image && (plan->image = strdup (d->image)) == NULL)
        return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
      return 0;
    }
  if ((plan->base = strdup (d->base_image)) == NULL
      || render_dockerfile (rt, flavour, d, site_ca != NULL, &plan->dockerfile) < 0)
    {
      sbx_runtime_plan_clear (plan);
      return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
    }

  /* The tag is a hash of what makes the image: the format, the flavour,
   * the Dockerfile (which spells out every field that matters, in a
   * canonical order) and the build context's other file. The description
   * and the cache flag change nothing in the image, so they are left out. */
  char *blob = NULL;
  size_t blob_len = 0;
  FILE *f = open_memstream (&blob, &blob_len);
  if (f)
    {
      fprintf (f, "sbx-runtime-format %d\n%s\n", SBX_RUNTIME_FORMAT,
               sbx_runtime_flavour_name (flavour));
      fwrite (plan->dockerfile, 1, strlen (plan->dockerfile) + 1, f);
      if (site_ca)
        fwrite (site_ca, 1, site_ca_len, f);
    }
  if (f == NULL || fclose (f) != 0)
    {
      free (blob);
      sbx_runtime_plan_clear (plan);
      return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
    }
  sbx_sha256_hex (blob, blob_len, plan->hash);
  free (blob);
  plan->image = sbx_strdup_printf (SBX_RUNTIME_REPO "/%s:%.12s", rt->name, plan->hash);
  if (plan->image == NULL)
    {
      sbx_runtime_plan_clear (plan);
      return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
    }
  return 0;
}
