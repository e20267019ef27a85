/* sbx mcp: the agent's tools over the Model Context Protocol, on stdio
 * (src/mcp/). This file only reads the options and the permissions. */
#include "cli.h"

#include "../mcp/mcp.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RULES_FILE (1u << 20)

/* A preset by name, else a rules file by path: 0, or the exit code once the
 * error is printed. */
static int
load_permissions (const char *arg, struct mcp_perms **out)
{
  char *error = NULL;
  for (size_t i = 0; mcp_preset_names[i]; i++)
    if (strcmp (arg, mcp_preset_names[i]) == 0)
      {
        if (mcp_perms_preset (arg, out, &error) == 0)
          return 0;
        int r = cli_fail (SBX_E_INVALID, "%s", error ? error : "out of memory");
        free (error);
        return r;
      }

  FILE *f = fopen (arg, "r");
  if (f == NULL)
    {
      if (errno == ENOENT)
        return cli_fail (SBX_E_INVALID,
                         "--permissions %s: not a preset (default, permissive, "
                         "readonly, strict) and no such rules file",
                         arg);
      return cli_fail (SBX_E_IO, "--permissions %s: cannot open the rules file: %s", arg,
                       strerror (errno));
    }
  char *text = malloc (MAX_RULES_FILE + 1);
  size_t len = text ? fread (text, 1, MAX_RULES_FILE + 1, f) : 0;
  bool failed = text == NULL || ferror (f);
  fclose (f);
  if (failed || len > MAX_RULES_FILE)
    {
      free (text);
      return cli_fail (SBX_E_IO, "--permissions %s: %s", arg,
                       len > MAX_RULES_FILE ? "the rules file is larger than 1 MiB"
                                            : "cannot read the rules file");
    }
  char *origin = NULL;
  int r = 0;
  if (asprintf (&origin, "the rules file %s", arg) < 0)
    origin = NULL;
  if (origin == NULL || mcp_perms_parse (text, len, origin, out, &error) < 0)
    {
      r = cli_fail (SBX_E_INVALID, "%s", error ? error : "out of memory");
      free (error);
    }
  free (origin);
  free (text);
  return r;
}

static int
cmd_mcp (const struct cli_command *cmd, int argc, char **argv)
{
  struct cli_create_opts co;
  const char *permissions = "default";
  cli_create_opts_init (&co);
  const struct cli_opt opts[] = {
    CLI_CREATE_OPTIONS (&co),
    { "permissions", 'p', CLI_STRING, &permissions, "PRESET|FILE",
      "default, permissive, readonly, strict, or a JSON rules file (default: default)" },
    { NULL, 0, 0, NULL, NULL, NULL },
  };
  struct cli_args a;
  struct mcp_perms *perms = NULL;
  sbx_options_t *sbopts = NULL;
  int status = cli_parse (cmd, opts, argc, argv, &a);
  /* stdout carries protocol messages only: every complaint goes to stderr. */
  cli_json = false;
  if (status != CLI_CONTINUE || (status = load_permissions (permissions, &perms)) != 0
      || (status = cli_sandbox_options (&co, &sbopts)) != 0)
    goto out;

  struct mcp_server_opts so = {
    .sandbox = sbopts,
    .perms = perms,
    .workdir = co.workdir,
    .named = co.name != NULL,
    .network = co.network != NULL && strcmp (co.network, "none") != 0,
  };
  status = mcp_serve (&so) < 0 ? CLI_EXIT_FAILURE : 0;

out:
  sbx_options_free (sbopts);
  mcp_perms_free (perms);
  cli_create_opts_clear (&co);
  return status;
}

const struct cli_command cli_cmd_mcp = {
  "mcp",
  "",
  "Serve the sandbox's tools to an AI agent over MCP (stdio)",
  "Speaks the Model Context Protocol on stdin/stdout (logs go to stderr) and offers the tools\n"
  "ls, read_file, write_file, edit_file, glob, grep, execute, run_in_background, read_output,\n"
  "kill_shell, kill_all and list_shells. The sandbox is made on the first tool call that needs\n"
  "it and removed when the client closes stdin or on SIGTERM, SIGINT or SIGHUP; with --name it\n"
  "is kept (stopped) and used again next time.\n"
  "\n"
  "Permissions are enforced by the server; a denied tool is not listed:\n"
  "  default     everything but the secret files (.env, *.pem, *.key, .ssh/, ...)\n"
  "  permissive  everything\n"
  "  readonly    ls, read_file, glob, grep (no secrets); no writes and no commands\n"
  "  strict      reads inside the work dir only (no secrets), marked to be confirmed\n"
  "  FILE        a JSON rules file (see the README)\n",
  0,
  0,
  false,
  cmd_mcp,
};
