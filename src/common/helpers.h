/* Small helpers shared by the library, the agent, the CLI and the MCP
 * server: one of each, so that no module grows a twin. */
#ifndef SBX_HELPERS_H
#define SBX_HELPERS_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

/* Frees *P when the variable goes out of scope (as crun's cleanup_free). */
static inline void
sbx_freep (void *p)
{
  free (*(void **) p);
}
#define cleanup_free __attribute__ ((cleanup (sbx_freep)))

static inline void
sbx_closep (int *fd)
{
  if (*fd >= 0)
    close (*fd);
}
#define cleanup_close __attribute__ ((cleanup (sbx_closep)))

/* Hands ownership out of a cleanup variable, keeping its type (as
 * bubblewrap's steal_pointer). */
static inline void *
sbx_steal_pointer (void *pp)
{
  void **p = pp;
  void *v = *p;
  *p = NULL;
  return v;
}
#define steal_pointer(pp) ((__typeof__ (*(pp))) sbx_steal_pointer (pp))

/* The same for a cleanup_close descriptor: *FD becomes -1. */
static inline int
steal_fd (int *fd)
{
  int v = *fd;
  *fd = -1;
  return v;
}

/* Monotonic clock in seconds. */
double sbx_now (void);
/* Unix time in seconds (the wall clock: for records and what users read). */
double sbx_unix_now (void);

/* mkdir -p: the missing parents with 0755, PATH itself with MODE; an
 * existing directory is fine. 0, or -1 with errno (ENOTDIR when something
 * else is in the way). */
int sbx_mkdir_p (const char *path, mode_t mode);

/* Writes all LEN bytes of DATA to FD, retrying after EINTR and short writes:
 * 0, or -1 with errno set. */
int sbx_write_all (int fd, const void *data, size_t len);

/* asprintf that returns the string: NULL when out of memory. */
char *sbx_strdup_printf (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
char *sbx_strdup_vprintf (const char *fmt, va_list ap) __attribute__ ((format (printf, 1, 0)));

/* BYTES as a user reads it, in the largest unit that divides it: "10 GiB",
 * "512 MiB", "1536 KiB", "100 bytes". Returns BUF. */
const char *sbx_size_text (int64_t bytes, char buf[static 32]);

#endif
