/* The engine's stats document read into sbx_sandbox_usage_t: a pure
 * function of its bytes (no I/O), unit-tested and fuzzed. */
#ifndef SBX_USAGE_H
#define SBX_USAGE_H

#include "sbx.h"

#include <jansson.h>

/* Fills *U from STATS (GET /containers/ID/stats): what it says, the rest
 * -1 or 0. Nothing in STATS is trusted: a wrong type reads as missing. */
void sbx_usage_from_stats (const json_t *stats, sbx_sandbox_usage_t *u);

#endif
