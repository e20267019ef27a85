/* Texts sbxd makes from a sandbox's bytes, and reads from a client's,
 * without I/O. */
#ifndef SBXD_TEXT_H
#define SBXD_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The text sandboxd's read returns for the LEN bytes at DATA: lines
 * [OFFSET, OFFSET+LIMIT) unnumbered, joined by newlines, and
 * "\n\n[... N more lines. Use offset=E to read more.]" when more remain;
 * "[End of file]" past the end; invalid UTF-8 replaced. OFFSET >= 0,
 * LIMIT >= 1. Malloc'd, NULL when out of memory. */
char *sbxd_read_format (const char *data, size_t len, int64_t offset, int64_t limit);

/* Whether the JSON text BODY (LEN bytes) holds at most MAX_VALUES arrays,
 * objects and members or elements, nested at most MAX_DEPTH deep: a scan
 * (strings skipped), no parse, so that what a parser would build for it
 * is bounded before it builds it (a megabyte of "[{},{},..." is 75 times
 * that in memory). A text that is not JSON may pass: the parser says so. */
bool sbxd_json_shape_ok (const char *body, size_t len, size_t max_values, size_t max_depth);

#endif
