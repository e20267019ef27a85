/* The sandbox handle and the host side of the agent channel. */
#ifndef SBX_SANDBOX_H
#define SBX_SANDBOX_H

#include "engine.h"
#include "internal.h"
#include "proto.h"

#include <sys/types.h>

/* Labels on every container sbx makes; what they say is never trusted
 * (images carry labels too): the host record is. */
#define SBX_LABEL_MANAGED "io.sbx.managed"
#define SBX_LABEL_NAMED "io.sbx.named"
#define SBX_LABEL_VERSION "io.sbx.version"
/* A session manager's (session.c): its name, the sandbox's role (session
 * or pool), and its key (STATE/managers/NAME/key): a container carrying the
 * key was made by the manager, which labels from an image cannot fake. */
#define SBX_LABEL_MANAGER "io.sbx.manager"
#define SBX_LABEL_ROLE "io.sbx.role"
#define SBX_LABEL_MANAGER_KEY "io.sbx.manager-key"

/* Validated sandbox options (see sbx_options_*). */
struct sbx_options
{
  char *image;
  char *name;
  char *workdir;
  char *network;
  char **volumes; /* NULL-terminated "host:container[:ro]" */
  char **env;     /* NULL-terminated "K=V" */
  int64_t memory;
  int64_t pids;
  int64_t disk;
  double cpus;
  int auto_remove;        /* -1: derived from whether a name was given */
  bool replace;           /* a named sandbox with other options is replaced */
  sbx_runtime_t *runtime; /* its image is resolved at start (runtime_build.c) */
  /* Set by the session manager only: */
  char *slot;    /* a host folder mounted at the work dir, receiving mounts made on it
                  * later (rslave): a warm sandbox's workspace, given at claim time */
  char **labels; /* NULL-terminated "key=value", what a container is for */
};

struct sbx_sandbox
{
  sbx_options_t opts;
  sbx_engine_t *engine; /* opened on first need */
  char *id;             /* container name */
  char *image;
  char *workdir;
  char *state_dir; /* host folder: agent binary, run/agent.sock, info */
  bool auto_remove;
  pid_t agent_pid;     /* the container's PID 1 as the host sees it */
  double file_timeout; /* seconds; see sbx_sandbox_set_file_timeout */
  int64_t memory;      /* the container's memory limit, for messages */
  char *notice;        /* see sbx_sandbox_notice */
  int fd;              /* connection to the agent, -1 when closed */
  sbx_reader_t reader;
  sbx_buf_t out;
  /* A new connection's HELLO goes out with the first request, and its
   * answer is checked before that request's: HELLO_LEN bytes at the head
   * of OUT are the HELLO not yet sent; HELLO_PENDING, its answer not yet
   * read. */
  size_t hello_len;
  bool hello_pending;
  double touched; /* when this handle last marked the sandbox in use (sbx_now) */
};

/* Removes the container NAME and its host folder, whether or not its record
 * was written: for names the caller's own host records give (the session
 * manager's half-made sandboxes). A missing container is not an error. */
int sbx_sandbox_purge_name (const char *name, sbx_error_t **err);

/* Frees what an options struct owns (also for copies embedded in a sandbox). */
void sbx_options_clear (sbx_options_t *o);
/* The session manager's options (see struct sbx_options). */
int sbx_options_set_slot (sbx_options_t *o, const char *dir, sbx_error_t **err);
int sbx_options_add_label (sbx_options_t *o, const char *key, const char *value, sbx_error_t **err);
/* Deep copy into DST; -1 when out of memory. */
int sbx_options_copy (sbx_options_t *dst, const sbx_options_t *src);
/* "KEY=VALUE" with the seed's key rule and no newline in the value. */
int sbx_validate_env (const char *kv, sbx_error_t **err);

/* ------------------------------------------------------------ hostdir.c */

/* What the host keeps of a sandbox it made, in its folder (record.json). */
typedef struct sbx_record
{
  char *id; /* the container's full id */
  char *workdir;
  char *image;
  bool auto_remove;
  int64_t memory;
  pid_t pid;       /* the agent, as the host sees it, once started */
  json_t *options; /* what the sandbox was asked for */
} sbx_record_t;

/* The host folder of sandbox NAME (checked: it becomes a path). */
int sbx_hostdir_path (const char *name, char **dir, sbx_error_t **err);
/* Makes the folder: the agent binary, the run tmpfs (writable again). */
int sbx_hostdir_prepare (const char *dir, sbx_error_t **err);
/* Turns the run folder read-only once the agent listens (as root). */
void sbx_hostdir_seal (const char *dir);
/* Removes the folder, its run tmpfs first. */
void sbx_hostdir_remove (const char *dir);
int sbx_record_write (const char *dir, const sbx_record_t *rec, sbx_error_t **err);
/* 0, or -1 when there is no valid record. */
int sbx_record_read (const char *dir, sbx_record_t *rec);
void sbx_record_clear (sbx_record_t *rec);

