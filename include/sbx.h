/* sbx: Docker sandboxes for AI agents.
 *
 * Conventions used throughout this header:
 *  - Functions that can fail return 0 on success and a negative sbx_errc on
 *    failure; when ERR is not NULL, *ERR then receives an error the caller
 *    frees with sbx_error_free().
 *  - Strings and buffers returned through out-parameters are owned by the
 *    caller and freed with free() unless a dedicated *_free() is named.
 *  - An sbx_sandbox_t is not thread-safe: use one per thread, or lock.
 */
#ifndef SBX_H
#define SBX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SBX_VERSION "0.1.0"

/* ---------------------------------------------------------------- errors */

typedef enum sbx_errc
{
  SBX_OK = 0,
  SBX_E_INVALID = 1,         /* invalid argument */
  SBX_E_NOMEM = 2,           /* out of memory on the host */
  SBX_E_ENGINE = 3,          /* Docker engine unreachable or failed */
  SBX_E_IMAGE_MISSING = 4,   /* image not present and cannot be pulled */
  SBX_E_GONE = 5,            /* the sandbox's container no longer exists or stopped */
  SBX_E_OOM = 6,             /* the sandbox was killed for running out of memory */
  SBX_E_NOT_FOUND = 7,       /* file or directory missing */
  SBX_E_IS_DIR = 8,          /* a file was expected, a directory was found */
  SBX_E_NOT_DIR = 9,         /* a directory was expected */
  SBX_E_NOT_TEXT = 10,       /* the file is binary; use read_bytes */
  SBX_E_PATTERN = 11,        /* invalid regular expression or glob */
  SBX_E_EDIT_NO_MATCH = 12,  /* edit: old text not found */
  SBX_E_EDIT_AMBIGUOUS = 13, /* edit: old text found more than once */
  SBX_E_TOO_LARGE = 14,      /* a size limit was exceeded */
  SBX_E_PROTOCOL = 15,       /* the agent sent something invalid */
  SBX_E_AGENT = 16,          /* the in-container agent failed or did not start */
  SBX_E_IO = 17,             /* an I/O error inside the sandbox */
  SBX_E_PERMISSION = 18,     /* permission denied */
  SBX_E_EXISTS = 19,         /* something with that name already exists */
  SBX_E_NO_PROCESS = 20,     /* no background process with that id */
  SBX_E_TIMEOUT = 21,        /* an operation on the host side timed out */
  SBX_E_BUILD = 22,          /* building a runtime's image failed */
  SBX_E_LIMIT = 23,          /* a limit of the sandbox was reached (its processes, ...) */
} sbx_errc;

/* The highest sbx_errc. */
#define SBX_ERRC_MAX SBX_E_LIMIT

typedef struct sbx_error sbx_error_t;

int sbx_error_code (const sbx_error_t *err);
/* A sentence a user can act on. Owned by ERR. */
const char *sbx_error_message (const sbx_error_t *err);
/* Short stable name of a code, e.g. "not_found". Static storage. */
const char *sbx_errc_name (int code);
void sbx_error_free (sbx_error_t *err);

/* Making errors, for the library and for code built on it (the CLI, the
 * MCP tools), all with one convention: the first error wins. Each returns
 * -CODE (the code of the error concerned), so that a failure is
 * `return sbx_error_set (err, SBX_E_INVALID, "...")`.
 *
 * Sets *ERR to a new error when ERR is not NULL and *ERR is NULL. */
int sbx_error_set (sbx_error_t **err, int code, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));
/* The same, with ": strerror(ERRNO_VALUE)" after the message. */
int sbx_error_set_errno (sbx_error_t **err, int code, int errno_value, const char *fmt, ...)
    __attribute__ ((format (printf, 4, 5)));
/* After a call failed with R (negative): puts context in front of *ERR's
 * message ("CONTEXT: message"), keeping its code, and returns R. */
int sbx_error_wrap (sbx_error_t **err, int r, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));
/* Hands SRC to the caller's *DST (when DST is not NULL and *DST is NULL;
 * otherwise frees it): the error of a call made with a local error. */
int sbx_error_propagate (sbx_error_t **dst, sbx_error_t *src);

/* -------------------------------------------------------------- options */

/* Defaults (see the README's security table):
 *   image          python:3.12-slim if present or pullable, else sbx's base
 *   workdir        /workspace
 *   network        "none"  ("bridge" or a network name on request)
 *   memory         1 GiB (swap disabled)
 *   cpus           1.0
 *   pids           512
 *   disk           10 GiB (see sbx_options_set_disk)
 *   auto_remove    true for unnamed sandboxes, false when a name is given
 */
typedef struct sbx_options sbx_options_t;

