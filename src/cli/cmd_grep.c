/* sbx grep: lines matching a regular expression. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

static json_t *
matches_json (const sbx_grep_result_t *res)
{
  json_t *a = json_array ();
  for (size_t i = 0; a && i < res->count; i++)
    {
      const sbx_grep_match_t *m = &res->items[i];
      json_t *item = json_pack ("{s:o,s:I,s:o}", "path", cli_json_str (m->path), "line_number",
                                (json_int_t) m->line_number, "line", cli_json_str (m->line));
      if (item == NULL || json_array_append_new (a, item) < 0)
        {
          json_decref (a);
          return NULL;
        }
    }
  return a ? json_pack ("{s:o, s:b}", "matches", a, "truncated", res->truncated) : NULL;
}

static int
cmd_grep (const struct cli_command *cmd, int argc, char **argv)
{
  sbx_grep_opts_t g = { 0 };
  int64_t max = 0;
  const struct cli_opt opts[] = {
    { "path", 'p', CLI_STRING, &g.path, "PATH", "file or directory (default: the workdir)" },
    { "glob", 'g', CLI_STRING, &g.glob, "GLOB", "only files whose name matches GLOB" },
    { "hidden", 0, CLI_FLAG, &g.include_hidden, NULL, "also search hidden files" },
    { "ignore-case", 'i', CLI_FLAG, &g.ignore_case, NULL, "match without regard to case" },
    { "max-matches", 0, CLI_COUNT, &max, "N", "stop after N matches (default: 10000)" },
    { NULL, 0, 0, NULL, NULL, NULL },
  };
  struct cli_args a;
  sbx_sandbox_t *sb = NULL;
  int status = cli_parse_and_open (cmd, opts, argc, argv, &a, &sb);
  if (status != CLI_CONTINUE)
    return status;
  g.max_matches = (size_t) max;

  sbx_error_t *err = NULL;
  sbx_grep_result_t res = { 0 };
  if (sbx_grep (sb, a.operand[1], &g, &res, &err) < 0)
    status = cli_error (err);
  else
    {
      if (cli_json)
        status = cli_json_print (matches_json (&res));
      else
        {
          for (size_t i = 0; i < res.count; i++)
            {
              cli_put_visible (stdout, res.items[i].path);
              printf (":%llu:", (unsigned long long) res.items[i].line_number);
              cli_put_visible (stdout, res.items[i].line);
              putchar ('\n');
            }
          status = 0;
        }
      if (res.truncated)
        cli_note ("more lines match; only the first %zu are shown", res.count);
    }
  sbx_grep_result_free (&res);
  sbx_sandbox_free (sb);
  return status;
}

const struct cli_command cli_cmd_grep = {
  "grep",
  "ID PATTERN",
  "Search files for a regular expression (PCRE2)",
  "Matches are printed as `path:line:text`. A --glob with a `/` matches relative paths.\n",
  2,
  2,
  false,
  cmd_grep,
};
