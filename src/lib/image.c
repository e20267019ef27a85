/* Images: whether one exists, and choosing the default one (the seed's when
 * it can be had, else sbx's own base image; see image_bootstrap.c). */
#include "internal.h"
#include "state.h"
#include "engine.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* How long a failed pull of the seed image is remembered, so every sandbox
 * creation on a machine without registry access does not retry it. */
#define PULL_RETRY_AFTER_S 600

/* ------------------------------------------------------------- existence */

SBX_EXPORT int
sbx_image_exists (const char *image, bool *exists, sbx_error_t **err)
{
  *exists = false;
  sbx_engine_t *e = NULL;
  int r = sbx_engine_get (&e, err);
  if (r < 0)
    return r;
  r = sbx_engine_image_exists (e, image, exists, err);
  return r;
}

/* ---------------------------------------------------- failed-pull memory */

/* The cache file for IMAGE; its name keeps only [A-Za-z0-9._-]. */
static char *
pull_failed_path (const char *image, bool create_dir)
{
  cleanup_free char *dir = NULL;
  if (sbx_state_dir ("pull-failed", create_dir, 0755, &dir, NULL) < 0)
    return NULL;
  cleanup_free char *name = strdup (image);
  if (name == NULL)
    return NULL;
  for (char *p = name; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')
          || *p == '-' || *p == '_' || (*p == '.' && p != name)))
      *p = '_';
  return sbx_strdup_printf ("%s/%s", dir, name);
}

/* Whether a pull of IMAGE failed less than PULL_RETRY_AFTER_S ago; *WHY gets
 * the reason then recorded. Cache trouble reads as "no". */
static bool
pull_recently_failed (const char *image, char **why)
{
  *why = NULL;
  cleanup_free char *path = pull_failed_path (image, false);
  if (path == NULL)
    return false;
  FILE *f = fopen (path, "re");
  if (f == NULL)
    return false;
  char buf[1024];
  size_t n = fread (buf, 1, sizeof buf - 1, f);
  fclose (f);
  buf[n] = '\0';
  char *end;
  errno = 0;
  long long when = strtoll (buf, &end, 10);
  if (end == buf || errno || *end != '\n')
    return false;
  long long now = time (NULL);
  /* A stamp from the future (clock moved back) does not count. */
  if (when > now + 60 || now - when >= PULL_RETRY_AFTER_S)
    return false;
  char *text = end + 1;
  text[strcspn (text, "\n")] = '\0';
  *why = strdup (*text ? text : "it failed recently");
  return true;
}

static void
remember_pull_failure (const char *image, const char *why)
{
  cleanup_free char *path = pull_failed_path (image, true);
  cleanup_free char *tmp = path ? sbx_strdup_printf ("%s.XXXXXX", path) : NULL;
  if (tmp == NULL)
    return;
  int fd = mkostemp (tmp, O_CLOEXEC);
  if (fd < 0)
    return;
  /* Written aside and renamed, so a reader never sees half a file. */
  int n = dprintf (fd, "%lld\n%.900s\n", (long long) time (NULL), why);
  bool ok = n > 0 && fchmod (fd, 0644) == 0;
  ok = close (fd) == 0 && ok;
  if (!ok || rename (tmp, path) < 0)
    unlink (tmp);
}

static void
forget_pull_failure (const char *image)
{
  cleanup_free char *path = pull_failed_path (image, false);
  if (path)
    unlink (path);
}

/* ----------------------------------------------------------- the default */

/* The engine's own words from a pull error, without sbx's preamble. */
static const char *
pull_reason (const sbx_error_t *e)
{
  static const char marker[] = "could not be pulled: ";
  const char *msg = sbx_error_message (e);
  const char *p = strstr (msg, marker);
  return p ? p + sizeof marker - 1 : msg;
}

SBX_EXPORT int
sbx_image_default (char **image, const char **reason, sbx_error_t **err)
{
  *image = NULL;
  if (reason)
    *reason = NULL;
  sbx_engine_t *e = NULL;
  int r = sbx_engine_get (&e, err);
  if (r < 0)
    return r;

  const char *chosen = NULL, *why_chosen = NULL;
  cleanup_free char *pull_why = NULL;
  bool present = false;
  r = sbx_engine_image_exists (e, SBX_SEED_IMAGE, &present, err);
  if (r < 0)
    goto out;
  if (present)
    {
      chosen = SBX_SEED_IMAGE;
      why_chosen = SBX_SEED_IMAGE " is present";
      goto out;
    }

  if (!pull_recently_failed (SBX_SEED_IMAGE, &pull_why))
    {
      sbx_error_t *pull_err = NULL;
      r = sbx_engine_image_pull (e, SBX_SEED_IMAGE, NULL, NULL, &pull_err);
      if (r == 0)
        {
          forget_pull_failure (SBX_SEED_IMAGE);
          chosen = SBX_SEED_IMAGE;
          why_chosen = SBX_SEED_IMAGE " was pulled";
          goto out;
        }
      pull_why = strdup (pull_reason (pull_err));
      remember_pull_failure (SBX_SEED_IMAGE, pull_why ? pull_why : "unknown error");
      sbx_error_free (pull_err);
      r = 0;
    }

  r = sbx_engine_image_exists (e, SBX_BASE_IMAGE, &present, err);
  if (r < 0)
    goto out;
  if (present)
    {
      chosen = SBX_BASE_IMAGE;
      why_chosen = SBX_SEED_IMAGE " could not be pulled; using sbx's own Debian base image";
      goto out;
    }
  r = sbx_error_set (err, SBX_E_IMAGE_MISSING,
                     "no usable image: " SBX_SEED_IMAGE
                     " could not be pulled (%s) and " SBX_BASE_IMAGE
                     " does not exist; build it with `sbx image bootstrap` (needs root and "
                     "debootstrap)",
                     pull_why ? pull_why : "unknown error");

out:
  if (r == 0 && chosen)
    {
      *image = strdup (chosen);
      if (*image == NULL)
        return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
      if (reason)
        *reason = why_chosen;
    }
  return r;
}