#define SBX_DEFAULT_MEMORY (1LL << 30)
#define SBX_DEFAULT_CPUS 1.0
#define SBX_DEFAULT_PIDS 512
#define SBX_DEFAULT_DISK (10LL << 30)

sbx_options_t *sbx_options_new (void);
void sbx_options_free (sbx_options_t *opts);
int sbx_options_set_image (sbx_options_t *opts, const char *image, sbx_error_t **err);
/* Container name: [A-Za-z0-9][A-Za-z0-9_.-]{0,62}. */
int sbx_options_set_name (sbx_options_t *opts, const char *name, sbx_error_t **err);
int sbx_options_set_workdir (sbx_options_t *opts, const char *dir, sbx_error_t **err);
/* "HOST:CONTAINER" or "HOST:CONTAINER:ro"; HOST must be an absolute path. */
int sbx_options_add_volume (sbx_options_t *opts, const char *spec, sbx_error_t **err);
/* "KEY=VALUE" */
int sbx_options_add_env (sbx_options_t *opts, const char *kv, sbx_error_t **err);
int sbx_options_set_memory (sbx_options_t *opts, int64_t bytes, sbx_error_t **err);
int sbx_options_set_cpus (sbx_options_t *opts, double cpus, sbx_error_t **err);
int sbx_options_set_pids (sbx_options_t *opts, int64_t pids, sbx_error_t **err);
/* What the sandbox may write: enforced by the engine's storage quota where
 * its storage driver has one (overlay2 on xfs with pquota, btrfs, zfs);
 * elsewhere each file the sandbox's commands write, and each file sbx
 * writes for it, is capped at BYTES, /tmp is a tmpfs of at most BYTES (and
 * of memory), and sbx_sandbox_notice says so. */
int sbx_options_set_disk (sbx_options_t *opts, int64_t bytes, sbx_error_t **err);
int sbx_options_set_network (sbx_options_t *opts, const char *mode, sbx_error_t **err);
void sbx_options_set_auto_remove (sbx_options_t *opts, bool auto_remove);
/* A named sandbox that exists with other options (image, runtime, network,
 * volumes, env, work dir, limits) is removed and made again; without this,
 * using it fails with SBX_E_EXISTS naming each difference. */
void sbx_options_set_replace (sbx_options_t *opts, bool replace);

/* Parses sizes such as "512m", "1g", "1048576" into bytes. */
int sbx_parse_size (const char *text, int64_t *bytes, sbx_error_t **err);

/* ------------------------------------------------------------ lifecycle */

typedef struct sbx_sandbox sbx_sandbox_t;

/* Makes a handle; no container exists until start() or the first operation
 * (lazy start). With a name, an existing sbx sandbox of that name is re-used
 * when it was made with the same options (see sbx_options_set_replace), and
 * concurrent creates of one name, in any process, make it once.
 * OPTS may be freed after the call. Free the handle with sbx_sandbox_free(). */
int sbx_sandbox_new (const sbx_options_t *opts, sbx_sandbox_t **out, sbx_error_t **err);
/* Attaches to an existing sandbox by container name or id. */
int sbx_sandbox_open (const char *id, sbx_sandbox_t **out, sbx_error_t **err);
/* Creates and starts the container if needed and connects to its agent. */
int sbx_sandbox_start (sbx_sandbox_t *sb, sbx_error_t **err);
bool sbx_sandbox_is_alive (sbx_sandbox_t *sb);
/* Stops the container; removes it (and its host folder) when auto-remove. */
int sbx_sandbox_stop (sbx_sandbox_t *sb, sbx_error_t **err);
/* Removes the container and its host folder, named or not. */
int sbx_sandbox_remove (sbx_sandbox_t *sb, sbx_error_t **err);
/* Releases the handle only; the container is left as it is. */
void sbx_sandbox_free (sbx_sandbox_t *sb);
/* File operations on this handle (ls, read, read_bytes, edit, glob, grep)
 * end within SECONDS (default SBX_DEFAULT_FILE_TIMEOUT), whatever the
 * content: listings and searches come back flagged truncated, reads and
 * edits fail with SBX_E_TIMEOUT. Streaming a file (sbx_read_stream) has an
 * hour. SECONDS is checked as sbx_timeout_check does; 0 is refused. */
#define SBX_DEFAULT_FILE_TIMEOUT 30.0
int sbx_sandbox_set_file_timeout (sbx_sandbox_t *sb, double seconds, sbx_error_t **err);
/* Container name (accepted by the docker CLI too); NULL before start. */
const char *sbx_sandbox_id (const sbx_sandbox_t *sb);
/* A sentence about a limit that could not be applied as asked (the disk
 * limit on a storage driver without quotas), once the sandbox has started;
 * NULL when there is none. Owned by SB. */
const char *sbx_sandbox_notice (const sbx_sandbox_t *sb);
/* What a sandbox uses, as the engine counts it at one moment; -1 (0 for
 * the counters) where the engine does not say. */
