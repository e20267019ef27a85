/* sbx rm: removes a sandbox, named or not. */
#include "cli.h"

static int
cmd_rm (const struct cli_command *cmd, int argc, char **argv)
{
  return cli_sandbox_command (cmd, argc, argv, sbx_sandbox_remove);
}

const struct cli_command cli_cmd_rm = {
  "rm", "ID", "Remove a sandbox (its container and host folder)", NULL, 1, 1, false, cmd_rm,
};
