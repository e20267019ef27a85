/* The nine operation routes, answered as sandboxd answers them: a failed
 * operation (a missing file, a non-zero exit) is a 200 with the failure in
 * the body; only the service's own failures are HTTP errors. Every
 * operation is logged in the session's events (never its payload). */
#include "sbxd.h"

#include "base64.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------ validation */

void
sbxd_invalid_add (sbxd_invalid_t *inv, const char *where, const char *field, const char *msg,
                  const char *type)
{
  if (inv->list == NULL)
    inv->list = json_array ();
  json_t *loc = field ? json_pack ("[s,s]", where, field) : json_pack ("[s]", where);
  json_array_append_new (inv->list,
                         json_pack ("{s:o*,s:s,s:s}", "loc", loc, "msg", msg, "type", type));
}

const char *
sbxd_field_str (json_t *body, const char *name, bool required, sbxd_invalid_t *inv)
{
  json_t *v = json_object_get (body, name);
  if (v == NULL || json_is_null (v))
    {
      if (required)
        sbxd_invalid_add (inv, "body", name, "Field required", "missing");
      return NULL;
    }
  if (!json_is_string (v))
    {
      sbxd_invalid_add (inv, "body", name, "Input should be a valid string", "string_type");
      return NULL;
    }
  if (memchr (json_string_value (v), '\0', json_string_length (v)))
    {
      sbxd_invalid_add (inv, "body", name, "String should not contain a NUL character",
                        "string_nul");
      return NULL;
    }
  return json_string_value (v);
}

bool
sbxd_field_bool (json_t *body, const char *name, bool dflt, sbxd_invalid_t *inv)
{
  json_t *v = json_object_get (body, name);
  if (v == NULL)
    return dflt;
  if (!json_is_boolean (v))
    {
      sbxd_invalid_add (inv, "body", name, "Input should be a valid boolean", "bool_type");
      return dflt;
    }
  return json_is_true (v);
}

int64_t
sbxd_field_int (json_t *body, const char *name, int64_t dflt, int64_t min, sbxd_invalid_t *inv)
{
  json_t *v = json_object_get (body, name);
  if (v == NULL || json_is_null (v))
    return dflt;
  if (!json_is_integer (v))
    {
      sbxd_invalid_add (inv, "body", name, "Input should be a valid integer", "int_type");
      return dflt;
    }
  int64_t n = json_integer_value (v);
  if (n < min)
    {
      char msg[96];
      snprintf (msg, sizeof msg, "Input should be greater than or equal to %lld", (long long) min);
      sbxd_invalid_add (inv, "body", name, msg, "greater_than_equal");
      return dflt;
    }
  return n;
}

/* ------------------------------------------------------------ operations */

typedef struct op_ctx
{
  sbxd_registry_t *reg;
  sbxd_session_t *s;
  sbx_sandbox_t *sb;
  json_t *body;
  int client_fd; /* its hang-up cancels exec; -1: none */
  sbxd_invalid_t inv;
  bool broken; /* the sandbox was lost: the handle is not kept */
  /* The event: */
  char *target;
  char *detail;
  bool ok;
} op_ctx_t;

/* Whether ERR means the service failed (an HTTP error) rather than the
 * operation (a 200 with the failure in its body). */
static int
service_error (op_ctx_t *c, sbx_error_t *err, sbxd_fail_t *f)
{
  int code = sbx_error_code (err);
  if (code == SBX_E_TIMEOUT)
    return sbxd_fail (f, 504, "Operation exceeded the %.0fs service ceiling",
                      sbxd_registry_config (c->reg)->execute_timeout);
  if (code == SBX_E_GONE || code == SBX_E_AGENT || code == SBX_E_PROTOCOL || code == SBX_E_ENGINE
      || code == SBX_E_NOMEM)
    {
      c->broken = code != SBX_E_NOMEM;
      return sbxd_fail (f, 502, "The sandbox of session %s failed: %s%s", sbxd_session_id (c->s),
                        sbx_error_message (err),
                        c->broken ? " (it is replaced on the next request)" : "");
    }
  return 0;
}

static void set_detail (op_ctx_t *c, bool ok, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));
static void
set_detail (op_ctx_t *c, bool ok, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  free (c->detail);
  c->detail = sbx_strdup_vprintf (fmt, ap);
  va_end (ap);
  c->ok = ok;
}

