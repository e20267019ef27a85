/* sbx ls: a directory's entries, directories first. */
#include "cli.h"

#include <stdio.h>

static int
cmd_ls (const struct cli_command *cmd, int argc, char **argv)
{
  struct cli_args a;
  sbx_sandbox_t *sb = NULL;
  int status = cli_parse_and_open (cmd, NULL, argc, argv, &a, &sb);
  if (status != CLI_CONTINUE)
    return status;
  sbx_error_t *err = NULL;
  sbx_file_list_t list = { 0 };
  if (sbx_ls (sb, a.noperands > 1 ? a.operand[1] : NULL, NULL, &list, &err) < 0)
    status = cli_error (err);
  else
    {
      if (cli_json)
        status = cli_json_print (cli_json_file_list (&list));
      else
        {
          for (size_t i = 0; i < list.count; i++)
            {
              cli_put_visible (stdout, list.items[i].name);
              if (list.items[i].is_dir)
                fputs ("/\n", stdout);
              else
                printf (" (%llu bytes)\n", (unsigned long long) list.items[i].size);
            }
          status = 0;
        }
      if (list.truncated)
        cli_note ("more entries exist; only the first %zu are shown", list.count);
    }
  sbx_file_list_free (&list);
  sbx_sandbox_free (sb);
  return status;
}

const struct cli_command cli_cmd_ls = {
  "ls",
  "ID [PATH]",
  "List a directory (default: the workdir)",
  "Directories come first, as `name/`; files as `name (N bytes)`. Control characters in\n"
  "names are shown escaped (\\n, \\x1b); --json keeps them as they are.\n",
  1,
  2,
  false,
  cmd_ls,
};