typedef struct sbx_sandbox_usage
{
  int64_t memory_bytes;       /* without the page cache, as `docker stats` shows it */
  int64_t memory_limit_bytes; /* the sandbox's memory limit */
  int64_t pids;               /* processes and threads */
  uint64_t cpu_ns;            /* CPU time used since the start */
  uint64_t system_ns;         /* the host's CPU time (all CPUs) when sampled */
  unsigned online_cpus;
} sbx_sandbox_usage_t;

/* Samples what the sandbox uses now (one request to the engine, no wait).
 * SBX_E_GONE for a removed sandbox. */
int sbx_sandbox_usage (sbx_sandbox_t *sb, sbx_sandbox_usage_t *usage, sbx_error_t **err);
/* The CPU the sandbox used between two samples, in percent of one CPU (as
 * `docker stats` says it: 200 is two CPUs busy); -1 when they don't tell. */
double sbx_sandbox_cpu_percent (const sbx_sandbox_usage_t *before,
                                const sbx_sandbox_usage_t *after);

/* Image the sandbox uses; resolved at start. */
const char *sbx_sandbox_image (const sbx_sandbox_t *sb);
const char *sbx_sandbox_workdir (const sbx_sandbox_t *sb);

typedef struct sbx_sandbox_info
{
  char *id;
  char *image;
  char *status;  /* "running", "exited", ... */
  char *created; /* RFC 3339 */
  bool named;
} sbx_sandbox_info_t;

/* Lists the containers sbx made (by label). Free with sbx_sandbox_info_list_free. */
int sbx_sandbox_list (sbx_sandbox_info_t **items, size_t *count, sbx_error_t **err);
void sbx_sandbox_info_list_free (sbx_sandbox_info_t *items, size_t count);

/* ----------------------------------------------------------------- exec */

enum sbx_stream
{
  SBX_STDOUT = 1,
  SBX_STDERR = 2
};

/* Called with each chunk of output as it arrives (before the output cap is
 * applied to the stored result). Return non-zero to cancel the command. */
typedef int (*sbx_output_cb) (enum sbx_stream stream, const char *data, size_t len, void *userdata);

#define SBX_DEFAULT_MAX_OUTPUT 100000
#define SBX_TIMEOUT_EXIT_CODE 124
/* Timeouts are seconds: 0 for none, else up to SBX_MAX_TIMEOUT (30 days); a
 * fraction of a millisecond rounds up to one. */
#define SBX_MAX_TIMEOUT 2592000.0

/* 0 when SECONDS is a valid timeout; SBX_E_INVALID naming the range (NaN,
 * negative and huge values) otherwise. */
int sbx_timeout_check (double seconds, sbx_error_t **err);

typedef struct sbx_exec_opts
{
  const char *cwd;        /* default: the sandbox's workdir */
  const char *const *env; /* NULL-terminated "K=V" list, or NULL */
  double timeout;         /* seconds; 0 means none (see SBX_MAX_TIMEOUT) */
  size_t max_output;      /* bytes kept; 0 means SBX_DEFAULT_MAX_OUTPUT */
  bool separate_streams;  /* keep stdout and stderr apart */
  const void *stdin_data; /* optional input ... */
  size_t stdin_len;
  int stdin_fd; /* ... or a descriptor read to EOF; -1 for none */
  sbx_output_cb on_output;
  void *userdata;
  /* A socket (a client's, say) whose peer hanging up or failing cancels the
   * command as on_output's non-zero does; -1 (the default) for none. */
  int cancel_fd;
} sbx_exec_opts_t;

/* Initialises OPTS to the defaults (stdin_fd and cancel_fd -1). */
void sbx_exec_opts_init (sbx_exec_opts_t *opts);

typedef struct sbx_exec_result
{
  char *output; /* combined output, NUL-terminated (may contain NULs) */
  size_t output_len;
  char *stdout_data; /* with separate_streams, else NULL */
  size_t stdout_len;
  char *stderr_data;
  size_t stderr_len;
  int exit_code;  /* 128+N when killed by signal N; 124 on timeout */
  bool truncated; /* output went past max_output; the rest was drained */
  bool timed_out;
  bool oom_killed; /* the command was killed by the memory limit */
  bool cancelled;  /* on_output asked to stop */
} sbx_exec_result_t;

/* Runs `sh -c COMMAND`. OPTS may be NULL. Free RESULT with sbx_exec_result_free. */
int sbx_exec (sbx_sandbox_t *sb, const char *command, const sbx_exec_opts_t *opts,
              sbx_exec_result_t *result, sbx_error_t **err);
void sbx_exec_result_free (sbx_exec_result_t *result);