/* After a libsbx call that returned R: when *ERR is the service's failure
 * (not the operation's), F says it, the event logs it and *ERR is freed. */
static bool
service_failed (op_ctx_t *c, int r, sbx_error_t **err, sbxd_fail_t *f)
{
  if (r == 0 || service_error (c, *err, f) == 0)
    return false;
  set_detail (c, false, "%s", f->detail);
  sbx_error_free (*err);
  *err = NULL;
  return true;
}

static int
op_exec (op_ctx_t *c, json_t **reply, sbxd_fail_t *f)
{
  const char *command = sbxd_field_str (c->body, "command", true, &c->inv);
  int64_t timeout = sbxd_field_int (c->body, "timeout_seconds", 0, INT64_MIN, &c->inv);
  if (c->inv.list)
    return -1;
  c->target = strdup (command);
  double ceiling = sbxd_registry_config (c->reg)->execute_timeout;
  sbx_exec_opts_t opts;
  sbx_exec_opts_init (&opts);
  /* min(timeout_seconds, the ceiling); none or not positive: the ceiling. */
  opts.timeout = timeout > 0 && (double) timeout < ceiling ? (double) timeout : ceiling;
  opts.max_output = SBX_DEFAULT_MAX_OUTPUT;
  opts.cancel_fd = c->client_fd;
  sbx_exec_result_t res = { 0 };
  sbx_error_t *err = NULL;
  int r = sbx_exec (c->sb, command, &opts, &res, &err);
  if (service_failed (c, r, &err, f))
    return -1;
  if (r < 0)
    {
      /* A command the sandbox could not start (its pids limit, ...). */
      *reply = json_pack ("{s:s,s:i,s:b}", "output", sbx_error_message (err), "exit_code", 1,
                          "truncated", false);
      set_detail (c, false, "%s", sbx_error_message (err));
      sbx_error_free (err);
      return 0;
    }
  char *out = sbx_utf8_sanitize_copy (res.output ? res.output : "", res.output_len);
  *reply = out ? json_pack ("{s:s,s:i,s:b}", "output", out, "exit_code", res.exit_code, "truncated",
                            res.truncated)
               : NULL;
  free (out);
  if (res.cancelled)
    set_detail (c, false, "cancelled: the client went away");
  else
    set_detail (c, res.exit_code == 0, "exit %d", res.exit_code);
  sbx_exec_result_free (&res);
  return 0;
}

typedef struct bounded
{
  char *data;
  size_t len, max;
  double deadline; /* sbx_now () */
  bool over, late;
} bounded_t;

static int
bounded_add (const void *data, size_t len, void *ud)
{
  bounded_t *b = ud;
  if (b->len + len > b->max)
    {
      b->over = true;
      return 1;
    }
  if (sbx_now () > b->deadline)
    {
      b->late = true;
      return 1;
    }
  char *grown = realloc (b->data, b->len + len + 1);
  if (grown == NULL)
    return 1;
  memcpy (grown + b->len, data, len);
  b->data = grown;
  b->len += len;
  b->data[b->len] = '\0';
  return 0;
}

/* The whole file, at most max_read_bytes: 0; else the error's code, or
 * SBX_E_TOO_LARGE, with *ERR set (the caller frees). */
static int
read_whole (op_ctx_t *c, const char *path, bounded_t *b, sbx_error_t **err)
{
  sbxd_config_t *config = sbxd_registry_config (c->reg);
  b->max = config->max_read_bytes;
  b->deadline = sbx_now () + config->execute_timeout;
  int r = sbx_read_stream (c->sb, path, bounded_add, b, err);
  /* Stopped by the bounds: the bound is the error, not the stop. */
  if (b->over || b->late)
    {
      sbx_error_free (*err);
      *err = NULL;
      return b->over ? sbx_error_set (err, SBX_E_TOO_LARGE, "'%s' is larger than %zu bytes", path,
                                      b->max)
                     : sbx_error_set (err, SBX_E_TIMEOUT, "reading '%s' took too long", path);
    }
  if (r == 0 && b->data == NULL)
    b->data = calloc (1, 1);
  return r;
}

