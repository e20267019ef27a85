/* sbx mcp: the sandbox's tools over the Model Context Protocol, on stdio
 * (libsbx-mcp, include/sbx_mcp.h). This file only reads the options. */
#include "cli.h"

#include "sbx_mcp.h"

#include <string.h>

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
  sbx_mcp_perms_t *perms = NULL;
  sbx_options_t *sbopts = NULL;
  sbx_error_t *err = NULL;
  int status = cli_parse (cmd, opts, argc, argv, &a);
  /* stdout carries protocol messages only: every complaint goes to stderr. */
  cli_json = false;
  if (status != CLI_CONTINUE)
    goto out;
  if (sbx_mcp_perms_load (permissions, &perms, &err) < 0)
    {
      status = cli_error (err);
      goto out;
    }
  if ((status = cli_sandbox_options (&co, &sbopts)) != 0)
    goto out;

  sbx_mcp_stdio_opts_t so = {
    .sandbox = sbopts,
    .perms = perms,
    .workdir = co.workdir,
    .keep = co.name != NULL,
    .network = co.network != NULL && strcmp (co.network, "none") != 0,
  };
  status = sbx_mcp_serve_stdio (&so) < 0 ? CLI_EXIT_FAILURE : 0;

out:
  sbx_options_free (sbopts);
  sbx_mcp_perms_free (perms);
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
