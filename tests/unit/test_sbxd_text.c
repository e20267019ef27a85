/* Unit tests for sbxd's pure parts: the read format (src/sbxd/text.c)
 * and the event log (src/sbxd/events.c). */
#include "events.h"
#include "tap.h"
#include "text.h"

static void
check_read (const char *data, int64_t offset, int64_t limit, const char *want)
{
  char *got = sbxd_read_format (data, strlen (data), offset, limit);
  is_str (got, want, "read of %zu bytes, offset %lld, limit %lld", strlen (data),
          (long long) offset, (long long) limit);
  free (got);
}

int
main (void)
{
  check_read ("", 0, 2000, "");
  check_read ("a", 0, 2000, "a");
  check_read ("a\n", 0, 2000, "a");
  check_read ("a\nb\n", 0, 2000, "a\nb");
  check_read ("a\nb", 0, 2000, "a\nb");
  check_read ("a\n\n", 0, 2000, "a\n");
  check_read ("\n", 0, 2000, "");
  check_read ("a\nb\nc\n", 1, 1, "b\n\n[... 1 more lines. Use offset=2 to read more.]");
  check_read ("a\nb\nc\n", 0, 2, "a\nb\n\n[... 1 more lines. Use offset=2 to read more.]");
  check_read ("a\nb\nc\n", 2, 5, "c");
  check_read ("a\nb\nc\n", 3, 5, "[End of file]");
  check_read ("a\nb\nc\n", 999, 1, "[End of file]");
  check_read ("a\nb\nc\n", 1, INT64_MAX, "b\nc");
  check_read ("x\xff\n", 0, 1, "x\xef\xbf\xbd");
  check_read ("a\r\nb\r\n", 0, 5, "a\r\nb\r");

  const char *small = "{\"command\": \"echo [,{\\\"\", \"timeout_seconds\": 3}";
  ok (sbxd_json_shape_ok (small, strlen (small), 3, 1), "a body of two members passes");
  ok (!sbxd_json_shape_ok (small, strlen (small), 1, 1), "past its count of values, not");
  const char *deep = "[[[[1]]]]";
  ok (sbxd_json_shape_ok (deep, strlen (deep), 10, 4) && !sbxd_json_shape_ok (deep, 9, 10, 3),
      "depth counted");
  char *flood = malloc (3 * 100000 + 3);
  strcpy (flood, "[{}");
  for (int i = 1; i < 100000; i++)
    strcat (flood + 3 * i - 3, ",{}");
  strcat (flood, "]");
  ok (!sbxd_json_shape_ok (flood, strlen (flood), 256, 8), "a flood of {} is refused unparsed");
  free (flood);
  ok (sbxd_json_shape_ok ("\"[[[[", 5, 0, 0), "brackets in an unclosed string are not counted");

  sbxd_events_t *ev = calloc (1, sizeof *ev);
  char target[512];
  memset (target, 'y', sizeof target - 1);
  target[sizeof target - 1] = '\0';
  ok (sbxd_events_add (ev, 1.5, "exec", target, false, "exit 2", 3.25) == 0, "an event is added");
  json_t *doc = sbxd_events_json (ev, 0);
  json_t *e = json_array_get (json_object_get (doc, "events"), 0);
  const char *t = json_string_value (json_object_get (e, "target"));
  ok (t && strlen (t) == 200 + 3 && strcmp (t + 200, "\xe2\x80\xa6") == 0 && strspn (t, "y") == 200,
      "a target is cut at 200 characters, with an ellipsis");
  ok (json_integer_value (json_object_get (e, "seq")) == 1
          && json_is_false (json_object_get (e, "ok"))
          && strcmp (json_string_value (json_object_get (e, "detail")), "exit 2") == 0
          && json_real_value (json_object_get (e, "duration_ms")) == 3.25,
      "its fields are kept");
  json_decref (doc);

  /* A detail echoing a megabyte of request: kept to 500 characters. */
  char *huge = malloc (1 << 20);
  memset (huge, 'z', (1 << 20) - 1);
  huge[(1 << 20) - 1] = '\0';
  sbxd_events_t *big = calloc (1, sizeof *big);
  sbxd_events_add (big, 1, "edit", "f", false, huge, 0);
  doc = sbxd_events_json (big, 0);
  e = json_array_get (json_object_get (doc, "events"), 0);
  const char *d = json_string_value (json_object_get (e, "detail"));
  ok (d && strlen (d) == 500 + 3 && strspn (d, "z") == 500, "a detail is cut at 500 characters");
  json_decref (doc);
  sbxd_events_clear (big);
  free (big);
  free (huge);

  /* 200 characters of two bytes each: cut by characters, not bytes. */
  char wide[801] = "";
  for (int i = 0; i < 250; i++)
    strcat (wide, "\xc3\xa9");
  sbxd_events_add (ev, 2, "read", wide, true, "\xff bad", 0);
  doc = sbxd_events_json (ev, 1);
  e = json_array_get (json_object_get (doc, "events"), 0);
  t = json_string_value (json_object_get (e, "target"));
  ok (json_array_size (json_object_get (doc, "events")) == 1 && t && strlen (t) == 403,
      "after=1 gives the second only, its target cut after 200 two-byte characters");
  is_str (json_string_value (json_object_get (e, "detail")), "\xef\xbf\xbd bad",
          "invalid UTF-8 in a detail is replaced");
  json_decref (doc);

  for (int i = 0; i < 250; i++)
    sbxd_events_add (ev, 3, "exists", "f", true, "found", 0);
  doc = sbxd_events_json (ev, 0);
  json_t *list = json_object_get (doc, "events");
  ok (json_array_size (list) == SBXD_EVENTS_KEPT
          && json_integer_value (json_object_get (doc, "latest_seq")) == 252
          && json_integer_value (json_object_get (json_array_get (list, 0), "seq")) == 53
          && json_integer_value (json_object_get (json_array_get (list, 199), "seq")) == 252,
      "the ring keeps the last 200 (seq 53 to 252)");
  json_decref (doc);
  doc = sbxd_events_json (ev, 252);
  ok (json_array_size (json_object_get (doc, "events")) == 0, "nothing after the latest");
  json_decref (doc);

  /* Written to the host at a restart, read back: the same log. */
  doc = sbxd_events_json (ev, 0);
  sbxd_events_t *back = calloc (1, sizeof *back);
  ok (sbxd_events_restore (back, doc) == 0, "a log read back");
  json_t *again = sbxd_events_json (back, 0);
  ok (json_equal (doc, again), "is the same log (seq, fields, latest_seq)");
  json_decref (again);
  json_decref (doc);
  sbxd_events_add (back, 4, "ls", ".", true, "1 entries", 0);
  doc = sbxd_events_json (back, 252);
  ok (json_integer_value (json_object_get (doc, "latest_seq")) == 253, "and goes on from it");
  json_decref (doc);
  sbxd_events_clear (back);
  memset (back, 0, sizeof *back);

  /* What the host holds is not trusted: bad entries are left out. */
  json_error_t jerr;
  doc = json_loads ("{\"events\":[{\"seq\":5,\"at\":1,\"op\":\"exec\",\"target\":\"a\","
                    "\"ok\":true,\"detail\":\"exit 0\",\"duration_ms\":1},"
                    "{\"seq\":5,\"at\":1,\"op\":\"exec\",\"target\":\"dup\",\"ok\":true,"
                    "\"detail\":\"\"},{\"seq\":7,\"op\":\"exec\"},{\"seq\":8,\"at\":2,"
                    "\"op\":\"read\",\"target\":\"b\",\"ok\":\"yes\",\"detail\":\"\"},"
                    "{\"seq\":9,\"at\":3,\"op\":\"ls\",\"target\":\"c\",\"ok\":false,"
                    "\"detail\":\"gone\"}],\"latest_seq\":12}",
                    0, &jerr);
  ok (sbxd_events_restore (back, doc) == 0, "a log with bad entries is read");
  json_decref (doc);
  doc = sbxd_events_json (back, 0);
  list = json_object_get (doc, "events");
  ok (json_array_size (list) == 2
          && json_integer_value (json_object_get (json_array_get (list, 0), "seq")) == 5
          && json_integer_value (json_object_get (json_array_get (list, 1), "seq")) == 9
          && json_integer_value (json_object_get (doc, "latest_seq")) == 12,
      "only its good entries, in order; its latest_seq kept");
  json_decref (doc);
  doc = json_loads ("{\"events\":{}}", 0, &jerr);
  ok (sbxd_events_restore (back, doc) == -1, "not a log: refused");
  json_decref (doc);
  sbxd_events_clear (back);
  free (back);
  sbxd_events_clear (ev);
  free (ev);
  return done_testing ();
}
