/* Runtimes, the engine part: which flavour to use, building its image
 * through the engine's build endpoint (one build per image across
 * processes), progress from the build's output, and pruning superseded
 * images. The definitions and the generated Dockerfile are in runtime.c. */
#include "runtime.h"
#include "state.h"
#include "sandbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>

/* Where Debian (and Ubuntu) keep the CA certificates a site adds to the
 * system's store, typically for a TLS-inspecting proxy. */
#define SITE_CA_DIR "/usr/local/share/ca-certificates"
#define MAX_SITE_CA ((size_t) 1 << 20)
#define MAX_LINE 2048
#define TAIL_LINES 12
#define MAX_STEP_TEXT 240

/* --------------------------------------------------------- site CAs */

static void
append_file (FILE *out, const char *path, size_t *total)
{
  FILE *f = fopen (path, "re");
  if (f == NULL)
    return;
  char buf[8192];
  size_t n;
  char last = '\n';
  while ((n = fread (buf, 1, sizeof buf, f)) > 0 && *total + n <= MAX_SITE_CA)
    {
      fwrite (buf, 1, n, out);
      *total += n;
      last = buf[n - 1];
    }
  fclose (f);
  if (last != '\n')
    fputc ('\n', out), (*total)++;
}

static int
only_visible (const struct dirent *d)
{
  return d->d_name[0] != '.';
}

/* The *.crt files under DIR (and one level of folders, as
 * update-ca-certificates reads them), in name order. */
static void
collect_crts (FILE *out, const char *dir, int depth, size_t *total)
{
  struct dirent **names = NULL;
  int n = scandir (dir, &names, only_visible, alphasort);
  for (int i = 0; i < n; i++)
    {
      cleanup_free char *path = sbx_strdup_printf ("%s/%s", dir, names[i]->d_name);
      struct stat st;
      size_t len = strlen (names[i]->d_name);
      if (path && stat (path, &st) == 0)
        {
          if (S_ISDIR (st.st_mode) && depth > 0)
            collect_crts (out, path, depth - 1, total);
          else if (S_ISREG (st.st_mode) && len > 4
                   && strcmp (names[i]->d_name + len - 4, ".crt") == 0)
            append_file (out, path, total);
        }
      free (names[i]);
    }
  free (names);
}

/* The site's CA certificates, concatenated; NULL when there are none. The
 * images sbx builds get them so that their package installs work behind the
 * same proxy as the host (they are public certificates, and the hash of the
 * image covers them, so a change rebuilds). */
static char *
read_site_ca (size_t *len)
{
  char *text = NULL;
  *len = 0;
  FILE *out = open_memstream (&text, len);
  if (out == NULL)
    return NULL;
  size_t total = 0;
  collect_crts (out, SITE_CA_DIR, 1, &total);
  if (fclose (out) != 0 || *len == 0 || strstr (text, "-----BEGIN CERTIFICATE-----") == NULL)
    {
      free (text);
      *len = 0;
      return NULL;
    }
  return text;
}

/* Both plans of RT (the second only when it has an offline flavour). */
static int
make_plans (const sbx_runtime_t *rt, struct sbx_runtime_plan plans[2], char **site_ca,
            size_t *site_ca_len, sbx_error_t **err)
{
  memset (plans, 0, 2 * sizeof plans[0]);
  *site_ca = read_site_ca (site_ca_len);
  int r = sbx_runtime_plan (rt, SBX_FLAVOUR_SEED, *site_ca, *site_ca_len, &plans[0], err);
  if (r == 0 && sbx_runtime_has_flavour (rt, SBX_FLAVOUR_OFFLINE))
    r = sbx_runtime_plan (rt, SBX_FLAVOUR_OFFLINE, *site_ca, *site_ca_len, &plans[1], err);
  return r;
}

/* ------------------------------------------------------------ progress */

/* One build under way: what its output said so far. */
struct build_run
{
  const sbx_runtime_t *rt;
  const struct sbx_runtime_plan *plan;
  sbx_build_progress_cb progress;
  void *userdata;
  double start;
  int step, steps;
  char step_text[MAX_STEP_TEXT + 4];
  char line[MAX_LINE];
  size_t line_len;
  bool in_escape;
  char *tail[TAIL_LINES]; /* the current step's last output lines, a ring */
  size_t ntail;
  char first_id[80], last_id[80]; /* " ---> ID": the base image, the last layer */
};