/* Background processes. ID is a short string such as "1"; free with free(). */
int sbx_bg_start (sbx_sandbox_t *sb, const char *command, const sbx_exec_opts_t *opts, char **id,
                  sbx_error_t **err);

typedef struct sbx_bg_info
{
  char *id;
  char *command;
  int64_t pid;
  bool running;
  int exit_code;    /* valid when !running */
  uint64_t dropped; /* bytes of output lost because the buffer was full */
} sbx_bg_info_t;

/* New output since the last read (up to 1 MiB per call) and the status. */
int sbx_bg_read (sbx_sandbox_t *sb, const char *id, char **output, size_t *len, sbx_bg_info_t *info,
                 sbx_error_t **err);
/* Kills the process tree (TERM, then KILL after a grace period). */
int sbx_bg_kill (sbx_sandbox_t *sb, const char *id, sbx_error_t **err);
int sbx_bg_list (sbx_sandbox_t *sb, sbx_bg_info_t **items, size_t *count, sbx_error_t **err);

/* Kills every process in the sandbox but its agent, background processes
 * and running commands included: the way out of a fork bomb (or of any
 * process that fills the pids limit) without losing the container or its
 * files. *KILLED (may be NULL) gets how many processes were alive. */
int sbx_sandbox_kill_all (sbx_sandbox_t *sb, size_t *killed, sbx_error_t **err);
void sbx_bg_info_clear (sbx_bg_info_t *info);
void sbx_bg_info_list_free (sbx_bg_info_t *items, size_t count);

/* ---------------------------------------------------------------- files */

/* Relative paths resolve against the sandbox's workdir (SBX_DEFAULT_WORKDIR unless
 * its options or runtime say otherwise). */
#define SBX_DEFAULT_WORKDIR "/workspace"

/* PATH made absolute against BASE (unless it is absolute already) and
 * lexically normalised: "." and empty segments vanish, ".." pops, never
 * above "/". A NULL or empty PATH is ".". No file system is consulted, so
 * symlinks stay as they are. Malloc'd (the caller frees), NULL when out of
 * memory. */
char *sbx_path_resolve (const char *base, const char *path);

typedef struct sbx_file_info
{
  char *name; /* last path component */
  char *path; /* absolute path in the sandbox */
  bool is_dir;
  uint64_t size;
} sbx_file_info_t;

typedef struct sbx_file_list
{
  sbx_file_info_t *items;
  size_t count;
  bool truncated; /* more entries existed than were returned */
  size_t total;   /* entries that exist (for glob: that match), returned or not */
} sbx_file_list_t;

/* A listing's bounds, on the host's memory: at most MAX_ENTRIES entries and
 * MAX_BYTES bytes of names and paths (with their bookkeeping); past either,
 * the listing is truncated. 0 means the default. */
#define SBX_DEFAULT_MAX_ENTRIES 100000
#define SBX_DEFAULT_MAX_LIST_BYTES (16u << 20)
typedef struct sbx_list_opts
{
  size_t max_entries;
  size_t max_bytes;
} sbx_list_opts_t;

void sbx_file_list_free (sbx_file_list_t *list);

int sbx_exists (sbx_sandbox_t *sb, const char *path, bool *exists, sbx_error_t **err);

/* What a path is in the sandbox, asked of the agent (no process is
 * started): the path with its symbolic links resolved as far as it exists
 * and the rest kept as given (as `realpath -m`), and, when it exists, what
 * stat says of it. Device, inode, size and nanosecond times together
 * change whenever anything writes the file. */
typedef struct sbx_path_info
{
  char *path;  /* absolute; free with sbx_path_info_clear */
  bool exists; /* the fields below are valid only when true */
  bool is_dir;
  bool is_file; /* a regular file */
  uint64_t size;
  uint32_t mode; /* st_mode */
  uint64_t dev, ino;
  int64_t mtime_ns, ctime_ns;
} sbx_path_info_t;

int sbx_resolve (sbx_sandbox_t *sb, const char *path, sbx_path_info_t *info, sbx_error_t **err);
/* N paths at once (one round trip per batch); INFOS holds N entries, each
 * cleared by the caller. On failure, none needs clearing. */
int sbx_resolve_many (sbx_sandbox_t *sb, const char *const *paths, size_t n, sbx_path_info_t *infos,
                      sbx_error_t **err);
void sbx_path_info_clear (sbx_path_info_t *info);
/* Directories first, then by name. OPTS may be NULL. */
int sbx_ls (sbx_sandbox_t *sb, const char *path, const sbx_list_opts_t *opts, sbx_file_list_t *out,
            sbx_error_t **err);

#define SBX_DEFAULT_READ_LIMIT 2000

/* Lines OFFSET+1 .. OFFSET+LIMIT (LIMIT 0 means SBX_DEFAULT_READ_LIMIT), each
 * as "%6d\t<line>\n", followed by a note when more lines remain. Only the
 * lines returned are read. Binary files fail with SBX_E_NOT_TEXT. */
