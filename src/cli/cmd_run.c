/* sbx run: create, exec, remove, in one command. */
#include "cli.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Ctrl-C, TERM or HUP must not leave the sandbox behind. The signals are
 * blocked and a thread waits for them: it cannot use the main thread's handle
 * (handles are not thread-safe), so it removes the sandbox through a handle
 * of its own and exits with 128+N. Until the sandbox exists, it only records
 * the signal and the main thread cleans up once the creation returns. */
static struct
{
  pthread_mutex_t lock;
  char *id;      /* the sandbox, once started */
  bool removing; /* someone removes it already */
  int signo;
} guard = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void
remove_by_id (const char *id)
{
  sbx_sandbox_t *sb = NULL;
  sbx_error_t *err = NULL;
  if (sbx_sandbox_open (id, &sb, &err) < 0 || sbx_sandbox_remove (sb, &err) < 0)
    {
      cli_note ("could not remove sandbox %s: %s", id, sbx_error_message (err));
      sbx_error_free (err);
    }
  sbx_sandbox_free (sb);
}

static void *
signal_thread (void *arg)
{
  const sigset_t *set = arg;
  for (;;)
    {
      int sig;
      if (sigwait (set, &sig) != 0)
        continue;
      pthread_mutex_lock (&guard.lock);
      bool again = guard.signo != 0;
      guard.signo = sig;
      char *id = NULL;
      if (guard.id && !guard.removing)
        {
          id = strdup (guard.id);
          guard.removing = id != NULL;
        }
      bool creating = guard.id == NULL && !guard.removing;
      pthread_mutex_unlock (&guard.lock);
      if (id)
        {
          remove_by_id (id);
          _exit (128 + sig);
        }
      /* A second signal while the sandbox is being made: stop waiting. */
      if (again && creating)
        {
          cli_note ("interrupted while the sandbox was being created; check `sbx ps` for "
                    "a leftover");
          _exit (128 + sig);
        }
    }
  return NULL;
}

static int
start_guard (sigset_t *set)
{
  pthread_t thread;
  sigemptyset (set);
  sigaddset (set, SIGINT);
  sigaddset (set, SIGTERM);
  sigaddset (set, SIGHUP);
  /* A closed stdout must not kill us before the sandbox is gone: the output
   * callback sees EPIPE instead and cancels the command. */
  signal (SIGPIPE, SIG_IGN);
  if (pthread_sigmask (SIG_BLOCK, set, NULL) != 0
      || pthread_create (&thread, NULL, signal_thread, set) != 0)
    return -1;
  pthread_detach (thread);
  return 0;
}

/* Records the started sandbox; false when a signal came during creation. */
static bool
guard_set (const char *id)
{
  pthread_mutex_lock (&guard.lock);
  guard.id = strdup (id);
  bool ok = guard.signo == 0;
  pthread_mutex_unlock (&guard.lock);
  return ok;
}

static bool
guard_interrupted (void)
{
  pthread_mutex_lock (&guard.lock);
  bool interrupted = guard.signo != 0;
  pthread_mutex_unlock (&guard.lock);
  return interrupted;
}

/* Takes the removal over from the thread; false when it does it already. */
static bool
guard_take (void)
{
  pthread_mutex_lock (&guard.lock);
  bool mine = !guard.removing;
  guard.removing = true;
  pthread_mutex_unlock (&guard.lock);
  return mine;
}

static int
cmd_run (const struct cli_command *cmd, int argc, char **argv)
{
  struct cli_create_opts co;
  struct cli_exec_opts eo;
  cli_create_opts_init (&co);
  cli_exec_opts_init (&eo);
  const struct cli_opt opts[] = {
    CLI_CREATE_OPTIONS (&co),
    CLI_EXEC_OPTIONS (&eo),
    { NULL, 0, 0, NULL, NULL, NULL },
  };
  struct cli_args a;
  sbx_sandbox_t *sb = NULL;
  char *command = NULL;
  static sigset_t set;
  int status = cli_parse (cmd, opts, argc, argv, &a);
  if (status != CLI_CONTINUE)
    goto out;
  if ((command = cli_join_words (a.rest, a.nrest)) == NULL)
    {
      status = cli_fail (SBX_E_NOMEM, "out of memory");
      goto out;
    }
  if (start_guard (&set) < 0)
    {
      status = cli_fail (SBX_E_NOMEM, "cannot set up signal handling");
      goto out;
    }
  if ((status = cli_create_sandbox (&co, &sb)) != 0)
    goto out;

  sbx_error_t *err = NULL;
  if (guard_set (sbx_sandbox_id (sb)) && (status = cli_exec_report (sb, command, &eo, &err)) < 0)
    {
      /* A signal makes the thread remove the sandbox under the command: the
       * error that follows is no news. */
      if (guard_interrupted ())
        sbx_error_free (err);
      else
        status = cli_error (err);
    }
  if (guard_take ())
    {
      err = NULL;
      if (sbx_sandbox_remove (sb, &err) < 0)
        {
          int r = cli_error (err);
          status = status ? status : r;
        }
    }
  else
    pause (); /* the signal thread removes the sandbox and exits */

  pthread_mutex_lock (&guard.lock);
  if (guard.signo)
    status = 128 + guard.signo;
  free (guard.id);
  guard.id = NULL;
  pthread_mutex_unlock (&guard.lock);

out:
  sbx_sandbox_free (sb);
  free (command);
  cli_create_opts_clear (&co);
  return status;
}

const struct cli_command cli_cmd_run = {
  "run",
  "[--] COMMAND...",
  "Run a command in a new sandbox, then remove it",
  "Creates a sandbox (as `sbx create`), runs COMMAND in it (as `sbx exec`) and removes it,\n"
  "also when the command fails or sbx is interrupted (then sbx exits with 128+signal).\n"
  "sbx exits with the command's exit code.\n",
  0,
  0,
  true,
  cmd_run,
};
