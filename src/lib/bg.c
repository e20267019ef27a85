/* Background processes: started, read, listed and killed through the agent,
 * which keeps them (and their output) beyond any one connection. And the
 * way to end every process at once. */
#include "sandbox.h"

#include <string.h>

#define MAX_BG_ID 20
#define MAX_BG_COMMAND 1024 /* the agent shows at most this much; bounds a listing */
#define MAX_BG_READ (1u << 20)
/* The agent kills a tree within about 4 s (TERM, then KILL), and every
 * process within 5 s. */
#define BG_KILL_TIMEOUT 10
#define KILL_ALL_TIMEOUT 10

static bool
valid_id (const char *id)
{
  size_t n = id ? strlen (id) : 0;
  return n > 0 && n <= MAX_BG_ID && strspn (id, "0123456789") == n;
}

SBX_EXPORT void
sbx_bg_info_clear (sbx_bg_info_t *info)
{
  if (info == NULL)
    return;
  free (info->id);
  free (info->command);
  memset (info, 0, sizeof *info);
}

SBX_EXPORT void
sbx_bg_info_list_free (sbx_bg_info_t *items, size_t count)
{
  for (size_t i = 0; items && i < count; i++)
    sbx_bg_info_clear (&items[i]);
  free (items);
}

static int
parse_info (sbx_sandbox_t *sb, const sbx_msg_t *msg, sbx_bg_info_t *info, sbx_error_t **err)
{
  const uint8_t *id, *cmd;
  size_t idn, cmdn;
  int64_t pid, flags, code = 0, dropped = 0;
  int r;
  if ((r = sbx_agent_bytes (sb, msg, SBX_T_ID, MAX_BG_ID, &id, &idn, err)) < 0
      || (r = sbx_agent_bytes (sb, msg, SBX_T_COMMAND, MAX_BG_COMMAND, &cmd, &cmdn, err)) < 0
      || (r = sbx_agent_int (sb, msg, SBX_T_PID, 0, INT32_MAX, &pid, err)) < 0
      || (r = sbx_agent_int (sb, msg, SBX_T_FLAGS, 0, INT32_MAX, &flags, err)) < 0
      || (sbx_msg_field (msg, SBX_T_EXIT_CODE)
          && (r = sbx_agent_int (sb, msg, SBX_T_EXIT_CODE, 0, 255, &code, err)) < 0)
      || (sbx_msg_field (msg, SBX_T_DROPPED)
          && (r = sbx_agent_int (sb, msg, SBX_T_DROPPED, 0, INT64_MAX, &dropped, err)) < 0))
    return r;
  memset (info, 0, sizeof *info);
  info->id = strndup ((const char *) id, idn);
  info->command = sbx_utf8_sanitize ((const char *) cmd, cmdn);
  info->pid = pid;
  info->running = flags & SBX_F_RUNNING;
  info->exit_code = (int) code;
  info->dropped = (uint64_t) dropped;
  if (!info->id || !info->command || !valid_id (info->id))
    {
      sbx_bg_info_clear (info);
      return sbx_agent_protocol_error (sb, "invalid process report", err);
    }
  return 0;
}

SBX_EXPORT int
sbx_bg_start (sbx_sandbox_t *sb, const char *command, const sbx_exec_opts_t *opts, char **id,
              sbx_error_t **err)
{
  int r = sbx_sandbox_ensure (sb, err);
  if (r == 0)
    r = sbx_exec_frame (sb, SBX_M_BG_START, command, opts, err);
  if (r < 0)
    return r;
  sbx_frame_end (&sb->out);
  sbx_msg_t msg;
  if ((r = sbx_agent_flush (sb, err)) < 0
      || (r = sbx_agent_recv (sb, &msg, sbx_agent_deadline (0), err)) < 0)
    return r;
  if (msg.type != SBX_M_OK)
    return sbx_agent_fail (sb, &msg, err);
  const uint8_t *s;
  size_t n;
  if ((r = sbx_agent_bytes (sb, &msg, SBX_T_ID, MAX_BG_ID, &s, &n, err)) < 0)
    return r;
  char *copy = strndup ((const char *) s, n);
  if (copy == NULL || !valid_id (copy))
    {
      free (copy);
      return sbx_agent_protocol_error (sb, "invalid process id", err);
    }
  *id = copy;
  return 0;
}

/* Sends a request naming background process ID. */
static int
request_id (sbx_sandbox_t *sb, uint8_t type, const char *id, sbx_error_t **err)
{
  if (!valid_id (id))
    return sbx_error_set (err, SBX_E_NO_PROCESS,
                          "no background process '%s' (ids are numbers; list "
                          "them with bg ls)",
                          id ? id : "");
  int r = sbx_sandbox_ensure (sb, err);
  if (r < 0)
    return r;
  sbx_frame_begin (&sb->out, type);
  sbx_frame_str (&sb->out, SBX_T_ID, id);
  sbx_frame_end (&sb->out);
  return sbx_agent_flush (sb, err);
}

