/* sbx session: sandboxes for the users of an application, through a
 * session manager whose state lives on the host, so that each command
 * (create, ls, end, gc) sees the sessions the others made. */
#include "cli.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* The options every session command takes. */
struct manager_opts
{
  const char *name; /* the manager's */
  const char *workspace_root;
};

#define MANAGER_OPTIONS(mo)                                                                        \
  {                                                                                                \
    "manager", 0, CLI_STRING, &(mo)->name, "NAME", "the session manager (default: default)"        \
  }

static int
open_manager (const struct manager_opts *mo, const sbx_options_t *sandbox, int64_t max_sessions,
              int64_t max_per_user, sbx_manager_t **m)
{
  sbx_manager_config_t c = {
    .name = mo->name,
    .sandbox = sandbox,
    .workspace_root = mo->workspace_root,
    .max_sessions = max_sessions > 0 ? (size_t) max_sessions : 0,
    .max_per_user = max_per_user > 0 ? (size_t) max_per_user : 0,
  };
  sbx_error_t *err = NULL;
  return sbx_manager_new (&c, m, &err) < 0 ? cli_error (err) : 0;
}

static int
cmd_create (const struct cli_command *cmd, int argc, char **argv)
{
  struct cli_create_opts co;
  struct manager_opts mo = { 0 };
  const char *user = NULL;
  int64_t max_sessions = -1, max_per_user = -1;
  cli_create_opts_init (&co);
  const struct cli_opt opts[] = {
    CLI_CREATE_OPTIONS (&co),
    MANAGER_OPTIONS (&mo),
    { "user", 'u', CLI_STRING, &user, "USER", "the session's user (required)" },
    { "workspace-root", 0, CLI_STRING, &mo.workspace_root, "DIR",
      "mount DIR/USER/workspace at the work dir (DIR must exist)" },
    { "max-sessions", 0, CLI_COUNT, &max_sessions, "N", "refuse past N sessions (default: none)" },
    { "max-per-user", 0, CLI_COUNT, &max_per_user, "N",
      "refuse past N sessions of one user (default: none)" },
    { NULL, 0, 0, NULL, NULL, NULL },
  };
  struct cli_args a;
  sbx_options_t *o = NULL;
  sbx_manager_t *m = NULL;
  sbx_sandbox_t *sb = NULL;
  char *id = NULL;
  sbx_error_t *err = NULL;
  int status = cli_parse (cmd, opts, argc, argv, &a);
  if (status != CLI_CONTINUE)
    goto out;
  if (user == NULL)
    {
      status = cli_usage_error (cmd, "--user is required");
      goto out;
    }
  if (co.name)
    {
      status = cli_usage_error (cmd, "--name is not for sessions: each gets a sandbox of its own");
      goto out;
    }
  if ((status = cli_sandbox_options (&co, &o)) != 0
      || (status = open_manager (&mo, o, max_sessions, max_per_user, &m)) != 0)
    goto out;
  if (sbx_manager_create_session (m, user, &id, &err) < 0
      || sbx_manager_get_session (m, id, &sb, &err) < 0)
    {
      status = cli_error (err);
      goto out;
    }
  if (cli_json)
    status = cli_json_print (json_pack ("{s:o, s:o, s:o}", "session", cli_json_str (id), "user",
                                        cli_json_str (user), "sandbox",
                                        cli_json_str (sbx_sandbox_id (sb))));
  else
    {
      /* Every sandbox command works on the sandbox's id: it goes to stdout. */
      cli_note ("session %s of user %s", id, user);
      printf ("%s\n", sbx_sandbox_id (sb));
    }
out:
  free (id);
  sbx_sandbox_free (sb);
  sbx_manager_free (m);
  sbx_options_free (o);
  cli_create_opts_clear (&co);
  return status;
}

/* A session by its id or by its sandbox's; *ID points into LIST. */
static int
find_session (sbx_manager_t *m, const char *which, char **id)
{
  sbx_session_info_t *v = NULL;
  size_t n = 0;
  sbx_error_t *err = NULL;
  *id = NULL;
  if (sbx_manager_list (m, &v, &n, &err) < 0)
    return cli_error (err);
  for (size_t i = 0; i < n && *id == NULL; i++)
    if (strcmp (v[i].id, which) == 0 || (v[i].sandbox[0] && strcmp (v[i].sandbox, which) == 0))
      *id = strdup (v[i].id);
  sbx_session_info_list_free (v, n);
  if (*id == NULL)
    return cli_fail (SBX_E_NOT_FOUND, "no session %s (see `sbx session ls`)", which);
  return 0;
}

/* Whole seconds since LAST (0 when the clocks disagree). */
static long long
idle_seconds (double now, double last)
{
  return now > last ? (long long) (now - last) : 0;
}

