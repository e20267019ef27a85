/* sbx runtime: pre-configured environments built into images. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* ------------------------------------------------------------ commands */

static int
cmd_ls (const struct cli_command *cmd, int argc, char **argv)
{
  struct cli_args a;
  int status = cli_parse (cmd, NULL, argc, argv, &a);
  if (status != CLI_CONTINUE)
    return status;
  json_t *doc = cli_json ? json_array () : NULL;
  if (!cli_json)
    printf ("%-20s %-8s %-8s %s\n", "NAME", "SEED", "OFFLINE", "DESCRIPTION");
  for (const char *const *n = sbx_runtime_builtin_names (); *n; n++)
    {
      sbx_runtime_t *rt = NULL;
      sbx_error_t *err = NULL;
      if (sbx_runtime_builtin (*n, &rt, &err) < 0)
        {
          json_decref (doc);
          return cli_error (err);
        }
      json_t *flavours = json_object ();
      const char *state[3] = { "", "-", "-" };
      for (int f = SBX_FLAVOUR_SEED; f <= SBX_FLAVOUR_OFFLINE; f++)
        {
          char *image = NULL;
          bool present = false;
          char *text = NULL;
          if (sbx_runtime_image_status (rt, (sbx_runtime_flavour) f, &image, &present, &err) < 0
              || sbx_runtime_dockerfile (rt, (sbx_runtime_flavour) f, &text, &err) < 0)
            {
              free (image);
              json_decref (flavours);
              json_decref (doc);
              sbx_runtime_free (rt);
              return cli_error (err);
            }
          /* An image used as is is "present" (pulled), a built one "built". */
          state[f] = present ? (text ? "built" : "present") : "-";
          json_object_set_new (flavours, sbx_runtime_flavour_name ((sbx_runtime_flavour) f),
                               json_pack ("{s:o,s:b,s:b}", "image", cli_json_str (image), "present",
                                          present, "used_as_is", text == NULL));
          free (image);
          free (text);
        }
      if (doc)
        json_array_append_new (doc,
                               json_pack ("{s:s,s:o,s:s,s:o}", "name", *n, "description",
                                          cli_json_str (sbx_runtime_description (rt)), "work_dir",
                                          sbx_runtime_workdir (rt), "flavours", flavours));
      else
        {
          printf ("%-20s %-8s %-8s %s\n", *n, state[SBX_FLAVOUR_SEED], state[SBX_FLAVOUR_OFFLINE],
                  sbx_runtime_description (rt));
          json_decref (flavours);
        }
      sbx_runtime_free (rt);
    }
  if (doc)
    return cli_json_print (json_pack ("{s:o}", "runtimes", doc));
  return 0;
}

/* Options shared by show and build: which runtime, which flavour. */
struct which
{
  const char *file;
  const char *flavour;
};

#define WHICH_OPTIONS(w)                                                                           \
  { "runtime-file", 'f', CLI_STRING, &(w)->file, "FILE", "a runtime definition in JSON" },         \
  {                                                                                                \
    "flavour", 0, CLI_STRING, &(w)->flavour, "FLAVOUR",                                            \
        "seed or offline (default: both for show, auto for build)"                                 \
  }

static int
load_which (struct cli_args *a, const struct which *w, sbx_runtime_t **rt,
            sbx_runtime_flavour *flavour)
{
  sbx_error_t *err = NULL;
  *flavour = SBX_FLAVOUR_AUTO;
  if (w->flavour && sbx_runtime_flavour_parse (w->flavour, flavour, &err) < 0)
    return cli_error (err);
  int status = cli_runtime_load (a->noperands ? a->operand[0] : NULL, w->file, rt);
  if (status == 0 && sbx_runtime_set_flavour (*rt, *flavour, &err) < 0)
    {
      sbx_runtime_free (*rt);
      *rt = NULL;
      return cli_error (err);
    }
  return status;
}

