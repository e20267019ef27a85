/* Small helpers shared by the library, the CLI and the MCP server. */
#ifndef SBX_HELPERS_H
#define SBX_HELPERS_H

#include <stddef.h>

/* Writes all LEN bytes of DATA to FD, retrying after EINTR and short writes:
 * 0, or -1 with errno set. */
int sbx_write_all (int fd, const void *data, size_t len);

/* asprintf that returns the string: NULL when out of memory. */
char *sbx_strdup_printf (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));

#endif
