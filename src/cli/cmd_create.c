/* sbx create: makes and starts a sandbox that outlives the command. */
#include "cli.h"

#include <stdio.h>

static int
cmd_create (const struct cli_command *cmd, int argc, char **argv)
{
  struct cli_create_opts co;
  bool quiet = false;
  cli_create_opts_init (&co);
  const struct cli_opt opts[] = {
    CLI_CREATE_OPTIONS (&co),
    { "quiet", 'q', CLI_FLAG, &quiet, NULL, "do not say which image the sandbox uses" },
    { NULL, 0, 0, NULL, NULL, NULL },
  };
  struct cli_args a;
  sbx_sandbox_t *sb = NULL;
  int status = cli_parse (cmd, opts, argc, argv, &a);
  if (status == CLI_CONTINUE && (status = cli_create_sandbox (&co, &sb)) == 0)
    {
      const char *id = sbx_sandbox_id (sb), *image = sbx_sandbox_image (sb);
      /* Said here, not by `run`, whose output is its command's. */
      if (sbx_sandbox_notice (sb))
        cli_note ("%s", sbx_sandbox_notice (sb));
      if (cli_json)
        status = cli_json_print (json_pack ("{s:o,s:o,s:o}", "id", cli_json_str (id), "image",
                                            cli_json_str (image), "workdir",
                                            cli_json_str (sbx_sandbox_workdir (sb))));
      else
        {
          /* The default image depends on the machine: say which one it is,
           * on stderr so that `id=$(sbx create)` still works. */
          if (!quiet)
            cli_note ("sandbox %s using image %s", id, image);
          printf ("%s\n", id);
        }
    }
  /* Only the handle: the sandbox stays until `sbx stop` or `sbx rm`. */
  sbx_sandbox_free (sb);
  cli_create_opts_clear (&co);
  return status;
}

const struct cli_command cli_cmd_create = {
  "create",
  "",
  "Create and start a sandbox; print its id",
  "The id is the container's name (the docker CLI accepts it too). The sandbox stays after\n"
  "this command: `sbx stop` ends an unnamed one (and removes it), `sbx rm` removes any.\n",
  0,
  0,
  false,
  cmd_create,
};
