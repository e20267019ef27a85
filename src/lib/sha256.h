/* SHA-256 of a buffer, as 64 lowercase hex digits. Pure. */
#ifndef SBX_SHA256_H
#define SBX_SHA256_H

#include <stddef.h>
#include <stdint.h>

/* HEX receives 64 digits and a NUL. */
void sbx_sha256_hex (const void *data, size_t n, char hex[65]);

#endif