static int
cmd_ls (const struct cli_command *cmd, int argc, char **argv)
{
  struct manager_opts mo = { 0 };
  const struct cli_opt opts[] = {
    MANAGER_OPTIONS (&mo),
    { NULL, 0, 0, NULL, NULL, NULL },
  };
  struct cli_args a;
  sbx_manager_t *m = NULL;
  int status = cli_parse (cmd, opts, argc, argv, &a);
  if (status != CLI_CONTINUE || (status = open_manager (&mo, NULL, 0, 0, &m)) != 0)
    return status;
  sbx_session_info_t *v = NULL;
  size_t n = 0;
  sbx_error_t *err = NULL;
  double now = sbx_unix_now ();
  if (sbx_manager_list (m, &v, &n, &err) < 0)
    status = cli_error (err);
  else if (cli_json)
    {
      json_t *list = json_array ();
      for (size_t i = 0; list && i < n; i++)
        if (json_array_append_new (
                list,
                json_pack ("{s:o, s:o, s:o, s:f, s:I, s:o}", "session", cli_json_str (v[i].id),
                           "user", cli_json_str (v[i].user), "sandbox", cli_json_str (v[i].sandbox),
                           "created", v[i].created, "idle_seconds",
                           (json_int_t) idle_seconds (now, v[i].last_activity), "state",
                           cli_json_str (v[i].state)))
            < 0)
          {
            json_decref (list);
            list = NULL;
          }
      status = cli_json_print (list);
    }
  else
    {
      printf ("%-20s  %-16s  %-16s  %8s  %s\n", "SESSION", "USER", "SANDBOX", "IDLE", "STATE");
      for (size_t i = 0; i < n; i++)
        printf ("%-20s  %-16s  %-16s  %7llds  %s\n", v[i].id, v[i].user, v[i].sandbox,
                idle_seconds (now, v[i].last_activity), v[i].state);
    }
  sbx_session_info_list_free (v, n);
  sbx_manager_free (m);
  return status;
}

static int
cmd_end (const struct cli_command *cmd, int argc, char **argv)
{
  struct manager_opts mo = { 0 };
  bool purge = false;
  const struct cli_opt opts[] = {
    MANAGER_OPTIONS (&mo),
    { "purge", 0, CLI_FLAG, &purge, NULL, "remove the user's workspace too" },
    { NULL, 0, 0, NULL, NULL, NULL },
  };
  struct cli_args a;
  sbx_manager_t *m = NULL;
  char *id = NULL;
  sbx_error_t *err = NULL;
  int status = cli_parse (cmd, opts, argc, argv, &a);
  if (status != CLI_CONTINUE || (status = open_manager (&mo, NULL, 0, 0, &m)) != 0
      || (status = find_session (m, a.operand[0], &id)) != 0)
    goto out;
  if (sbx_manager_end_session (m, id, purge, &err) < 0)
    status = cli_error (err);
  else if (cli_json)
    status
        = cli_json_print (json_pack ("{s:o, s:b}", "session", cli_json_str (id), "purged", purge));
  else
    cli_note ("ended session %s%s", id, purge ? "; its user's workspace is removed" : "");
out:
  free (id);
  sbx_manager_free (m);
  return status;
}

static int
cmd_gc (const struct cli_command *cmd, int argc, char **argv)
{
  struct manager_opts mo = { 0 };
  double max_idle = 0;
  const struct cli_opt opts[] = {
    MANAGER_OPTIONS (&mo),
    { "max-idle", 0, CLI_SECONDS, &max_idle, "SECONDS",
      "end sessions idle for longer (default: each session's idle timeout, 3600 unless its "
      "manager said otherwise)" },
    { NULL, 0, 0, NULL, NULL, NULL },
  };
  struct cli_args a;
  sbx_manager_t *m = NULL;
  int status = cli_parse (cmd, opts, argc, argv, &a);
  if (status != CLI_CONTINUE || (status = open_manager (&mo, NULL, 0, 0, &m)) != 0)
    return status;
  size_t reaped = 0;
  sbx_error_t *err = NULL;
  if (sbx_manager_cleanup_idle (m, max_idle, &reaped, &err) < 0)
    status = cli_error (err);
  else if (cli_json)
    status = cli_json_print (json_pack ("{s:I}", "reaped", (json_int_t) reaped));
  else
    cli_note ("ended %zu idle session%s; their workspaces are kept", reaped,
              reaped == 1 ? "" : "s");
  sbx_manager_free (m);
  return status;
}

static const struct cli_command create = {
  "session create",
  "",
  "Start a session for a user; print its sandbox's id",
  "Every sandbox command (exec, write, ...) then works on the sandbox's id. With\n"
  "--workspace-root, the user's folder DIR/USER/workspace is the work dir: it outlives every\n"
  "session, and users never see each other's. The session's state is kept on the host, so\n"
  "`sbx session ls`, `end` and `gc` see it from any process.\n",
  0,
  0,
  false,
  cmd_create,
};

static const struct cli_command ls = {
  "session ls", "",     "List the sessions (user, sandbox, idle time, state)", NULL, 0, 0,
  false,        cmd_ls,
};

static const struct cli_command end = {
  "session end",
  "ID",
  "End a session: remove its sandbox, keep its workspace",
  "ID is the session's id or its sandbox's. With --purge the user's workspace goes too\n"
  "(refused while another session of the user is running).\n",
  1,
  1,
  false,
  cmd_end,
};

static const struct cli_command gc = {
  "session gc",
  "",
  "End the sessions idle for longer than --max-idle",
  "Activity is any operation on a session's sandbox, from any process. For a cron job.\n",
  0,
  0,
  false,
  cmd_gc,
};

static int
cmd_session (const struct cli_command *cmd, int argc, char **argv)
{
  static const struct cli_command *const subs[] = { &create, &ls, &end, &gc, NULL };
  return cli_dispatch (cmd, subs, argc, argv);
}

const struct cli_command cli_cmd_session = {
  "session", "COMMAND",   "Manage sessions: a sandbox per user session", NULL, 0, 0,
  false,     cmd_session,
};
