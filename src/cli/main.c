/* sbx: the command-line tool, a thin layer over libsbx. */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

static const struct cli_command *const commands[] = {
  &cli_cmd_create, &cli_cmd_exec,    &cli_cmd_run,     &cli_cmd_write, &cli_cmd_read,
  &cli_cmd_cat,    &cli_cmd_edit,    &cli_cmd_ls,      &cli_cmd_glob,  &cli_cmd_grep,
  &cli_cmd_ps,     &cli_cmd_kill,    &cli_cmd_stop,    &cli_cmd_rm,    &cli_cmd_bg,
  &cli_cmd_image,  &cli_cmd_runtime, &cli_cmd_session, &cli_cmd_mcp,   NULL,
};

static const struct cli_command *
find_command (const char *name)
{
  for (const struct cli_command *const *c = commands; *c; c++)
    if (strcmp ((*c)->name, name) == 0)
      return *c;
  return NULL;
}

static void
usage (void)
{
  printf ("Usage: sbx [OPTIONS] COMMAND [ARG...]\n\n"
          "Docker sandboxes for AI agents.\n\n"
          "Commands:\n");
  for (const struct cli_command *const *c = commands; *c; c++)
    printf ("  %-9s%s\n", (*c)->name, (*c)->summary);
  printf ("  %-9s%s\n", "help", "Show the help of a command");
  printf ("\nOptions:\n"
          "  -h, --help     show this help and exit\n"
          "  -V, --version  print the version and exit\n\n"
          "Every command takes --json (one JSON document on stdout) and --help.\n"
          "sbx's own failures exit with %d; exec and run exit with the command's code.\n"
          "Run 'sbx COMMAND --help' for a command's options.\n",
          CLI_EXIT_FAILURE);
}

static int
main_usage_error (const char *what, const char *word)
{
  fprintf (stderr, "sbx: %s%s%s%s\nTry 'sbx --help' for more information.\n", what,
           word ? " '" : "", word ? word : "", word ? "'" : "");
  return CLI_EXIT_FAILURE;
}

int
main (int argc, char **argv)
{
  static const struct option longopts[] = {
    { "help", no_argument, NULL, 'h' },
    { "version", no_argument, NULL, 'V' },
    { NULL, 0, NULL, 0 },
  };
  int c;

  opterr = 0;
  while ((c = getopt_long (argc, argv, "+hV", longopts, NULL)) != -1)
    switch (c)
      {
      case 'h':
        usage ();
        return 0;
      case 'V':
        printf ("sbx %s\n", SBX_VERSION);
        return 0;
      default:
        return main_usage_error ("unknown option", argv[optind - 1]);
      }
  if (optind >= argc)
    return main_usage_error ("missing COMMAND", NULL);

  char **args = argv + optind;
  int nargs = argc - optind;
  char *help_argv[4] = { NULL };
  if (strcmp (args[0], "help") == 0)
    {
      if (nargs < 2)
        {
          usage ();
          return 0;
        }
      /* `sbx help bg start` is `sbx bg start --help`. */
      int n = 0;
      for (int i = 1; i < nargs && i < 3; i++)
        help_argv[n++] = args[i];
      help_argv[n++] = (char *) "--help";
      args = help_argv;
      nargs = n;
    }

  const struct cli_command *cmd = find_command (args[0]);
  if (cmd == NULL)
    return main_usage_error ("unknown command", args[0]);
  int status = cmd->run (cmd, nargs, args);

  /* Output lost to a full disk or a closed pipe must not pass for success. */
  if (fflush (stdout) == EOF || ferror (stdout))
    {
      fprintf (stderr, "sbx: cannot write to stdout: %s\n", strerror (errno));
      return status ? status : CLI_EXIT_FAILURE;
    }
  return status;
}
