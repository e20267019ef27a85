/* sbx kill: ends every process in a sandbox but its agent. */
#include "cli.h"

#include <stdio.h>

static int
cmd_kill (const struct cli_command *cmd, int argc, char **argv)
{
  struct cli_args a;
  sbx_sandbox_t *sb = NULL;
  int status = cli_parse_and_open (cmd, NULL, argc, argv, &a, &sb);
  if (status != CLI_CONTINUE)
    return status;
  sbx_error_t *err = NULL;
  size_t killed = 0;
  if (sbx_sandbox_kill_all (sb, &killed, &err) < 0)
    status = cli_error (err);
  else if (cli_json)
    status = cli_json_print (
        json_pack ("{s:o, s:I}", "id", cli_json_str (a.operand[0]), "killed", (json_int_t) killed));
  else
    {
      printf ("killed %zu process%s\n", killed, killed == 1 ? "" : "es");
      status = 0;
    }
  sbx_sandbox_free (sb);
  return status;
}

const struct cli_command cli_cmd_kill = {
  "kill",
  "ID",
  "Kill every process in a sandbox",
  "Every process but the sandbox's agent gets SIGKILL, background processes and running\n"
  "commands included: the way out of a fork bomb, or of anything that fills the sandbox's\n"
  "process limit, that keeps the sandbox and its files.\n",
  1,
  1,
  false,
  cmd_kill,
};