/* Starts the sandbox if needed and makes sure a verified agent connection is
 * open. Every operation calls this first. */
int sbx_sandbox_ensure (sbx_sandbox_t *sb, sbx_error_t **err);

/* Absolute, lexically normalised path in the sandbox for PATH (relative paths
 * resolve against the workdir; NULL or "" means the workdir). */
char *sbx_sandbox_path (const sbx_sandbox_t *sb, const char *path, sbx_error_t **err);

/* What one attempt to connect to the agent found. */
typedef enum sbx_agent_reach
{
  SBX_AGENT_CONNECTED, /* the container's PID 1 answered */
  SBX_AGENT_NOT_YET,   /* nothing listens yet */
  SBX_AGENT_IMPOSTOR,  /* something else answered: it is not talked to */
} sbx_agent_reach_t;

/* One attempt to connect to the agent and check that it is the container's
 * PID 1: 0 and *REACH, or a negative sbx_errc when the attempt itself
 * failed. */
int sbx_agent_try_connect (sbx_sandbox_t *sb, sbx_agent_reach_t *reach, sbx_error_t **err);
/* Marks the sandbox in use now (at most once a second per handle): the
 * modification time of the activity file in its host folder, which any
 * process may read (the session manager's idle time). */
void sbx_sandbox_touch (sbx_sandbox_t *sb);
#define SBX_ACTIVITY_FILE "activity"
/* Writes and clears sb->out. */
int sbx_agent_flush (sbx_sandbox_t *sb, sbx_error_t **err);
/* Drops the request being framed in sb->out (not a pending HELLO). */
void sbx_agent_drop_request (sbx_sandbox_t *sb);
/* sb->out went out in full (for callers that send it themselves). */
void sbx_agent_sent (sbx_sandbox_t *sb);
/* Next message already read from the agent: 1 with MSG, 0 none yet, or
 * negative after an invalid frame or a failed HELLO (connection dropped). */
int sbx_agent_next (sbx_sandbox_t *sb, sbx_msg_t *msg, sbx_error_t **err);
/* The agent says ALIVE every SBX_PROTO_ALIVE_MS while it works on a request:
 * silence this long means it stopped answering. */
#define SBX_AGENT_IDLE 10.0
/* What the host adds to an operation's own time limit before it gives up. */
#define SBX_AGENT_GRACE 5.0

/* Next message from the agent (ALIVE frames are skipped). Fails with
 * SBX_E_TIMEOUT when nothing came for SBX_AGENT_IDLE seconds of waiting or
 * DEADLINE passed (monotonic seconds, see sbx_agent_deadline; 0: none),
 * dropping the connection. On a broken channel, the connection is closed
 * and the error says why (sandbox stopped, OOM-killed, removed). */
int sbx_agent_recv (sbx_sandbox_t *sb, sbx_msg_t *msg, double deadline, sbx_error_t **err);
/* The deadline for an operation the agent ends within SECONDS. */
double sbx_agent_deadline (double seconds);
/* Drops the connection and reports that the agent went silent (or, with
 * OVERALL, that the operation's deadline passed). Always negative. */
int sbx_agent_timeout (sbx_sandbox_t *sb, bool overall, sbx_error_t **err);
/* Reads bytes that are already waiting on the socket into the reader (used by
 * callers that poll the socket themselves). */
int sbx_agent_read_some (sbx_sandbox_t *sb, sbx_error_t **err);
/* Turns an ERR frame into an error; any other unexpected frame becomes a
 * protocol error (and closes the connection). Always returns negative. */
int sbx_agent_fail (sbx_sandbox_t *sb, const sbx_msg_t *msg, sbx_error_t **err);
/* The agent sent something invalid: closes the connection (the stream can't
 * be trusted to be in step any more) and reports WHAT. */
int sbx_agent_protocol_error (sbx_sandbox_t *sb, const char *what, sbx_error_t **err);
/* The channel broke: closes it and asks the engine what became of the
 * container, so the error says "stopped", "removed" or "out of memory". */
int sbx_agent_broken (sbx_sandbox_t *sb, const char *why, sbx_error_t **err);
/* Frames the start of an EXEC or BG_START request (command, cwd, env) in
 * sb->out; the caller adds its own fields and ends the frame. */
int sbx_exec_frame (sbx_sandbox_t *sb, uint8_t type, const char *command, const sbx_exec_opts_t *o,
                    sbx_error_t **err);
/* Drops the connection, e.g. after a protocol error. */
void sbx_agent_disconnect (sbx_sandbox_t *sb);

/* Bytes of a field, validated: present, at most MAX bytes. */
int sbx_agent_bytes (sbx_sandbox_t *sb, const sbx_msg_t *m, uint8_t tag, size_t max,
                     const uint8_t **data, size_t *len, sbx_error_t **err);
/* Integer field within [MIN, MAX]. */
int sbx_agent_int (sbx_sandbox_t *sb, const sbx_msg_t *m, uint8_t tag, int64_t min, int64_t max,
                   int64_t *v, sbx_error_t **err);

#endif
