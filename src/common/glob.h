/* Glob patterns over relative paths. Pure functions, no I/O.
 *
 *   *       any run of characters within one path segment (dotfiles included)
 *   ?       one character within a segment
 *   [...]   a character class within a segment ([!...] and [^...] negate)
 *   **      as a whole segment: zero or more segments
 *   {a,b}   alternatives, nested allowed, expanded before matching
 *   \c      the character c literally
 */
#ifndef SBX_GLOB_H
#define SBX_GLOB_H

#include <stdbool.h>

#define SBX_GLOB_MAX_ALTERNATIVES 256
#define SBX_GLOB_MAX_LEN 4096

typedef struct sbx_glob sbx_glob_t;

/* 0 and *OUT on success; -1 with *ERROR (static text) for an invalid pattern
 * (unbalanced braces or brackets, too long, too many alternatives). A leading
 * "/" or "./" is ignored: patterns are relative to where the walk starts. */
int sbx_glob_compile (const char *pattern, sbx_glob_t **out, const char **error);
void sbx_glob_free (sbx_glob_t *g);

/* Whether the relative path ("a/b/c.txt", no leading or trailing '/') matches. */
bool sbx_glob_match (const sbx_glob_t *g, const char *relpath);

/* Whether some path below the relative directory RELDIR ("" for the start)
 * could match: lets a walk skip directories that cannot lead to a match. */
bool sbx_glob_could_match_below (const sbx_glob_t *g, const char *reldir);

/* Whether one segment NAME matches the single-segment pattern PAT. */
bool sbx_glob_match_segment (const char *pat, const char *name);

#endif
