/* Runtimes against a real engine: every built-in's offline flavour is built
 * (or re-used: the images are cached by tag across runs) and smoke-tested,
 * a custom runtime's env reaches exec, a second request builds nothing,
 * concurrent requests build once, a failing install fails cleanly.
 *
 * The engine is read directly (src/lib/engine.h) only to check what the
 * public API cannot show: that a failed build leaves no image behind. */
#include "helpers.h"

#include "../../src/lib/engine.h"

#include <sys/wait.h>
#include <unistd.h>

/* Unique per run, so that the custom runtimes below are new images (their
 * builds really happen) whatever the cache holds. */
static char token[32];

struct events
{
  int notes, steps, outputs;
  int last_step, max_steps;
  bool steps_in_order;
  double last_elapsed;
  bool elapsed_monotonic;
  char last_note[512];
};

static void
on_progress (const sbx_build_progress_t *p, void *ud)
{
  struct events *ev = ud;
  if (p->elapsed + 1e-6 < ev->last_elapsed && p->event != SBX_BUILD_NOTE)
    ev->elapsed_monotonic = false;
  if (p->event != SBX_BUILD_NOTE)
    ev->last_elapsed = p->elapsed;
  switch (p->event)
    {
    case SBX_BUILD_NOTE:
      ev->notes++;
      snprintf (ev->last_note, sizeof ev->last_note, "%s", p->text);
      break;
    case SBX_BUILD_STEP:
      ev->steps++;
      if (p->step != ev->last_step + 1 || p->steps < p->step || !p->step_text)
        ev->steps_in_order = false;
      ev->last_step = p->step;
      ev->max_steps = p->steps;
      break;
    case SBX_BUILD_OUTPUT:
      ev->outputs++;
      break;
    }
}

static void
events_init (struct events *ev)
{
  memset (ev, 0, sizeof *ev);
  ev->steps_in_order = true;
  ev->elapsed_monotonic = true;
}

static sbx_runtime_t *
custom (const char *json)
{
  sbx_runtime_t *rt = NULL;
  sbx_error_t *err = NULL;
  if (sbx_runtime_from_json (json, &rt, &err) < 0)
    diag ("custom runtime refused: %s", sbx_error_message (err));
  sbx_error_free (err);
  return rt;
}

/* A sandbox running RT, or NULL after saying why. */
static sbx_sandbox_t *
runtime_sandbox (const sbx_runtime_t *rt)
{
  sbx_options_t *o = sbx_options_new ();
  sbx_error_t *err = NULL;
  if (sbx_options_set_runtime (o, rt, &err) < 0)
    {
      diag ("set_runtime: %s", sbx_error_message (err));
      sbx_error_free (err);
      sbx_options_free (o);
      return NULL;
    }
  return start_sandbox (o);
}

static bool
has (const char *hay, const char *needle)
{
  return hay && strstr (hay, needle);
}

/* Removes every image of runtime NAME (the custom ones of this test). */
static void
drop_runtime (const char *name)
{
  sbx_error_t *err = NULL;
  if (sbx_runtime_prune (name, true, NULL, NULL, &err) < 0)
    diag ("cleanup of %s: %s", name, sbx_error_message (err));
  sbx_error_free (err);
}

static const char analysis_py[] = "import pandas as pd\n"
                                  "import numpy as np\n"
                                  "\n"
                                  "data = pd.DataFrame({\n"
                                  "    'x': np.random.randn(100),\n"
                                  "    'y': np.random.randn(100),\n"
                                  "})\n"
                                  "print(data.describe())\n";

