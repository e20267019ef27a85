/* sbx edit: replaces text in a file. */
#include "cli.h"

#include <stdio.h>

static int
cmd_edit (const struct cli_command *cmd, int argc, char **argv)
{
  const char *old_text = NULL, *new_text = NULL;
  bool all = false;
  const struct cli_opt opts[] = {
    { "old", 0, CLI_STRING, &old_text, "TEXT", "the text to replace (required)" },
    { "new", 0, CLI_STRING, &new_text, "TEXT", "the replacement (required)" },
    { "all", 0, CLI_FLAG, &all, NULL, "replace every occurrence (else OLD must occur once)" },
    { NULL, 0, 0, NULL, NULL, NULL },
  };
  struct cli_args a;
  int status = cli_parse (cmd, opts, argc, argv, &a);
  if (status != CLI_CONTINUE)
    return status;
  if (old_text == NULL || new_text == NULL)
    return cli_usage_error (cmd, "missing %s", old_text ? "--new" : "--old");

  sbx_sandbox_t *sb = NULL;
  sbx_error_t *err = NULL;
  size_t n = 0;
  if (sbx_sandbox_open (a.operand[0], &sb, &err) < 0
      || sbx_edit (sb, a.operand[1], old_text, new_text, all, &n, &err) < 0)
    status = cli_error (err);
  else if (cli_json)
    status = cli_json_print (json_pack ("{s:o,s:I}", "path", cli_json_str (a.operand[1]),
                                        "occurrences", (json_int_t) n));
  else
    {
      printf ("Edited %s: replaced %zu occurrence(s)\n", a.operand[1], n);
      status = 0;
    }
  sbx_sandbox_free (sb);
  return status;
}

const struct cli_command cli_cmd_edit = {
  "edit",
  "ID PATH",
  "Replace text in a file",
  "Bytes outside the replaced text are left untouched.\n",
  2,
  2,
  false,
  cmd_edit,
};
