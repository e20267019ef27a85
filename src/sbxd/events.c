#include "events.h"

#include "sbx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* S cut after MAX characters (UTF-8 code points, as sandboxd counts them
 * in Python), with "…" added when cut. */
static char *
cut_chars (const char *s, size_t max)
{
  /* MAX characters take at most 4 MAX bytes: the rest is not looked at. */
  size_t len = strnlen (s, 4 * max + 4);
  char *valid = sbx_utf8_sanitize_copy (s, len);
  if (valid == NULL)
    return NULL;
  size_t chars = 0, i = 0;
  for (; valid[i] && chars < max; chars++)
    {
      i++;
      while (((unsigned char) valid[i] & 0xc0) == 0x80)
        i++;
    }
  if (valid[i] == '\0')
    return valid;
  char *out = malloc (i + sizeof "\u2026");
  if (out != NULL)
    {
      memcpy (out, valid, i);
      memcpy (out + i, "\u2026", sizeof "\u2026");
    }
  free (valid);
  return out;
}

static void
event_clear (sbxd_event_t *e)
{
  free (e->target);
  free (e->detail);
  memset (e, 0, sizeof *e);
}

int
sbxd_events_add (sbxd_events_t *ev, double at, const char *op, const char *target, bool ok,
                 const char *detail, double duration_ms)
{
  char *t = cut_chars (target ? target : "", SBXD_EVENT_TARGET_CHARS);
  char *d = cut_chars (detail ? detail : "", SBXD_EVENT_DETAIL_CHARS);
  if (t == NULL || d == NULL)
    {
      free (t);
      free (d);
      return -1;
    }
  size_t slot;
  if (ev->count < SBXD_EVENTS_KEPT)
    slot = (ev->head + ev->count++) % SBXD_EVENTS_KEPT;
  else
    {
      slot = ev->head;
      ev->head = (ev->head + 1) % SBXD_EVENTS_KEPT;
      event_clear (&ev->ring[slot]);
    }
  sbxd_event_t *e = &ev->ring[slot];
  e->seq = ++ev->latest_seq;
  e->at = at;
  snprintf (e->op, sizeof e->op, "%s", op);
  e->target = t;
  e->detail = d;
  e->ok = ok;
  e->duration_ms = duration_ms;
  return 0;
}

json_t *
sbxd_events_json (const sbxd_events_t *ev, int64_t after)
{
  json_t *list = json_array ();
  if (list == NULL)
    return NULL;
  for (size_t i = 0; i < ev->count; i++)
    {
      const sbxd_event_t *e = &ev->ring[(ev->head + i) % SBXD_EVENTS_KEPT];
      if (e->seq <= after)
        continue;
      if (json_array_append_new (list, json_pack ("{s:I,s:f,s:s,s:s,s:b,s:s,s:f}", "seq",
                                                  (json_int_t) e->seq, "at", e->at, "op", e->op,
                                                  "target", e->target, "ok", e->ok, "detail",
                                                  e->detail, "duration_ms", e->duration_ms))
          < 0)
        {
          json_decref (list);
          return NULL;
        }
    }
  return json_pack ("{s:o,s:I}", "events", list, "latest_seq", (json_int_t) ev->latest_seq);
}

void
sbxd_events_clear (sbxd_events_t *ev)
{
  for (size_t i = 0; i < ev->count; i++)
    event_clear (&ev->ring[(ev->head + i) % SBXD_EVENTS_KEPT]);
  ev->count = ev->head = 0;
}

int
sbxd_events_restore (sbxd_events_t *ev, const json_t *doc)
{
  const json_t *list = json_object_get (doc, "events");
  const json_t *latest = json_object_get (doc, "latest_seq");
  if (!json_is_array (list) || !json_is_integer (latest) || json_integer_value (latest) < 0)
    return -1;
  size_t i;
  const json_t *e;
  json_array_foreach (list, i, e)
    {
      json_int_t seq = json_integer_value (json_object_get (e, "seq"));
      const char *op = json_string_value (json_object_get (e, "op"));
      const char *target = json_string_value (json_object_get (e, "target"));
      const char *detail = json_string_value (json_object_get (e, "detail"));
      const json_t *ok = json_object_get (e, "ok");
      /* In order, each once: a record that says otherwise is not taken. */
      if (seq <= ev->latest_seq || op == NULL || target == NULL || detail == NULL
          || !json_is_boolean (ok) || !json_is_number (json_object_get (e, "at")))
        continue;
      ev->latest_seq = (int64_t) seq - 1;
      if (sbxd_events_add (ev, json_number_value (json_object_get (e, "at")), op, target,
                           json_is_true (ok), detail,
                           json_number_value (json_object_get (e, "duration_ms")))
          < 0)
        return -1;
    }
  if (json_integer_value (latest) > ev->latest_seq)
    ev->latest_seq = (int64_t) json_integer_value (latest);
  return 0;
}
