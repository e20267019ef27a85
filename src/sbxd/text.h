/* Texts sbxd makes from a sandbox's bytes, without I/O. */
#ifndef SBXD_TEXT_H
#define SBXD_TEXT_H

#include <stddef.h>
#include <stdint.h>

/* The text sandboxd's read returns for the LEN bytes at DATA: lines
 * [OFFSET, OFFSET+LIMIT) unnumbered, joined by newlines, and
 * "\n\n[... N more lines. Use offset=E to read more.]" when more remain;
 * "[End of file]" past the end; invalid UTF-8 replaced. OFFSET >= 0,
 * LIMIT >= 1. Malloc'd, NULL when out of memory. */
char *sbxd_read_format (const char *data, size_t len, int64_t offset, int64_t limit);

#endif
