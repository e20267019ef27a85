/* sbx bg: background processes in a sandbox. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static json_t *
info_json (const sbx_bg_info_t *i)
{
  json_t *o = json_pack ("{s:o,s:o,s:I,s:b,s:I}", "id", cli_json_str (i->id), "command",
                         cli_json_str (i->command), "pid", (json_int_t) i->pid, "running",
                         i->running, "dropped", (json_int_t) i->dropped);
  json_t *code = i->running ? json_null () : json_integer (i->exit_code);
  if (o && json_object_set_new (o, "exit_code", code) < 0)
    {
      json_decref (o);
      return NULL;
    }
  return o;
}

static int
cmd_start (const struct cli_command *cmd, int argc, char **argv)
{
  const char *workdir = NULL;
  struct cli_strv env = { 0 };
  const struct cli_opt opts[] = {
    { "workdir", 'w', CLI_STRING, &workdir, "DIR", "run in DIR (default: the sandbox's)" },
    { "env", 'e', CLI_LIST, &env, "KEY=VALUE", "environment variable; repeatable" },
    { NULL, 0, 0, NULL, NULL, NULL },
  };
  struct cli_args a;
  sbx_sandbox_t *sb = NULL;
  char *command = NULL, *id = NULL;
  int status = cli_parse_and_open (cmd, opts, argc, argv, &a, &sb);
  if (status != CLI_CONTINUE)
    goto out;
  if ((command = cli_join_words (a.rest, a.nrest)) == NULL)
    {
      status = cli_fail (SBX_E_NOMEM, "out of memory");
      goto out;
    }
  sbx_exec_opts_t o;
  sbx_exec_opts_init (&o);
  o.cwd = workdir;
  o.env = env.n ? env.v : NULL;
  sbx_error_t *err = NULL;
  if (sbx_bg_start (sb, command, &o, &id, &err) < 0)
    status = cli_error (err);
  else if (cli_json)
    status = cli_json_print (json_pack ("{s:s}", "id", id));
  else
    {
      printf ("%s\n", id);
      status = 0;
    }
out:
  free (id);
  free (command);
  cli_strv_free (&env);
  sbx_sandbox_free (sb);
  return status;
}

static int
cmd_read (const struct cli_command *cmd, int argc, char **argv)
{
  struct cli_args a;
  sbx_sandbox_t *sb = NULL;
  int status = cli_parse_and_open (cmd, NULL, argc, argv, &a, &sb);
  if (status != CLI_CONTINUE)
    return status;
  char *output = NULL;
  size_t len = 0;
  sbx_bg_info_t info = { 0 };
  sbx_error_t *err = NULL;
  if (sbx_bg_read (sb, a.operand[1], &output, &len, &info, &err) < 0)
    status = cli_error (err);
  else if (cli_json)
    {
      json_t *doc = info_json (&info);
      if (doc && json_object_set_new (doc, "output", cli_json_string (output, len)) < 0)
        {
          json_decref (doc);
          doc = NULL;
        }
      status = cli_json_print (doc);
    }
  else
    {
      fwrite (output, 1, len, stdout);
      /* The state goes to stderr, so that stdout is the output alone. */
      if (info.dropped)
        cli_note ("%llu bytes of output were lost (the buffer was full)",
                  (unsigned long long) info.dropped);
      if (info.running)
        cli_note ("process %s (pid %lld) is running", info.id, (long long) info.pid);
      else
        cli_note ("process %s exited with code %d", info.id, info.exit_code);
      status = 0;
    }
  free (output);
  sbx_bg_info_clear (&info);
  sbx_sandbox_free (sb);
  return status;
}

static int
cmd_kill (const struct cli_command *cmd, int argc, char **argv)
{
  struct cli_args a;
  sbx_sandbox_t *sb = NULL;
  int status = cli_parse_and_open (cmd, NULL, argc, argv, &a, &sb);
  if (status != CLI_CONTINUE)
    return status;
  sbx_error_t *err = NULL;
  if (sbx_bg_kill (sb, a.operand[1], &err) < 0)
    status = cli_error (err);
  else
    status = cli_json ? cli_json_print (json_pack ("{s:o}", "id", cli_json_str (a.operand[1]))) : 0;
  sbx_sandbox_free (sb);
  return status;
}

static int
cmd_ls (const struct cli_command *cmd, int argc, char **argv)
{
  struct cli_args a;
  sbx_sandbox_t *sb = NULL;
  int status = cli_parse_and_open (cmd, NULL, argc, argv, &a, &sb);
  if (status != CLI_CONTINUE)
    return status;
  sbx_bg_info_t *v = NULL;
  size_t n = 0;
  sbx_error_t *err = NULL;
  if (sbx_bg_list (sb, &v, &n, &err) < 0)
    status = cli_error (err);
  else if (cli_json)
    {
      json_t *list = json_array ();
      for (size_t i = 0; list && i < n; i++)
        if (json_array_append_new (list, info_json (&v[i])) < 0)
          {
            json_decref (list);
            list = NULL;
          }
      status = cli_json_print (list);
    }
  else
    {
      printf ("%-4s  %-8s  %-12s  %s\n", "ID", "PID", "STATUS", "COMMAND");
      for (size_t i = 0; i < n; i++)
        {
          char state[24] = "running";
          if (!v[i].running)
            snprintf (state, sizeof state, "exited (%d)", v[i].exit_code);
          printf ("%-4s  %-8lld  %-12s  ", v[i].id, (long long) v[i].pid, state);
          cli_put_visible (stdout, v[i].command);
          putchar ('\n');
        }
      status = 0;
    }
  sbx_bg_info_list_free (v, n);
  sbx_sandbox_free (sb);
  return status;
}

static const struct cli_command start = {
  "bg start",
  "ID [--] COMMAND...",
  "Start a command in the background; print its id",
  "The words of COMMAND are joined by spaces into one `sh -c` command line. Its output is\n"
  "kept in a buffer that `sbx bg read` drains.\n",
  1,
  1,
  true,
  cmd_start,
};

static const struct cli_command read_ = {
  "bg read",
  "ID BGID",
  "Print a background process's new output and its state",
  "The output since the last read goes to stdout, the state (running, or the exit code)\n"
  "to stderr.\n",
  2,
  2,
  false,
  cmd_read,
};

static const struct cli_command kill_ = {
  "bg kill", "ID BGID", "Kill a background process's tree (TERM, then KILL)", NULL, 2, 2,
  false,     cmd_kill,
};

static const struct cli_command ls = {
  "bg ls", "ID", "List the background processes of a sandbox", NULL, 1, 1, false, cmd_ls,
};

static int
cmd_bg (const struct cli_command *cmd, int argc, char **argv)
{
  static const struct cli_command *const subs[] = { &start, &read_, &kill_, &ls, NULL };
  return cli_dispatch (cmd, subs, argc, argv);
}

const struct cli_command cli_cmd_bg = {
  "bg", "COMMAND", "Manage background processes in a sandbox", NULL, 0, 0, false, cmd_bg,
};