/* Each built-in's offline flavour, then its smoke run. */
static void
test_builtins_offline (void)
{
  bool base = false;
  sbx_image_exists (SBX_BASE_IMAGE, &base, NULL);
  if (!ok (base, SBX_BASE_IMAGE " exists (scripts/setup.sh makes it)"))
    return;
  for (const char *const *n = sbx_runtime_builtin_names (); *n; n++)
    {
      sbx_runtime_t *rt = NULL;
      sbx_error_t *err = NULL;
      sbx_runtime_image_t info;
      struct events ev;
      events_init (&ev);
      sbx_runtime_builtin (*n, &rt, NULL);
      sbx_runtime_set_flavour (rt, SBX_FLAVOUR_OFFLINE, NULL);
      double t0 = now_s ();
      int r = sbx_runtime_ensure_image (rt, on_progress, &ev, NULL, &info, &err);
      if (!check_ok (r, &err, *n))
        {
          sbx_runtime_free (rt);
          continue;
        }
      diag ("%s: %s, %s in %.1f s", *n, info.image, info.built ? "built" : "re-used",
            now_s () - t0);
      ok (info.flavour == SBX_FLAVOUR_OFFLINE && has (info.image, "sbx-runtime/") && info.id
              && has (info.id, "sha256:") && info.reason && *info.reason,
          "  offline flavour, tagged sbx-runtime/..., with an id and a reason");
      if (info.built)
        ok (ev.steps > 0 && ev.steps_in_order && ev.max_steps >= ev.steps && ev.outputs > 0
                && ev.elapsed_monotonic,
            "  progress: %d steps in order, %d output lines", ev.steps, ev.outputs);

      /* Asked again: the image is re-used, nothing is built. */
      sbx_runtime_image_t again;
      events_init (&ev);
      r = sbx_runtime_ensure_image (rt, on_progress, &ev, NULL, &again, &err);
      if (check_ok (r, &err, "  a second request"))
        {
          ok (!again.built && ev.steps == 0, "  re-uses the image without building");
          is_str (again.id, info.id, "  the same image id");
        }
      sbx_runtime_image_clear (&again);

      sbx_sandbox_t *sb = runtime_sandbox (rt);
      if (!ok (sb != NULL, "  a sandbox runs it"))
        {
          sbx_runtime_image_clear (&info);
          sbx_runtime_free (rt);
          continue;
        }
      is_str (sbx_sandbox_image (sb), info.image, "  the sandbox runs the runtime's image");
      is_str (sbx_sandbox_workdir (sb), sbx_runtime_workdir (rt), "  in the runtime's work dir");
      int code = -1;
      const char *out;
      if (strcmp (*n, "python-minimal") == 0)
        {
          out = run (sb, "python -c 'print(6*7)' && python3 -m pip --version && pwd", &code);
          ok (code == 0 && has (out, "42\n") && has (out, "pip ") && has (out, "/workspace\n"),
              "  python, pip, /workspace");
        }
      else if (strcmp (*n, "python-datascience") == 0)
        {
          sbx_error_t *werr = NULL;
          int w = sbx_write (sb, "/workspace/analysis.py", analysis_py, sizeof analysis_py - 1,
                             &werr);
          check_ok (w, &werr, "  write the seed's analysis.py");
          out = run (sb, "python /workspace/analysis.py", &code);
          if (!ok (code == 0 && has (out, "count  100.000000  100.000000") && has (out, "mean")
                       && has (out, "std"),
                   "  the seed's pandas describe() example"))
            diag ("output: %s", out ? out : "(none)");
          out = run (sb, "python -c 'import matplotlib, sklearn, seaborn; print(\"ok\")'", &code);
          ok (code == 0 && has (out, "ok\n"), "  matplotlib, scikit-learn, seaborn import");
        }
      else if (strcmp (*n, "python-web") == 0)
        {
          out = run (sb, "python -c 'import fastapi, sqlalchemy, httpx, uvicorn; print(\"ok\")'",
                     &code);
          if (!ok (code == 0 && has (out, "ok\n"), "  fastapi, sqlalchemy, httpx, uvicorn import"))
            diag ("output: %s", out ? out : "(none)");
        }
      else if (strcmp (*n, "node-minimal") == 0)
        {
          out = run (sb, "node -e 'console.log(6*7)' && npm --version >/dev/null && pwd", &code);
          ok (code == 0 && has (out, "42\n/app\n"), "  node -e, npm, /app");
        }
      else if (strcmp (*n, "node-react") == 0)
        {
          out = run (sb, "npx tsc --version", &code);
          if (!ok (code == 0 && has (out, "Version "), "  npx tsc --version"))
            diag ("output: %s", out ? out : "(none)");
          out = run (sb,
                     "node -e 'const React = require(\"react\"); "
                     "console.log(typeof React.createElement)'",
                     &code);
          ok (code == 0 && has (out, "function\n"), "  require('react') from the work dir");
          out = run (sb,
                     "node --input-type=module -e 'import React from \"react\"; "
                     "import { renderToString } from \"react-dom/server\"; "
                     "console.log(renderToString(React.createElement(\"b\", null, \"hi\")))'",
                     &code);
          ok (code == 0 && has (out, "<b>hi</b>"), "  import react and react-dom as modules");
          out = run (sb, "npx vite --version", &code);
          ok (code == 0 && has (out, "vite/"), "  npx vite --version");
        }
      remove_sandbox (sb);
      sbx_runtime_image_clear (&info);
      sbx_runtime_free (rt);
    }
}