int sbx_read (sbx_sandbox_t *sb, const char *path, size_t offset, size_t limit, char **text,
              sbx_error_t **err);

#define SBX_DEFAULT_MAX_READ_BYTES (64u << 20)
/* Whole file; fails with SBX_E_TOO_LARGE past SBX_DEFAULT_MAX_READ_BYTES.
 * *DATA is NUL-terminated for convenience (not counted in *LEN). */
int sbx_read_bytes (sbx_sandbox_t *sb, const char *path, void **data, size_t *len,
                    sbx_error_t **err);
/* Streams a file of any size to CB; CB returns non-zero to stop. */
typedef int (*sbx_data_cb) (const void *data, size_t len, void *userdata);
int sbx_read_stream (sbx_sandbox_t *sb, const char *path, sbx_data_cb cb, void *userdata,
                     sbx_error_t **err);

/* Atomic: readers see the old file or the new one, never half of it.
 * Parent directories are created; an existing file's mode is kept. */
int sbx_write (sbx_sandbox_t *sb, const char *path, const void *data, size_t len,
               sbx_error_t **err);
/* Same, with the content read from FD until EOF. */
int sbx_write_fd (sbx_sandbox_t *sb, const char *path, int fd, sbx_error_t **err);

/* Replaces OLD by NEW. Without REPLACE_ALL, OLD must occur exactly once.
 * Bytes outside the matches are left untouched. *OCCURRENCES (may be NULL)
 * gets how many were replaced, or, failing with SBX_E_EDIT_AMBIGUOUS, how
 * many times OLD occurs. */
int sbx_edit (sbx_sandbox_t *sb, const char *path, const char *old_text, const char *new_text,
              bool replace_all, size_t *occurrences, sbx_error_t **err);

/* Files matching PATTERN relative to PATH (default: the workdir), sorted by
 * path. `*` `?` `[...]` stay within a segment, `**` crosses, `{a,b}` expands.
 * OPTS may be NULL. */
int sbx_glob (sbx_sandbox_t *sb, const char *pattern, const char *path, const sbx_list_opts_t *opts,
              sbx_file_list_t *out, sbx_error_t **err);

typedef struct sbx_grep_match
{
  char *path;
  uint64_t line_number; /* 1-based */
  char *line;           /* without the newline; long lines are cut */
} sbx_grep_match_t;

typedef struct sbx_grep_result
{
  sbx_grep_match_t *items;
  size_t count;
  bool truncated;
} sbx_grep_result_t;

typedef struct sbx_grep_opts
{
  const char *path; /* file or directory; default the workdir */
  const char *glob; /* filter on file names (or relative paths if it has '/') */
  bool include_hidden;
  bool ignore_case;
  size_t max_matches;       /* 0 means 10,000 */
  size_t max_bytes;         /* of paths and lines; 0 means SBX_DEFAULT_MAX_LIST_BYTES */
  const char *const *files; /* NULL-terminated: search these files (as they are: links
                               to regular files followed, others skipped) instead of
                               PATH's tree */
} sbx_grep_opts_t;

/* PCRE2 search with match limits. OPTS may be NULL. */
int sbx_grep (sbx_sandbox_t *sb, const char *pattern, const sbx_grep_opts_t *opts,
              sbx_grep_result_t *out, sbx_error_t **err);
/* The files sbx_grep with OPTS (path, glob, include_hidden) would search,
 * none of them read: a caller that must keep some files out of a search
 * (sbx mcp's permissions) picks from these, then searches with OPTS->files.
 * Bounded by max_matches (as entries) and max_bytes. */
int sbx_grep_files (sbx_sandbox_t *sb, const sbx_grep_opts_t *opts, sbx_file_list_t *out,
                    sbx_error_t **err);
void sbx_grep_result_free (sbx_grep_result_t *result);

/* ----------------------------------------------------------------- text */

/* A NUL-terminated copy of the N bytes at S that is valid UTF-8: each byte of
 * an invalid sequence, and each NUL byte, becomes U+FFFD. For output meant
 * for JSON or a model, whatever a file or a command held. NULL when out of
 * memory; free with free(). */
char *sbx_utf8_sanitize_copy (const char *s, size_t n);

/* --------------------------------------------------------------- images */

#define SBX_SEED_IMAGE "python:3.12-slim"
#define SBX_BASE_IMAGE "sbx/base:bookworm"

/* Progress lines from long operations; LINE has no newline. */
typedef void (*sbx_progress_cb) (const char *line, void *userdata);

/* Picks the default image: the seed's if present or pullable, else sbx's base
 * image. *IMAGE is malloc'd; *REASON (may be NULL) says why, static storage. */