static int
cmd_show (const struct cli_command *cmd, int argc, char **argv)
{
  struct which w = { 0 };
  const struct cli_opt opts[] = {
    WHICH_OPTIONS (&w),
    { NULL, 0, 0, NULL, NULL, NULL },
  };
  struct cli_args a;
  int status = cli_parse (cmd, opts, argc, argv, &a);
  if (status != CLI_CONTINUE)
    return status;
  sbx_runtime_t *rt = NULL;
  sbx_runtime_flavour only;
  if ((status = load_which (&a, &w, &rt, &only)) != 0)
    return status;

  sbx_error_t *err = NULL;
  char *def = NULL;
  json_t *flavours = json_array ();
  if (sbx_runtime_to_json (rt, &def, &err) < 0)
    status = cli_error (err);
  else if (!cli_json)
    printf ("%s\n", def);
  for (int f = SBX_FLAVOUR_SEED; status == 0 && f <= SBX_FLAVOUR_OFFLINE; f++)
    {
      if ((only != SBX_FLAVOUR_AUTO && only != (sbx_runtime_flavour) f)
          || !sbx_runtime_has_flavour (rt, (sbx_runtime_flavour) f))
        continue;
      const char *name = sbx_runtime_flavour_name ((sbx_runtime_flavour) f);
      char *image = NULL, *text = NULL;
      bool present = false;
      if (sbx_runtime_dockerfile (rt, (sbx_runtime_flavour) f, &text, &err) < 0
          || sbx_runtime_image_status (rt, (sbx_runtime_flavour) f, &image, &present, &err) < 0)
        status = cli_error (err);
      else if (cli_json)
        json_array_append_new (flavours, json_pack ("{s:s,s:o,s:b,s:o}", "flavour", name, "image",
                                                    cli_json_str (image), "present", present,
                                                    "dockerfile", cli_json_str (text)));
      else if (text)
        printf ("\n# %s flavour: %s (%s)\n%s", name, image, present ? "built" : "not built", text);
      else
        printf ("\n# %s flavour: %s, used as is (%s)\n", name,
                image ? image : "sbx's default image", present ? "present" : "not present");
      free (image);
      free (text);
    }
  if (status == 0 && cli_json)
    {
      json_t *parsed = json_loads (def, 0, NULL);
      status = cli_json_print (json_pack ("{s:o,s:o}", "definition", parsed ? parsed : json_null (),
                                          "flavours", flavours));
      flavours = NULL;
    }
  json_decref (flavours);
  free (def);
  sbx_runtime_free (rt);
  return status;
}

static int
cmd_build (const struct cli_command *cmd, int argc, char **argv)
{
  struct which w = { 0 };
  bool no_cache = false, quiet = false;
  const struct cli_opt opts[] = {
    WHICH_OPTIONS (&w),
    { "no-cache", 0, CLI_FLAG, &no_cache, NULL, "build again even if the image exists" },
    { "quiet", 'q', CLI_FLAG, &quiet, NULL, "do not show the build's progress" },
    { NULL, 0, 0, NULL, NULL, NULL },
  };
  struct cli_args a;
  int status = cli_parse (cmd, opts, argc, argv, &a);
  if (status != CLI_CONTINUE)
    return status;
  sbx_runtime_t *rt = NULL;
  sbx_runtime_flavour flavour;
  if ((status = load_which (&a, &w, &rt, &flavour)) != 0)
    return status;
  if (no_cache)
    sbx_runtime_set_cache (rt, false);
  sbx_runtime_image_t info = { 0 };
  status = cli_runtime_ensure (rt, quiet, &info);
  if (status == 0 && cli_json)
    status = cli_json_print (
        json_pack ("{s:s,s:o,s:o,s:s,s:o,s:b,s:f}", "runtime", sbx_runtime_name (rt), "image",
                   cli_json_str (info.image), "id", cli_json_str (info.id), "flavour",
                   sbx_runtime_flavour_name (info.flavour), "reason", cli_json_str (info.reason),
                   "built", info.built, "seconds", info.seconds));
  else if (status == 0)
    {
      if (!quiet && sbx_runtime_has_flavour (rt, SBX_FLAVOUR_OFFLINE))
        cli_note ("%s flavour, %s: %s", sbx_runtime_flavour_name (info.flavour),
                  info.built ? "built" : "already built", info.reason);
      else if (!quiet)
        cli_note ("%s: %s", info.built ? "built" : "already built", info.reason);
      /* The image alone on stdout, for `$(sbx runtime build ...)`. */
      printf ("%s\n", info.image);
    }
  sbx_runtime_image_clear (&info);
  sbx_runtime_free (rt);
  return status;
}

