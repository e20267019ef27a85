/* sbx-agent: PID 1 of every sandbox container. Private interfaces between
 * its modules.
 *
 * The agent is one process with one thread: an event loop (loop.c) serves
 * every connection (conn.c), runs every file operation in bounded slices,
 * and supervises the commands it starts, which are its own children. A
 * process in the sandbox can signal none of this (the kernel shields PID 1
 * of a PID namespace), trace none of it (the agent is not dumpable), and
 * starve none of it of processes (nothing here needs a new one but the
 * commands themselves). */
#ifndef SBX_AGENT_H
#define SBX_AGENT_H

#include "helpers.h"
#include "proto.h"
#include "sbx.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

/* ------------------------------------------------------------ util.c */

#define container_of(ptr, type, member) ((type *) ((char *) (ptr) -offsetof (type, member)))

/* A log line on the agent's stderr (the engine's log of the container). */
__attribute__ ((format (printf, 1, 2))) void agent_log (const char *fmt, ...);

/* Lines about what the sandbox does (refused connections, ...) go through a
 * budget: a burst, then one line per interval, with a count of the lines
 * left out, so that nothing inside can flood the engine's log. */
typedef struct log_budget
{
  int64_t refill_at;
  int tokens;
  unsigned long suppressed;
} log_budget_t;
__attribute__ ((format (printf, 2, 3))) void agent_log_limited (log_budget_t *b, const char *fmt,
                                                                ...);

/* The size any one file may reach (RLIMIT_FSIZE of the agent and of every
 * command), set with --max-file-size where the engine has no disk quota;
 * 0 when there is no such cap. */
extern int64_t agent_max_file_size;

/* The one monotonic clock (helpers.c), in the milliseconds the agent counts in. */
static inline int64_t
now_ms (void)
{
  return (int64_t) (sbx_now () * 1000);
}
/* Reads until LEN bytes or end of file; the count, or -1 with errno. */
ssize_t read_full (int fd, void *buf, size_t len);
/* Closes every descriptor from LOWFD up. */
void close_fds_from (int lowfd);
/* enum sbx_kind of a st_mode. */
int kind_of_mode (mode_t mode);
/* Whether the first bytes of a file (up to 8 KiB of BUF) say it is binary. */
bool looks_binary (const void *buf, size_t len);
void close_fd (int *fd);

/* ------------------------------------------------------------ loop.c */

/* A descriptor in the event loop. Structures holding one are freed with
 * loop_defer_free, never free: events for them may still be pending in the
 * current turn of the loop. */
typedef struct watch watch_t;
typedef void (*watch_fn) (watch_t *w, uint32_t events);
struct watch
{
  watch_fn fn;
  int fd;
  bool active;
};

int loop_init (void);
/* Adds FD with EVENTS (EPOLLIN, EPOLLOUT, EPOLLONESHOT, ...); 0 or -1. */
int loop_watch (watch_t *w, int fd, uint32_t events, watch_fn fn);
int loop_rewatch (watch_t *w, uint32_t events);
/* Removes the descriptor (it is not closed); pending events are dropped. */
void loop_unwatch (watch_t *w);
void loop_defer_free (void *p);
/* Waits up to TIMEOUT_MS (-1: forever) and runs the callbacks. */
void loop_wait (int timeout_ms);

/* ------------------------------------------------------------ listener.c */

/* Binds the socket in the run folder and watches the folder; -1 with errno. */
int listener_start (void);
void listener_stop (void);

/* ------------------------------------------------------------ conn.c */

typedef struct conn conn_t;

/* A request that takes longer than one turn of the loop. */
typedef struct job_ops
{
  /* A bounded slice of work. True when the job is over: its final reply is
     queued and it released everything (c->job_data included). */
  bool (*step) (conn_t *c);
  /* A host message while the job runs (EXEC's stdin and cancel, WRITE's
     data); NULL when the job takes none. */
  void (*message) (conn_t *c, const sbx_msg_t *m);
  /* Releases everything now: the host left or broke the protocol. */
  void (*abort) (conn_t *c);
} job_ops_t;