/* Without a pinned flavour, a built-in picks one and says why. */
static void
test_auto_flavour (void)
{
  sbx_runtime_t *rt = NULL;
  sbx_runtime_builtin ("python-web", &rt, NULL);
  sbx_runtime_image_t info;
  sbx_error_t *err = NULL;
  int r = sbx_runtime_ensure_image (rt, NULL, NULL, NULL, &info, &err);
  if (check_ok (r, &err, "python-web with the flavour chosen by sbx"))
    {
      diag ("%s flavour: %s", sbx_runtime_flavour_name (info.flavour), info.reason);
      bool seed_base = false;
      sbx_image_exists (SBX_SEED_IMAGE, &seed_base, NULL);
      ok (info.reason && *info.reason
              && (info.flavour == SBX_FLAVOUR_SEED
                  || (info.flavour == SBX_FLAVOUR_OFFLINE && !seed_base)),
          "  the seed flavour, or the offline one when python:3.12-slim is not there, with a "
          "reason");
    }
  sbx_runtime_image_clear (&info);
  sbx_runtime_free (rt);
}

static void
on_removed (const char *image, void *ud)
{
  diag ("pruned %s", image);
  *(int *) ud += strstr (image, "(untagged)") != NULL;
}

/* A custom runtime: apt packages on sbx's base image, env vars seen by exec
 * (including characters a Dockerfile or a shell would interpret). */
static void
test_custom (void)
{
  char json[1024];
  snprintf (json, sizeof json,
            "{\"name\": \"sbx-it-custom\", \"base_image\": \"" SBX_BASE_IMAGE "\", "
            "\"package_manager\": \"apt\", \"packages\": [\"jq\"], \"work_dir\": \"/srv/work\", "
            "\"env_vars\": {\"GREETING\": \"hello from a runtime\", "
            "\"TRICKY\": \"a\\\"b$HOME\\\\c 'q' `x`\", \"RUN_TOKEN\": \"%s\"}}",
            token);
  sbx_runtime_t *rt = custom (json);
  if (!ok (rt != NULL, "a custom runtime with apt packages and env vars"))
    return;
  struct events ev;
  events_init (&ev);
  sbx_runtime_image_t info;
  sbx_error_t *err = NULL;
  double t0 = now_s ();
  int r = sbx_runtime_ensure_image (rt, on_progress, &ev, NULL, &info, &err);
  if (check_ok (r, &err, "  built"))
    {
      diag ("%s built in %.1f s", info.image, now_s () - t0);
      ok (info.built && info.flavour == SBX_FLAVOUR_SEED, "  a new definition is built");
      ok (ev.notes > 0 && ev.steps >= 4 && ev.steps_in_order && ev.outputs > 0,
          "  progress: notes, %d steps in order, %d output lines", ev.steps, ev.outputs);
    }
  sbx_runtime_image_t again;
  r = sbx_runtime_ensure_image (rt, NULL, NULL, NULL, &again, &err);
  if (check_ok (r, &err, "  asked again"))
    {
      ok (!again.built, "  re-used, no build");
      is_str (again.id, info.id, "  same image id");
    }
  sbx_runtime_image_clear (&again);

  sbx_sandbox_t *sb = runtime_sandbox (rt);
  if (ok (sb != NULL, "  a sandbox with the custom runtime"))
    {
      int code = -1;
      is_str (run (sb, "echo \"$GREETING\"", &code), "hello from a runtime\n",
              "  exec sees the runtime's env var");
      is_str (run (sb, "printf '%s' \"$TRICKY\"", NULL), "a\"b$HOME\\c 'q' `x`",
              "  a value with quotes, $, \\ and backquotes arrives literally");
      is_str (run (sb, "pwd", NULL), "/srv/work\n", "  the runtime's work dir");
      const char *out = run (sb, "echo '{\"a\": [1, 2]}' | jq -c .a", &code);
      ok (code == 0 && has (out, "[1,2]"), "  the apt package is installed");
      remove_sandbox (sb);
    }

  /* Without cache, every request builds; prune then removes the image the
   * rebuild superseded (untagged now). */
  sbx_runtime_set_cache (rt, false);
  sbx_runtime_image_t rebuilt;
  r = sbx_runtime_ensure_image (rt, NULL, NULL, NULL, &rebuilt, &err);
  if (check_ok (r, &err, "  cache off: built again"))
    {
      ok (rebuilt.built && strcmp (rebuilt.id, info.id) != 0, "  a new image");
      is_str (rebuilt.image, info.image, "  under the same tag");
    }
  sbx_runtime_image_clear (&rebuilt);
  sbx_runtime_image_clear (&info);
  sbx_runtime_free (rt);

  int untagged = 0;
  r = sbx_runtime_prune ("sbx-it-custom", false, on_removed, &untagged, &err);
  check_ok (r, &err, "  prune");
  ok (untagged == 1, "  prune removes the image the rebuild superseded");
  bool present = false;
  rt = custom (json);
  char *image = NULL;
  sbx_runtime_image_status (rt, SBX_FLAVOUR_SEED, &image, &present, NULL);
  ok (present, "  the current image survives prune");
  free (image);
  sbx_runtime_free (rt);
  drop_runtime ("sbx-it-custom");
}

