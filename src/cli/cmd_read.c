/* sbx read: a text file's lines, numbered. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
cmd_read (const struct cli_command *cmd, int argc, char **argv)
{
  int64_t offset = 0, limit = 0;
  const struct cli_opt opts[] = {
    { "offset", 0, CLI_COUNT, &offset, "N", "skip the first N lines" },
    { "limit", 0, CLI_COUNT, &limit, "N", "print at most N lines (default: 2000)" },
    { NULL, 0, 0, NULL, NULL, NULL },
  };
  struct cli_args a;
  sbx_sandbox_t *sb = NULL;
  int status = cli_parse_and_open (cmd, opts, argc, argv, &a, &sb);
  if (status != CLI_CONTINUE)
    return status;
  sbx_error_t *err = NULL;
  char *text = NULL;
  if (sbx_read (sb, a.operand[1], (size_t) offset, (size_t) limit, &text, &err) < 0)
    status = cli_error (err);
  else if (cli_json)
    status = cli_json_print (json_pack ("{s:o,s:o}", "path", cli_json_str (a.operand[1]), "content",
                                        cli_json_str (text)));
  else
    {
      fputs (text, stdout);
      status = 0;
    }
  free (text);
  sbx_sandbox_free (sb);
  return status;
}

const struct cli_command cli_cmd_read = {
  "read",
  "ID PATH",
  "Print a text file's lines, numbered",
  "Each line is printed as its number, a tab and its text, followed by a note when more\n"
  "lines remain. Binary files are refused (use `sbx cat`).\n",
  2,
  2,
  false,
  cmd_read,
};
