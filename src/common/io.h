/* Small I/O helpers shared by the library, the CLI and the MCP server. */
#ifndef SBX_IO_H
#define SBX_IO_H

#include <stddef.h>

/* Writes all LEN bytes of DATA to FD, retrying after EINTR and short writes:
 * 0, or -1 with errno set. */
int sbx_write_all (int fd, const void *data, size_t len);

#endif
