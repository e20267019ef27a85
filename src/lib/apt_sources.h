/* Finding a Debian mirror in apt's source lists. Pure: the caller reads the
 * files and passes their text. */
#ifndef SBX_APT_SOURCES_H
#define SBX_APT_SOURCES_H

#define SBX_APT_FALLBACK_MIRROR "http://deb.debian.org/debian"

/* The URI of the first enabled "deb" entry whose suites include SUITE exactly
 * (so "bookworm" does not match "bookworm-security"), in the one-line format
 * of sources.list / *.list, or in the deb822 format of *.sources. Only
 * http://, https:// and file:/ URIs count (what debootstrap can fetch from).
 * Returns 1 and a malloc'd *URI (trailing slashes removed), 0 when there is
 * none, -1 when out of memory. */
int sbx_apt_mirror_one_line (const char *text, const char *suite, char **uri);
int sbx_apt_mirror_deb822 (const char *text, const char *suite, char **uri);

#endif
