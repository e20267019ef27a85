/* sbx command-line tool: declarations shared by the command files. */
#ifndef SBX_CLI_H
#define SBX_CLI_H

#include "helpers.h"
#include "sbx.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* sbx's own failures (and usage errors) exit with this code, as `docker run`
 * does, so that a command's own exit codes stay distinguishable. */
#define CLI_EXIT_FAILURE 125
/* cli_parse's "go on and run the command". */
#define CLI_CONTINUE (-1)
#define CLI_MAX_OPERANDS 3

/* Set by --json: print one JSON document on stdout instead of text. */
extern bool cli_json;

struct cli_command
{
  const char *name;     /* "exec", or "bg start" for a subcommand */
  const char *synopsis; /* operands, as shown by --help: "ID PATH" */
  const char *summary;  /* a few words, for `sbx --help` */
  const char *details;  /* more for the command's --help, or NULL */
  int min_operands, max_operands;
  /* Words after the operands form a COMMAND (exec, run, bg start); without
   * REST, extra words are a usage error. */
  bool rest;
  int (*run) (const struct cli_command *cmd, int argc, char **argv);
};

/* ----------------------------------------------------------- options */

enum cli_opt_type
{
  CLI_FLAG,    /* bool */
  CLI_STRING,  /* const char *: the last one wins */
  CLI_LIST,    /* struct cli_strv: repeatable */
  CLI_SIZE,    /* int64_t via sbx_parse_size ("512m") */
  CLI_COUNT,   /* int64_t, a non-negative integer */
  CLI_NUMBER,  /* double, a non-negative finite number */
  CLI_SECONDS, /* double, a timeout (sbx_timeout_check) */
};

struct cli_opt
{
  const char *name; /* long name; NULL ends a table */
  int letter;       /* short option, or 0 */
  enum cli_opt_type type;
  void *dest;
  const char *arg; /* argument name in --help */
  const char *help;
};

/* A growable NULL-terminated list of strings (the words themselves belong to
 * argv). */
struct cli_strv
{
  const char **v;
  size_t n;
};
void cli_strv_free (struct cli_strv *l);

struct cli_args
{
  char *operand[CLI_MAX_OPERANDS];
  int noperands;
  char **rest; /* the COMMAND words, when cmd->rest */
  int nrest;
};

/* Parses ARGV (ARGV[0] is the command's name) against OPTS plus --json and
 * --help. Options and operands may be mixed; once the operands are complete,
 * the first other word (or `--`) starts the COMMAND for commands with REST.
 * Returns CLI_CONTINUE, or the exit code after --help or a usage error. */
int cli_parse (const struct cli_command *cmd, const struct cli_opt *opts, int argc, char **argv,
               struct cli_args *out);
/* cli_parse, then opens the sandbox named by the first operand: the exit code
 * (a failure to open is reported), or CLI_CONTINUE with *SB set. */
int cli_parse_and_open (const struct cli_command *cmd, const struct cli_opt *opts, int argc,
                        char **argv, struct cli_args *a, sbx_sandbox_t **sb);
/* A whole command `sbx CMD ID`: opens sandbox ID, applies ACT to it and
 * reports {"id": ID} under --json. */
int cli_sandbox_command (const struct cli_command *cmd, int argc, char **argv,
                         int (*act) (sbx_sandbox_t *sb, sbx_error_t **err));
/* Prints "sbx CMD: MESSAGE" and a pointer to --help; returns the exit code. */
int cli_usage_error (const struct cli_command *cmd, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));
/* Runs the subcommand named by ARGV[1] (image, bg); without one, or with
 * --help, prints the list of subcommands. */
int cli_dispatch (const struct cli_command *parent, const struct cli_command *const *subs, int argc,
                  char **argv);

/* The words of a COMMAND joined by single spaces (one shell command line, as
 * sbx_exec takes); NULL when out of memory. */
char *cli_join_words (char **words, int n);

/* --------------------------------------------------- sandbox creation */

struct cli_create_opts
{
  const char *image, *name, *workdir, *network;
  const char *runtime, *runtime_file; /* a built-in's name, a JSON definition */
  struct cli_strv volumes, env;
  int64_t memory, disk, pids; /* -1: library default */
  double cpus;                /* -1: library default */
  bool replace;
};

/* The options of `create`, shared with `run`. */
#define CLI_CREATE_OPTIONS(co)                                                                       \
  { "image", 0, CLI_STRING, &(co)->image, "IMAGE", "image (default: see `sbx image default`)" },     \
      { "runtime",      0,      CLI_STRING,                                                          \
        &(co)->runtime, "NAME", "a built-in runtime (`sbx runtime ls`): its image, work dir, env" }, \
      { "runtime-file",      0,      CLI_STRING,                                                     \
        &(co)->runtime_file, "FILE", "a runtime defined in JSON (see README)" },                     \
      { "name", 0, CLI_STRING, &(co)->name, "NAME", "container name (kept by `sbx stop`)" },         \
      { "replace",      0,    CLI_FLAG,                                                              \
        &(co)->replace, NULL, "replace a named sandbox that exists with other options" },            \
      { "workdir", 'w', CLI_STRING, &(co)->workdir, "DIR", "work dir (default: /workspace)" },       \
      { "volume", 'v', CLI_LIST, &(co)->volumes, "HOST:CTR[:ro]", "bind-mount HOST; repeatable" },   \
      { "env", 'e', CLI_LIST, &(co)->env, "KEY=VALUE", "environment variable; repeatable" },         \
      { "memory", 'm', CLI_SIZE, &(co)->memory, "SIZE", "memory limit, e.g. 512m (default: 1g)" },   \
      { "disk", 0, CLI_SIZE, &(co)->disk, "SIZE", "disk limit, e.g. 2g (default: 10g)" },            \
      { "cpus", 0, CLI_NUMBER, &(co)->cpus, "N", "CPU limit (default: 1)" },                         \
      { "pids", 0, CLI_COUNT, &(co)->pids, "N", "process limit (default: 512)" },                    \
  {                                                                                                  \
    "network", 0, CLI_STRING, &(co)->network, "MODE", "none, bridge or a network (default: none)"    \
  }