SBX_EXPORT int
sbx_bg_read (sbx_sandbox_t *sb, const char *id, char **output, size_t *len, sbx_bg_info_t *info,
             sbx_error_t **err)
{
  int r = request_id (sb, SBX_M_BG_READ, id, err);
  if (r < 0)
    return r;
  sbx_buf_t buf;
  sbx_buf_init (&buf);
  bool have_info = false;
  sbx_bg_info_t got = { 0 };
  double deadline = sbx_agent_deadline (0);
  for (;;)
    {
      sbx_msg_t msg;
      const uint8_t *data;
      size_t n;
      if ((r = sbx_agent_recv (sb, &msg, deadline, err)) < 0)
        break;
      if (msg.type == SBX_M_END && have_info)
        break;
      if (msg.type == SBX_M_DATA && !have_info)
        {
          if ((r = sbx_agent_bytes (sb, &msg, SBX_T_DATA, SBX_PROTO_CHUNK, &data, &n, err)) < 0)
            break;
          if (buf.len + n > MAX_BG_READ)
            {
              r = sbx_agent_protocol_error (sb, "more output than allowed", err);
              break;
            }
          sbx_buf_append (&buf, data, n);
        }
      else if (msg.type == SBX_M_BG_INFO && !have_info)
        {
          if ((r = parse_info (sb, &msg, &got, err)) < 0)
            break;
          have_info = true;
        }
      else
        {
          r = sbx_agent_fail (sb, &msg, err);
          break;
        }
    }
  sbx_buf_append (&buf, "", 1);
  if (r == 0 && buf.failed)
    r = sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  if (r < 0)
    {
      sbx_buf_free (&buf);
      sbx_bg_info_clear (&got);
      return r;
    }
  *len = buf.len - 1;
  *output = (char *) buf.data;
  if (info)
    *info = got;
  else
    sbx_bg_info_clear (&got);
  return 0;
}

SBX_EXPORT int
sbx_bg_kill (sbx_sandbox_t *sb, const char *id, sbx_error_t **err)
{
  sbx_msg_t msg;
  int r = request_id (sb, SBX_M_BG_KILL, id, err);
  if (r == 0)
    r = sbx_agent_recv (sb, &msg, sbx_agent_deadline (BG_KILL_TIMEOUT), err);
  if (r < 0)
    return r;
  return msg.type == SBX_M_OK ? 0 : sbx_agent_fail (sb, &msg, err);
}

SBX_EXPORT int
sbx_bg_list (sbx_sandbox_t *sb, sbx_bg_info_t **items, size_t *count, sbx_error_t **err)
{
  int r = sbx_sandbox_ensure (sb, err);
  if (r < 0)
    return r;
  sbx_frame_begin (&sb->out, SBX_M_BG_LIST);
  sbx_frame_end (&sb->out);
  if ((r = sbx_agent_flush (sb, err)) < 0)
    return r;
  sbx_bg_info_t *v = NULL;
  size_t n = 0, cap = 0;
  double deadline = sbx_agent_deadline (0);
  for (;;)
    {
      sbx_msg_t msg;
      if ((r = sbx_agent_recv (sb, &msg, deadline, err)) < 0)
        break;
      if (msg.type == SBX_M_END)
        break;
      if (msg.type != SBX_M_BG_INFO)
        {
          r = sbx_agent_fail (sb, &msg, err);
          break;
        }
      if (n == cap)
        {
          size_t ncap = cap ? cap * 2 : 16;
          sbx_bg_info_t *nv = ncap <= 16384 ? realloc (v, ncap * sizeof *nv) : NULL;
          if (nv == NULL)
            {
              sbx_agent_disconnect (sb);
              r = sbx_error_set (err, SBX_E_NOMEM, "too many background processes");
              break;
            }
          v = nv;
          cap = ncap;
        }
      if ((r = parse_info (sb, &msg, &v[n], err)) < 0)
        break;
      n++;
    }
  if (r < 0)
    {
      sbx_bg_info_list_free (v, n);
      return r;
    }
  *items = v;
  *count = n;
  return 0;
}

SBX_EXPORT int
sbx_sandbox_kill_all (sbx_sandbox_t *sb, size_t *killed, sbx_error_t **err)
{
  int r = sbx_sandbox_ensure (sb, err);
  if (r < 0)
    return r;
  sbx_frame_begin (&sb->out, SBX_M_KILL_ALL);
  sbx_frame_end (&sb->out);
  sbx_msg_t msg;
  int64_t count;
  if ((r = sbx_agent_flush (sb, err)) < 0
      || (r = sbx_agent_recv (sb, &msg, sbx_agent_deadline (KILL_ALL_TIMEOUT), err)) < 0)
    return r;
  if (msg.type != SBX_M_OK)
    return sbx_agent_fail (sb, &msg, err);
  if ((r = sbx_agent_int (sb, &msg, SBX_T_COUNT, 0, INT32_MAX, &count, err)) < 0)
    return r;
  if (killed)
    *killed = (size_t) count;
  return 0;
}
