/* Runtimes for the CLI: loading one by name or file, making sure its image
 * exists while showing the build's progress, and the --runtime and
 * --runtime-file options that create, run and mcp share. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* ------------------------------------------------------------ progress */

/* On a terminal, a live status line (step, elapsed time, the current
 * output line) rewritten in place, with notes and steps printed above it;
 * otherwise plain lines. Always on stderr: stdout is for the result. */
struct progress
{
  bool tty;
  bool live;        /* a status line is on screen */
  double last_draw; /* elapsed time of the last redraw */
};

static int
term_width (void)
{
  struct winsize ws;
  if (ioctl (STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20)
    return ws.ws_col;
  return 80;
}

static void
clear_live (struct progress *pr)
{
  if (pr->live)
    fputs ("\r\033[K", stderr);
  pr->live = false;
}

/* Up to WIDTH columns of S (counted as bytes, cut before a UTF-8
 * continuation byte so the terminal never sees half a character). */
static int
fit (const char *s, int width)
{
  int n = (int) strlen (s);
  if (n <= width)
    return n;
  n = width < 0 ? 0 : width;
  while (n > 0 && ((unsigned char) s[n] & 0xc0) == 0x80)
    n--;
  return n;
}

static void
on_progress (const sbx_build_progress_t *p, void *userdata)
{
  struct progress *pr = userdata;
  fflush (stdout);
  switch (p->event)
    {
    case SBX_BUILD_NOTE:
      clear_live (pr);
      fprintf (stderr, "sbx: %s\n", p->text);
      break;
    case SBX_BUILD_STEP:
      clear_live (pr);
      {
        /* One line per step on a terminal; the whole step otherwise. */
        char head[64];
        int n = snprintf (head, sizeof head, "sbx: step %d/%d (%.0f s): ", p->step, p->steps,
                          p->elapsed);
        int room = pr->tty ? term_width () - 1 - n : (int) strlen (p->text);
        fprintf (stderr, "%s%.*s\n", head, fit (p->text, room), p->text);
      }
      break;
    case SBX_BUILD_OUTPUT:
      if (!pr->tty)
        {
          fprintf (stderr, "    %s\n", p->text);
          break;
        }
      /* Output can come in thousands of lines a second; a terminal does
       * not need more than a few redraws a second. */
      if (pr->live && p->elapsed - pr->last_draw < 0.1)
        break;
      pr->last_draw = p->elapsed;
      {
        char head[48];
        int n = snprintf (head, sizeof head, "  [%d/%d %.0fs] ", p->step, p->steps, p->elapsed);
        int room = term_width () - 1 - n;
        fprintf (stderr, "\r\033[K%s%.*s", head, fit (p->text, room), p->text);
        pr->live = true;
      }
      break;
    }
  fflush (stderr);
}

static void
progress_init (struct progress *pr)
{
  const char *term = getenv ("TERM");
  memset (pr, 0, sizeof *pr);
  pr->tty = isatty (STDERR_FILENO) && !(term && strcmp (term, "dumb") == 0);
}

/* --------------------------------------------------- loading, ensuring */

int
cli_runtime_load (const char *name, const char *file, sbx_runtime_t **rt)
{
  sbx_error_t *err = NULL;
  *rt = NULL;
  if (name && file)
    return cli_fail (SBX_E_INVALID, "give a runtime's name or --runtime-file, not both");
  if (!name && !file)
    return cli_fail (SBX_E_INVALID, "name a runtime (see `sbx runtime ls`) or give "
                                    "--runtime-file FILE");
  int r = file ? sbx_runtime_load_file (file, rt, &err) : sbx_runtime_builtin (name, rt, &err);
  return r < 0 ? cli_error (err) : 0;
}

int
cli_runtime_ensure (const sbx_runtime_t *rt, bool quiet, sbx_runtime_image_t *info)
{
  struct progress pr;
  sbx_error_t *err = NULL;
  progress_init (&pr);
  int r = sbx_runtime_ensure_image (rt, quiet ? NULL : on_progress, &pr, NULL, info, &err);
  clear_live (&pr);
  fflush (stderr);
  return r < 0 ? cli_error (err) : 0;
}

int
cli_runtime_prepare (const struct cli_create_opts *co, sbx_runtime_t **out)
{
  *out = NULL;
  if (co->runtime == NULL && co->runtime_file == NULL)
    return 0;
  if (co->image)
    return cli_fail (SBX_E_INVALID,
                     "--image and --runtime%s cannot be combined: the runtime "
                     "decides the image",
                     co->runtime ? "" : "-file");
  if (co->runtime && co->runtime_file)
    return cli_fail (SBX_E_INVALID, "--runtime and --runtime-file cannot be combined");
  sbx_runtime_t *rt = NULL;
  sbx_runtime_image_t info = { 0 };
  int status = cli_runtime_load (co->runtime, co->runtime_file, &rt);
  if (status == 0)
    status = cli_runtime_ensure (rt, false, &info);
  /* Which flavour was built, and why, matters when it was just chosen. */
  if (status == 0 && info.built)
    cli_note ("runtime %s: %s flavour (%s)", sbx_runtime_name (rt),
              sbx_runtime_flavour_name (info.flavour), info.reason);
  sbx_runtime_image_clear (&info);
  if (status != 0)
    {
      sbx_runtime_free (rt);
      return status;
    }
  *out = rt;
  return 0;
}