static void
emit (struct build_run *b, sbx_build_event event, const char *text)
{
  if (b->progress == NULL)
    return;
  sbx_build_progress_t p = {
    .event = event,
    .runtime = sbx_runtime_name (b->rt),
    .image = b->plan ? b->plan->image : NULL,
    .flavour = b->plan ? b->plan->flavour : SBX_FLAVOUR_AUTO,
    .step = b->step,
    .steps = b->steps,
    .step_text = b->step ? b->step_text : NULL,
    .text = text,
    .elapsed = b->start > 0 ? sbx_now () - b->start : 0,
  };
  b->progress (&p, b->userdata);
}

static void note (struct build_run *b, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

static void
note (struct build_run *b, const char *fmt, ...)
{
  if (b->progress == NULL)
    return;
  va_list ap;
  va_start (ap, fmt);
  char *text = sbx_strdup_vprintf (fmt, ap);
  va_end (ap);
  if (text)
    emit (b, SBX_BUILD_NOTE, text);
  free (text);
}

static void
tail_clear (struct build_run *b)
{
  for (size_t i = 0; i < TAIL_LINES; i++)
    {
      free (b->tail[i]);
      b->tail[i] = NULL;
    }
  b->ntail = 0;
}

static void
tail_push (struct build_run *b, const char *line)
{
  size_t slot = b->ntail++ % TAIL_LINES;
  free (b->tail[slot]);
  b->tail[slot] = strdup (line);
}

/* Forgets what an earlier build (of another flavour) said. */
static void
run_reset (struct build_run *b)
{
  tail_clear (b);
  b->start = 0;
  b->step = b->steps = 0;
  b->step_text[0] = '\0';
  b->line_len = 0;
  b->in_escape = false;
  b->first_id[0] = b->last_id[0] = '\0';
}

static bool
is_hex_id (const char *s)
{
  size_t n = strspn (s, "0123456789abcdef");
  return n >= 12 && s[n] == '\0';
}

/* One line of the classic builder's output: a step header, its bookkeeping
 * (" ---> ID", "Removing intermediate container ..."), or what the step's
 * command printed. */
static void
on_line (struct build_run *b, char *line)
{
  size_t n = strlen (line);
  while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\t'))
    line[--n] = '\0';
  if (n == 0)
    return;
  int step, steps, used = 0;
  if (sscanf (line, "Step %d/%d : %n", &step, &steps, &used) == 2 && used > 0)
    {
      b->step = step;
      b->steps = steps;
      snprintf (b->step_text, sizeof b->step_text, "%.*s%s", MAX_STEP_TEXT, line + used,
                strlen (line + used) > MAX_STEP_TEXT ? "..." : "");
      tail_clear (b);
      emit (b, SBX_BUILD_STEP, b->step_text);
      return;
    }
  if (strncmp (line, " ---> ", 6) == 0)
    {
      const char *rest = line + 6;
      if (is_hex_id (rest))
        {
          if (b->first_id[0] == '\0')
            snprintf (b->first_id, sizeof b->first_id, "%s", rest);
          snprintf (b->last_id, sizeof b->last_id, "%s", rest);
        }
      else if (strcmp (rest, "Using cache") == 0)
        emit (b, SBX_BUILD_OUTPUT, "(cached)");
      return;
    }
  if (strncmp (line, "Removing intermediate container ", 32) == 0
      || strncmp (line, "Successfully built ", 19) == 0
      || strncmp (line, "Successfully tagged ", 20) == 0)
    return;
  tail_push (b, line);
  emit (b, SBX_BUILD_OUTPUT, line);
}

static void
flush_line (struct build_run *b)
{
  b->line[b->line_len] = '\0';
  b->line_len = 0;
  on_line (b, b->line);
}

/* Output pieces to lines: '\n' and '\r' (progress bars) end one; terminal
 * escapes (the builder colours stderr) are dropped, as are other controls;
 * over-long lines are cut. */
static void
on_output (const char *text, void *userdata)
{
  struct build_run *b = userdata;
  for (const unsigned char *p = (const unsigned char *) text; *p; p++)
    {
      if (b->in_escape)
        {
          /* CSI: ESC '[' parameters, then a final byte in 0x40..0x7e. */
          if (*p >= 0x40 && *p <= 0x7e && *p != '[')
            b->in_escape = false;
          continue;
        }
      if (*p == 0x1b)
        b->in_escape = true;
      else if (*p == '\n' || *p == '\r')
        flush_line (b);
      else if (*p == '\t' || *p >= 0x20)
        {
          if (b->line_len < sizeof b->line - 1)
            b->line[b->line_len++] = (char) *p;
        }
    }
}

/* ------------------------------------------------------------- locking */

/* A build may take long; waiting for another process's build too. */
#define BUILD_LOCK_WAIT 3600.0

struct waiting_for
{
  struct build_run *b;
  const char *image;
};

static void
note_waiting (void *ud)
{
  struct waiting_for *w = ud;
  note (w->b, "waiting for another sbx process that is building %s", w->image);
}

/* An exclusive lock on IMAGE, so that concurrent requests (from any
 * process) build it once. */
static int
lock_image (struct build_run *b, const char *image, sbx_lock_t *l, sbx_error_t **err)
{
  cleanup_free char *name = strdup (image);
  if (name == NULL)
    return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  for (char *p = name; *p; p++)
    if (*p == '/' || *p == ':')
      *p = '_';
  struct waiting_for w = { b, image };
  return sbx_lock_take ("runtimes", name, BUILD_LOCK_WAIT, note_waiting, &w, l, err);
}

/* ------------------------------------------------------------ building */

/* " (offline flavour)" in messages, for runtimes that have two flavours. */
static const char *
flavour_words (const sbx_runtime_t *rt, const struct sbx_runtime_plan *plan)
{
  if (!sbx_runtime_has_flavour (rt, SBX_FLAVOUR_OFFLINE))
    return "";
  return plan->flavour == SBX_FLAVOUR_OFFLINE ? " (offline flavour)" : " (seed flavour)";
}

/* The engine's "The command '...' returned a non-zero code: 100" names
 * the whole command again; the step is named already, so keep the code. */
static char *
describe_failure (const char *engine_text)
{
  static const char marker[] = "returned a non-zero code: ";
  const char *p = strstr (engine_text, marker);
  if (p)
    return sbx_strdup_printf ("its command exited with code %s", p + sizeof marker - 1);
  return strdup (engine_text);
}

/* The last output lines, indented, for an error message. */
static char *
tail_text (struct build_run *b)
{
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream (&text, &len);
  if (f == NULL)
    return NULL;
  size_t n = b->ntail < TAIL_LINES ? b->ntail : TAIL_LINES;
  for (size_t i = b->ntail - n; i < b->ntail; i++)
    fprintf (f, "\n  %s", b->tail[i % TAIL_LINES] ? b->tail[i % TAIL_LINES] : "");
  if (fclose (f) != 0)
    {
      free (text);
      return NULL;
    }
  return text;
}

/* build_plan's work, under the lock. */
static int
build_locked (sbx_engine_t *e, struct build_run *b, const char *site_ca, size_t site_ca_len,
              bool *built, char **id, sbx_error_t **err)
{
  const struct sbx_runtime_plan *plan = b->plan;
  const sbx_runtime_t *rt = b->rt;
  int r;
  if (sbx_runtime_cache (rt))
    {
      json_t *info = NULL;
      if ((r = sbx_engine_image_inspect (e, plan->image, &info, err)) < 0)
        return r;
      const char *have = json_string_value (json_object_get (info, "Id"));
      *id = have ? strdup (have) : NULL;
      json_decref (info);
      if (*id)
        return 0; /* built meanwhile by whoever held the lock */
    }

  note (b, "building runtime %s%s as %s", sbx_runtime_name (rt), flavour_words (rt, plan),
        plan->image);
  sbx_build_file_t files[2] = {
    { "Dockerfile", plan->dockerfile, strlen (plan->dockerfile) },
    { SBX_SITE_CA_FILE, site_ca, site_ca_len },
  };
  json_t *labels = json_pack ("{s:s, s:s, s:s, s:s}", SBX_LABEL_RUNTIME, sbx_runtime_name (rt),
                              SBX_LABEL_RUNTIME_HASH, plan->hash, SBX_LABEL_RUNTIME_FLAVOUR,
                              sbx_runtime_flavour_name (plan->flavour), SBX_LABEL_VERSION,
                              SBX_VERSION);
  if (labels == NULL)
    return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  sbx_engine_build_t req = {
    .tag = plan->image,
    .labels = labels,
    /* Steps fetch packages; the sandboxes that run the image keep their
     * own network setting (none by default). */
    .network = "bridge",
    .nocache = !sbx_runtime_cache (rt),
    .files = files,
    .nfiles = site_ca ? 2 : 1,
    .on_output = on_output,
    .userdata = b,
  };
  b->start = sbx_now ();
  sbx_error_t *berr = NULL;
  r = sbx_engine_image_build (e, &req, id, &berr);
  json_decref (labels);
  if (b->line_len > 0)
    flush_line (b);
  if (r == 0)
    {
      *built = true;
      sbx_error_free (berr);
      return 0;
    }

  if (r == -SBX_E_BUILD)
    {
      /* The engine tags only on success, so no tag exists; the layers of
       * the steps that did succeed would be left as an untagged image: drop
       * them (a layer shared with another image, or a base image, stays). */
      if (b->last_id[0] && strcmp (b->last_id, b->first_id) != 0)
        sbx_engine_image_remove (e, b->last_id, NULL);
      cleanup_free char *why = describe_failure (sbx_error_message (berr));
      cleanup_free char *tail = tail_text (b);
      r = sbx_error_set (err, SBX_E_BUILD,
                         "building runtime %s%s as %s failed at step %d/%d (%s): "
                         "%s%s%s",
                         sbx_runtime_name (rt), flavour_words (rt, plan), plan->image, b->step,
                         b->steps, b->step ? b->step_text : "before the first step",
                         why ? why : sbx_error_message (berr),
                         tail && *tail ? "; its last output:" : "", tail ? tail : "");
    }
  else
    sbx_error_propagate (err, steal_pointer (&berr));
  sbx_error_free (berr);
  return r;
}

/* Builds PLAN's image (under its lock; re-checked once the lock is held).
 * *BUILT says whether this call built it; *ID gets the image's id. */
static int
build_plan (sbx_engine_t *e, struct build_run *b, const char *site_ca, size_t site_ca_len,
            bool *built, char **id, sbx_error_t **err)
{
  *built = false;
  *id = NULL;
  run_reset (b);
  sbx_lock_t lock;
  int r = lock_image (b, b->plan->image, &lock, err);
  if (r < 0)
    return r;
  r = build_locked (e, b, site_ca, site_ca_len, built, id, err);
  sbx_lock_release (&lock);
  return r;
}

/* ------------------------------------------------------------ resolving */

static int
image_id (sbx_engine_t *e, const char *image, char **id, sbx_error_t **err)
{
  json_t *info = NULL;
  *id = NULL;
  int r = sbx_engine_image_inspect (e, image, &info, err);
  const char *have = json_string_value (json_object_get (info, "Id"));
  if (r == 0 && have && (*id = strdup (have)) == NULL)
    r = sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  json_decref (info);
  return r;
}

/* Fills the result. REASON is a malloc'd sentence (consumed). */
static int
finish (const char *image_name, char *id, sbx_runtime_flavour flavour, char *reason, bool built,
        double seconds, char **image, sbx_runtime_image_t *info, sbx_error_t **err)
{
  char *copy = strdup (image_name);
  if (copy == NULL || reason == NULL)
    {
      free (copy);
      free (id);
      free (reason);
      return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
    }
  if (info)
    {
      sbx_runtime_image_clear (info);
      info->image = strdup (copy);
      info->id = id;
      info->flavour = flavour;
      info->reason = reason;
      info->built = built;
      info->seconds = seconds;
      if (info->image == NULL)
        {
          sbx_runtime_image_clear (info);
          free (copy);
          return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
        }
    }
  else
    {
      free (id);
      free (reason);
    }
  if (image)
    *image = copy;
  else
    free (copy);
  return 0;
}

/* A runtime that names no image at all (only env_vars or work_dir) runs
 * sbx's default image, as the seed's does. */
static int
use_default_image (const sbx_runtime_t *rt, sbx_engine_t *e, char **image,
                   sbx_runtime_image_t *info, sbx_error_t **err)
{
  cleanup_free char *name = NULL;
  const char *why = NULL;
  int r = sbx_image_default (&name, &why, err);
  char *id = NULL;
  if (r == 0)
    r = image_id (e, name, &id, err);
  if (r < 0)
    return r;
  return finish (name, id, SBX_FLAVOUR_SEED,
                 sbx_strdup_printf ("runtime %s names no image, so it runs sbx's default image "
                                    "(%s)",
                                    sbx_runtime_name (rt), why ? why : name),
                 false, 0, image, info, err);
}

/* Whether IMAGE can be used: present, or pulled now (*PULLED). *WHY says
 * why not. */
static int
obtain (sbx_engine_t *e, struct build_run *b, const char *image, bool *ok, bool *pulled, char **why,
        sbx_error_t **err)
{
  *why = NULL;
  *pulled = false;
  int r = sbx_engine_image_exists (e, image, ok, err);
  if (r < 0 || *ok)
    return r;
  if (strcmp (image, SBX_BASE_IMAGE) == 0)
    {
      /* sbx's own image is on no registry. */
      *why = strdup (SBX_BASE_IMAGE " does not exist; build it with `sbx image bootstrap` "
                                    "(needs root and debootstrap)");
      return *why ? 0 : sbx_error_set (err, SBX_E_NOMEM, "out of memory");
    }
  note (b, "pulling %s", image);
  sbx_error_t *perr = NULL;
  if (sbx_engine_image_pull (e, image, NULL, NULL, &perr) == 0)
    {
      *ok = *pulled = true;
      return 0;
    }
  *why = sbx_strdup_printf ("%s", sbx_error_message (perr));
  sbx_error_free (perr);
  return *why ? 0 : sbx_error_set (err, SBX_E_NOMEM, "out of memory");
}

/* An image that exists is re-used, whichever flavour it is: the choice was
 * made when it was built (`sbx runtime prune` forgets it). 1 when one was
 * found, 0 when none exists. */
static int
reuse (sbx_engine_t *e, const sbx_runtime_t *rt, const struct sbx_runtime_plan *const *order,
       size_t n, char **image, sbx_runtime_image_t *info, sbx_error_t **err)
{
  sbx_runtime_flavour pinned = sbx_runtime_pinned_flavour (rt);
  for (size_t i = 0; i < n; i++)
    {
      const struct sbx_runtime_plan *plan = order[i];
      char *id = NULL;
      int r = image_id (e, plan->image, &id, err);
      if (r < 0)
        return r;
      if (id == NULL)
        continue;
      char *reason
          = pinned != SBX_FLAVOUR_AUTO
                ? sbx_strdup_printf ("the %s flavour was asked for and is present",
                                     sbx_runtime_flavour_name (plan->flavour))
            : i == 1 ? sbx_strdup_printf ("the offline flavour is present and the seed flavour is "
                                          "not; `sbx runtime build --flavour seed %s` tries the "
                                          "seed's",
                                          sbx_runtime_name (rt))
            : n == 2 ? strdup ("the seed flavour is present")
            : plan->base ? strdup ("its image was built before from the same definition")
                         : sbx_strdup_printf ("%s is present", plan->image);
      r = finish (plan->image, id, plan->flavour, reason, false, 0, image, info, err);
      return r < 0 ? r : 1;
    }
  return 0;
}

int
sbx_runtime_resolve (sbx_engine_t *e, const sbx_runtime_t *rt, sbx_build_progress_cb progress,
                     void *userdata, char **image, sbx_runtime_image_t *info, sbx_error_t **err)
{
  if (image)
    *image = NULL;
  struct sbx_runtime_plan plans[2];
  cleanup_free char *site_ca = NULL;
  size_t site_ca_len = 0;
  int r = make_plans (rt, plans, &site_ca, &site_ca_len, err);
  /* The flavours to consider, in order of preference. */
  const struct sbx_runtime_plan *order[2] = { &plans[0], NULL };
  size_t n = 1;
  sbx_runtime_flavour pinned = sbx_runtime_pinned_flavour (rt);
  if (pinned == SBX_FLAVOUR_OFFLINE)
    order[0] = &plans[1];
  else if (pinned == SBX_FLAVOUR_AUTO && sbx_runtime_has_flavour (rt, SBX_FLAVOUR_OFFLINE))
    order[n++] = &plans[1];
  struct build_run b = { .rt = rt, .progress = progress, .userdata = userdata };
  cleanup_free char *why_not = NULL; /* why the preferred flavour was passed over */
  const char *name = sbx_runtime_name (rt);

  if (r == 0 && order[0]->image == NULL && (r = use_default_image (rt, e, image, info, err)) == 0)
    r = 1;

  if (r == 0 && sbx_runtime_cache (rt))
    r = reuse (e, rt, order, n, image, info, err);

  for (size_t i = 0; r == 0 && i < n; i++)
    {
      const struct sbx_runtime_plan *plan = order[i];
      const char *flavour = sbx_runtime_flavour_name (plan->flavour);
      const char *need = plan->base ? plan->base : plan->image;
      bool have = false, pulled = false;
      cleanup_free char *why = NULL;
      b.plan = plan;
      if ((r = obtain (e, &b, need, &have, &pulled, &why, err)) < 0)
        break;
      if (!have && i + 1 < n)
        {
          note (&b,
                "%s; using the offline flavour (sbx's Debian base image with Debian's "
                "packages)",
                why);
          why_not = steal_pointer (&why);
          continue;
        }
      if (!have)
        {
          r = sbx_error_set (err, SBX_E_IMAGE_MISSING, "runtime %s%s needs %s: %s%s%s", name,
                             flavour_words (rt, plan), need, why, why_not ? "; before that, " : "",
                             why_not ? why_not : "");
          break;
        }
      /* The reason this flavour is the one. */
      cleanup_free char *reason
          = pinned != SBX_FLAVOUR_AUTO ? sbx_strdup_printf ("the %s flavour was asked for", flavour)
            : why_not
                ? sbx_strdup_printf ("%s; %s the offline flavour on %s with Debian's packages",
                                     why_not, plan->base ? "built" : "using", need)
                : sbx_strdup_printf ("%s%s %s", plan->base ? "its base image " : "", need,
                                     pulled ? "was pulled" : "is present");
      if (plan->base == NULL)
        {
          char *id = NULL;
          if ((r = image_id (e, plan->image, &id, err)) == 0)
            r = finish (plan->image, id, plan->flavour, steal_pointer (&reason), false, 0, image,
                        info, err);
          r = r < 0 ? r : 1;
          break;
        }
      bool built = false;
      char *id = NULL;
      sbx_error_t *berr = NULL;
      r = build_plan (e, &b, site_ca, site_ca_len, &built, &id, &berr);
      if (r == -SBX_E_BUILD && i + 1 < n)
        {
          /* The seed's package index may be out of reach (no PyPI): the
           * offline flavour needs only Debian's mirror. */
          const char *msg = sbx_error_message (berr);
          why_not = sbx_strdup_printf ("the seed flavour failed to build (%.*s)",
                                       (int) strcspn (msg, "\n"), msg);
          note (&b, "%s; using the offline flavour", why_not ? why_not : "it failed");
          sbx_error_free (berr);
          r = 0;
          continue;
        }
      if (r < 0)
        {
          sbx_error_propagate (err, berr);
          break;
        }
      double seconds = built ? sbx_now () - b.start : 0;
      if (built)
        note (&b, "built %s%s in %.0f s", plan->image, flavour_words (rt, plan), seconds);
      r = finish (plan->image, id, plan->flavour, steal_pointer (&reason), built, seconds, image,
                  info, err);
      r = r < 0 ? r : 1;
    }
  tail_clear (&b);
  sbx_runtime_plan_clear (&plans[0]);
  sbx_runtime_plan_clear (&plans[1]);
  return r < 0 ? r : 0;
}

/* --------------------------------------------------------------- public */

SBX_EXPORT void
sbx_runtime_image_clear (sbx_runtime_image_t *info)
{
  if (info == NULL)
    return;
  free (info->image);
  free (info->id);
  free (info->reason);
  memset (info, 0, sizeof *info);
}

SBX_EXPORT int
sbx_runtime_ensure_image (const sbx_runtime_t *rt, sbx_build_progress_cb progress, void *userdata,
                          char **image, sbx_runtime_image_t *info, sbx_error_t **err)
{
  if (image)
    *image = NULL;
  if (info)
    memset (info, 0, sizeof *info);
  if (rt == NULL)
    return sbx_error_set (err, SBX_E_INVALID, "no runtime was given");
  sbx_engine_t *e = NULL;
  int r = sbx_engine_get (&e, err);
  if (r == 0)
    r = sbx_runtime_resolve (e, rt, progress, userdata, image, info, err);
  return r;
}

static int
one_plan (const sbx_runtime_t *rt, sbx_runtime_flavour flavour, struct sbx_runtime_plan *plan,
          sbx_error_t **err)
{
  memset (plan, 0, sizeof *plan);
  if (flavour != SBX_FLAVOUR_SEED && flavour != SBX_FLAVOUR_OFFLINE)
    return sbx_error_set (err, SBX_E_INVALID, "name a flavour: seed or offline");
  if (!sbx_runtime_has_flavour (rt, flavour))
    return sbx_error_set (err, SBX_E_INVALID, "runtime %s has no offline flavour",
                          sbx_runtime_name (rt));
  size_t len = 0;
  cleanup_free char *site_ca = read_site_ca (&len);
  return sbx_runtime_plan (rt, flavour, site_ca, len, plan, err);
}

SBX_EXPORT int
sbx_runtime_dockerfile (const sbx_runtime_t *rt, sbx_runtime_flavour flavour, char **text,
                        sbx_error_t **err)
{
  *text = NULL;
  struct sbx_runtime_plan plan;
  int r = one_plan (rt, flavour, &plan, err);
  if (r == 0)
    *text = steal_pointer (&plan.dockerfile);
  sbx_runtime_plan_clear (&plan);
  return r;
}

SBX_EXPORT int
sbx_runtime_image_status (const sbx_runtime_t *rt, sbx_runtime_flavour flavour, char **image,
                          bool *present, sbx_error_t **err)
{
  *image = NULL;
  *present = false;
  struct sbx_runtime_plan plan;
  int r = one_plan (rt, flavour, &plan, err);
  sbx_engine_t *e = NULL;
  if (r == 0 && plan.image)
    {
      if ((r = sbx_engine_get (&e, err)) == 0)
        r = sbx_engine_image_exists (e, plan.image, present, err);
    }
  if (r == 0)
    *image = steal_pointer (&plan.image);
  sbx_runtime_plan_clear (&plan);
  return r;
}

/* ---------------------------------------------------------------- prune */

/* The names of the images the built-ins use now, both flavours. */
static json_t *
current_builtin_images (sbx_error_t **err)
{
  json_t *keep = json_object ();
  size_t len = 0;
  cleanup_free char *site_ca = read_site_ca (&len);
  for (const char *const *n = sbx_runtime_builtin_names (); keep && *n; n++)
    {
      sbx_runtime_t *rt = NULL;
      if (sbx_runtime_builtin (*n, &rt, err) < 0)
        {
          json_decref (keep);
          return NULL;
        }
      for (int f = SBX_FLAVOUR_SEED; f <= SBX_FLAVOUR_OFFLINE; f++)
        {
          struct sbx_runtime_plan plan;
          if (sbx_runtime_plan (rt, (sbx_runtime_flavour) f, site_ca, len, &plan, NULL) == 0
              && plan.dockerfile)
            json_object_set_new (keep, plan.image, json_true ());
          sbx_runtime_plan_clear (&plan);
        }
      sbx_runtime_free (rt);
    }
  if (keep == NULL)
    sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  return keep;
}

static bool
is_builtin (const char *name)
{
  for (const char *const *n = sbx_runtime_builtin_names (); name && *n; n++)
    if (strcmp (*n, name) == 0)
      return true;
  return false;
}

static const char *
first_tag (json_t *img)
{
  size_t i;
  json_t *t;
  json_array_foreach (json_object_get (img, "RepoTags"), i, t)
    {
      const char *s = json_string_value (t);
      if (s && strcmp (s, "<none>:<none>") != 0)
        return s;
    }
  return NULL;
}

SBX_EXPORT int
sbx_runtime_prune (const char *name, bool all, sbx_progress_cb removed, void *userdata,
                   sbx_error_t **err)
{
  sbx_engine_t *e = NULL;
  json_t *list = NULL, *keep = NULL;
  cleanup_free char *label = name ? sbx_strdup_printf (SBX_LABEL_RUNTIME "=%s", name)
                                  : strdup (SBX_LABEL_RUNTIME);
  if (label == NULL)
    return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  int r = sbx_engine_get (&e, err);
  if (r == 0)
    r = sbx_engine_image_list (e, label, &list, err);
  if (r == 0 && !all && (keep = current_builtin_images (err)) == NULL)
    r = -SBX_E_NOMEM;

  /* Other runtimes: the newest tagged image of each name and flavour. */
  size_t i;
  json_t *img;
  json_t *newest = json_object ();
  if (r == 0 && !all)
    json_array_foreach (list, i, img)
      {
        json_t *labels = json_object_get (img, "Labels");
        const char *rt_name = json_string_value (json_object_get (labels, SBX_LABEL_RUNTIME));
        const char *flavour
            = json_string_value (json_object_get (labels, SBX_LABEL_RUNTIME_FLAVOUR));
        if (rt_name == NULL || is_builtin (rt_name) || first_tag (img) == NULL)
          continue;
        cleanup_free char *key = sbx_strdup_printf ("%s %s", rt_name, flavour ? flavour : "");
        json_t *best = key ? json_object_get (newest, key) : NULL;
        if (key
            && (best == NULL
                || json_integer_value (json_object_get (img, "Created"))
                       > json_integer_value (json_object_get (best, "Created"))))
          json_object_set (newest, key, img);
      }
  const char *key;
  json_object_foreach (newest, key, img)
    {
      size_t k;
      json_t *t;
      json_array_foreach (json_object_get (img, "RepoTags"), k, t)
        json_object_set_new (keep, json_string_value (t), json_true ());
    }
  json_decref (newest);

  json_array_foreach (list, i, img)
    {
      if (r < 0)
        break;
      const char *id = json_string_value (json_object_get (img, "Id"));
      if (first_tag (img) == NULL && id)
        {
          /* Untagged: superseded by a build with cache off. */
          if (sbx_engine_image_remove (e, id, NULL) == 0 && removed)
            {
              cleanup_free char *line = sbx_strdup_printf ("%.19s (untagged)", id);
              removed (line ? line : id, userdata);
            }
          continue;
        }
      size_t k;
      json_t *t;
      json_array_foreach (json_object_get (img, "RepoTags"), k, t)
        {
          const char *tag = json_string_value (t);
          if (tag == NULL || strcmp (tag, "<none>:<none>") == 0
              || (keep && json_object_get (keep, tag)))
            continue;
          sbx_error_t *rerr = NULL;
          int rr = sbx_engine_image_remove (e, tag, &rerr);
          if (rr == 0 && removed)
            removed (tag, userdata);
          else if (rr < 0 && rr != -SBX_E_EXISTS)
            {
              /* In use: kept, as documented; anything else is a failure. */
              r = rr;
              sbx_error_propagate (err, steal_pointer (&rerr));
            }
          sbx_error_free (rerr);
        }
    }
  json_decref (keep);
  json_decref (list);
  return r;
}
