/* Private helpers shared by libsbx's modules. */
#ifndef SBX_INTERNAL_H
#define SBX_INTERNAL_H

#include "helpers.h"
#include "sbx.h"

#include <stdlib.h>
#include <unistd.h>

#define SBX_EXPORT __attribute__ ((visibility ("default")))

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

/* Hands ownership out of a cleanup variable (as bubblewrap's steal_pointer). */
static inline void *
sbx_steal_pointer (void *pp)
{
  void **p = pp;
  void *v = *p;
  *p = NULL;
  return v;
}
#define steal_pointer(pp) sbx_steal_pointer (pp)

/* Sets *ERR (when ERR is not NULL and *ERR is still NULL) and returns -CODE. */
int sbx_fail (sbx_error_t **err, int code, const char *fmt, ...)
  __attribute__ ((format (printf, 3, 4)));
/* Same, appending ": strerror(errno_value)". */
int sbx_fail_errno (sbx_error_t **err, int code, int errno_value, const char *fmt, ...)
  __attribute__ ((format (printf, 4, 5)));

/* Returns a copy of S (length N) with invalid UTF-8 sequences replaced by
 * U+FFFD, NUL-terminated; NULL when out of memory. */
char *sbx_utf8_sanitize (const char *s, size_t n);
bool sbx_utf8_valid (const char *s, size_t n);

/* Monotonic clock in seconds. */
double sbx_now (void);

#endif
