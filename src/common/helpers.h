/* Small helpers shared by the library, the CLI and the MCP server. */
#ifndef SBX_HELPERS_H
#define SBX_HELPERS_H

#include <stddef.h>
#include <stdint.h>

/* Writes all LEN bytes of DATA to FD, retrying after EINTR and short writes:
 * 0, or -1 with errno set. */
int sbx_write_all (int fd, const void *data, size_t len);

/* asprintf that returns the string: NULL when out of memory. */
char *sbx_strdup_printf (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));

/* BYTES as a user reads it, in the largest unit that divides it: "10 GiB",
 * "512 MiB", "1536 KiB", "100 bytes". Returns BUF. */
const char *sbx_size_text (int64_t bytes, char buf[static 32]);

#endif
