/* Debian's libpcre2-8.a is built for glibc with _FORTIFY_SOURCE, so it calls
 * glibc's checked memcpy. When the agent is linked with musl (a third of the
 * resident memory, see the Makefile), provide it. */
#ifdef SBX_AGENT_MUSL
#include <stdlib.h>
#include <string.h>

void *__memcpy_chk (void *dst, const void *src, size_t len, size_t dstlen);

void *
__memcpy_chk (void *dst, const void *src, size_t len, size_t dstlen)
{
  if (len > dstlen)
    abort ();
  return memcpy (dst, src, len);
}
#endif
