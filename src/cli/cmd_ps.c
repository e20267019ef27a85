/* sbx ps: the sandboxes sbx made. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

static json_t *
list_json (const sbx_sandbox_info_t *v, size_t n)
{
  json_t *a = json_array ();
  for (size_t i = 0; a && i < n; i++)
    {
      json_t *item = json_pack ("{s:o,s:o,s:o,s:o,s:b}", "id", cli_json_str (v[i].id), "image",
                                cli_json_str (v[i].image), "status", cli_json_str (v[i].status),
                                "created", cli_json_str (v[i].created), "named", v[i].named);
      if (item == NULL || json_array_append_new (a, item) < 0)
        {
          json_decref (a);
          return NULL;
        }
    }
  return a;
}

static int
width (const sbx_sandbox_info_t *v, size_t n, size_t field, const char *title)
{
  size_t w = strlen (title);
  for (size_t i = 0; i < n; i++)
    {
      const char *s = *(char *const *) ((const char *) &v[i] + field);
      if (s && strlen (s) > w)
        w = strlen (s);
    }
  return (int) w;
}

static int
cmd_ps (const struct cli_command *cmd, int argc, char **argv)
{
  bool quiet = false;
  const struct cli_opt opts[] = {
    { "quiet", 'q', CLI_FLAG, &quiet, NULL, "print the ids only" },
    { NULL, 0, 0, NULL, NULL, NULL },
  };
  struct cli_args a;
  int status = cli_parse (cmd, opts, argc, argv, &a);
  if (status != CLI_CONTINUE)
    return status;
  sbx_sandbox_info_t *v = NULL;
  size_t n = 0;
  sbx_error_t *err = NULL;
  if (sbx_sandbox_list (&v, &n, &err) < 0)
    return cli_error (err);

  if (cli_json)
    status = cli_json_print (list_json (v, n));
  else if (quiet)
    {
      for (size_t i = 0; i < n; i++)
        printf ("%s\n", v[i].id);
      status = 0;
    }
  else
    {
      int wi = width (v, n, offsetof (sbx_sandbox_info_t, id), "ID");
      int wm = width (v, n, offsetof (sbx_sandbox_info_t, image), "IMAGE");
      int ws = width (v, n, offsetof (sbx_sandbox_info_t, status), "STATUS");
      printf ("%-*s  %-*s  %-*s  %s\n", wi, "ID", wm, "IMAGE", ws, "STATUS", "CREATED");
      for (size_t i = 0; i < n; i++)
        printf ("%-*s  %-*s  %-*s  %s\n", wi, v[i].id, wm, v[i].image, ws, v[i].status,
                v[i].created);
      status = 0;
    }
  sbx_sandbox_info_list_free (v, n);
  return status;
}

const struct cli_command cli_cmd_ps = {
  "ps",
  "",
  "List the sandboxes sbx made",
  "Columns: the id, the image, the container's status and when it was created (UTC).\n",
  0,
  0,
  false,
  cmd_ps,
};
