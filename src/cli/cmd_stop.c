/* sbx stop: stops a sandbox (and removes an unnamed one). */
#include "cli.h"

static int
cmd_stop (const struct cli_command *cmd, int argc, char **argv)
{
  return cli_sandbox_command (cmd, argc, argv, sbx_sandbox_stop);
}

const struct cli_command cli_cmd_stop = {
  "stop",
  "ID",
  "Stop a sandbox",
  "An unnamed sandbox is removed too; a named one (--name) is kept until `sbx rm`.\n",
  1,
  1,
  false,
  cmd_stop,
};