static int
op_read (op_ctx_t *c, json_t **reply, sbxd_fail_t *f)
{
  const char *path = sbxd_field_str (c->body, "path", true, &c->inv);
  int64_t offset = sbxd_field_int (c->body, "offset", 0, 0, &c->inv);
  int64_t limit = sbxd_field_int (c->body, "limit", 2000, 1, &c->inv);
  if (c->inv.list)
    return -1;
  c->target = strdup (path);
  bounded_t b = { 0 };
  sbx_error_t *err = NULL;
  cleanup_free char *text = NULL;
  int r = read_whole (c, path, &b, &err);
  if (service_failed (c, r, &err, f))
    {
      free (b.data);
      return -1;
    }
  if (r < 0)
    text = sbx_error_code (err) == SBX_E_NOT_FOUND
               ? sbx_strdup_printf ("Error: File '%s' not found", path)
               : sbx_strdup_printf ("[Error: %s]", sbx_error_message (err));
  else if (memchr (b.data, '\0', b.len))
    text = sbx_strdup_printf ("[Error: '%s' is not a text file (it holds NUL bytes); use "
                              "read_bytes]",
                              path);
  else
    text = sbxd_read_format (b.data, b.len, offset, limit);
  /* As sandboxd logs a read: the answer's length; ok unless it is an error. */
  bool ok = r == 0 && text && text[0] != '[';
  set_detail (c, ok, "%zu chars", text ? strlen (text) : 0);
  sbx_error_free (err);
  free (b.data);
  *reply = text ? json_pack ("{s:s}", "content", text) : NULL;
  return 0;
}

static int
op_read_bytes (op_ctx_t *c, json_t **reply, sbxd_fail_t *f)
{
  const char *path = sbxd_field_str (c->body, "path", true, &c->inv);
  if (c->inv.list)
    return -1;
  c->target = strdup (path);
  bounded_t b = { 0 };
  sbx_error_t *err = NULL;
  int r = read_whole (c, path, &b, &err);
  if (service_failed (c, r, &err, f))
    {
      free (b.data);
      return -1;
    }
  /* "" for a file missing, unreadable or too large, as sandboxd answers. */
  cleanup_free char *b64 = r == 0 ? sbx_base64_encode (b.data, b.len) : strdup ("");
  if (r < 0)
    set_detail (c, false, "%s", sbx_error_message (err));
  else
    set_detail (c, true, "%zu bytes", b.len);
  sbx_error_free (err);
  free (b.data);
  *reply = b64 ? json_pack ("{s:s}", "content_b64", b64) : NULL;
  return 0;
}

static int
op_write (op_ctx_t *c, json_t **reply, sbxd_fail_t *f)
{
  const char *path = sbxd_field_str (c->body, "path", true, &c->inv);
  const char *b64 = sbxd_field_str (c->body, "content_b64", true, &c->inv);
  if (c->inv.list)
    return -1;
  c->target = strdup (path);
  unsigned char *data = NULL;
  size_t len = 0;
  const char *why = NULL;
  int d = sbx_base64_decode (b64, strlen (b64), &data, &len, &why);
  if (d == -2)
    return sbxd_fail (f, 500, "out of memory");
  if (d < 0)
    {
      set_detail (c, false, "content_b64 is not valid base64");
      return sbxd_fail (f, 400, "content_b64 is not valid base64: %s", why);
    }
  sbx_error_t *err = NULL;
  int r = sbx_write (c->sb, path, data, len, &err);
  free (data);
  if (service_failed (c, r, &err, f))
    return -1;
  cleanup_free char *abs = sbx_path_resolve (sbx_sandbox_workdir (c->sb), path);
  if (r < 0)
    {
      *reply = json_pack ("{s:n,s:s}", "path", "error", sbx_error_message (err));
      set_detail (c, false, "%s", sbx_error_message (err));
    }
  else
    {
      *reply = json_pack ("{s:s*,s:n}", "path", abs, "error");
      set_detail (c, true, "%zu bytes", len);
    }
  sbx_error_free (err);
  return 0;
}

