/* Background processes: started by one connection, read, listed and killed
 * by any later one. Their state lives in the agent's memory, out of reach
 * of the sandbox: the command line, the pid, the output not yet read (each
 * process's up to OUTPUT_CAP, all of them together up to TOTAL_CAP; the
 * rest is counted as dropped), and the exit status.
 *
 * IDs are 1, 2, ... A command's leader stays a zombie until it has exited
 * and nothing holds its output pipe any more: until then its pid, the id
 * of its session, is safe to kill by. */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>

#define OUTPUT_CAP (8u << 20)
#define TOTAL_CAP (64u << 20)
#define READ_MAX (1u << 20)
#define MAX_ID_LEN 20
#define MAX_COMMAND_SHOWN 1024 /* for display: bounds what a listing costs the host */
#define MAX_ENTRIES 1024       /* exited ones are forgotten, oldest first, past this */
#define KILL_GRACE_MS 2000     /* from SIGTERM to SIGKILL */
#define GONE_WAIT_MS 2000      /* after SIGKILL, for the tree to be gone */
#define POLL_MS 20

typedef struct bg
{
  struct bg *next;
  char id[MAX_ID_LEN + 1];
  char *command;
  size_t command_len;
  pid_t pid;
  watch_t pipe;     /* combined output; fd -1 at its end */
  sbx_buf_t output; /* unread output, from out_off */
  size_t out_off;
  uint64_t dropped;
  bool exited, reaped;
  int code;
} bg_t;

static bg_t *entries; /* by id */
static size_t nentries;
static unsigned long last_id;
static size_t total_held;

static bg_t *
find (const char *id)
{
  for (bg_t *b = entries; b; b = b->next)
    if (strcmp (b->id, id) == 0)
      return b;
  return NULL;
}

static void
drop_output (bg_t *b)
{
  total_held -= b->output.len - b->out_off;
  sbx_buf_free (&b->output);
  b->out_off = 0;
}

static void
forget (bg_t *b)
{
  for (bg_t **p = &entries; *p; p = &(*p)->next)
    if (*p == b)
      {
        *p = b->next;
        break;
      }
  nentries--;
  drop_output (b);
  free (b->command);
  loop_defer_free (b);
}

/* Reaped once it exited and its pipe ended: from then on, its pid may be
 * another's. */
static void
maybe_reap (bg_t *b)
{
  if (b->exited && b->pipe.fd < 0 && !b->reaped)
    {
      cmd_reap (b->pid);
      b->reaped = true;
    }
}

static void
keep_output (bg_t *b, const char *data, size_t n)
{
  size_t held = b->output.len - b->out_off, keep = n;
  if (keep > OUTPUT_CAP - held)
    keep = OUTPUT_CAP - held;
  if (keep > TOTAL_CAP - total_held)
    keep = TOTAL_CAP - total_held;
  if (keep)
    {
      /* Compact before growing: what was read is gone. */
      if (b->out_off && b->output.len + keep > b->output.cap)
        {
          memmove (b->output.data, b->output.data + b->out_off, held);
          b->output.len = held;
          b->out_off = 0;
        }
      sbx_buf_append (&b->output, data, keep);
      if (b->output.failed)
        {
          b->dropped += b->output.len - b->out_off;
          drop_output (b);
          keep = 0;
        }
      else
        total_held += keep;
    }
  b->dropped += n - keep;
}

static void
on_pipe (watch_t *w, uint32_t events)
{
  (void) events;
  bg_t *b = container_of (w, bg_t, pipe);
  char buf[SBX_PROTO_CHUNK];
  /* Always drained, so that the process never blocks on its output. */
  ssize_t n = read (w->fd, buf, sizeof buf);
  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  if (n <= 0)
    {
      loop_unwatch (w);
      close_fd (&w->fd);
      maybe_reap (b);
      return;
    }
  keep_output (b, buf, (size_t) n);
}

void
bg_children_changed (void)
{
  for (bg_t *b = entries; b; b = b->next)
    if (!b->exited && cmd_exit_status (b->pid, &b->code) != 0)
      {
        b->exited = true;
        maybe_reap (b);
      }
}

/* Room for one more entry: the oldest one that is over goes. */
static bool
make_room (void)
{
  if (nentries < MAX_ENTRIES)
    return true;
  for (bg_t *b = entries; b; b = b->next)
    if (b->reaped)
      {
        forget (b);
        return true;
      }
  return false;
}

void
handle_bg_start (conn_t *c, const sbx_msg_t *m)
{
  cmd_spec_t spec;
  if (cmd_parse (c, m, &spec) < 0)
    return;
  if (!make_room ())
    {
      reply_err (c, SBX_E_LIMIT, "%d background processes are running; kill some first",
                 MAX_ENTRIES);
      cmd_free (&spec);
      return;
    }
  bg_t *b = calloc (1, sizeof *b);
  size_t clen = strlen (spec.command);
  if (clen > MAX_COMMAND_SHOWN)
    clen = MAX_COMMAND_SHOWN;
  int p[2] = { -1, -1 };
  if (b == NULL || (b->command = strndup (spec.command, clen)) == NULL)
    {
      reply_err (c, SBX_E_IO, "out of memory");
      goto fail;
    }
  b->command_len = clen;
  sbx_buf_init (&b->output);
  if (pipe2 (p, O_CLOEXEC) < 0 || fcntl (p[0], F_SETFL, O_NONBLOCK) < 0)
    {
      reply_errno (c, errno, "cannot start a background process");
      goto fail;
    }
  b->pid = cmd_spawn (&spec, -1, p[1], p[1]);
  if (b->pid < 0)
    {
      reply_spawn_error (c, errno, "a background process");
      goto fail;
    }
  close_fd (&p[1]);
  if (loop_watch (&b->pipe, p[0], EPOLLIN, on_pipe) < 0)
    {
      /* It runs, but its output is lost: not worth failing for. */
      agent_log ("background process %ld: cannot watch its output: %s", (long) b->pid,
                 strerror (errno));
      close_fd (&p[0]);
    }
  b->pipe.fd = p[0];
  snprintf (b->id, sizeof b->id, "%lu", ++last_id);
  bg_t **tail = &entries;
  while (*tail)
    tail = &(*tail)->next;
  *tail = b;
  nentries++;
  cmd_free (&spec);
  sbx_frame_begin (&c->out, SBX_M_OK);
  sbx_frame_str (&c->out, SBX_T_ID, b->id);
  sbx_frame_int (&c->out, SBX_T_PID, b->pid);
  sbx_frame_end (&c->out);
  return;
fail:
  close_fd (&p[0]);
  close_fd (&p[1]);
  if (b)
    free (b->command);
  free (b);
  cmd_free (&spec);
}

