/* sbx exec: runs a shell command in a sandbox. Also the core of `sbx run`. */
#include "cli.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Printing the output as it arrives, within what the library keeps. */
struct stream
{
  size_t cap, printed;
  bool separate;
  int write_errno; /* set when stdout or stderr failed: the command is cancelled */
};

static int
on_output (enum sbx_stream stream, const char *data, size_t len, void *userdata)
{
  struct stream *st = userdata;
  /* The library keeps the first CAP bytes of both streams together, in the
   * order they arrive here: print exactly those. */
  if (st->printed >= st->cap)
    return 0;
  if (len > st->cap - st->printed)
    len = st->cap - st->printed;
  st->printed += len;
  int fd = st->separate && stream == SBX_STDERR ? STDERR_FILENO : STDOUT_FILENO;
  if (sbx_write_all (fd, data, len) < 0)
    {
      /* Nobody reads the output any more: stop the command, as SIGPIPE would. */
      st->write_errno = errno;
      return 1;
    }
  return 0;
}

static int
print_json (const sbx_exec_result_t *res, bool separate)
{
  json_t *doc = json_pack ("{s:o,s:i,s:b,s:b,s:b}", "output",
                           cli_json_string (res->output ? res->output : "", res->output_len),
                           "exit_code", res->exit_code, "truncated", res->truncated, "timed_out",
                           res->timed_out, "oom_killed", res->oom_killed);
  if (doc && separate
      && (json_object_set_new (
              doc, "stdout",
              cli_json_string (res->stdout_data ? res->stdout_data : "", res->stdout_len))
              < 0
          || json_object_set_new (
                 doc, "stderr",
                 cli_json_string (res->stderr_data ? res->stderr_data : "", res->stderr_len))
                 < 0))
    {
      json_decref (doc);
      doc = NULL;
    }
  return cli_json_print (doc);
}

int
cli_exec_report (sbx_sandbox_t *sb, const char *command, const struct cli_exec_opts *eo,
                 sbx_error_t **err)
{
  sbx_exec_opts_t o;
  sbx_exec_opts_init (&o);
  o.cwd = eo->workdir;
  o.env = eo->env.n ? eo->env.v : NULL;
  o.timeout = eo->timeout;
  o.max_output = eo->max_output > 0 ? (size_t) eo->max_output : SBX_DEFAULT_MAX_OUTPUT;
  o.separate_streams = !eo->combined;
  o.stdin_fd = eo->stdin ? STDIN_FILENO : -1;

  /* With --json, the document at the end holds the output: no streaming. */
  struct stream st = { .cap = o.max_output, .separate = !eo->combined };
  if (!cli_json)
    {
      o.on_output = on_output;
      o.userdata = &st;
    }

  sbx_exec_result_t res;
  if (sbx_exec (sb, command, &o, &res, err) < 0)
    return -1;

  int status = res.exit_code;
  if (cli_json)
    {
      int r = print_json (&res, !eo->combined);
      status = r ? r : status;
    }
  else if (st.write_errno)
    {
      /* A closed pipe ends quietly with SIGPIPE's status; other write errors
       * are sbx's failures. */
      if (st.write_errno == EPIPE)
        status = 128 + SIGPIPE;
      else
        status = cli_fail (SBX_E_IO, "cannot write the output: %s", strerror (st.write_errno));
    }
  else
    {
      if (res.timed_out)
        cli_note ("command timed out after %g s; its process tree was killed", eo->timeout);
      if (res.truncated)
        cli_note ("output truncated at %zu bytes (the rest was discarded)", o.max_output);
      if (res.oom_killed)
        cli_note ("the command was killed: out of memory (memory limit of the sandbox)");
    }
  sbx_exec_result_free (&res);
  return status;
}

static int
cmd_exec (const struct cli_command *cmd, int argc, char **argv)
{
  struct cli_exec_opts eo;
  cli_exec_opts_init (&eo);
  const struct cli_opt opts[] = {
    CLI_EXEC_OPTIONS (&eo),
    { "workdir", 'w', CLI_STRING, &eo.workdir, "DIR", "run in DIR (default: the sandbox's)" },
    { "env", 'e', CLI_LIST, &eo.env, "KEY=VALUE", "environment variable; repeatable" },
    { NULL, 0, 0, NULL, NULL, NULL },
  };
  struct cli_args a;
  int status = cli_parse (cmd, opts, argc, argv, &a);
  if (status != CLI_CONTINUE)
    goto out;

  char *command = cli_join_words (a.rest, a.nrest);
  if (command == NULL)
    {
      status = cli_fail (SBX_E_NOMEM, "out of memory");
      goto out;
    }
  sbx_sandbox_t *sb = NULL;
  sbx_error_t *err = NULL;
  if (sbx_sandbox_open (a.operand[0], &sb, &err) < 0
      || (status = cli_exec_report (sb, command, &eo, &err)) < 0)
    status = cli_error (err);
  sbx_sandbox_free (sb);
  free (command);
out:
  cli_strv_free (&eo.env);
  return status;
}

const struct cli_command cli_cmd_exec = {
  "exec",
  "ID [--] COMMAND...",
  "Run a shell command in a sandbox",
  "The words of COMMAND are joined by spaces into one `sh -c` command line. Its output is\n"
  "printed as it arrives, up to --max-output bytes; sbx exits with its exit code (124 when\n"
  "--timeout killed it). With --json, a document at the end holds the output instead.\n",
  1,
  1,
  true,
  cmd_exec,
};
