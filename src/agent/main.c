/* sbx-agent, PID 1 of a sandbox container: serves the host's connections,
 * starts and supervises the commands the host asks for, reaps every other
 * process, and takes the container down quickly on SIGTERM from the host.
 *
 *   /.sbx/agent --workdir DIR [--max-file-size BYTES]
 */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/wait.h>

#define SHUTDOWN_GRACE_MS 1000
/* The agent's saved set-user-ID (see drop_saved_uid). */
#define SAVED_UID 65534

int64_t agent_max_file_size;

static watch_t signal_watch;
/* A child exited since the last reaping. */
static bool children_exited;

/* SIGTERM from `docker stop`: everything else gets TERM, a second to go,
 * then KILL. */
__attribute__ ((noreturn)) static void
shut_down (int sfd)
{
  if (kill (-1, SIGTERM) < 0 && errno != ESRCH)
    agent_log ("cannot signal processes: %s", strerror (errno));
  int64_t deadline = now_ms () + SHUTDOWN_GRACE_MS;
  for (int64_t left; (left = deadline - now_ms ()) > 0;)
    {
      pid_t pid;
      while ((pid = waitpid (-1, NULL, WNOHANG)) > 0)
        ;
      if (pid < 0 && errno == ECHILD)
        break;
      struct pollfd p = { .fd = sfd, .events = POLLIN };
      if (poll (&p, 1, (int) (left < 20 ? left : 20)) > 0)
        {
          struct signalfd_siginfo si;
          if (read (sfd, &si, sizeof si) < 0 && errno != EAGAIN)
            break;
        }
    }
  if (kill (-1, SIGKILL) < 0 && errno != ESRCH)
    agent_log ("cannot kill processes: %s", strerror (errno));
  listener_stop ();
  exit (0);
}

/* Whether a signal comes from outside the container (the engine, the
 * host's root): its sender has no pid here. SI_USER cannot be forged by a
 * process that queues a signal with a chosen sender (sigqueue needs a
 * negative si_code), so a process in the sandbox cannot pass for the host. */
static bool
from_outside (const struct signalfd_siginfo *si)
{
  return si->ssi_code == SI_USER && si->ssi_pid == 0;
}

static void
on_signal (watch_t *w, uint32_t events)
{
  (void) events;
  struct signalfd_siginfo si;
  while (read (w->fd, &si, sizeof si) == sizeof si)
    if ((si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) && from_outside (&si))
      shut_down (w->fd);
  /* SIGCHLD is only a hint (a process in the sandbox may send it too), and
     several merge into one: everything is looked at. The rest is reaped
     after the jobs' next step, which reaps their commands first. */
  exec_children_changed ();
  bg_children_changed ();
  children_exited = true;
}

/* Makes sure 0, 1 and 2 are open, so no socket or pipe lands there, and
 * that 0 is /dev/null: commands without input get it (spawn.c). */
static void
ensure_std_fds (void)
{
  int fd;
  while ((fd = open ("/dev/null", O_RDWR)) >= 0 && fd <= 2)
    ;
  if (fd > 2)
    close (fd);
  if ((fd = open ("/dev/null", O_RDONLY)) >= 0 && fd != 0)
    {
      dup2 (fd, 0);
      close (fd);
    }
  /* The log is a pipe to the engine: a line that would wait is dropped,
     never the agent's service. */
  int flags = fcntl (STDERR_FILENO, F_GETFL);
  if (flags >= 0)
    (void) fcntl (STDERR_FILENO, F_SETFL, flags | O_NONBLOCK);
}

/* A process may change another's resource limits (prlimit) when its real
 * uid equals all three of the other's uids. Processes in the sandbox run
 * as root and may become any user (CAP_SETUID), so a saved set-user-ID
 * that differs from the agent's real one leaves none that can: nothing
 * inside can set the agent's RLIMIT_CPU or RLIMIT_NOFILE. Its real and
 * effective ids, and so its powers and the owner of the files it writes,
 * stay root's; the commands it starts get theirs back when they exec. */
static void
drop_saved_uid (void)
{
  if (getuid () == 0 && setresuid ((uid_t) -1, (uid_t) -1, SAVED_UID) < 0)
    agent_log ("cannot set the saved user id: %s", strerror (errno));
}

/* Without a disk quota from the engine, no file grows past the cap: the
 * hard limit too, which nothing in the sandbox may raise (no
 * CAP_SYS_RESOURCE), and every command inherits it. The agent itself gets
 * EFBIG instead of SIGXFSZ; its commands get the signal back (spawn.c). */
static int
cap_file_size (void)
{
  struct rlimit rl = { (rlim_t) agent_max_file_size, (rlim_t) agent_max_file_size };
  if (signal (SIGXFSZ, SIG_IGN) == SIG_ERR || setrlimit (RLIMIT_FSIZE, &rl) < 0)
    {
      agent_log ("cannot cap the size of files: %s", strerror (errno));
      return -1;
    }
  return 0;
}

int
main (int argc, char **argv)
{
  const char *workdir = NULL;
  char *end = NULL;
  if ((argc == 3 || argc == 5) && strcmp (argv[1], "--workdir") == 0 && argv[2][0] == '/')
    workdir = argv[2];
  if (argc == 5
      && (strcmp (argv[3], "--max-file-size") != 0
          || (agent_max_file_size = strtoll (argv[4], &end, 10)) <= 0 || *end != '\0'))
    workdir = NULL;
  if (workdir == NULL)
    {
      fprintf (stderr, "usage: %s --workdir /ABSOLUTE/DIR [--max-file-size BYTES]\n", argv[0]);
      return 2;
    }
  ensure_std_fds ();
  if (agent_max_file_size > 0 && cap_file_size () < 0)
    return 1;
  drop_saved_uid ();

  /* Processes in the sandbox run as the same user: without this they could
     ptrace the agent or read its memory through /proc. Commands it starts
     become dumpable again when they exec. */
  if (prctl (PR_SET_DUMPABLE, 0) < 0)
    {
      agent_log ("cannot make the agent non-dumpable: %s", strerror (errno));
      return 1;
    }

  /* Signals arrive through a signalfd. A lost connection must never end
     the agent: SIGPIPE is ignored and writes report EPIPE. */
  sigset_t mask;
  sigemptyset (&mask);
  sigaddset (&mask, SIGCHLD);
  sigaddset (&mask, SIGTERM);
  sigaddset (&mask, SIGINT);
  if (sigprocmask (SIG_BLOCK, &mask, NULL) < 0 || signal (SIGPIPE, SIG_IGN) == SIG_ERR)
    {
      agent_log ("cannot set up signals: %s", strerror (errno));
      return 1;
    }
  int sfd = signalfd (-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0 || loop_init () < 0 || loop_watch (&signal_watch, sfd, EPOLLIN, on_signal) < 0)
    {
      agent_log ("cannot set up the event loop: %s", strerror (errno));
      return 1;
    }

  if (sbx_mkdir_p (workdir, 0755) < 0)
    agent_log ("cannot create the working directory %s: %s", workdir, strerror (errno));
  if (listener_start () < 0)
    {
      agent_log ("cannot listen on %s/%s: %s", SBX_AGENT_RUN_DIR, SBX_AGENT_SOCKET_NAME,
                 strerror (errno));
      return 1;
    }

  for (;;)
    {
      int wait = conns_turn ();
      if (children_exited)
        {
          children_exited = false;
          reap_children ();
        }
      loop_wait (wait);
    }
}
