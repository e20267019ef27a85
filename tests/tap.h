/* Minimal TAP producer for sbx's C tests; read by `prove`. */
#ifndef SBX_TAP_H
#define SBX_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_n, tap_failed;

__attribute__ ((format (printf, 2, 3))) static int
tap_ok (int cond, const char *fmt, ...)
{
  va_list ap;
  tap_n++;
  if (!cond)
    tap_failed++;
  printf ("%sok %d - ", cond ? "" : "not ", tap_n);
  va_start (ap, fmt);
  vprintf (fmt, ap);
  va_end (ap);
  printf ("\n");
  fflush (stdout);
  return cond;
}

#define ok(cond, ...) tap_ok (!!(cond), __VA_ARGS__)

/* Compares strings, printing both on failure. */
#define is_str(got, want, ...)                                                                     \
  do                                                                                               \
    {                                                                                              \
      const char *g_ = (got), *w_ = (want);                                                        \
      if (!ok (g_ != NULL && w_ != NULL && strcmp (g_, w_) == 0, __VA_ARGS__))                     \
        printf ("#   got:      '%s'\n#   expected: '%s'\n", g_ ? g_ : "(null)",                    \
                w_ ? w_ : "(null)");                                                               \
    }                                                                                              \
  while (0)

#define is_int(got, want, ...)                                                                     \
  do                                                                                               \
    {                                                                                              \
      long long g_ = (long long) (got), w_ = (long long) (want);                                   \
      if (!ok (g_ == w_, __VA_ARGS__))                                                             \
        printf ("#   got:      %lld\n#   expected: %lld\n", g_, w_);                               \
    }                                                                                              \
  while (0)

static void
diag (const char *fmt, ...)
{
  va_list ap;
  printf ("# ");
  va_start (ap, fmt);
  vprintf (fmt, ap);
  va_end (ap);
  printf ("\n");
  fflush (stdout);
}

static int
done_testing (void)
{
  printf ("1..%d\n", tap_n);
  return tap_failed ? 1 : 0;
}

/* ------------------------------------------------ sbx calls (sbx.h) */

#include "sbx.h"

/* Reports a failed call with its error, then frees the error. ERRP, not the
 * error itself, because arguments are evaluated in no fixed order. */
static inline int
check_ok (int r, sbx_error_t **errp, const char *what)
{
  sbx_error_t *err = *errp;
  if (!ok (r == 0, "%s", what))
    diag ("error %s: %s", sbx_errc_name (sbx_error_code (err)), sbx_error_message (err));
  sbx_error_free (err);
  *errp = NULL;
  return r == 0;
}

/* Expects failure with CODE and a message containing NEEDLE. */
static inline void
check_fails (int r, sbx_error_t **errp, int code, const char *needle, const char *what)
{
  sbx_error_t *err = *errp;
  const char *msg = sbx_error_message (err);
  if (!ok (r == -code && sbx_error_code (err) == code && (needle == NULL || strstr (msg, needle)),
           "%s", what))
    diag ("got r=%d code=%s message='%s'; wanted %s containing '%s'", r,
          sbx_errc_name (sbx_error_code (err)), msg, sbx_errc_name (code), needle ? needle : "");
  sbx_error_free (err);
  *errp = NULL;
}

#endif