int sbx_image_default (char **image, const char **reason, sbx_error_t **err);
int sbx_image_exists (const char *image, bool *exists, sbx_error_t **err);
/* Builds SBX_BASE_IMAGE with debootstrap from the host's apt sources. Needs root. */
int sbx_image_bootstrap (sbx_progress_cb progress, void *userdata, sbx_error_t **err);

/* ------------------------------------------------------------- runtimes */

/* A runtime is a pre-configured environment: the seed's RuntimeConfig.
 * Either IMAGE is used as is, or BASE_IMAGE plus SETUP_COMMANDS and PACKAGES
 * (installed by PACKAGE_MANAGER) is built once, through the engine, into an
 * image tagged sbx-runtime/NAME:HASH (HASH of the definition), re-used while
 * the definition is unchanged. ENV_VARS and WORK_DIR also apply to sandboxes
 * that use it. Every field is validated when set, so nothing reaches a
 * Dockerfile or a shell unquoted; errors name the field. Built-ins also have
 * an offline flavour (sbx's Debian base image with Debian's packages) used
 * when the seed's base image can't be pulled or its build fails. */
typedef struct sbx_runtime sbx_runtime_t;

typedef enum sbx_runtime_flavour
{
  SBX_FLAVOUR_AUTO = 0,    /* the seed's when it can be had, else the offline one */
  SBX_FLAVOUR_SEED = 1,    /* the definition as given */
  SBX_FLAVOUR_OFFLINE = 2, /* the built-in's Debian flavour on SBX_BASE_IMAGE */
} sbx_runtime_flavour;

/* "auto", "seed", "offline"; static storage. */
const char *sbx_runtime_flavour_name (sbx_runtime_flavour flavour);
int sbx_runtime_flavour_parse (const char *name, sbx_runtime_flavour *flavour, sbx_error_t **err);

/* NAME: 1 to 64 lowercase letters and digits, with single '.', '_' or '-'
 * between them (it becomes part of the image name). Defaults: no image,
 * package manager pip, work dir /workspace, cache on. */
int sbx_runtime_new (const char *name, sbx_runtime_t **out, sbx_error_t **err);
void sbx_runtime_free (sbx_runtime_t *rt);
int sbx_runtime_set_description (sbx_runtime_t *rt, const char *text, sbx_error_t **err);
/* An image used as is (no build). */
int sbx_runtime_set_image (sbx_runtime_t *rt, const char *image, sbx_error_t **err);
/* The image packages are installed on. */
int sbx_runtime_set_base_image (sbx_runtime_t *rt, const char *image, sbx_error_t **err);
/* "pip", "npm" (into the work dir, so that require() and npx find them),
 * "apt" or "cargo". */
int sbx_runtime_set_package_manager (sbx_runtime_t *rt, const char *manager, sbx_error_t **err);
int sbx_runtime_add_package (sbx_runtime_t *rt, const char *package, sbx_error_t **err);
/* One shell command, run by `sh -c` as its own build step, before the
 * packages are installed. No newlines. */
int sbx_runtime_add_setup_command (sbx_runtime_t *rt, const char *command, sbx_error_t **err);
/* Sets (or replaces) one environment variable. */
int sbx_runtime_set_env (sbx_runtime_t *rt, const char *key, const char *value, sbx_error_t **err);
int sbx_runtime_set_workdir (sbx_runtime_t *rt, const char *dir, sbx_error_t **err);
/* Without cache, every request builds the image again (seed's cache_image). */
void sbx_runtime_set_cache (sbx_runtime_t *rt, bool cache);
/* Pins a flavour (default AUTO); OFFLINE needs a runtime that has one. */
int sbx_runtime_set_flavour (sbx_runtime_t *rt, sbx_runtime_flavour flavour, sbx_error_t **err);
/* Changing the image, base image, package manager, packages or setup
 * commands of a built-in drops its offline flavour: it no longer matches. */

/* A definition in JSON with the seed's field names: name, description,
 * image, base_image, packages, package_manager, setup_commands, env_vars
 * (an object), work_dir, cache_image, and optionally "offline" (an object
 * with description, image, base_image, packages, package_manager,
 * setup_commands). Unknown fields are refused. */
int sbx_runtime_from_json (const char *text, sbx_runtime_t **out, sbx_error_t **err);
int sbx_runtime_load_file (const char *path, sbx_runtime_t **out, sbx_error_t **err);
/* The definition as that JSON, indented; free() it. */
int sbx_runtime_to_json (const sbx_runtime_t *rt, char **json, sbx_error_t **err);

/* python-minimal, python-datascience, python-web, node-minimal, node-react;
 * NULL-terminated, static storage. */
const char *const *sbx_runtime_builtin_names (void);
int sbx_runtime_builtin (const char *name, sbx_runtime_t **out, sbx_error_t **err);