void cli_create_opts_init (struct cli_create_opts *co);
void cli_create_opts_clear (struct cli_create_opts *co);
/* The library's options from the parsed ones, without making anything (as
 * `sbx mcp` needs, which makes its sandbox on first use): 0, or the exit code
 * once the error is printed. */
int cli_sandbox_options (const struct cli_create_opts *co, sbx_options_t **out);
/* Makes and starts a sandbox from the parsed options: 0, or the exit code
 * once the error is printed. */
int cli_create_sandbox (const struct cli_create_opts *co, sbx_sandbox_t **out);
/* ---------------------------------------------------------- runtimes */

/* The runtime NAME (a built-in) or FILE (JSON): 0, or the exit code once the
 * error is printed. */
int cli_runtime_load (const char *name, const char *file, sbx_runtime_t **rt);
/* Makes sure RT's image exists, showing the build's progress on stderr
 * unless QUIET; INFO says what happened. 0, or the exit code. */
int cli_runtime_ensure (const sbx_runtime_t *rt, bool quiet, sbx_runtime_image_t *info);
/* The runtime --runtime or --runtime-file names, its image built if needed;
 * *OUT stays NULL when neither was given. 0, or the exit code. */
int cli_runtime_prepare (const struct cli_create_opts *co, sbx_runtime_t **out);

/* ---------------------------------------------------------- exec */

struct cli_exec_opts
{
  double timeout;     /* 0: none */
  int64_t max_output; /* -1: SBX_DEFAULT_MAX_OUTPUT */
  const char *workdir;
  struct cli_strv env;
  bool stdin, combined;
};

/* The options of `exec` that `run` shares. */
#define CLI_EXEC_OPTIONS(eo)                                                                       \
  { "timeout", 't', CLI_SECONDS, &(eo)->timeout, "S", "time limit in seconds (default: none)" },   \
      { "max-output", 0, CLI_SIZE, &(eo)->max_output, "BYTES", "output kept (default: 100000)" },  \
      { "stdin", 'i', CLI_FLAG, &(eo)->stdin, NULL, "forward standard input to the command" },     \
  {                                                                                                \
    "combined", 0, CLI_FLAG, &(eo)->combined, NULL,                                                \
        "merge stderr into stdout, in the order printed (default: each to its own)"                \
  }

void cli_exec_opts_init (struct cli_exec_opts *eo);

/* Runs COMMAND and reports it (streamed text, or a JSON document at the end);
 * returns the CLI's exit code, or -1 with *ERR set (and not printed yet) when
 * the library failed. Shared by exec and run. */
int cli_exec_report (sbx_sandbox_t *sb, const char *command, const struct cli_exec_opts *eo,
                     sbx_error_t **err);

/* ------------------------------------------------------ reporting */

/* Prints ERR (text on stderr, or a JSON document on stdout), frees it and
 * returns CLI_EXIT_FAILURE. */
int cli_error (sbx_error_t *err);
/* Same for a failure found by the CLI itself. */
int cli_fail (int code, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
/* Prints "sbx: MESSAGE" on stderr: notes that never go to stdout. */
void cli_note (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));

/* A JSON string from bytes that may be invalid UTF-8 (or hold NULs); invalid
 * sequences and NULs become U+FFFD (sbx_utf8_sanitize_copy). NULL when out of
 * memory. */
json_t *cli_json_string (const char *s, size_t len);
json_t *cli_json_str (const char *s);
/* Prints S for a person: control characters (and C1 controls, and invalid
 * UTF-8) in a visible escaped form (\n, \x1b, \u009b), backslashes doubled,
 * so that nothing reaches the terminal as a command and no name can fake
 * another entry. */
void cli_put_visible (FILE *f, const char *s);
/* Prints DOC (and releases it) as one compact line; the exit code. */
int cli_json_print (json_t *doc);
/* {"entries": [{name, path, is_dir, size}...], "truncated": bool}; NULL when
 * out of memory. */
json_t *cli_json_file_list (const sbx_file_list_t *list);

/* ------------------------------------------------------ commands */

extern const struct cli_command cli_cmd_create, cli_cmd_exec, cli_cmd_run, cli_cmd_write,
    cli_cmd_read, cli_cmd_cat, cli_cmd_edit, cli_cmd_ls, cli_cmd_glob, cli_cmd_grep, cli_cmd_ps,
    cli_cmd_kill, cli_cmd_stop, cli_cmd_rm, cli_cmd_image, cli_cmd_bg, cli_cmd_mcp, cli_cmd_runtime,
    cli_cmd_session;

#endif