static void
on_removed (const char *image, void *userdata)
{
  json_t *list = userdata;
  if (list)
    json_array_append_new (list, cli_json_str (image));
  else
    printf ("%s\n", image);
}

static int
cmd_prune (const struct cli_command *cmd, int argc, char **argv)
{
  bool all = false;
  const struct cli_opt opts[] = {
    { "all", 'a', CLI_FLAG, &all, NULL, "remove every runtime image, current ones too" },
    { NULL, 0, 0, NULL, NULL, NULL },
  };
  struct cli_args a;
  int status = cli_parse (cmd, opts, argc, argv, &a);
  if (status != CLI_CONTINUE)
    return status;
  json_t *removed = cli_json ? json_array () : NULL;
  sbx_error_t *err = NULL;
  if (sbx_runtime_prune (a.noperands ? a.operand[0] : NULL, all, on_removed, removed, &err) < 0)
    {
      json_decref (removed);
      return cli_error (err);
    }
  if (removed)
    return cli_json_print (json_pack ("{s:o}", "removed", removed));
  return 0;
}

static const struct cli_command ls = {
  "runtime ls",
  "",
  "List the built-in runtimes and which of their flavours are built",
  "SEED and OFFLINE say whether each flavour's image is there: built (by sbx), present\n"
  "(an image used as is) or -.\n",
  0,
  0,
  false,
  cmd_ls,
};

static const struct cli_command show = {
  "runtime show",
  "[NAME]",
  "Print a runtime's definition and the Dockerfiles sbx generates",
  "NAME is a built-in (see `sbx runtime ls`); --runtime-file FILE shows a definition in JSON.\n",
  0,
  1,
  false,
  cmd_show,
};

static const struct cli_command build = {
  "runtime build",
  "[NAME]",
  "Build a runtime's image now (re-used while it is unchanged)",
  "NAME is a built-in; --runtime-file FILE builds a definition in JSON. Without --flavour,\n"
  "a built-in uses the seed's base image when it can be had and its offline flavour (sbx's\n"
  "Debian base image with Debian's packages) otherwise, and says which and why. Progress\n"
  "goes to stderr; the image's name is printed on stdout at the end.\n",
  0,
  1,
  false,
  cmd_build,
};

static const struct cli_command prune = {
  "runtime prune",
  "[NAME]",
  "Remove runtime images that are superseded",
  "Keeps the current images of the built-ins and the newest image of every other runtime\n"
  "(and any image a container uses); --all removes them all. With NAME, only that\n"
  "runtime's images are considered. Prints what it removed.\n",
  0,
  1,
  false,
  cmd_prune,
};

static int
cmd_runtime (const struct cli_command *cmd, int argc, char **argv)
{
  static const struct cli_command *const subs[] = { &ls, &show, &build, &prune, NULL };
  return cli_dispatch (cmd, subs, argc, argv);
}

const struct cli_command cli_cmd_runtime = {
  "runtime", "COMMAND",   "Manage runtimes: pre-configured environments built into images",
  NULL,      0,           0,
  false,     cmd_runtime,
};