static int
op_edit (op_ctx_t *c, json_t **reply, sbxd_fail_t *f)
{
  const char *path = sbxd_field_str (c->body, "path", true, &c->inv);
  const char *old_s = sbxd_field_str (c->body, "old_string", true, &c->inv);
  const char *new_s = sbxd_field_str (c->body, "new_string", true, &c->inv);
  bool all = sbxd_field_bool (c->body, "replace_all", false, &c->inv);
  if (c->inv.list)
    return -1;
  c->target = strdup (path);
  size_t n = 0;
  sbx_error_t *err = NULL;
  int r = sbx_edit (c->sb, path, old_s, new_s, all, &n, &err);
  if (service_failed (c, r, &err, f))
    return -1;
  cleanup_free char *abs = sbx_path_resolve (sbx_sandbox_workdir (c->sb), path);
  if (r == 0)
    {
      *reply = json_pack ("{s:s*,s:n,s:I}", "path", abs, "error", "occurrences", (json_int_t) n);
      set_detail (c, true, "%zu replaced", n);
      return 0;
    }
  int code = sbx_error_code (err);
  cleanup_free char *msg
      = code == SBX_E_NOT_FOUND       ? sbx_strdup_printf ("File '%s' not found", path)
        : code == SBX_E_EDIT_NO_MATCH ? sbx_strdup_printf ("String '%s' not found in file", old_s)
        : code == SBX_E_EDIT_AMBIGUOUS
            ? sbx_strdup_printf ("String '%s' found %zu times. Use replace_all=True to replace all "
                                 "occurrences, or add more context to make it unique",
                                 old_s, n)
            : strdup (sbx_error_message (err));
  *reply = json_pack ("{s:n,s:s*,s:n}", "path", "error", msg, "occurrences");
  set_detail (c, false, "%s", msg ? msg : "out of memory");
  sbx_error_free (err);
  return 0;
}

static int
op_exists (op_ctx_t *c, json_t **reply, sbxd_fail_t *f)
{
  const char *path = sbxd_field_str (c->body, "path", true, &c->inv);
  if (c->inv.list)
    return -1;
  c->target = strdup (path);
  sbx_path_info_t info = { 0 };
  sbx_error_t *err = NULL;
  int r = sbx_resolve (c->sb, path, &info, &err);
  if (service_failed (c, r, &err, f))
    return -1;
  bool exists = r == 0 && info.exists && info.is_file;
  sbx_path_info_clear (&info);
  sbx_error_free (err);
  *reply = json_pack ("{s:b}", "exists", exists);
  set_detail (c, true, exists ? "found" : "missing");
  return 0;
}

static json_t *
entries_json (const sbx_file_list_t *list, bool sizes)
{
  json_t *a = json_array ();
  for (size_t i = 0; a && i < list->count; i++)
    {
      const sbx_file_info_t *e = &list->items[i];
      char *name = sbx_utf8_sanitize_copy (e->name, strlen (e->name));
      char *path = sbx_utf8_sanitize_copy (e->path, strlen (e->path));
      json_t *size = sizes ? json_integer ((json_int_t) e->size) : json_null ();
      if (json_array_append_new (a, json_pack ("{s:s*,s:s*,s:b,s:o*}", "name", name, "path", path,
                                               "is_dir", e->is_dir, "size", size))
          < 0)
        {
          json_decref (a);
          a = NULL;
        }
      free (name);
      free (path);
    }
  return a;
}

static int
op_list (op_ctx_t *c, bool glob, json_t **reply, sbxd_fail_t *f)
{
  const char *pattern = glob ? sbxd_field_str (c->body, "pattern", true, &c->inv) : NULL;
  const char *path = sbxd_field_str (c->body, "path", !glob, &c->inv);
  if (c->inv.list)
    return -1;
  if (path == NULL)
    path = "/";
  c->target = glob ? sbx_strdup_printf ("%s in %s", pattern, path) : strdup (path);
  sbx_file_list_t list = { 0 };
  sbx_error_t *err = NULL;
  sbx_list_opts_t bounds = { .max_bytes = sbxd_registry_config (c->reg)->max_read_bytes };
  int r = glob ? sbx_glob (c->sb, pattern, path, &bounds, &list, &err)
               : sbx_ls (c->sb, path, &bounds, &list, &err);
  if (service_failed (c, r, &err, f))
    return -1;
  /* A listing that fails is an empty one, as sandboxd answers. */
  *reply = entries_json (&list, !glob);
  set_detail (c, true, "%zu entries", list.count);
  sbx_file_list_free (&list);
  sbx_error_free (err);
  return 0;
}

