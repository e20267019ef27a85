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
#define is_str(got, want, ...)                                                       \
  do                                                                                 \
    {                                                                                \
      const char *g_ = (got), *w_ = (want);                                          \
      if (!ok (g_ != NULL && w_ != NULL && strcmp (g_, w_) == 0, __VA_ARGS__))       \
        printf ("#   got:      '%s'\n#   expected: '%s'\n", g_ ? g_ : "(null)",      \
                w_ ? w_ : "(null)");                                                 \
    }                                                                                \
  while (0)

#define is_int(got, want, ...)                                                       \
  do                                                                                 \
    {                                                                                \
      long long g_ = (long long) (got), w_ = (long long) (want);                    \
      if (!ok (g_ == w_, __VA_ARGS__))                                               \
        printf ("#   got:      %lld\n#   expected: %lld\n", g_, w_);                \
    }                                                                                \
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

#endif
