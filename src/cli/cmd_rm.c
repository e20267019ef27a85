/* sbx rm: removes a sandbox, named or not. */
#include "cli.h"

static int
cmd_rm (const struct cli_command *cmd, int argc, char **argv)
{
  struct cli_args a;
  int status = cli_parse (cmd, NULL, argc, argv, &a);
  if (status != CLI_CONTINUE)
    return status;
  sbx_sandbox_t *sb = NULL;
  sbx_error_t *err = NULL;
  if (sbx_sandbox_open (a.operand[0], &sb, &err) < 0 || sbx_sandbox_remove (sb, &err) < 0)
    status = cli_error (err);
  else
    status = cli_json ? cli_json_print (json_pack ("{s:o}", "id", cli_json_str (a.operand[0]))) : 0;
  sbx_sandbox_free (sb);
  return status;
}

const struct cli_command cli_cmd_rm = {
  "rm", "ID", "Remove a sandbox (its container and host folder)",
  NULL,
  1, 1, false, cmd_rm,
};
