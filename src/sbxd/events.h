/* A session's event log as sandboxd keeps it: the last 200 operations,
 * each with what it touched and how it ended, never a payload. No I/O,
 * no locking (the caller's session lock covers it). */
#ifndef SBXD_EVENTS_H
#define SBXD_EVENTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define SBXD_EVENTS_KEPT 200
/* A target longer than this many characters is cut, with "…" after. */
#define SBXD_EVENT_TARGET_CHARS 200
/* A detail (an error's text may echo a request) likewise, past 500. */
#define SBXD_EVENT_DETAIL_CHARS 500

typedef struct sbxd_event
{
  int64_t seq;
  double at; /* Unix time */
  char op[16];
  char *target;
  char *detail;
  bool ok;
  double duration_ms;
} sbxd_event_t;

typedef struct sbxd_events
{
  sbxd_event_t ring[SBXD_EVENTS_KEPT];
  size_t count; /* entries held, at most SBXD_EVENTS_KEPT */
  size_t head;  /* the oldest entry's slot */
  int64_t latest_seq;
} sbxd_events_t;

/* Appends an event (TARGET and DETAIL copied, cut at
 * SBXD_EVENT_TARGET_CHARS and SBXD_EVENT_DETAIL_CHARS characters and made
 * valid UTF-8), dropping
 * the oldest past SBXD_EVENTS_KEPT. -1 when out of memory (nothing kept). */
int sbxd_events_add (sbxd_events_t *ev, double at, const char *op, const char *target, bool ok,
                     const char *detail, double duration_ms);
/* {"events": [entries with seq > AFTER, oldest first], "latest_seq": N};
 * NULL when out of memory. */
json_t *sbxd_events_json (const sbxd_events_t *ev, int64_t after);
/* Appends the events of DOC (what sbxd_events_json made, read back from
 * the host) after EV's own: an entry not of that shape, or out of order,
 * is left out. -1 when DOC is not such a document, or out of memory. */
int sbxd_events_restore (sbxd_events_t *ev, const json_t *doc);
void sbxd_events_clear (sbxd_events_t *ev);

#endif