struct conn
{
  watch_t watch;
  uint32_t events; /* what the loop watches for on it */
  conn_t *next;
  sbx_reader_t rd;
  sbx_buf_t out;
  size_t out_off;    /* bytes of out already sent */
  int64_t last_sent; /* when bytes last went out (for ALIVE) */
  int64_t close_by;  /* a closing connection is dropped by then */
  bool greeted;
  bool closing;      /* ends once its output is sent */
  bool dead;         /* freed at the end of the turn */
  bool held;         /* held_msg waits for the job to end or for room */
  bool input_paused; /* the job asked the host to wait */
  sbx_msg_t held_msg;
  const job_ops_t *job;
  void *job_data;
  bool runnable;   /* step at the next turn */
  bool want_room;  /* step once the output has room again */
  int64_t wake_at; /* step then; 0 for no timer */
};

/* Takes a connected, verified socket; false when refused (too many). */
bool conn_accept (int fd);
/* One turn: timers, job slices, output, heartbeats. Returns the longest the
 * loop may sleep (-1: until an event). */
int conns_turn (void);

/* Whether the reply may grow (the host reads fast enough). */
bool conn_room (const conn_t *c);
/* Starts a job on C; its first step runs at the next turn. */
void conn_start_job (conn_t *c, const job_ops_t *ops, void *data);
/* Wakes the job at AT (ms), or earlier if already asked. */
void conn_wake_at (conn_t *c, int64_t at);
/* Makes the job step at the next turn. */
void conn_wake (conn_t *c);
/* Stops (or resumes) reading what the host sends, e.g. while a command's
 * stdin backlog is full. */
void conn_pause_input (conn_t *c, bool paused);
/* Ends the connection once what is queued is sent (the stream is out of
 * step: a WRITE that timed out, ...). */
void conn_close (conn_t *c);
/* Replies ERR{PROTOCOL} and closes the connection once it is sent. */
void conn_protocol_error (conn_t *c, const char *why);

__attribute__ ((format (printf, 3, 4))) void reply_err (conn_t *c, int code, const char *fmt, ...);
/* ERR with the sbx_errc that fits errno value ERR, and the message
 * "<formatted text>: <strerror (ERR)>". */
__attribute__ ((format (printf, 3, 4))) void reply_errno (conn_t *c, int err, const char *fmt, ...);
/* Like reply_err, with a COUNT field. */
void reply_err_count (conn_t *c, int code, int64_t count, const char *msg);
/* OK, with one integer field TAG (TAG 0: none). */
void reply_ok (conn_t *c, uint8_t tag, int64_t v);
/* END, with TRUNCATED, and a MESSAGE saying why when WHY is not NULL. */
void reply_end (conn_t *c, bool truncated, const char *why);

/* Request fields. Each replies ERR{INVALID} itself when the field is bad. */
char *req_str (conn_t *c, const sbx_msg_t *m, uint8_t tag, size_t max);
/* An absolute path. */
char *req_path (conn_t *c, const sbx_msg_t *m, uint8_t tag);
/* *V holds the default on entry; an absent field keeps it. */
int req_int (conn_t *c, const sbx_msg_t *m, uint8_t tag, int64_t min, int64_t max, int64_t *v);
/* The request's deadline: now + TIMEOUT_MS, or now + DEFAULT_MS. */
int req_deadline (conn_t *c, const sbx_msg_t *m, int64_t default_ms, int64_t *deadline);

/* Slices of work end after this long, so that every connection is served. */
#define SLICE_MS 4
/* What an entry costs the host beyond its name, for bounds by bytes. */
#define ENTRY_OVERHEAD 48

/* ------------------------------------------------------------ spawn.c */

/* What EXEC and BG_START run: sh -c COMMAND in CWD with ENV. */
typedef struct cmd_spec
{
  char *command;
  char *cwd;
  char **overrides; /* the request's "K=V" strings */
  char **env;       /* environ with the overrides applied */
} cmd_spec_t;

/* Parses COMMAND CWD ENV* and checks that CWD is a directory; 0, or -1
 * after replying ERR. */
int cmd_parse (conn_t *c, const sbx_msg_t *m, cmd_spec_t *spec);
void cmd_free (cmd_spec_t *spec);
/* Starts `sh -c COMMAND` as a child of the agent in a session of its own,
 * stdin from IN (/dev/null when -1), stdout and stderr to OUT and ERR. It
 * stays a zombie after it exits until cmd_reap: its pid is the id of its
 * session, which must not be reused while its tree is looked for. The pid,
 * or -1 with errno. */