const char *sbx_runtime_name (const sbx_runtime_t *rt);
const char *sbx_runtime_description (const sbx_runtime_t *rt);
const char *sbx_runtime_workdir (const sbx_runtime_t *rt);
/* SEED always; OFFLINE for built-ins (and definitions with "offline"). */
bool sbx_runtime_has_flavour (const sbx_runtime_t *rt, sbx_runtime_flavour flavour);

/* The Dockerfile sbx generates for FLAVOUR (SEED or OFFLINE); *TEXT is NULL
 * when that flavour is an image used as is. */
int sbx_runtime_dockerfile (const sbx_runtime_t *rt, sbx_runtime_flavour flavour, char **text,
                            sbx_error_t **err);
/* The image FLAVOUR runs (its tag, or the image used as is; NULL for a
 * runtime without any image, which runs sbx's default) and whether the
 * engine has it. */
int sbx_runtime_image_status (const sbx_runtime_t *rt, sbx_runtime_flavour flavour, char **image,
                              bool *present, sbx_error_t **err);

typedef enum sbx_build_event
{
  SBX_BUILD_NOTE = 0,   /* TEXT is a sentence from sbx: flavour and why, waiting, ... */
  SBX_BUILD_STEP = 1,   /* a step started: STEP of STEPS, STEP_TEXT */
  SBX_BUILD_OUTPUT = 2, /* TEXT is a line of the current step's output */
} sbx_build_event;

typedef struct sbx_build_progress
{
  sbx_build_event event;
  const char *runtime; /* the runtime's name */
  const char *image;   /* the image being built, or NULL */
  sbx_runtime_flavour flavour;
  int step, steps;       /* 1-based; 0 before the first step */
  const char *step_text; /* "RUN [...]" of the current step, or NULL */
  const char *text;      /* the note or the output line, without newline */
  double elapsed;        /* seconds since the build started */
} sbx_build_progress_t;

typedef void (*sbx_build_progress_cb) (const sbx_build_progress_t *progress, void *userdata);

typedef struct sbx_runtime_image
{
  char *image;                 /* what sandboxes of this runtime run */
  char *id;                    /* the engine's image id */
  sbx_runtime_flavour flavour; /* SEED or OFFLINE */
  char *reason;                /* a sentence: which flavour and why */
  bool built;                  /* this call built it (false: it was there) */
  double seconds;              /* how long the build took */
} sbx_runtime_image_t;

void sbx_runtime_image_clear (sbx_runtime_image_t *info);

/* Makes sure the runtime's image exists: re-used when its tag exists,
 * otherwise built (with the default bridge network for the build steps;
 * sandboxes keep their own network setting). Concurrent requests for the
 * same image, in any process, build it once. PROGRESS (may be NULL) gets
 * notes, steps and output lines. *IMAGE and INFO may each be NULL. A failed
 * build leaves no tag and fails with SBX_E_BUILD naming the step and its
 * last output lines. */
int sbx_runtime_ensure_image (const sbx_runtime_t *rt, sbx_build_progress_cb progress,
                              void *userdata, char **image, sbx_runtime_image_t *info,
                              sbx_error_t **err);

/* Removes runtime images that are superseded: for a built-in, every image
 * but its current ones; for other runtimes, all but the newest image of each
 * name and flavour. With ALL, every runtime image. NAME (may be NULL) limits
 * this to one runtime's images. Images a container uses are kept. REMOVED
 * (may be NULL) gets each removed image's name. */
int sbx_runtime_prune (const char *name, bool all, sbx_progress_cb removed, void *userdata,
                       sbx_error_t **err);

/* The sandbox uses RT: its image is resolved (built if needed) when the
 * sandbox starts, its work dir and environment variables are set now (set
 * the work dir or add variables afterwards to override them), and an image
 * set before is dropped. RT may be freed after the call. */
int sbx_options_set_runtime (sbx_options_t *opts, const sbx_runtime_t *rt, sbx_error_t **err);

/* ------------------------------------------------------------- sessions */

/* A session manager: sandboxes for the users of a multi-user application,
 * one per session, each user's files in a workspace of their own that
 * outlives every session, idle sessions reaped, limits enforced, and an
 * optional warm pool of started sandboxes that a new session claims. Its
 * state lives on the host (under the state root, by the manager's name):
 * a new manager of the same name, in this process or another, finds the
 * sessions a previous one left, and cleans up what a crash left half-made.
 * One manager serves many threads; each session has its own lock, so a
 * slow call in one session never holds up another. */
typedef struct sbx_manager sbx_manager_t;

