/* sbx image: the images sandboxes run. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>

static void
progress (const char *line, void *userdata)
{
  (void) userdata;
  cli_note ("%s", line);
}

static int
cmd_bootstrap (const struct cli_command *cmd, int argc, char **argv)
{
  bool quiet = false;
  const struct cli_opt opts[] = {
    { "quiet", 'q', CLI_FLAG, &quiet, NULL, "do not print progress lines" },
    { NULL, 0, 0, NULL, NULL, NULL },
  };
  struct cli_args a;
  int status = cli_parse (cmd, opts, argc, argv, &a);
  if (status != CLI_CONTINUE)
    return status;
  sbx_error_t *err = NULL;
  if (sbx_image_bootstrap (quiet ? NULL : progress, NULL, &err) < 0)
    return cli_error (err);
  if (cli_json)
    return cli_json_print (json_pack ("{s:s}", "image", SBX_BASE_IMAGE));
  printf ("%s\n", SBX_BASE_IMAGE);
  return 0;
}

static int
cmd_default (const struct cli_command *cmd, int argc, char **argv)
{
  struct cli_args a;
  int status = cli_parse (cmd, NULL, argc, argv, &a);
  if (status != CLI_CONTINUE)
    return status;
  char *image = NULL;
  const char *reason = NULL;
  sbx_error_t *err = NULL;
  if (sbx_image_default (&image, &reason, &err) < 0)
    return cli_error (err);
  if (cli_json)
    status = cli_json_print (json_pack ("{s:s,s:s?}", "image", image, "reason", reason));
  else
    {
      /* The image alone on stdout, for `$(sbx image default)`. */
      printf ("%s\n", image);
      if (reason)
        cli_note ("%s", reason);
      status = 0;
    }
  free (image);
  return status;
}

static const struct cli_command bootstrap = {
  "image bootstrap",
  "",
  "Build sbx's base image (" SBX_BASE_IMAGE ") with debootstrap",
  "Uses the host's apt sources; needs root and debootstrap. Progress lines go to stderr;\n"
  "the image's name is printed on stdout at the end.\n",
  0,
  0,
  false,
  cmd_bootstrap,
};

static const struct cli_command default_ = {
  "image default",
  "",
  "Print the image sandboxes use by default, and why",
  "That is " SBX_SEED_IMAGE " when present or pullable, else " SBX_BASE_IMAGE ". The reason\n"
  "is printed on stderr.\n",
  0,
  0,
  false,
  cmd_default,
};

static int
cmd_image (const struct cli_command *cmd, int argc, char **argv)
{
  static const struct cli_command *const subs[] = { &bootstrap, &default_, NULL };
  return cli_dispatch (cmd, subs, argc, argv);
}

const struct cli_command cli_cmd_image = {
  "image", "COMMAND", "Manage the images sandboxes run", NULL, 0, 0, false, cmd_image,
};
