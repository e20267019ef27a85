/* libFuzzer target for runtime definitions (src/lib/runtime.c):
 * sbx_runtime_from_json, and for a definition it accepts, what is made of
 * it: the plan of each flavour (Dockerfile and tag, with and without a site
 * CA; sbx_runtime_plan is what sbx_runtime_dockerfile returns, without
 * reading the host's CA folder), the JSON written back, the copy.
 *
 * Checked: the JSON written back reads back to the same definition (the
 * same JSON, the same tags); each Dockerfile line is one instruction sbx
 * writes, RUN in exec form with a JSON array of strings, ENV values quoted
 * with every '"', '$' and '\' escaped, no control character but tabs in
 * quotes; the tag is the name and 12 hex digits of the hash.
 *
 * Input: the definition (JSON text without NUL bytes). */
#include "check.h"
#include "../src/lib/runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char site_ca[] = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

static bool
starts (const char *s, const char *prefix)
{
  return strncmp (s, prefix, strlen (prefix)) == 0;
}

/* ENV KEY="VALUE" with only escaped '"', '$' and '\' inside the quotes. */
static void
check_env (const char *line, size_t n)
{
  const char *q = memchr (line, '"', n);
  CHECK (q != NULL && q[-1] == '=' && line[n - 1] == '"');
  for (const char *p = q + 1; p < line + n - 1; p++)
    {
      CHECK (*p != '"' && *p != '$');
      if (*p == '\\')
        {
          p++;
          CHECK (p < line + n - 1 && strchr ("\"$\\", *p));
        }
    }
}

static void
check_dockerfile (const char *text)
{
  CHECK (starts (text, "# sbx runtime "));
  for (const char *line = text; *line;)
    {
      const char *nl = strchr (line, '\n');
      CHECK (nl != NULL);
      size_t n = (size_t) (nl - line);
      for (size_t i = 0; i < n; i++)
        CHECK ((unsigned char) line[i] >= 0x20 || (line[i] == '\t' && starts (line, "ENV ")));
      if (starts (line, "RUN ") || starts (line, "COPY "))
        {
          const char *json = line + (line[0] == 'R' ? 4 : 5);
          json_error_t jerr;
          json_t *a = json_loadb (json, (size_t) (nl - json), 0, &jerr);
          CHECK (json_is_array (a) && json_array_size (a) > 0);
          size_t i;
          json_t *v;
          json_array_foreach (a, i, v)
            CHECK (json_is_string (v));
          json_decref (a);
        }
      else if (starts (line, "ENV "))
        check_env (line, n);
      else
        CHECK (line == text || starts (line, "FROM ") || starts (line, "WORKDIR "));
      line = nl + 1;
    }
}

/* The plans of RT, checked; their hashes (or "") go to HASHES. */
static void
plan_all (const sbx_runtime_t *rt, char hashes[4][65])
{
  for (int i = 0; i < 4; i++)
    {
      sbx_runtime_flavour f = i < 2 ? SBX_FLAVOUR_SEED : SBX_FLAVOUR_OFFLINE;
      bool ca = i & 1;
      hashes[i][0] = '\0';
      if (!sbx_runtime_has_flavour (rt, f))
        continue;
      struct sbx_runtime_plan plan;
      sbx_error_t *err = NULL;
      int r = sbx_runtime_plan (rt, f, ca ? site_ca : NULL, ca ? sizeof site_ca - 1 : 0, &plan,
                                &err);
      /* Definitions were validated when read. */
      CHECK (r == 0 && err == NULL);
      if (plan.dockerfile)
        {
          check_dockerfile (plan.dockerfile);
          CHECK (strlen (plan.hash) == 64 && strspn (plan.hash, "0123456789abcdef") == 64);
          char *tag = sbx_strdup_printf ("sbx-runtime/%s:%.12s", sbx_runtime_name (rt), plan.hash);
          CHECK (tag && plan.image && strcmp (tag, plan.image) == 0);
          free (tag);
          memcpy (hashes[i], plan.hash, 65);
        }
      else
        CHECK (plan.base == NULL && plan.hash[0] == '\0');
      sbx_runtime_plan_clear (&plan);
    }
}

static char *
to_json (const sbx_runtime_t *rt)
{
  char *text = NULL;
  sbx_error_t *err = NULL;
  CHECK (sbx_runtime_to_json (rt, &text, &err) == 0 && text != NULL);
  return text;
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  if (memchr (data, '\0', size))
    return -1;
  char *text = strndup ((const char *) data, size);
  CHECK (text != NULL);
  sbx_runtime_t *rt = NULL;
  sbx_error_t *err = NULL;
  int r = sbx_runtime_from_json (text, &rt, &err);
  free (text);
  CHECK (r == 0 ? rt != NULL && err == NULL : rt == NULL && err != NULL);
  if (r < 0)
    {
      CHECK (sbx_error_message (err) != NULL);
      sbx_error_free (err);
      return 0;
    }

  CHECK (sbx_runtime_validate (rt, NULL) == 0);
  CHECK (sbx_runtime_name (rt) && sbx_runtime_description (rt) && sbx_runtime_workdir (rt));
  char hashes[4][65] = { { 0 } }, again[4][65] = { { 0 } };
  plan_all (rt, hashes);

  char *json = to_json (rt);
  sbx_runtime_t *back = NULL;
  r = sbx_runtime_from_json (json, &back, &err);
  if (r < 0)
    fprintf (stderr, "fuzz_runtime: the JSON written back is refused: %s\n%s\n",
             sbx_error_message (err), json);
  CHECK (r == 0);
  char *json2 = to_json (back);
  CHECK (strcmp (json, json2) == 0);
  plan_all (back, again);
  CHECK (memcmp (hashes, again, sizeof hashes) == 0);

  sbx_runtime_t *copy = sbx_runtime_dup (rt);
  CHECK (copy != NULL);
  char *json3 = to_json (copy);
  CHECK (strcmp (json, json3) == 0);

  free (json);
  free (json2);
  free (json3);
  sbx_runtime_free (copy);
  sbx_runtime_free (back);
  sbx_runtime_free (rt);
  return 0;
}