static int
op_grep (op_ctx_t *c, json_t **reply, sbxd_fail_t *f)
{
  const char *pattern = sbxd_field_str (c->body, "pattern", true, &c->inv);
  const char *path = sbxd_field_str (c->body, "path", false, &c->inv);
  const char *glob = sbxd_field_str (c->body, "glob", false, &c->inv);
  bool ignore_hidden = sbxd_field_bool (c->body, "ignore_hidden", true, &c->inv);
  if (c->inv.list)
    return -1;
  c->target = strdup (pattern);
  sbx_grep_opts_t opts = { .path = path,
                           .glob = glob,
                           .include_hidden = !ignore_hidden,
                           .max_bytes = sbxd_registry_config (c->reg)->max_read_bytes };
  sbx_grep_result_t res = { 0 };
  sbx_error_t *err = NULL;
  int r = sbx_grep (c->sb, pattern, &opts, &res, &err);
  if (service_failed (c, r, &err, f))
    return -1;
  if (r < 0)
    {
      *reply = json_pack ("{s:[],s:s}", "matches", "error", sbx_error_message (err));
      set_detail (c, false, "%s", sbx_error_message (err));
      sbx_error_free (err);
      return 0;
    }
  json_t *m = json_array ();
  for (size_t i = 0; m && i < res.count; i++)
    {
      char *p = sbx_utf8_sanitize_copy (res.items[i].path, strlen (res.items[i].path));
      char *l = sbx_utf8_sanitize_copy (res.items[i].line, strlen (res.items[i].line));
      json_array_append_new (m, json_pack ("{s:s*,s:I,s:s*}", "path", p, "line_number",
                                           (json_int_t) res.items[i].line_number, "line", l));
      free (p);
      free (l);
    }
  *reply = json_pack ("{s:o*,s:n}", "matches", m, "error");
  set_detail (c, true, "%zu matches", res.count);
  sbx_grep_result_free (&res);
  return 0;
}

/* Each route's fields, checked before the sandbox is touched: a 422
 * wakes nothing and logs no event. */
typedef struct field
{
  const char *name;
  char type; /* s(tring), i(nteger), b(oolean) */
  bool required;
  int64_t min;
} field_t;

static const struct
{
  const char *op;
  field_t fields[5];
} schemas[] = {
  { "exec", { { "command", 's', true, 0 }, { "timeout_seconds", 'i', false, INT64_MIN } } },
  { "read", { { "path", 's', true, 0 }, { "offset", 'i', false, 0 }, { "limit", 'i', false, 1 } } },
  { "read_bytes", { { "path", 's', true, 0 } } },
  { "write", { { "path", 's', true, 0 }, { "content_b64", 's', true, 0 } } },
  { "edit",
    { { "path", 's', true, 0 },
      { "old_string", 's', true, 0 },
      { "new_string", 's', true, 0 },
      { "replace_all", 'b', false, 0 } } },
  { "exists", { { "path", 's', true, 0 } } },
  { "ls", { { "path", 's', true, 0 } } },
  { "glob", { { "pattern", 's', true, 0 }, { "path", 's', false, 0 } } },
  { "grep",
    { { "pattern", 's', true, 0 },
      { "path", 's', false, 0 },
      { "glob", 's', false, 0 },
      { "ignore_hidden", 'b', false, 0 } } },
};
_Static_assert(sizeof schemas / sizeof *schemas == SBXD_N_OPS, "SBXD_N_OPS is the ops' count");

const char *
sbxd_op_name (size_t i)
{
  return i < SBXD_N_OPS ? schemas[i].op : NULL;
}

bool
sbxd_op_known (const char *op)
{
  for (size_t i = 0; i < sizeof schemas / sizeof *schemas; i++)
    if (strcmp (op, schemas[i].op) == 0)
      return true;
  return false;
}

/* Adds to INV what BODY gets wrong for OP's route. */
void
sbxd_op_validate (const char *op, json_t *body, sbxd_invalid_t *inv)
{
  for (size_t i = 0; i < sizeof schemas / sizeof *schemas; i++)
    {
      if (strcmp (op, schemas[i].op) != 0)
        continue;
      for (const field_t *fl = schemas[i].fields; fl < schemas[i].fields + 5 && fl->name; fl++)
        {
          if (fl->type == 's')
            sbxd_field_str (body, fl->name, fl->required, inv);
          else if (fl->type == 'i')
            sbxd_field_int (body, fl->name, 0, fl->min, inv);
          else
            sbxd_field_bool (body, fl->name, false, inv);
        }
    }
}

