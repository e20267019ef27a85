/* Background processes. BG_START hands the command to a supervisor process
 * that outlives the connection (it is double-forked, so PID 1 adopts it)
 * and keeps the state where any later connection finds it:
 *
 *   BG_STATE_DIR/<ID>/command   the command line
 *                     pid       the command's pid; the supervisor holds a
 *                               lock on it for as long as it lives
 *                     output    the combined output, at most OUTPUT_CAP bytes
 *                     dropped   how many bytes were discarded past that
 *                     status    the exit code, once the command exited
 *                     cursor    how much output BG_READ has returned
 *
 * IDs are 1, 2, ... allocated with mkdir, which is atomic. An ID whose start
 * failed keeps its directory but never gets a pid file, and is never shown. */
#include "agent.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/wait.h>

#define BG_STATE_DIR "/run/sbx-bg"
#define OUTPUT_CAP (8u << 20)
#define READ_MAX (1u << 20)
#define MAX_ID_LEN 20
#define MAX_COMMAND_SHOWN 1024   /* for display: bounds what a listing costs the host */
#define MAX_LISTED 10000
#define LOCK_WAIT_MS 3000    /* for a reader lock that a process in the sandbox may hold */
#define KILL_GRACE_MS 2000   /* from SIGTERM to SIGKILL */
#define GONE_WAIT_MS 2000    /* after SIGKILL, for the exit to be recorded */
#define POLL_MS 20
#define SAVE_EVERY_MS 100    /* how often a growing `dropped` is saved */

/* What the supervisor tells the handler once the command runs. */
typedef struct bg_started {
  int err;  /* errno of the step that failed, or 0 */
  pid_t pid;
  char id[MAX_ID_LEN + 1];
} bg_started_t;

static bool
valid_id (const char *id)
{
  size_t n = strlen (id);
  return n > 0 && n <= MAX_ID_LEN && strspn (id, "0123456789") == n;
}

