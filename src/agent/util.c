/* Small helpers shared by the agent's modules. */
#include "agent.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define BINARY_PROBE 8192
#define LOG_BURST 10
#define LOG_REFILL_MS 10000

static void
log_line (const char *fmt, va_list ap, unsigned long suppressed)
{
  static const char prefix[] = "sbx-agent: ";
  char line[512];
  memcpy (line, prefix, sizeof prefix - 1);
  size_t room = sizeof line - sizeof prefix; /* leaves a byte for '\n' */
  int n = vsnprintf (line + sizeof prefix - 1, room + 1, fmt, ap);
  if (n < 0)
    return;
  size_t len = sizeof prefix - 1 + ((size_t) n < room ? (size_t) n : room);
  if (suppressed)
    {
      int m = snprintf (line + len, sizeof line - 1 - len, " (and %lu more like it)", suppressed);
      if (m > 0)
        len += (size_t) m < sizeof line - 1 - len ? (size_t) m : sizeof line - 2 - len;
    }
  line[len++] = '\n';
  /* Nothing useful can be done when stderr is gone. */
  (void) sbx_write_all (STDERR_FILENO, line, len);
}

void
agent_log (const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  log_line (fmt, ap, 0);
  va_end (ap);
}

void
agent_log_limited (log_budget_t *b, const char *fmt, ...)
{
  int64_t now = now_ms ();
  if (b->refill_at == 0)
    b->tokens = LOG_BURST;
  if (now >= b->refill_at)
    {
      if (b->tokens < LOG_BURST)
        b->tokens++;
      b->refill_at = now + LOG_REFILL_MS;
    }
  if (b->tokens == 0)
    {
      b->suppressed++;
      return;
    }
  b->tokens--;
  va_list ap;
  va_start (ap, fmt);
  log_line (fmt, ap, b->suppressed);
  va_end (ap);
  b->suppressed = 0;
}

ssize_t
read_full (int fd, void *buf, size_t len)
{
  size_t got = 0;
  while (got < len)
    {
      ssize_t n = read (fd, (char *) buf + got, len - got);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return -1;
      if (n == 0)
        break;
      got += (size_t) n;
    }
  return (ssize_t) got;
}

void
close_fds_from (int lowfd)
{
  /* The raw call: not every libc wraps close_range (musl does not). */
  if (syscall (SYS_close_range, (unsigned) lowfd, ~0u, 0) == 0)
    return;
  /* Kernels before 5.9: close a reasonable range. */
  long max = sysconf (_SC_OPEN_MAX);
  if (max < 0 || max > 65536)
    max = 65536;
  for (int fd = lowfd; fd < max; fd++)
    close (fd);
}

void
close_fd (int *fd)
{
  if (*fd >= 0)
    close (*fd);
  *fd = -1;
}

int
kind_of_mode (mode_t mode)
{
  if (S_ISREG (mode))
    return SBX_KIND_FILE;
  if (S_ISDIR (mode))
    return SBX_KIND_DIR;
  if (S_ISLNK (mode))
    return SBX_KIND_SYMLINK;
  return SBX_KIND_OTHER;
}

bool
looks_binary (const void *buf, size_t len)
{
  return memchr (buf, 0, len < BINARY_PROBE ? len : BINARY_PROBE) != NULL;
}
