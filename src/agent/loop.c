/* The event loop: epoll over every descriptor the agent waits on. Memory
 * that holds a watch is freed only after the turn that may still report
 * events for it. */
#include "agent.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>

#define MAX_EVENTS 64

static int epfd = -1;
static void **deferred;
static size_t ndeferred, deferred_cap;

int
loop_init (void)
{
  epfd = epoll_create1 (EPOLL_CLOEXEC);
  return epfd < 0 ? -1 : 0;
}

int
loop_watch (watch_t *w, int fd, uint32_t events, watch_fn fn)
{
  struct epoll_event ev = { .events = events, .data.ptr = w };
  w->fn = fn;
  w->fd = fd;
  if (epoll_ctl (epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
    return -1;
  w->active = true;
  return 0;
}

int
loop_rewatch (watch_t *w, uint32_t events)
{
  struct epoll_event ev = { .events = events, .data.ptr = w };
  return w->active ? epoll_ctl (epfd, EPOLL_CTL_MOD, w->fd, &ev) : -1;
}

void
loop_unwatch (watch_t *w)
{
  if (!w->active)
    return;
  (void) epoll_ctl (epfd, EPOLL_CTL_DEL, w->fd, NULL);
  w->active = false;
}

void
loop_defer_free (void *p)
{
  if (p == NULL)
    return;
  if (ndeferred == deferred_cap)
    {
      size_t cap = deferred_cap ? deferred_cap * 2 : 16;
      void **v = realloc (deferred, cap * sizeof *v);
      if (v == NULL)
        {
          /* Leaking is safe; freeing now is not. */
          agent_log ("out of memory: an object of the loop was leaked");
          return;
        }
      deferred = v;
      deferred_cap = cap;
    }
  deferred[ndeferred++] = p;
}

void
loop_wait (int timeout_ms)
{
  struct epoll_event ev[MAX_EVENTS];
  int n = epoll_wait (epfd, ev, MAX_EVENTS, timeout_ms);
  if (n < 0 && errno != EINTR)
    agent_log ("epoll_wait: %s", strerror (errno));
  for (int i = 0; i < n; i++)
    {
      watch_t *w = ev[i].data.ptr;
      /* Removed by an earlier callback of this turn. */
      if (w->active)
        w->fn (w, ev[i].events);
    }
  for (size_t i = 0; i < ndeferred; i++)
    free (deferred[i]);
  ndeferred = 0;
}
