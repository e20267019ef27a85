/* Background processes and kill-all, beyond sandboxd's routes:
 *   POST   /sessions/{id}/bg        {command}  -> {id}
 *   GET    /sessions/{id}/bg                   -> [{id, command, pid, running, exit_code}]
 *   GET    /sessions/{id}/bg/{bg}              -> {output (new since the last read),
 *                                                   running, exit_code, dropped}
 *   DELETE /sessions/{id}/bg/{bg}              -> 204 (its process tree killed)
 *   POST   /sessions/{id}/kill_all             -> {killed}
 * The processes live in the agent, so they outlive the request that
 * started them (not a hibernation: a stopped sandbox loses them). */
#include "sbxd.h"

#include <string.h>

static json_t *
bg_json (const sbx_bg_info_t *b)
{
  cleanup_free char *command = sbx_utf8_sanitize_copy (b->command ? b->command : "",
                                                       b->command ? strlen (b->command) : 0);
  return json_pack ("{s:s,s:s*,s:I,s:b,s:o}", "id", b->id, "command", command, "pid",
                    (json_int_t) b->pid, "running", b->running, "exit_code",
                    b->running ? json_null () : json_integer (b->exit_code));
}

static int
failed (sbxd_fail_t *f, sbx_error_t *err, bool *broken)
{
  int code = sbx_error_code (err);
  int r;
  *broken = code == SBX_E_GONE || code == SBX_E_AGENT || code == SBX_E_PROTOCOL
            || code == SBX_E_ENGINE;
  if (code == SBX_E_NO_PROCESS)
    r = sbxd_fail (f, 404, "%s", sbx_error_message (err));
  else if (code == SBX_E_TIMEOUT)
    r = sbxd_fail (f, 504, "%s", sbx_error_message (err));
  else if (code == SBX_E_LIMIT || code == SBX_E_INVALID)
    r = sbxd_fail (f, code == SBX_E_LIMIT ? 429 : 422, "%s", sbx_error_message (err));
  else
    r = sbxd_fail (f, 502, "%s", sbx_error_message (err));
  sbx_error_free (err);
  return r;
}

int
sbxd_op_process (sbxd_registry_t *reg, sbxd_session_t *s, const char *method, const char *what,
                 const char *bg_id, json_t *body, json_t **reply, sbxd_fail_t *f)
{
  *reply = NULL;
  bool kill_all = strcmp (what, "kill_all") == 0;
  const char *command = NULL;
  if (strcmp (method, "POST") == 0 && !kill_all)
    {
      sbxd_invalid_t inv = { 0 };
      command = sbxd_field_str (body, "command", true, &inv);
      if (inv.list)
        {
          *reply = inv.list;
          return sbxd_fail (f, 422, "invalid request");
        }
    }
  double started = sbx_now ();
  sbx_sandbox_t *sb = NULL;
  if (sbxd_session_get (reg, s, &sb, f) < 0)
    return -1;
  sbx_error_t *err = NULL;
  bool broken = false;
  int r = 0;
  cleanup_free char *target = NULL;
  if (kill_all)
    {
      size_t killed = 0;
      r = sbx_sandbox_kill_all (sb, &killed, &err);
      if (r == 0)
        *reply = json_pack ("{s:I}", "killed", (json_int_t) killed);
    }
  else if (command)
    {
      char *id = NULL;
      sbx_exec_opts_t opts;
      sbx_exec_opts_init (&opts);
      r = sbx_bg_start (sb, command, &opts, &id, &err);
      if (r == 0)
        *reply = json_pack ("{s:s}", "id", id);
      free (id);
      target = strdup (command);
    }
  else if (bg_id == NULL)
    {
      sbx_bg_info_t *items = NULL;
      size_t n = 0;
      r = sbx_bg_list (sb, &items, &n, &err);
      json_t *list = r == 0 ? json_array () : NULL;
      for (size_t i = 0; list && i < n; i++)
        json_array_append_new (list, bg_json (&items[i]));
      sbx_bg_info_list_free (items, n);
      *reply = list;
    }
  else if (strcmp (method, "DELETE") == 0)
    {
      r = sbx_bg_kill (sb, bg_id, &err);
      if (r == 0)
        *reply = json_null ();
      target = strdup (bg_id);
    }
  else
    {
      char *out = NULL;
      size_t len = 0;
      sbx_bg_info_t info = { 0 };
      r = sbx_bg_read (sb, bg_id, &out, &len, &info, &err);
      if (r == 0)
        {
          cleanup_free char *text = sbx_utf8_sanitize_copy (out ? out : "", len);
          *reply = json_pack ("{s:s*,s:b,s:o,s:I}", "output", text, "running", info.running,
                              "exit_code",
                              info.running ? json_null () : json_integer (info.exit_code),
                              "dropped", (json_int_t) info.dropped);
        }
      free (out);
      sbx_bg_info_clear (&info);
    }
  if (r < 0)
    r = failed (f, err, &broken);
  else if (*reply == NULL)
    r = sbxd_fail (f, 500, "out of memory");
  sbxd_session_put (s, sb, broken);
  if (kill_all || target)
    sbxd_session_event (s,
                        kill_all  ? "kill_all"
                        : command ? "bg"
                                  : "bg_kill",
                        target ? target : "", r == 0, r == 0 ? "" : f->detail, started);
  return r;
}
