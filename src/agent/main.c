/* sbx-agent, PID 1 of a sandbox container: listens on the socket the host
 * reaches through the bind-mounted run folder, hands each verified
 * connection to a forked handler, reaps every process, and takes the
 * container down quickly on SIGTERM.
 *
 *   /.sbx/agent --workdir DIR
 */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#define SOCKET_PATH SBX_AGENT_RUN_DIR "/" SBX_AGENT_SOCKET_NAME
#define SHUTDOWN_GRACE_MS 1000

/* Reaps every exited child (orphans included); false once none is left. */
static bool
reap_all (void)
{
  pid_t pid;
  while ((pid = waitpid (-1, NULL, WNOHANG)) > 0)
    ;
  return !(pid < 0 && errno == ECHILD);
}

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
      if (!reap_all ())
        break;
      struct pollfd p = { .fd = sfd, .events = POLLIN };
      if (poll (&p, 1, (int) left) > 0)
        {
          struct signalfd_siginfo si;
          if (read (sfd, &si, sizeof si) < 0 && errno != EAGAIN)
            break;
        }
    }
  if (kill (-1, SIGKILL) < 0 && errno != ESRCH)
    agent_log ("cannot kill processes: %s", strerror (errno));
  /* Best effort: a stale socket only makes the host's next connect fail. */
  (void) unlink (SOCKET_PATH);
  exit (0);
}

static int
listen_socket (void)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  memcpy (addr.sun_path, SOCKET_PATH, sizeof SOCKET_PATH);
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return -1;
  if (mkdir_p (SBX_AGENT_RUN_DIR, 0755) < 0 || (unlink (SOCKET_PATH) < 0 && errno != ENOENT)
      || bind (fd, (struct sockaddr *) &addr, sizeof addr) < 0
      /* the host user need not be root */
      || chmod (SOCKET_PATH, 0666) < 0 || listen (fd, 64) < 0)
    {
      int e = errno;
      close (fd);
      errno = e;
      return -1;
    }
  return fd;
}

/* Only the host may drive the agent. It connects from outside the
 * container's PID namespace, so its pid reads as 0 here; every process in
 * the sandbox has a visible pid. */
static bool
peer_is_host (int fd)
{
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt (fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
    {
      agent_log ("refused a connection: cannot identify the peer: %s", strerror (errno));
      return false;
    }
  if (cred.pid != 0)
    {
      agent_log ("refused a connection from pid %ld inside the sandbox", (long) cred.pid);
      return false;
    }
  return true;
}

static void
accept_one (int lfd, int sfd, pid_t agent_pid)
{
  int fd = accept4 (lfd, NULL, NULL, SOCK_CLOEXEC);
  if (fd < 0)
    {
      if (errno == EMFILE || errno == ENFILE)
        {
          /* The connection stays queued; do not spin on it. */
          agent_log ("cannot accept a connection: %s", strerror (errno));
          (void) poll (NULL, 0, 100);  /* a pause; nothing to check */
        }
      return;
    }
  if (!peer_is_host (fd))
    {
      close (fd);
      return;
    }
  pid_t pid = fork ();
  if (pid < 0)
    agent_log ("cannot fork a connection handler: %s", strerror (errno));
  if (pid == 0)
    {
      close (lfd);
      close (sfd);
      conn_serve (fd, agent_pid);
    }
  close (fd);
}

/* Makes sure 0, 1 and 2 are open, so no socket or pipe lands there. */
static void
ensure_std_fds (void)
{
  int fd;
  while ((fd = open ("/dev/null", O_RDWR)) >= 0 && fd <= 2)
    ;
  if (fd > 2)
    close (fd);
}

int
main (int argc, char **argv)
{
  const char *workdir = NULL;
  if (argc == 3 && strcmp (argv[1], "--workdir") == 0 && argv[2][0] == '/')
    workdir = argv[2];
  else
    {
      fprintf (stderr, "usage: %s --workdir /ABSOLUTE/DIR\n", argv[0]);
      return 2;
    }
  ensure_std_fds ();

  /* Processes in the sandbox run as the same user: without this they could
     ptrace the agent (or its handlers) or read its memory through /proc.
     Commands it starts become dumpable again when they exec. */
  if (prctl (PR_SET_DUMPABLE, 0) < 0)
    {
      agent_log ("cannot make the agent non-dumpable: %s", strerror (errno));
      return 1;
    }

  /* Signals arrive through a signalfd. SIGCHLD stays blocked in every
     process the agent forks (handlers read it through their own signalfd);
     a lost connection must end a handler, never the agent: SIGPIPE is
     ignored and writes report EPIPE. */
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
  if (sfd < 0)
    {
      agent_log ("cannot create a signalfd: %s", strerror (errno));
      return 1;
    }

  if (mkdir_p (workdir, 0755) < 0)
    agent_log ("cannot create the working directory %s: %s", workdir, strerror (errno));
  int lfd = listen_socket ();
  if (lfd < 0)
    {
      agent_log ("cannot listen on %s: %s", SOCKET_PATH, strerror (errno));
      return 1;
    }

  pid_t agent_pid = getpid ();
  for (;;)
    {
      struct pollfd p[2] = { { .fd = lfd, .events = POLLIN }, { .fd = sfd, .events = POLLIN } };
      if (poll (p, 2, -1) < 0)
        {
          if (errno != EINTR)
            agent_log ("poll: %s", strerror (errno));
          continue;
        }
      if (p[1].revents)
        {
          struct signalfd_siginfo si;
          while (read (sfd, &si, sizeof si) == sizeof si)
            if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
              shut_down (sfd);
          /* Several SIGCHLD may merge into one: reap everything. */
          reap_all ();
        }
      if (p[0].revents)
        accept_one (lfd, sfd, agent_pid);
    }
}
