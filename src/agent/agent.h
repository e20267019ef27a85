/* sbx-agent: PID 1 of every sandbox container. Private interfaces between
 * its modules. */
#ifndef SBX_AGENT_H
#define SBX_AGENT_H

#include "helpers.h"
#include "proto.h"
#include "sbx.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

/* ------------------------------------------------------------ util.c */

static inline void
freep (void *p)
{
  free (*(void **) p);
}

static inline void
closep (int *fd)
{
  if (*fd >= 0)
    close (*fd);
}

#define cleanup_free __attribute__ ((cleanup (freep)))
#define cleanup_close __attribute__ ((cleanup (closep)))

__attribute__ ((format (printf, 1, 2))) void agent_log (const char *fmt, ...);
int64_t now_ms (void);
/* Reads until LEN bytes or end of file; the count, or -1 with errno. */
ssize_t read_full (int fd, void *buf, size_t len);
/* mkdir -p; -1 with errno on failure. */
int mkdir_p (const char *path, mode_t mode);
/* Closes every descriptor from LOWFD up (in a child about to exec or to
 * live on its own). */
void close_fds_from (int lowfd);
/* enum sbx_kind of a st_mode. */
int kind_of_mode (mode_t mode);
/* Whether the first bytes of a file (up to 8 KiB of BUF) say it is binary. */
bool looks_binary (const void *buf, size_t len);

/* ------------------------------------------------------------ conn.c */

typedef struct conn {
  int fd;
  bool broken;  /* the host went away or a write failed: stop all work */
  bool quit;    /* end the connection once the current reply is sent */
  sbx_reader_t rd;
  sbx_buf_t out;
} conn_t;

/* Serves one connection in a forked handler process; never returns. */
__attribute__ ((noreturn)) void conn_serve (int fd, pid_t agent_pid);

/* Writes the buffered replies; -1 when the connection is broken. */
int conn_flush (conn_t *c);
/* Flushes when enough is buffered; -1 when the connection is broken. */
int conn_pending (conn_t *c);
/* Reads once from the socket into the reader: > 0 bytes read, 0 end of
 * stream, -1 error (both mark the connection broken). */
ssize_t conn_fill (conn_t *c);
/* Next message, blocking: 1 a message, 0 end of stream, -1 error or an
 * invalid stream (then c->rd.error is set). */
int conn_recv (conn_t *c, sbx_msg_t *m);
/* Handles an invalid stream: replies ERR{PROTOCOL} and ends the connection. */
void conn_protocol_error (conn_t *c, const char *why);

__attribute__ ((format (printf, 3, 4))) void reply_err (conn_t *c, int code, const char *fmt, ...);
/* ERR with the sbx_errc that fits errno value ERR, and the message
 * "<formatted text>: <strerror (ERR)>". */
__attribute__ ((format (printf, 3, 4))) void reply_errno (conn_t *c, int err, const char *fmt,
                                                         ...);
/* Like reply_err, with a COUNT field. */
void reply_err_count (conn_t *c, int code, int64_t count, const char *msg);

/* Request fields. Each replies ERR{INVALID} itself when the field is bad. */
char *req_str (conn_t *c, const sbx_msg_t *m, uint8_t tag, size_t max);
/* An absolute path. */
char *req_path (conn_t *c, const sbx_msg_t *m, uint8_t tag);
/* *V holds the default on entry; an absent field keeps it. */
int req_int (conn_t *c, const sbx_msg_t *m, uint8_t tag, int64_t min, int64_t max, int64_t *v);

/* ------------------------------------------------------------ files.c */

/* Opens PATH for reading if it is a regular file; otherwise replies ERR
 * and returns -1. */
int open_regular (conn_t *c, const char *path, struct stat *st);

/* ------------------------------------------------------------ handlers */

void handle_exec (conn_t *c, const sbx_msg_t *m);
void handle_stat (conn_t *c, const sbx_msg_t *m);
void handle_ls (conn_t *c, const sbx_msg_t *m);
void handle_read (conn_t *c, const sbx_msg_t *m);
void handle_read_bytes (conn_t *c, const sbx_msg_t *m);
void handle_write (conn_t *c, const sbx_msg_t *m);
void handle_edit (conn_t *c, const sbx_msg_t *m);
void handle_glob (conn_t *c, const sbx_msg_t *m);
void handle_grep (conn_t *c, const sbx_msg_t *m);
void handle_bg_start (conn_t *c, const sbx_msg_t *m);
void handle_bg_read (conn_t *c, const sbx_msg_t *m);
void handle_bg_kill (conn_t *c, const sbx_msg_t *m);
void handle_bg_list (conn_t *c, const sbx_msg_t *m);

/* ------------------------------------------------------------ exec.c */

/* What EXEC and BG_START run: sh -c COMMAND in CWD with ENV. */
typedef struct cmd_spec {
  char *command;
  char *cwd;
  char **overrides;  /* the request's "K=V" strings */
  char **env;        /* environ with the overrides applied */
} cmd_spec_t;

/* Parses COMMAND CWD ENV* and checks that CWD is a directory; 0, or -1
 * after replying ERR. */
int cmd_parse (conn_t *c, const sbx_msg_t *m, cmd_spec_t *spec);
void cmd_free (cmd_spec_t *spec);
/* In a forked child: a new session, stdin from IN (/dev/null when -1),
 * stdout and stderr to OUT and ERR, default signals, no other descriptors,
 * then sh -c COMMAND. */
__attribute__ ((noreturn)) void cmd_exec_child (const cmd_spec_t *spec, int in, int out, int err);
/* A signalfd for SIGCHLD (which every agent process keeps blocked). */
int sigchld_fd (void);
/* Whether the child PID has exited, leaving it unreaped: as a zombie it
 * keeps its pid, which is also its session's id, from being reused while
 * its tree is still looked for. 1 exited (*CODE: the exit status, or
 * 128 + N when killed by signal N), 0 running, -1 no such child. */
int cmd_exit_status (pid_t pid, int *code);

/* ------------------------------------------------------------ proc.c */

/* Sends SIG to every process of the tree rooted in session SID (see
 * proc.c); returns how many live processes were found. SIG 0 only counts. */
int proc_kill_tree (pid_t sid, int sig);
/* The cgroup's oom_kill counter, or -1 when it cannot be read. */
int64_t oom_kill_count (void);

/* ------------------------------------------------------------ walk.c */

typedef struct walk walk_t;
struct walk {
  char path[4096];   /* the entry being visited, absolute */
  size_t rel_off;    /* where its path relative to the root starts */
  bool hidden;       /* visit names starting with '.' */
  bool truncated;    /* the entry budget ran out */
  unsigned long visited;
  /* Whether to descend into the directory REL; NULL means always. */
  bool (*enter) (walk_t *w, const char *rel);
  /* A non-directory entry NAME in DIRFD, TYPE a DT_* value; w->path holds
   * its absolute path. A negative return stops the walk. */
  int (*visit) (walk_t *w, int dirfd, const char *name, unsigned char type);
  void *data;
};

/* Opens ROOT as a directory (replying ERR on failure, then returns -1). */
int walk_open_root (conn_t *c, const char *root);
/* Walks the directory DIRFD, whose path is ROOT, depth first, never
 * following symbolic links to directories and skipping /proc, /sys and /dev
 * when ROOT is "/". Closes DIRFD. 0 when done, -1 when stopped. */
int walk_run (walk_t *w, int dirfd, const char *root);

#endif
