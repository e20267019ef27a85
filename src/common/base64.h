/* Standard base64 (RFC 4648, with padding): the CLI's JSON output and
 * sbxd's file bodies. No I/O: the decoder is fuzzed. */
#ifndef SBX_BASE64_H
#define SBX_BASE64_H

#include <stdbool.h>
#include <stddef.h>

/* N bytes at S encoded, NUL-terminated; NULL when out of memory (or N too
 * large to encode). Free with free(). */
char *sbx_base64_encode (const void *s, size_t n);

/* Strict decoding of the LEN characters at TEXT: only the standard
 * alphabet, length a multiple of 4, padding only at the end and no bits
 * set past the data (so one text decodes from one byte string only).
 * Returns 0 with *OUT (malloc'd, NUL-terminated for convenience) and
 * *OUT_LEN; -1 with *WHY (a static sentence) when TEXT is not base64;
 * -2 when out of memory. */
int sbx_base64_decode (const char *text, size_t len, unsigned char **out, size_t *out_len,
                       const char **why);

#endif
