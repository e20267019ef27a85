/* sbx write: a file's content from stdin. */
#include "cli.h"

#include <unistd.h>

static int
cmd_write (const struct cli_command *cmd, int argc, char **argv)
{
  struct cli_args a;
  sbx_sandbox_t *sb = NULL;
  int status = cli_parse_and_open (cmd, NULL, argc, argv, &a, &sb);
  if (status != CLI_CONTINUE)
    return status;
  sbx_error_t *err = NULL;
  if (sbx_write_fd (sb, a.operand[1], STDIN_FILENO, &err) < 0)
    status = cli_error (err);
  else if (cli_json)
    status = cli_json_print (json_pack ("{s:o}", "path", cli_json_str (a.operand[1])));
  else
    status = 0;
  sbx_sandbox_free (sb);
  return status;
}

const struct cli_command cli_cmd_write = {
  "write",
  "ID PATH",
  "Write a file from standard input",
  "Binary-safe and atomic: readers see the old file or the new one. Parent directories are\n"
  "created; an existing file keeps its mode.\n",
  2,
  2,
  false,
  cmd_write,
};