typedef struct sbx_manager_config
{
  const char *name;             /* NULL: "default"; ids' grammar (see below) */
  const sbx_options_t *sandbox; /* the sessions' sandbox options (copied); NULL: defaults.
                                 * A name is not allowed: each session's sandbox gets its own. */
  const char *workspace_root;   /* NULL: no workspaces; else an existing folder where each user's
                               * ROOT/USER/workspace is mounted at the work dir */
  double idle_timeout;          /* seconds without activity before a session is reaped; 0: 3600 */
  size_t max_sessions;          /* live sessions of this manager; 0: no limit */
  size_t max_per_user;          /* live sessions of one user; 0: no limit */
  size_t pool_size;             /* started sandboxes kept ready; 0: none */
} sbx_manager_config_t;

/* User and session ids: ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$ (they name host
 * folders, so nothing else is accepted). */
bool sbx_session_id_valid (const char *id);

/* Makes a manager (with a warm pool, starts filling it in the background).
 * Free with sbx_manager_free, which leaves the sessions running; end them
 * with sbx_manager_shutdown. */
int sbx_manager_new (const sbx_manager_config_t *config, sbx_manager_t **out, sbx_error_t **err);
void sbx_manager_free (sbx_manager_t *m);
/* Removes the state on the host of the manager NAME (its key, locks and
 * records) once it has no session: refused (SBX_E_EXISTS) while it has
 * one, or while a process holds its warm pool. Workspaces are not
 * touched. */
int sbx_manager_delete (const char *name, sbx_error_t **err);

/* A new session for USER: its id in *SESSION_ID (malloc'd). A sandbox from
 * the warm pool when one is ready, else one started now; with a workspace
 * root, the user's folder is at the work dir. Fails with SBX_E_LIMIT at
 * the maximum of sessions or of the user's sessions. */
int sbx_manager_create_session (sbx_manager_t *m, const char *user, char **session_id,
                                sbx_error_t **err);
/* The session's sandbox: a handle of the caller's own (free it with
 * sbx_sandbox_free; it may be used in parallel with other handles). A
 * sandbox whose container died is replaced (its workspace kept); a stopped
 * one is started. Counts as activity, as does every operation through any
 * handle on the sandbox. SBX_E_NOT_FOUND for an unknown session. */
int sbx_manager_get_session (sbx_manager_t *m, const char *session_id, sbx_sandbox_t **sb,
                             sbx_error_t **err);
/* The session SESSION_ID of USER, made if it does not exist; concurrent
 * calls for one id make one sandbox. An existing session is served even
 * at a limit; one of another user is refused (SBX_E_PERMISSION). */
int sbx_manager_get_or_create (sbx_manager_t *m, const char *session_id, const char *user,
                               sbx_sandbox_t **sb, sbx_error_t **err);
/* Ends a session: its sandbox is removed, its workspace kept unless PURGE
 * (refused while another session of the user is live). SBX_E_NOT_FOUND
 * for an unknown session. */
int sbx_manager_end_session (sbx_manager_t *m, const char *session_id, bool purge,
                             sbx_error_t **err);

typedef struct sbx_session_info
{
  char *id;
  char *user;
  char *sandbox;        /* the sandbox's id (every sbx_sandbox_* works on it) */
  double created;       /* Unix time */
  double last_activity; /* Unix time */
  char *state; /* "running", "stopped", "dead" (its container is gone: replaced on next use),
                * "starting" (being made) */
} sbx_session_info_t;

/* Every session of the manager's name, made by any process. Free with
 * sbx_session_info_list_free. */
int sbx_manager_list (sbx_manager_t *m, sbx_session_info_t **items, size_t *count,
                      sbx_error_t **err);
void sbx_session_info_list_free (sbx_session_info_t *items, size_t count);

/* Ends the sessions idle for more than MAX_IDLE seconds (0: each session's
 * idle timeout, as the manager that made it was configured), their
 * workspaces kept; *REAPED (may be NULL) counts them. A session in use (its
 * lock held) is not idle. */
int sbx_manager_cleanup_idle (sbx_manager_t *m, double max_idle, size_t *reaped, sbx_error_t **err);
/* Runs sbx_manager_cleanup_idle every INTERVAL seconds (0: 60) in a thread
 * of the manager, until sbx_manager_stop_reaper or sbx_manager_free. */
int sbx_manager_start_reaper (sbx_manager_t *m, double interval, sbx_error_t **err);
void sbx_manager_stop_reaper (sbx_manager_t *m);
/* How many warm sandboxes are ready now (a health check's number). */
size_t sbx_manager_pool_ready (sbx_manager_t *m);
/* Stops every session's sandbox, concurrently (the sessions and their
 * workspaces stay: a later get_session starts them again), and removes the
 * warm pool's, which is not refilled after. *STOPPED (may be NULL) counts the sessions stopped. */
int sbx_manager_shutdown (sbx_manager_t *m, size_t *stopped, sbx_error_t **err);

#ifdef __cplusplus
}
#endif
#endif