static void
put_info (conn_t *c, const bg_t *b)
{
  sbx_frame_begin (&c->out, SBX_M_BG_INFO);
  sbx_frame_str (&c->out, SBX_T_ID, b->id);
  sbx_frame_bytes (&c->out, SBX_T_COMMAND, b->command, b->command_len);
  sbx_frame_int (&c->out, SBX_T_PID, b->pid);
  sbx_frame_int (&c->out, SBX_T_FLAGS, b->exited ? 0 : SBX_F_RUNNING);
  if (b->exited)
    sbx_frame_int (&c->out, SBX_T_EXIT_CODE, b->code & 0xff);
  sbx_frame_int (&c->out, SBX_T_DROPPED, (int64_t) b->dropped);
  sbx_frame_end (&c->out);
}

/* The ID of the request; replies ERR when there is no such process. */
static bg_t *
request_entry (conn_t *c, const sbx_msg_t *m)
{
  cleanup_free char *id = req_str (c, m, SBX_T_ID, MAX_ID_LEN);
  if (id == NULL)
    return NULL;
  bg_t *b = find (id);
  if (b == NULL)
    reply_err (c, SBX_E_NO_PROCESS, "no background process %s", id);
  return b;
}

void
handle_bg_read (conn_t *c, const sbx_msg_t *m)
{
  bg_t *b = request_entry (c, m);
  if (b == NULL)
    return;
  size_t sent = 0;
  while (b->output.len > b->out_off && sent < READ_MAX)
    {
      size_t n = b->output.len - b->out_off;
      if (n > SBX_PROTO_CHUNK)
        n = SBX_PROTO_CHUNK;
      if (n > READ_MAX - sent)
        n = READ_MAX - sent;
      sbx_frame_begin (&c->out, SBX_M_DATA);
      sbx_frame_bytes (&c->out, SBX_T_DATA, b->output.data + b->out_off, n);
      sbx_frame_end (&c->out);
      b->out_off += n;
      total_held -= n;
      sent += n;
    }
  if (b->out_off == b->output.len)
    drop_output (b);
  put_info (c, b);
  reply_end (c, false, NULL);
}

void
handle_bg_list (conn_t *c, const sbx_msg_t *m)
{
  (void) m;
  for (bg_t *b = entries; b; b = b->next)
    put_info (c, b);
  reply_end (c, false, NULL);
}

/* ------------------------------------------------------------ BG_KILL */

typedef struct bg_kill
{
  char id[MAX_ID_LEN + 1];
  bool killed;     /* SIGKILL sent */
  int64_t give_up; /* of the current signal */
} bg_kill_t;

/* Whether the process of B and its tree are gone. Once reaped, its pid
 * may be another's: nothing is left to look for. */
static bool
gone (const bg_t *b)
{
  return b == NULL || b->reaped || (b->exited && proc_kill_tree (b->pid, 0) == 0);
}

static bool
bg_kill_step (conn_t *c)
{
  bg_kill_t *k = c->job_data;
  bg_t *b = find (k->id);
  int64_t now = now_ms ();
  if (gone (b))
    reply_ok (c, 0, 0);
  else if (now < k->give_up)
    {
      conn_wake_at (c, now + POLL_MS);
      return false;
    }
  else if (!k->killed)
    {
      proc_kill_tree (b->pid, SIGKILL);
      k->killed = true;
      k->give_up = now + GONE_WAIT_MS;
      conn_wake_at (c, now + POLL_MS);
      return false;
    }
  else
    reply_err (c, SBX_E_IO, "background process %s did not end after SIGKILL", k->id);
  free (k);
  return true;
}

static void
bg_kill_abort (conn_t *c)
{
  bg_kill_t *k = c->job_data;
  bg_t *b = find (k->id);
  /* The host asked for it to end: it ends now. */
  if (!gone (b))
    proc_kill_tree (b->pid, SIGKILL);
  free (k);
}

static const job_ops_t bg_kill_ops = { bg_kill_step, NULL, bg_kill_abort };

void
handle_bg_kill (conn_t *c, const sbx_msg_t *m)
{
  bg_t *b = request_entry (c, m);
  if (b == NULL)
    return;
  bg_kill_t *k = calloc (1, sizeof *k);
  if (k == NULL)
    {
      reply_err (c, SBX_E_IO, "out of memory");
      return;
    }
  memcpy (k->id, b->id, sizeof k->id);
  /* Even after the command exited, what it left behind in its session
     goes too. */
  if (!gone (b))
    proc_kill_tree (b->pid, SIGTERM);
  k->give_up = now_ms () + KILL_GRACE_MS;
  conn_start_job (c, &bg_kill_ops, k);
}