static int
dispatch (op_ctx_t *c, const char *op, json_t **reply, sbxd_fail_t *f)
{
  if (strcmp (op, "exec") == 0)
    return op_exec (c, reply, f);
  if (strcmp (op, "read") == 0)
    return op_read (c, reply, f);
  if (strcmp (op, "read_bytes") == 0)
    return op_read_bytes (c, reply, f);
  if (strcmp (op, "write") == 0)
    return op_write (c, reply, f);
  if (strcmp (op, "edit") == 0)
    return op_edit (c, reply, f);
  if (strcmp (op, "exists") == 0)
    return op_exists (c, reply, f);
  if (strcmp (op, "ls") == 0 || strcmp (op, "glob") == 0)
    return op_list (c, op[0] == 'g', reply, f);
  if (strcmp (op, "grep") == 0)
    return op_grep (c, reply, f);
  return sbxd_fail (f, 404, "Not Found");
}

int
sbxd_op_run (sbxd_registry_t *reg, sbxd_session_t *s, const char *op, json_t *body, int client_fd,
             json_t **reply, sbxd_fail_t *f)
{
  *reply = NULL;
  op_ctx_t c = { .reg = reg, .s = s, .body = body, .client_fd = client_fd };
  sbxd_op_validate (op, body, &c.inv);
  if (c.inv.list)
    {
      *reply = c.inv.list;
      return sbxd_fail (f, 422, "invalid request");
    }
  double started = sbx_now ();
  int r = sbxd_session_get (reg, s, &c.sb, f);
  if (r == 0)
    {
      r = dispatch (&c, op, reply, f);
      sbxd_session_put (s, c.sb, c.broken);
    }
  if (r == 0 && *reply == NULL)
    r = sbxd_fail (f, 500, "out of memory");
  sbxd_session_event (s, op, c.target ? c.target : "", r == 0 && c.ok,
                      c.detail ? c.detail : (f->detail ? f->detail : ""), started);
  sbxd_metrics_op (op, r == 0 && c.ok, sbx_now () - started);
  free (c.target);
  free (c.detail);
  json_decref (c.inv.list);
  return r;
}

json_t *
sbxd_op_schema (const char *op)
{
  if (strcmp (op, "bg") == 0)
    return json_pack ("{s:s,s:{s:{s:s}},s:[s]}", "type", "object", "properties", "command", "type",
                      "string", "required", "command");
  for (size_t i = 0; i < sizeof schemas / sizeof *schemas; i++)
    if (strcmp (op, schemas[i].op) == 0)
      {
        json_t *props = json_object (), *required = json_array ();
        for (const field_t *fl = schemas[i].fields;
             props && required && fl < schemas[i].fields + 5 && fl->name; fl++)
          {
            const char *type = fl->type == 's' ? "string" : fl->type == 'i' ? "integer" : "boolean";
            json_t *p = json_pack ("{s:s}", "type", type);
            if (p && fl->type == 'i' && fl->min != INT64_MIN)
              json_object_set_new (p, "minimum", json_integer (fl->min));
            json_object_set_new (props, fl->name, p);
            if (fl->required)
              json_array_append_new (required, json_string (fl->name));
          }
        return json_pack ("{s:s,s:o*,s:o*}", "type", "object", "properties", props, "required",
                          required);
      }
  return NULL;
}

/* ------------------------------------------------------------ exec_stream */

typedef struct stream_job
{
  sbxd_registry_t *reg;
  sbxd_session_t *s;
  sbx_sandbox_t *sb;
  sbxd_stream_t *st;
  char *command;
  int client_fd; /* a copy of the client's socket: its hang-up cancels the command */
  double timeout, ceiling, started;
} stream_job_t;

/* One server-sent event: EVENT with DOC as its data (one line of JSON). */
static int
send_event (sbxd_stream_t *st, const char *event, json_t *doc, double timeout)
{
  cleanup_free char *data = doc ? json_dumps (doc, JSON_COMPACT) : NULL;
  json_decref (doc);
  cleanup_free char *text = data ? sbx_strdup_printf ("event: %s\ndata: %s\n\n", event, data)
                                 : NULL;
  return text ? sbxd_stream_write (st, text, strlen (text), timeout) : -1;
}

