/* Small helpers shared by the library, the CLI and the MCP server. */
#include "helpers.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

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
sbx_strdup_vprintf (const char *fmt, va_list ap)
{
  char *s = NULL;
  if (vasprintf (&s, fmt, ap) < 0)
    s = NULL;
  return s;
}

char *
sbx_strdup_printf (const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  char *s = sbx_strdup_vprintf (fmt, ap);
  va_end (ap);
  return s;
}

double
sbx_now (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

double
sbx_unix_now (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_REALTIME, &ts);
  return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

int
sbx_mkdir_p (const char *path, mode_t mode)
{
  char buf[PATH_MAX];
  size_t n = strlen (path);
  if (n >= sizeof buf)
    {
      errno = ENAMETOOLONG;
      return -1;
    }
  memcpy (buf, path, n + 1);
  for (size_t i = 1; i <= n; i++)
    {
      if (buf[i] != '/' && buf[i] != '\0')
        continue;
      char saved = buf[i];
      buf[i] = '\0';
      /* EEXIST may hide a file in the way: the stat below tells. */
      if (mkdir (buf, saved ? 0755 : mode) < 0 && errno != EEXIST)
        return -1;
      buf[i] = saved;
    }
  struct stat st;
  if (stat (path, &st) < 0)
    return -1;
  if (!S_ISDIR (st.st_mode))
    {
      errno = ENOTDIR;
      return -1;
    }
  return 0;
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