/* The number of images the engine holds that no tag names (a failed
 * build's layers would be among them), made at or after SINCE. */
static int
untagged_since (long long since)
{
  sbx_engine_t *e = NULL;
  json_t *list = NULL;
  long status = 0;
  if (sbx_engine_get (&e, NULL) < 0
      || sbx_engine_request (e, "GET", "/images/json?all=1", NULL, &status, &list, NULL) < 0
      || !json_is_array (list))
    {
      json_decref (list);
      return -1;
    }
  int n = 0;
  size_t i;
  json_t *img;
  json_array_foreach (list, i, img)
    {
      json_t *tags = json_object_get (img, "RepoTags");
      const char *t0 = json_string_value (json_array_get (tags, 0));
      bool untagged = json_array_size (tags) == 0 || (t0 && strcmp (t0, "<none>:<none>") == 0);
      if (untagged && json_integer_value (json_object_get (img, "Created")) >= since)
        n++;
    }
  json_decref (list);
  return n;
}

/* A package that does not exist: the build fails, names the step and shows
 * apt's words, and leaves no image behind. */
static void
test_failing_build (void)
{
  char json[512];
  snprintf (json, sizeof json,
            "{\"name\": \"sbx-it-broken\", \"base_image\": \"" SBX_BASE_IMAGE "\", "
            "\"package_manager\": \"apt\", \"packages\": [\"sbx-no-such-package-%s\"], "
            "\"env_vars\": {\"RUN_TOKEN\": \"%s\"}}",
            token, token);
  sbx_runtime_t *rt = custom (json);
  if (!ok (rt != NULL, "a runtime with a package that does not exist"))
    return;
  long long start = (long long) time (NULL) - 1;
  struct events ev;
  events_init (&ev);
  sbx_error_t *err = NULL;
  sbx_runtime_image_t info;
  char *image = (char *) "untouched";
  int r = sbx_runtime_ensure_image (rt, on_progress, &ev, &image, &info, &err);
  const char *msg = sbx_error_message (err);
  char pkg[64];
  snprintf (pkg, sizeof pkg, "sbx-no-such-package-%s", token);
  ok (r == -SBX_E_BUILD && sbx_error_code (err) == SBX_E_BUILD, "  fails with build_failed");
  ok (has (msg, "failed at step ") && has (msg, "RUN [") && has (msg, "exited with code 100"),
      "  the message names the failing step and its exit code");
  if (!ok (has (msg, "Unable to locate package") && has (msg, pkg),
           "  and ends with apt's last lines, naming the package"))
    diag ("message: %s", msg);
  ok (image == NULL, "  no image is returned");
  diag ("%s", msg);
  sbx_error_free (err);

  char *tag = NULL;
  bool present = true;
  sbx_runtime_image_status (rt, SBX_FLAVOUR_SEED, &tag, &present, NULL);
  ok (tag && !present, "  the tag %s does not exist", tag ? tag : "(none)");
  free (tag);
  is_int (untagged_since (start), 0, "  no untagged layers of the failed build are left");
  sbx_runtime_free (rt);
  drop_runtime ("sbx-it-broken");
}