static int
stream_output (enum sbx_stream stream, const char *data, size_t len, void *userdata)
{
  stream_job_t *j = userdata;
  cleanup_free char *text = sbx_utf8_sanitize_copy (data, len);
  json_t *doc = text ? json_pack ("{s:s,s:s}", "stream", stream == SBX_STDERR ? "stderr" : "stdout",
                                  "text", text)
                     : NULL;
  /* A client gone (or not reading for the whole ceiling) cancels the command. */
  return send_event (j->st, "output", doc, j->ceiling) < 0;
}

static void
stream_run (void *arg)
{
  stream_job_t *j = arg;
  sbx_exec_opts_t opts;
  sbx_exec_opts_init (&opts);
  opts.timeout = j->timeout;
  opts.max_output = SBX_DEFAULT_MAX_OUTPUT;
  opts.separate_streams = true; /* each chunk says its stream */
  opts.on_output = stream_output;
  opts.userdata = j;
  opts.cancel_fd = j->client_fd;
  sbx_exec_result_t res = { 0 };
  sbx_error_t *err = NULL;
  int r = sbx_exec (j->sb, j->command, &opts, &res, &err);
  int code = r < 0 ? sbx_error_code (err) : 0;
  bool broken = code == SBX_E_GONE || code == SBX_E_AGENT || code == SBX_E_PROTOCOL
                || code == SBX_E_ENGINE;
  cleanup_free char *detail = r < 0           ? strdup (sbx_error_message (err))
                              : res.cancelled ? strdup ("cancelled: the client went away")
                                              : sbx_strdup_printf ("exit %d", res.exit_code);
  if (r < 0)
    send_event (j->st, "error", json_pack ("{s:s}", "detail", sbx_error_message (err)), j->ceiling);
  else if (!res.cancelled)
    send_event (j->st, "exit",
                json_pack ("{s:i,s:b,s:b}", "exit_code", res.exit_code, "truncated", res.truncated,
                           "timed_out", res.timed_out),
                j->ceiling);
  sbxd_stream_end (j->st);
  sbxd_session_put (j->s, j->sb, broken);
  sbxd_session_event (j->s, "exec", j->command, r == 0 && !res.cancelled && res.exit_code == 0,
                      detail ? detail : "", j->started);
  sbxd_metrics_op ("exec", r == 0 && res.exit_code == 0, sbx_now () - j->started);
  sbx_exec_result_free (&res);
  sbx_error_free (err);
  sbxd_stream_unref (j->st);
  sbxd_session_unref (j->s);
  if (j->client_fd >= 0)
    close (j->client_fd);
  free (j->command);
  free (j);
}

int
sbxd_op_exec_stream (sbxd_registry_t *reg, sbxd_session_t *s, json_t *body, int client_fd,
                     sbxd_reply_t *reply, json_t **invalid, sbxd_fail_t *f)
{
  sbxd_invalid_t inv = { 0 };
  sbxd_op_validate ("exec", body, &inv);
  if (inv.list)
    {
      *invalid = inv.list;
      return sbxd_fail (f, 422, "invalid request");
    }
  stream_job_t *j = calloc (1, sizeof *j);
  if (j == NULL)
    return sbxd_fail (f, 500, "out of memory");
  int64_t timeout = sbxd_field_int (body, "timeout_seconds", 0, INT64_MIN, &inv);
  j->reg = reg;
  j->ceiling = sbxd_registry_config (reg)->execute_timeout;
  j->timeout = timeout > 0 && (double) timeout < j->ceiling ? (double) timeout : j->ceiling;
  j->command = strdup (sbxd_field_str (body, "command", true, &inv));
  j->started = sbx_now ();
  j->st = sbxd_stream_new ();
  if (j->command == NULL || j->st == NULL)
    {
      free (j->command);
      sbxd_stream_unref (j->st);
      free (j);
      return sbxd_fail (f, 500, "out of memory");
    }
  if (sbxd_session_get (reg, s, &j->sb, f) < 0)
    {
      free (j->command);
      sbxd_stream_unref (j->st);
      free (j);
      return -1;
    }
  j->s = sbxd_session_ref (s);
  /* Its own copy: the job outlives the request. */
  j->client_fd = client_fd >= 0 ? fcntl (client_fd, F_DUPFD_CLOEXEC, 0) : -1;
  reply->status = 200;
  reply->stream = sbxd_stream_ref (j->st); /* the reply's; the job keeps its own */
  reply->then = stream_run;
  reply->then_arg = j;
  return 0;
}