pid_t cmd_spawn (const cmd_spec_t *spec, int in, int out, int err);
/* 1 when PID exited (*CODE: its status, or 128 + N when killed by signal
 * N), 0 while it runs, -1 when it is no child of ours. */
int cmd_exit_status (pid_t pid, int *code);
void cmd_reap (pid_t pid);
/* Reaps every exited child but the commands not yet reaped by cmd_reap. */
void reap_children (void);
/* The reply to a failed spawn: the pids limit named, and the way out. */
void reply_spawn_error (conn_t *c, int err, const char *what);

/* ------------------------------------------------------------ proc.c */

/* Sends SIG to every process of the tree rooted in session SID (see
 * proc.c); returns how many live processes were found. SIG 0 only counts. */
int proc_kill_tree (pid_t sid, int sig);
/* Live processes other than the agent. */
int proc_count_others (void);
/* Reaps the agent's zombie children for which KEEP says false. */
void proc_reap_zombies (bool (*keep) (pid_t pid));
/* The cgroup's oom_kill counter, or -1 when it cannot be read. */
int64_t oom_kill_count (void);
/* The cgroup's pids.max, or -1 when there is none. */
int64_t pids_limit (void);
void handle_kill_all (conn_t *c, const sbx_msg_t *m);

/* ------------------------------------------------------------ exec.c, bg.c */

void handle_exec (conn_t *c, const sbx_msg_t *m);
void handle_bg_start (conn_t *c, const sbx_msg_t *m);
void handle_bg_read (conn_t *c, const sbx_msg_t *m);
void handle_bg_kill (conn_t *c, const sbx_msg_t *m);
void handle_bg_list (conn_t *c, const sbx_msg_t *m);
/* A child may have exited (SIGCHLD): each checks its own commands. */
void exec_children_changed (void);
void bg_children_changed (void);

/* ------------------------------------------------------------ files.c */

/* Opens PATH for reading if it is a regular file; otherwise replies ERR
 * and returns -1. Never blocks (FIFOs, leases). */
int open_regular (conn_t *c, const char *path, struct stat *st);
void handle_stat (conn_t *c, const sbx_msg_t *m);
void handle_resolve (conn_t *c, const sbx_msg_t *m);
void handle_ls (conn_t *c, const sbx_msg_t *m);
void handle_read (conn_t *c, const sbx_msg_t *m);
void handle_read_bytes (conn_t *c, const sbx_msg_t *m);
void handle_write (conn_t *c, const sbx_msg_t *m);
void handle_edit (conn_t *c, const sbx_msg_t *m);
void handle_glob (conn_t *c, const sbx_msg_t *m);
void handle_grep (conn_t *c, const sbx_msg_t *m);

/* ------------------------------------------------------------ walk.c */

/* A depth-first directory walk that runs in slices. */
typedef struct walk walk_t;
struct walk
{
  char path[4096]; /* the entry being visited, absolute */
  size_t rel_off;  /* where its path relative to the root starts */
  bool hidden;     /* visit names starting with '.' */
  bool truncated;  /* the entry budget ran out */
  unsigned long visited;
  /* Whether to descend into the directory REL; NULL means always. */
  bool (*enter) (walk_t *w, const char *rel);
  /* A non-directory entry NAME in DIRFD, TYPE a DT_* value; w->path holds
   * its absolute path. 0 goes on, > 0 pauses the walk after this entry
   * (walk_step returns; the next call goes on), < 0 stops it. */
  int (*visit) (walk_t *w, int dirfd, const char *name, unsigned char type);
  void *data;
  struct walk_level *levels;
  int depth;
};

/* Opens ROOT as a directory (replying ERR on failure, then returns -1). */
int walk_open_root (conn_t *c, const char *root);
/* Starts walking DIRFD, whose path is ROOT (DIRFD is the walk's now). */
void walk_start (walk_t *w, int dirfd, const char *root);
/* Walks on until UNTIL (ms): 1 more to do, 0 done, -1 stopped by visit. */
int walk_step (walk_t *w, int64_t until);
/* Releases the walk's descriptors. */
void walk_end (walk_t *w);

#endif
