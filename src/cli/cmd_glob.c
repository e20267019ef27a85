/* sbx glob: files matching a pattern. */
#include "cli.h"

#include <stdio.h>

static int
cmd_glob (const struct cli_command *cmd, int argc, char **argv)
{
  const char *path = NULL;
  const struct cli_opt opts[] = {
    { "path", 'p', CLI_STRING, &path, "DIR", "search under DIR (default: the workdir)" },
    { NULL, 0, 0, NULL, NULL, NULL },
  };
  struct cli_args a;
  sbx_sandbox_t *sb = NULL;
  int status = cli_parse_and_open (cmd, opts, argc, argv, &a, &sb);
  if (status != CLI_CONTINUE)
    return status;
  sbx_error_t *err = NULL;
  sbx_file_list_t list = { 0 };
  if (sbx_glob (sb, a.operand[1], path, NULL, &list, &err) < 0)
    status = cli_error (err);
  else
    {
      if (cli_json)
        status = cli_json_print (cli_json_file_list (&list));
      else
        {
          for (size_t i = 0; i < list.count; i++)
            {
              cli_put_visible (stdout, list.items[i].path);
              putchar ('\n');
            }
          status = 0;
        }
      if (list.truncated)
        cli_note ("more files match; only the first %zu are shown", list.count);
    }
  sbx_file_list_free (&list);
  sbx_sandbox_free (sb);
  return status;
}

const struct cli_command cli_cmd_glob = {
  "glob",
  "ID PATTERN",
  "List the files matching a glob pattern",
  "`*`, `?` and `[...]` stay within a path segment, `**` crosses segments and `{a,b}`\n"
  "expands. Paths are printed sorted, one per line.\n",
  2,
  2,
  false,
  cmd_glob,
};
