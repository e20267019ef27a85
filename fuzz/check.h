/* A fuzz target's own assertion: what failed and where, then abort(),
 * which libFuzzer reports with the input that did it. */
#ifndef SBX_FUZZ_CHECK_H
#define SBX_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                                                \
  do                                                                                               \
    {                                                                                              \
      if (!(cond))                                                                                 \
        {                                                                                          \
          fprintf (stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);                \
          abort ();                                                                                \
        }                                                                                          \
    }                                                                                              \
  while (0)

#endif
