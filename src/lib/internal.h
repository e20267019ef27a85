/* Private helpers shared by libsbx's modules. */
#ifndef SBX_INTERNAL_H
#define SBX_INTERNAL_H

#include "helpers.h"
#include "sbx.h"

#include <stdlib.h>
#include <unistd.h>

#define SBX_EXPORT __attribute__ ((visibility ("default")))

/* Returns a copy of S (length N) with invalid UTF-8 sequences replaced by
 * U+FFFD, NUL-terminated; NULL when out of memory. */
char *sbx_utf8_sanitize (const char *s, size_t n);
bool sbx_utf8_valid (const char *s, size_t n);

/* PREFIX and BYTES random bytes in hex ("sbx-1a2b3c4d5e6f"); NULL when out of
 * memory or randomness. */
char *sbx_random_id (const char *prefix, size_t bytes);

#endif