/* Two processes ask for the same new runtime at once: one builds, the
 * other waits for it and re-uses the image. */
static void
test_concurrent (void)
{
  char json[512];
  snprintf (json, sizeof json,
            "{\"name\": \"sbx-it-race\", \"base_image\": \"" SBX_BASE_IMAGE "\", "
            "\"setup_commands\": [\"sleep 2\"], \"env_vars\": {\"RUN_TOKEN\": \"%s\"}}",
            token);
  int go[2], res[2][2];
  if (pipe (go) < 0 || pipe (res[0]) < 0 || pipe (res[1]) < 0)
    {
      ok (0, "pipes for the concurrency test");
      return;
    }
  fflush (stdout);
  pid_t pids[2];
  for (int i = 0; i < 2; i++)
    {
      pids[i] = fork ();
      if (pids[i] == 0)
        {
          close (go[1]);
          char c;
          (void) !read (go[0], &c, 1); /* both start when the parent says so */
          sbx_runtime_t *rt = NULL;
          sbx_runtime_image_t info = { 0 };
          char line[256] = "error";
          if (sbx_runtime_from_json (json, &rt, NULL) == 0
              && sbx_runtime_ensure_image (rt, NULL, NULL, NULL, &info, NULL) == 0)
            snprintf (line, sizeof line, "%d %s", info.built, info.id);
          (void) !write (res[i][1], line, strlen (line));
          sbx_runtime_image_clear (&info);
          sbx_runtime_free (rt);
          _exit (0);
        }
      close (res[i][1]);
    }
  close (go[0]);
  close (go[1]); /* go */
  char out[2][256] = { "", "" };
  for (int i = 0; i < 2; i++)
    {
      ssize_t n = read (res[i][0], out[i], sizeof out[i] - 1);
      out[i][n > 0 ? n : 0] = '\0';
      close (res[i][0]);
      waitpid (pids[i], NULL, 0);
    }
  diag ("process 1: %s; process 2: %s", out[0], out[1]);
  bool both = strncmp (out[0], "error", 5) != 0 && strncmp (out[1], "error", 5) != 0;
  ok (both, "two processes ask for the same new runtime at once");
  int built = (out[0][0] == '1') + (out[1][0] == '1');
  is_int (built, 1, "  exactly one of them builds it");
  is_str (out[0] + 2, out[1] + 2, "  both get the same image");
  drop_runtime ("sbx-it-race");
}

/* The choice between flavours, with definitions that have an "offline"
 * object as the built-ins do: a seed base image that cannot be pulled, and
 * a seed flavour whose install fails (as pip does without PyPI). */