/* Replaces NAME in DIRFD with TEXT, atomically. */
static int
save_file (int dirfd, const char *name, const char *text)
{
  char tmp[64];
  snprintf (tmp, sizeof tmp, ".%s.tmp", name);
  int fd = openat (dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    return -1;
  int r = sbx_write_all (fd, text, strlen (text));
  if (close (fd) < 0 || r < 0 || renameat (dirfd, tmp, dirfd, name) < 0)
    return -1;
  return 0;
}

static int
save_int (int dirfd, const char *name, int64_t v)
{
  char text[32];
  snprintf (text, sizeof text, "%lld", (long long) v);
  return save_file (dirfd, name, text);
}

/* Reads at most CAP bytes of NAME; -1 when it cannot be read. */
static ssize_t
load_file (int dirfd, const char *name, char *buf, size_t cap)
{
  int fd = openat (dirfd, name, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  ssize_t n = read_full (fd, buf, cap);
  close (fd);
  return n;
}

/* The number in NAME, or -1 when it is missing. */
static int64_t
load_int (int dirfd, const char *name)
{
  char text[32];
  ssize_t n = load_file (dirfd, name, text, sizeof text - 1);
  if (n <= 0)
    return -1;
  text[n] = '\0';
  return strtoll (text, NULL, 10);
}

/* ------------------------------------------------------------ supervisor */

/* Creates BG_STATE_DIR/<next free ID>; its descriptor, or -1. */
static int
allocate_id (char id[MAX_ID_LEN + 1])
{
  if (mkdir_p (BG_STATE_DIR, 0700) < 0)
    return -1;
  int base = open (BG_STATE_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (base < 0)
    return -1;
  int fd = -1;
  for (unsigned long n = 1; fd < 0 && n < 100000000; n++)
    {
      snprintf (id, MAX_ID_LEN + 1, "%lu", n);
      if (mkdirat (base, id, 0700) == 0)
        fd = openat (base, id, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      else if (errno != EEXIST)
        break;
    }
  int e = errno;
  close (base);
  errno = e;
  return fd;
}

/* Copies the command's output to the output file until the command has
 * exited and nothing holds the pipe any more, then records the exit. */
__attribute__ ((noreturn)) static void
supervise_output (int dfd, pid_t pid, int pipe_fd, int out_fd, int sfd)
{
  char buf[SBX_PROTO_CHUNK];
  int64_t written = 0, dropped = 0, saved = 0, saved_at = 0;
  bool exited = false, eof = false;
  while (!exited || !eof)
    {
      struct pollfd p[2] = { { .fd = eof ? -1 : pipe_fd, .events = POLLIN },
                             { .fd = exited ? -1 : sfd, .events = POLLIN } };
      if (poll (p, 2, dropped != saved ? SAVE_EVERY_MS : -1) < 0 && errno != EINTR)
        break;
      if (p[0].revents)
        {
          ssize_t n = read (pipe_fd, buf, sizeof buf);
          if (n <= 0 && !(n < 0 && errno == EINTR))
            eof = true;
          else if (n > 0)
            {
              size_t keep = (size_t) n;
              if ((int64_t) keep > (int64_t) OUTPUT_CAP - written)
                keep = (size_t) ((int64_t) OUTPUT_CAP - written);
              /* A full disk loses output, not the process. */
              if (keep && sbx_write_all (out_fd, buf, keep) < 0)
                keep = 0;
              written += (int64_t) keep;
              dropped += n - (ssize_t) keep;
            }
        }
      if (p[1].revents)
        {
          struct signalfd_siginfo si;
          int code = 255;
          while (read (sfd, &si, sizeof si) == sizeof si)
            ;
          if (cmd_exit_status (pid, &code) != 0)
            {
              exited = true;
              if (save_int (dfd, "dropped", dropped) < 0 || save_int (dfd, "status", code) < 0)
                agent_log ("background process %ld: cannot record its exit: %s", (long) pid,
                           strerror (errno));
              saved = dropped;
            }
        }
      if (dropped != saved && now_ms () - saved_at >= SAVE_EVERY_MS)
        {
          if (save_int (dfd, "dropped", dropped) == 0)
            saved = dropped;
          saved_at = now_ms ();
        }
    }
  if (dropped != saved && save_int (dfd, "dropped", dropped) < 0)
    agent_log ("background process %ld: cannot record dropped output: %s", (long) pid,
               strerror (errno));
  /* Reaped only now, so its pid, the session id BG_KILL uses, stays
     reserved as long as the lock on the pid file says "supervised". */
  while (waitpid (pid, NULL, 0) < 0 && errno == EINTR)
    ;
  _exit (0);
}

/* The supervisor: sets up the state, starts the command, reports to the
 * handler on SYNC, then minds the command. */
__attribute__ ((noreturn)) static void
supervise (const cmd_spec_t *spec, int sync)
{
  bg_started_t st = { 0 };
  /* Keep nothing of the connection: the host must see it close when the
     handler ends. */
  if (setsid () < 0 || dup2 (sync, 3) < 0)
    _exit (1);
  sync = 3;
  close_fds_from (4);

  int p[2] = { -1, -1 }, dfd, out_fd = -1, sfd = -1, pid_fd = -1;
  if ((dfd = allocate_id (st.id)) < 0 || save_file (dfd, "command", spec->command) < 0
      || (out_fd = openat (dfd, "output", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)) < 0
      || pipe2 (p, O_CLOEXEC) < 0 || (sfd = sigchld_fd ()) < 0 || (st.pid = fork ()) < 0)
    goto fail;
  if (st.pid == 0)
    cmd_exec_child (spec, -1, p[1], p[1]);
  close (p[1]);
  /* The pid file appears (by rename) already locked: a listing either does
     not see the process yet or sees it alive. */
  char pid_text[32];
  snprintf (pid_text, sizeof pid_text, "%ld", (long) st.pid);
  if ((pid_fd = openat (dfd, ".pid.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0
      || flock (pid_fd, LOCK_EX) < 0 || sbx_write_all (pid_fd, pid_text, strlen (pid_text)) < 0
      || renameat (dfd, ".pid.tmp", dfd, "pid") < 0)
    {
      int e = errno;
      (void) kill (st.pid, SIGKILL);  /* our own child: cannot fail */
      errno = e;
      goto fail;
    }
  if (sbx_write_all (sync, &st, sizeof st) < 0)
    agent_log ("background process %s: cannot report its start: %s", st.id, strerror (errno));
  close (sync);
  supervise_output (dfd, st.pid, p[0], out_fd, sfd);
fail:
  st.err = errno ? errno : EIO;
  if (sbx_write_all (sync, &st, sizeof st) < 0)
    agent_log ("cannot report a failed background start: %s", strerror (errno));
  _exit (1);
}

void
handle_bg_start (conn_t *c, const sbx_msg_t *m)
{
  cmd_spec_t spec;
  if (cmd_parse (c, m, &spec) < 0)
    return;
  int sync[2];
  if (pipe2 (sync, O_CLOEXEC) < 0)
    {
      reply_errno (c, errno, "cannot start a background process");
      cmd_free (&spec);
      return;
    }
  pid_t mid = fork ();
  if (mid == 0)
    {
      /* The middle process exits at once, so the supervisor is PID 1's. */
      close (sync[0]);
      pid_t sup = fork ();
      if (sup == 0)
        supervise (&spec, sync[1]);
      if (sup < 0)
        {
          bg_started_t failed = { .err = errno };
          /* Should this fail too, the handler reads nothing and says so. */
          (void) sbx_write_all (sync[1], &failed, sizeof failed);
        }
      _exit (0);
    }
  int e = errno;
  close (sync[1]);
  bg_started_t st;
  ssize_t n = -1;
  if (mid > 0)
    {
      while (waitpid (mid, NULL, 0) < 0 && errno == EINTR)
        ;
      n = read_full (sync[0], &st, sizeof st);
    }
  close (sync[0]);
  cmd_free (&spec);
  if (mid < 0)
    reply_errno (c, e, "cannot start a background process");
  else if (n != (ssize_t) sizeof st)
    reply_err (c, SBX_E_AGENT, "the background process supervisor failed to start");
  else if (st.err)
    reply_errno (c, st.err, "cannot start a background process");
  else
    {
      st.id[MAX_ID_LEN] = '\0';
      sbx_frame_begin (&c->out, SBX_M_OK);
      sbx_frame_str (&c->out, SBX_T_ID, st.id);
      sbx_frame_int (&c->out, SBX_T_PID, st.pid);
      sbx_frame_end (&c->out);
    }
}

/* ------------------------------------------------------------ queries */

/* Opens the state of a started process (one with a pid file). */
static int
open_state (const char *id)
{
  char path[sizeof BG_STATE_DIR + MAX_ID_LEN + 2];
  snprintf (path, sizeof path, BG_STATE_DIR "/%s", id);
  int fd = open (path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0 && faccessat (fd, "pid", F_OK, 0) < 0)
    {
      close (fd);
      fd = -1;
    }
  return fd;
}

/* The ID of the request, with its state opened; replies ERR otherwise. */
static int
request_state (conn_t *c, const sbx_msg_t *m, char **id)
{
  *id = req_str (c, m, SBX_T_ID, MAX_ID_LEN);
  if (*id == NULL)
    return -1;
  int fd = valid_id (*id) ? open_state (*id) : -1;
  if (fd < 0)
    reply_err (c, SBX_E_NO_PROCESS, "no background process %s", *id);
  return fd;
}

/* Whether the supervisor of the process in DFD still lives (holds its lock). */
static bool
supervised (int dfd)
{
  int fd = openat (dfd, "pid", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  bool held = flock (fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK;
  close (fd);
  return held;
}

static bool
running (int dfd)
{
  return load_int (dfd, "status") < 0 && supervised (dfd);
}

static void
put_info (conn_t *c, int dfd, const char *id)
{
  char *command = malloc (MAX_COMMAND_SHOWN);
  ssize_t n = command ? load_file (dfd, "command", command, MAX_COMMAND_SHOWN) : -1;
  int64_t status = load_int (dfd, "status"), dropped = load_int (dfd, "dropped");
  sbx_frame_begin (&c->out, SBX_M_BG_INFO);
  sbx_frame_str (&c->out, SBX_T_ID, id);
  sbx_frame_bytes (&c->out, SBX_T_COMMAND, command, n > 0 ? (size_t) n : 0);
  int64_t pid = load_int (dfd, "pid");
  sbx_frame_int (&c->out, SBX_T_PID, pid > 0 && pid <= INT32_MAX ? pid : 0);
  /* A supervisor killed before it recorded the exit leaves no status: the
     process is over, its exit code unknown. */
  sbx_frame_int (&c->out, SBX_T_FLAGS, status < 0 && supervised (dfd) ? SBX_F_RUNNING : 0);
  if (status >= 0 && status <= 255)
    sbx_frame_int (&c->out, SBX_T_EXIT_CODE, status);
  sbx_frame_int (&c->out, SBX_T_DROPPED, dropped > 0 ? dropped : 0);
  sbx_frame_end (&c->out);
  free (command);
}

void
handle_bg_read (conn_t *c, const sbx_msg_t *m)
{
  cleanup_free char *id = NULL;
  cleanup_close int dfd = request_state (c, m, &id);
  if (dfd < 0)
    return;
  /* Readers on other connections take turns with the cursor. Processes in
     the sandbox can take the lock too, so wait for it only so long. */
  int64_t give_up = now_ms () + LOCK_WAIT_MS;
  while (flock (dfd, LOCK_EX | LOCK_NB) < 0)
    {
      if ((errno != EWOULDBLOCK && errno != EINTR) || now_ms () >= give_up)
        {
          reply_errno (c, errno, "cannot lock background process %s", id);
          return;
        }
      (void) poll (NULL, 0, 10);
    }
  int64_t cursor = load_int (dfd, "cursor"), start;
  if (cursor < 0)
    cursor = 0;
  start = cursor;
  cleanup_close int ofd = openat (dfd, "output", O_RDONLY | O_CLOEXEC);
  char buf[SBX_PROTO_CHUNK];
  while (ofd >= 0 && cursor - start < READ_MAX)
    {
      size_t want = sizeof buf;
      if ((int64_t) want > READ_MAX - (cursor - start))
        want = (size_t) (READ_MAX - (cursor - start));
      ssize_t n = pread (ofd, buf, want, cursor);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        break;
      sbx_frame_begin (&c->out, SBX_M_DATA);
      sbx_frame_bytes (&c->out, SBX_T_DATA, buf, (size_t) n);
      sbx_frame_end (&c->out);
      cursor += n;
      if (conn_pending (c) < 0)
        return;
    }
  if (cursor != start && save_int (dfd, "cursor", cursor) < 0)
    agent_log ("background process %s: cannot save the read cursor: %s", id, strerror (errno));
  put_info (c, dfd, id);
  sbx_frame_begin (&c->out, SBX_M_END);
  sbx_frame_end (&c->out);
}

/* Waits up to MS for the process tree of SID to be gone and its exit
 * recorded; whether it is. */
static bool
wait_gone (int dfd, pid_t sid, int64_t ms)
{
  for (int64_t end = now_ms () + ms;; )
    {
      if (proc_kill_tree (sid, 0) == 0 && !running (dfd))
        return true;
      if (now_ms () >= end)
        return false;
      (void) poll (NULL, 0, POLL_MS);  /* a pause; nothing to check */
    }
}

void
handle_bg_kill (conn_t *c, const sbx_msg_t *m)
{
  cleanup_free char *id = NULL;
  cleanup_close int dfd = request_state (c, m, &id);
  if (dfd < 0)
    return;
  int64_t pid = load_int (dfd, "pid");
  /* While the supervisor lives, the pid is that of our process (see
     supervise_output), so its session id is safe to use; even after the
     command exited, what it left behind in its session goes too. */
  if (pid > 1 && pid <= INT32_MAX && supervised (dfd))
    {
      proc_kill_tree ((pid_t) pid, SIGTERM);
      if (!wait_gone (dfd, (pid_t) pid, KILL_GRACE_MS))
        {
          proc_kill_tree ((pid_t) pid, SIGKILL);
          if (!wait_gone (dfd, (pid_t) pid, GONE_WAIT_MS))
            {
              reply_err (c, SBX_E_IO, "background process %s did not end after SIGKILL", id);
              return;
            }
        }
    }
  sbx_frame_begin (&c->out, SBX_M_OK);
  sbx_frame_end (&c->out);
}

static int
cmp_id (const void *a, const void *b)
{
  const char *x = a, *y = b;
  size_t lx = strlen (x), ly = strlen (y);
  return lx != ly ? (lx < ly ? -1 : 1) : strcmp (x, y);
}

void
handle_bg_list (conn_t *c, const sbx_msg_t *m)
{
  (void) m;
  typedef char bg_id_t[MAX_ID_LEN + 1];
  cleanup_free bg_id_t *ids = NULL;
  size_t n = 0, cap = 0;
  DIR *d = opendir (BG_STATE_DIR);
  if (d == NULL && errno != ENOENT)
    {
      reply_errno (c, errno, "cannot list background processes");
      return;
    }
  for (struct dirent *e; d && n < MAX_LISTED && (e = readdir (d)) != NULL;)
    {
      if (!valid_id (e->d_name))
        continue;
      if (n == cap)
        {
          size_t ncap = cap ? cap * 2 : 64;
          bg_id_t *nids = realloc (ids, ncap * sizeof *nids);
          if (nids == NULL)
            break;
          ids = nids;
          cap = ncap;
        }
      strcpy (ids[n++], e->d_name);
    }
  if (d)
    closedir (d);
  if (n)
    qsort (ids, n, sizeof *ids, cmp_id);
  for (size_t i = 0; i < n; i++)
    {
      int dfd = open_state (ids[i]);
      if (dfd < 0)
        continue;
      put_info (c, dfd, ids[i]);
      close (dfd);
      if (conn_pending (c) < 0)
        return;
    }
  sbx_frame_begin (&c->out, SBX_M_END);
  sbx_frame_end (&c->out);
}
