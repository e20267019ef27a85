/* Small helpers shared by the library, the CLI and the MCP server. */
#include "helpers.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

int
sbx_write_all (int fd, const void *data, size_t len)
{
  const char *p = data;
  while (len > 0)
    {
      ssize_t n = write (fd, p, len);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return -1;
      p += n;
      len -= (size_t) n;
    }
  return 0;
}

char *
sbx_strdup_printf (const char *fmt, ...)
{
  va_list ap;
  char *s = NULL;
  va_start (ap, fmt);
  if (vasprintf (&s, fmt, ap) < 0)
    s = NULL;
  va_end (ap);
  return s;
}

const char *
sbx_size_text (int64_t bytes, char buf[static 32])
{
  static const char *const units[] = { "bytes", "KiB", "MiB", "GiB", "TiB", "PiB" };
  size_t u = 0;
  while (u + 1 < sizeof units / sizeof *units && bytes != 0 && bytes % 1024 == 0)
    bytes /= 1024, u++;
  snprintf (buf, 32, "%lld %s", (long long) bytes, units[u]);
  return buf;
}