static void
test_fallback (void)
{
  char json[1024];
  snprintf (json, sizeof json,
            "{\"name\": \"sbx-it-fallback\", \"base_image\": \"sbx-test/no-such-image:%s\", "
            "\"packages\": [\"requests\"], \"env_vars\": {\"RUN_TOKEN\": \"%s\"}, "
            "\"offline\": {\"base_image\": \"" SBX_BASE_IMAGE "\", \"setup_commands\": "
            "[\"echo offline > /flavour\"]}}",
            token, token);
  sbx_runtime_t *rt = custom (json);
  sbx_runtime_image_t info;
  sbx_error_t *err = NULL;
  struct events ev;
  events_init (&ev);
  int r = rt ? sbx_runtime_ensure_image (rt, on_progress, &ev, NULL, &info, &err) : -1;
  if (check_ok (r, &err, "a seed base image that cannot be pulled"))
    {
      ok (info.flavour == SBX_FLAVOUR_OFFLINE && info.built, "  the offline flavour is built");
      if (!ok (has (info.reason, "sbx-test/no-such-image") && has (info.reason, "offline flavour"),
               "  and the reason names the missing image"))
        diag ("reason: %s", info.reason);
      sbx_runtime_image_t again;
      r = sbx_runtime_ensure_image (rt, NULL, NULL, NULL, &again, &err);
      if (check_ok (r, &err, "  asked again"))
        ok (!again.built && again.flavour == SBX_FLAVOUR_OFFLINE, "  the offline image is re-used");
      sbx_runtime_image_clear (&again);
    }
  sbx_runtime_image_clear (&info);
  sbx_runtime_free (rt);
  drop_runtime ("sbx-it-fallback");

  /* sbx's base image has no pip: the seed flavour's install fails. */
  snprintf (json, sizeof json,
            "{\"name\": \"sbx-it-fallback2\", \"base_image\": \"" SBX_BASE_IMAGE "\", "
            "\"packages\": [\"requests\"], \"env_vars\": {\"RUN_TOKEN\": \"%s\"}, "
            "\"offline\": {\"base_image\": \"" SBX_BASE_IMAGE "\", \"setup_commands\": "
            "[\"echo offline > /flavour\"]}}",
            token);
  rt = custom (json);
  r = rt ? sbx_runtime_ensure_image (rt, NULL, NULL, NULL, &info, &err) : -1;
  if (check_ok (r, &err, "a seed flavour whose install fails"))
    {
      ok (info.flavour == SBX_FLAVOUR_OFFLINE && info.built, "  the offline flavour is built");
      if (!ok (has (info.reason, "seed flavour failed to build"), "  and the reason says why"))
        diag ("reason: %s", info.reason);
      sbx_sandbox_t *sb = runtime_sandbox (rt);
      is_str (sb ? run (sb, "cat /flavour", NULL) : NULL, "offline\n", "  a sandbox runs it");
      remove_sandbox (sb);
    }
  sbx_runtime_image_clear (&info);
  sbx_runtime_free (rt);
  drop_runtime ("sbx-it-fallback2");
}

/* Without an explicit ensure, the sandbox's start builds the image. */
static void
test_lazy (void)
{
  char json[512];
  snprintf (json, sizeof json,
            "{\"name\": \"sbx-it-lazy\", \"base_image\": \"" SBX_BASE_IMAGE "\", "
            "\"setup_commands\": [\"echo built lazily > /lazy\"], \"work_dir\": \"/lazy-wd\", "
            "\"env_vars\": {\"RUN_TOKEN\": \"%s\"}}",
            token);
  sbx_runtime_t *rt = custom (json);
  sbx_sandbox_t *sb = rt ? runtime_sandbox (rt) : NULL;
  if (ok (sb != NULL, "a sandbox with a runtime that was never built starts"))
    {
      ok (has (sbx_sandbox_image (sb), "sbx-runtime/sbx-it-lazy:"),
          "  its image was built at start");
      is_str (run (sb, "cat /lazy; pwd", NULL), "built lazily\n/lazy-wd\n", "  and runs");
    }
  remove_sandbox (sb);
  sbx_runtime_free (rt);
  drop_runtime ("sbx-it-lazy");
}

/* Invalid definitions never reach the engine. */
static void
test_invalid (void)
{
  sbx_runtime_t *rt = NULL;
  sbx_error_t *err = NULL;
  int r = sbx_runtime_from_json (
      "{\"name\": \"x\", \"base_image\": \"" SBX_BASE_IMAGE "\", "
      "\"package_manager\": \"apt\", \"packages\": [\"jq; touch /pwned\"]}",
      &rt, &err);
  check_fails (r, &err, SBX_E_INVALID, "packages entry 'jq; touch /pwned'",
               "a package with a shell command is refused, naming the field");
  err = NULL;
  r = sbx_runtime_from_json ("{\"name\": \"x\", \"env_vars\": {\"BAD-KEY\": \"v\"}}", &rt, &err);
  check_fails (r, &err, SBX_E_INVALID, "env_vars key 'BAD-KEY'", "a bad env key is refused");
  err = NULL;
  r = sbx_runtime_from_json ("{\"name\": \"x\", \"work_dir\": \"/w;id\"}", &rt, &err);
  check_fails (r, &err, SBX_E_INVALID, "work_dir '/w;id'", "a bad work dir is refused");
}

int
main (void)
{
  snprintf (token, sizeof token, "%lx%x", (unsigned long) time (NULL), (unsigned) getpid ());
  double t0 = now_s ();
  test_invalid ();
  test_builtins_offline ();
  test_auto_flavour ();
  test_custom ();
  test_failing_build ();
  test_fallback ();
  test_lazy ();
  test_concurrent ();
  diag ("runtime tests took %.0f s", now_s () - t0);
  return done_testing ();
}
