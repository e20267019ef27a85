/* The agent's socket, in the run folder the host reaches through a bind
 * mount. Only the host may connect: it does so from outside the
 * container's PID namespace, so its pid reads as 0 here, while every
 * process in the sandbox has a visible pid.
 *
 * The run folder is writable from inside the sandbox until the host seals
 * it (read-only) after the agent's first answer, which only root can do.
 * Otherwise a process inside may remove or replace the socket: the agent
 * watches the folder and puts a fresh socket in place at once, clearing the
 * folder of anything else when it is full. */
#include "agent.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/un.h>

#define SOCKET_PATH SBX_AGENT_RUN_DIR "/" SBX_AGENT_SOCKET_NAME
#define BACKLOG 256

static watch_t listen_watch = { .fd = -1 };
static watch_t notify_watch = { .fd = -1 };
static struct stat bound; /* the socket file the agent made */
static log_budget_t refused_log;

/* Removes everything in the run folder: it belongs to the agent, and a
 * full folder (the host's tmpfs holds few inodes) would keep the socket
 * from being made again. */
static void
clear_run_dir (void)
{
  int dfd = open (SBX_AGENT_RUN_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *d = dfd >= 0 ? fdopendir (dfd) : NULL;
  if (d == NULL)
    {
      if (dfd >= 0)
        close (dfd);
      return;
    }
  for (struct dirent *e; (e = readdir (d)) != NULL;)
    if (strcmp (e->d_name, ".") != 0 && strcmp (e->d_name, "..") != 0
        && unlinkat (dfd, e->d_name, 0) < 0 && errno == EISDIR)
      (void) unlinkat (dfd, e->d_name, AT_REMOVEDIR);
  closedir (d);
}

static int
bind_socket (void)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  memcpy (addr.sun_path, SOCKET_PATH, sizeof SOCKET_PATH);
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return -1;
  int r = -1;
  for (int attempt = 0; attempt < 2 && r < 0; attempt++)
    {
      if (attempt)
        clear_run_dir ();
      r = (unlink (SOCKET_PATH) < 0 && errno != ENOENT)
                  || bind (fd, (struct sockaddr *) &addr, sizeof addr) < 0
                  /* the host user need not be root */
                  || chmod (SOCKET_PATH, 0666) < 0 || stat (SOCKET_PATH, &bound) < 0
                  || listen (fd, BACKLOG) < 0
              ? -1
              : 0;
    }
  if (r < 0)
    {
      int e = errno;
      close (fd);
      errno = e;
      return -1;
    }
  return fd;
}

static bool
peer_is_host (int fd)
{
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt (fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
    {
      agent_log_limited (&refused_log, "refused a connection: cannot identify the peer: %s",
                         strerror (errno));
      return false;
    }
  if (cred.pid != 0)
    {
      agent_log_limited (&refused_log, "refused a connection from pid %ld inside the sandbox",
                         (long) cred.pid);
      return false;
    }
  return true;
}

static void
accept_all (int lfd)
{
  for (int i = 0; i < 64; i++)
    {
      int fd = accept4 (lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd < 0)
        {
          if (errno == EMFILE || errno == ENFILE)
            agent_log_limited (&refused_log, "cannot accept a connection: %s", strerror (errno));
          return;
        }
      if (!peer_is_host (fd))
        close (fd);
      else if (!conn_accept (fd))
        {
          agent_log_limited (&refused_log, "refused a connection from the host: too many open");
          close (fd);
        }
    }
}

static void
on_listen (watch_t *w, uint32_t events)
{
  (void) events;
  accept_all (w->fd);
}

/* Makes a fresh socket unless the one in place is still the agent's. */
static void
check_socket (void)
{
  struct stat st;
  if (stat (SOCKET_PATH, &st) == 0 && st.st_dev == bound.st_dev && st.st_ino == bound.st_ino)
    return;
  int fd = bind_socket ();
  if (fd < 0)
    {
      agent_log_limited (&refused_log, "cannot make a fresh socket at %s: %s", SOCKET_PATH,
                         strerror (errno));
      return;
    }
  /* Connections queued on the old socket are served before it goes. */
  accept_all (listen_watch.fd);
  loop_unwatch (&listen_watch);
  close (listen_watch.fd);
  if (loop_watch (&listen_watch, fd, EPOLLIN, on_listen) < 0)
    {
      agent_log ("cannot watch the socket: %s", strerror (errno));
      close (fd);
      return;
    }
  agent_log_limited (&refused_log, "the socket was removed or replaced from inside the "
                                   "sandbox; a fresh one is in place");
}

static void
on_notify (watch_t *w, uint32_t events)
{
  (void) events;
  char buf[4096] __attribute__ ((aligned (__alignof__(struct inotify_event))));
  /* What changed matters less than whether the socket is still ours. */
  while (read (w->fd, buf, sizeof buf) > 0)
    ;
  check_socket ();
}

int
listener_start (void)
{
  if (sbx_mkdir_p (SBX_AGENT_RUN_DIR, 0755) < 0)
    return -1;
  int fd = bind_socket ();
  if (fd < 0 || loop_watch (&listen_watch, fd, EPOLLIN, on_listen) < 0)
    return -1;
  int nfd = inotify_init1 (IN_CLOEXEC | IN_NONBLOCK);
  if (nfd < 0
      || inotify_add_watch (nfd, SBX_AGENT_RUN_DIR,
                            IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_ATTRIB)
             < 0
      || loop_watch (&notify_watch, nfd, EPOLLIN, on_notify) < 0)
    {
      /* Still serves; only the repair is lost. */
      agent_log ("cannot watch %s: %s", SBX_AGENT_RUN_DIR, strerror (errno));
      if (nfd >= 0)
        close (nfd);
    }
  return 0;
}

void
listener_stop (void)
{
  /* Best effort: a stale socket only makes the host's next connect fail. */
  (void) unlink (SOCKET_PATH);
}
