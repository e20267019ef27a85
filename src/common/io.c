/* Small I/O helpers shared by the library, the CLI and the MCP server. */
#include "io.h"

#include <errno.h>
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
