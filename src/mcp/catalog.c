/* The tools' table: names, titles, descriptions written for a model, JSON
 * Schemas (parsed once per process and shared read-only by every session
 * and thread), annotations; the tool list for each protocol's features;
 * the check of a call's arguments against the schema; and the glue from a
 * call's JSON to a typed operation (ops.c) and its text (render.c). */
#include "mcp.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------- glue */

/* Arguments were checked against the schema: present when required, of
 * their type, within their bounds. */
static const char *
arg_str (json_t *args, const char *key, const char *dflt)
{
  const char *s = json_string_value (json_object_get (args, key));
  return s ? s : dflt;
}

static long long
arg_int (json_t *args, const char *key, long long dflt)
{
  json_t *v = json_object_get (args, key);
  if (json_is_integer (v))
    return json_integer_value (v);
  if (json_is_real (v))
    return (long long) json_real_value (v); /* integral: checked before */
  return dflt;
}

static bool
arg_bool (json_t *args, const char *key, bool dflt)
{
  json_t *v = json_object_get (args, key);
  return json_is_boolean (v) ? json_is_true (v) : dflt;
}

/* Each tool's call: its typed arguments (the initialiser after CLEAR,
 * read from ARGS), its operation, its text. */
#define GLUE(NAME, ARGS_T, RESULT_T, OP, RENDER, CLEAR, ...)                                       \
  static int NAME (sbx_mcp_session_t *s, json_t *args, FILE *out, sbx_error_t **err)               \
  {                                                                                                \
    (void) args;                                                                                   \
    ARGS_T a = { __VA_ARGS__ };                                                                    \
    RESULT_T r;                                                                                    \
    int rc = OP (s, &a, &r, err);                                                                  \
    if (rc == 0)                                                                                   \
      RENDER (out, &r);                                                                            \
    CLEAR (&r);                                                                                    \
    return rc;                                                                                     \
  }

#define DEFAULT_TIMEOUT 120

GLUE (call_ls, struct mcp_ls_args, struct mcp_ls_result, mcp_op_ls, mcp_render_ls,
      mcp_ls_result_clear, arg_str (args, "path", "."))
GLUE (call_read, struct mcp_read_args, struct mcp_read_result, mcp_op_read, mcp_render_read,
      mcp_read_result_clear, arg_str (args, "path", ""), arg_int (args, "offset", 0),
      arg_int (args, "limit", 0))
GLUE (call_write, struct mcp_write_args, struct mcp_write_result, mcp_op_write, mcp_render_write,
      mcp_write_result_clear, arg_str (args, "path", ""), arg_str (args, "content", ""),
      json_string_length (json_object_get (args, "content")))
GLUE (call_edit, struct mcp_edit_args, struct mcp_edit_result, mcp_op_edit, mcp_render_edit,
      mcp_edit_result_clear, arg_str (args, "path", ""), arg_str (args, "old_string", ""),
      arg_str (args, "new_string", ""), arg_bool (args, "replace_all", false))
GLUE (call_glob, struct mcp_glob_args, struct mcp_glob_result, mcp_op_glob, mcp_render_glob,
      mcp_glob_result_clear, arg_str (args, "pattern", ""), arg_str (args, "path", "."))
GLUE (call_exec, struct mcp_exec_args, struct mcp_exec_result, mcp_op_exec, mcp_render_exec,
      mcp_exec_result_clear, arg_str (args, "command", ""),
      arg_int (args, "timeout", DEFAULT_TIMEOUT))
GLUE (call_bg_start, struct mcp_bg_args, struct mcp_bg_result, mcp_op_bg_start, mcp_render_bg_start,
      mcp_bg_result_clear, .command = arg_str (args, "command", ""))
GLUE (call_bg_read, struct mcp_bg_args, struct mcp_bg_result, mcp_op_bg_read, mcp_render_bg_read,
      mcp_bg_result_clear, .shell_id = arg_str (args, "shell_id", ""))
GLUE (call_bg_kill, struct mcp_bg_args, struct mcp_bg_result, mcp_op_bg_kill, mcp_render_bg_kill,
      mcp_bg_result_clear, .shell_id = arg_str (args, "shell_id", ""))
GLUE (call_kill_all, struct mcp_bg_args, struct mcp_bg_result, mcp_op_kill_all, mcp_render_kill_all,
      mcp_bg_result_clear, 0)
GLUE (call_bg_list, struct mcp_bg_args, struct mcp_bg_result, mcp_op_bg_list, mcp_render_bg_list,
      mcp_bg_result_clear, 0)

static int
call_grep (sbx_mcp_session_t *s, json_t *args, FILE *out, sbx_error_t **err)
{
  const char *mode = arg_str (args, "output_mode", "files_with_matches");
  struct mcp_grep_args a = {
    arg_str (args, "pattern", ""),
    arg_str (args, "path", "."),
    arg_str (args, "glob_pattern", NULL),
    strcmp (mode, "content") == 0 ? MCP_GREP_CONTENT
    : strcmp (mode, "count") == 0 ? MCP_GREP_COUNT
                                  : MCP_GREP_FILES,
  };
  struct mcp_grep_result r;
  int rc = mcp_op_grep (s, &a, &r, err);
  if (rc == 0)
    mcp_render_grep (out, &r);
  mcp_grep_result_clear (&r);
  return rc;
}

#define PATH_DOC "absolute, or relative to the sandbox's work dir"

static const struct mcp_tool tools[] = {
  {
      .name = "ls",
      .title = "List a directory",
      .description
      = "List a directory in the sandbox. Subdirectories end with '/'; files show their size "
        "in bytes. Directories come first, then files, by name.",
      .schema
      = "{\"type\":\"object\",\"properties\":{\"path\":{\"type\":\"string\",\"description\":"
        "\"Directory to list, " PATH_DOC ". Default: the work dir.\",\"default\":\".\"}},"
        "\"additionalProperties\":false}",
      .op = MCP_OP_LS,
      .read_only = true,
      .idempotent = true,
      .call = call_ls,
  },
  {
      .name = "read_file",
      .title = "Read a file",
      .description
      = "Read a text file in the sandbox. Returns numbered lines (the line number, a tab, the "
        "line), at most `limit` lines (default 2000) after skipping `offset` lines; when more "
        "lines follow, a last line says the offset to read on from. Binary files are refused. "
        "Read a file before changing it with edit_file.",
      .schema
      = "{\"type\":\"object\",\"properties\":{"
        "\"path\":{\"type\":\"string\",\"description\":\"File to read, " PATH_DOC ".\"},"
        "\"offset\":{\"type\":\"integer\",\"minimum\":0,\"default\":0,\"description\":\"Number of "
        "lines to skip from the start.\"},"
        "\"limit\":{\"type\":\"integer\",\"minimum\":1,\"default\":2000,\"description\":\"Maximum "
        "number of lines to return.\"}},"
        "\"required\":[\"path\"],\"additionalProperties\":false}",
      .op = MCP_OP_READ,
      .read_only = true,
      .idempotent = true,
      .call = call_read,
  },
  {
      .name = "write_file",
      .title = "Write a file",
      .description
      = "Create a file in the sandbox, or replace its whole content. Parent directories are "
        "created; the write is atomic. To change part of an existing file, prefer edit_file.",
      .schema = "{\"type\":\"object\",\"properties\":{"
                "\"path\":{\"type\":\"string\",\"description\":\"File to write, " PATH_DOC ".\"},"
                "\"content\":{\"type\":\"string\",\"description\":\"The file's new content.\"}},"
                "\"required\":[\"path\",\"content\"],\"additionalProperties\":false}",
      .op = MCP_OP_WRITE,
      .destructive = true,
      .idempotent = true,
      .call = call_write,
  },
  {
      .name = "edit_file",
      .title = "Edit a file",
      .description
      = "Replace text in a file in the sandbox. old_string must match the file exactly, "
        "whitespace and indentation included, and occur exactly once unless replace_all is "
        "true (add surrounding lines to make it unique). Read the file with read_file first; "
        "if it changed since (for example through execute), read it again.",
      .schema
      = "{\"type\":\"object\",\"properties\":{"
        "\"path\":{\"type\":\"string\",\"description\":\"File to edit, " PATH_DOC ".\"},"
        "\"old_string\":{\"type\":\"string\",\"description\":\"The exact text to replace.\"},"
        "\"new_string\":{\"type\":\"string\",\"description\":\"The text to put in its place.\"},"
        "\"replace_all\":{\"type\":\"boolean\",\"default\":false,\"description\":\"Replace every "
        "occurrence instead of exactly one.\"}},"
        "\"required\":[\"path\",\"old_string\",\"new_string\"],\"additionalProperties\":false}",
      .op = MCP_OP_EDIT,
      .destructive = true,
      .call = call_edit,
  },
  {
      .name = "glob",
      .title = "Find files by name",
      .description
      = "Find files whose paths match a glob pattern, such as '**/*.py' or 'src/*.{c,h}': `*` "
        "and `?` match within one directory level, `**` across levels. Returns the matching "
        "files' absolute paths, sorted (the first 100).",
      .schema
      = "{\"type\":\"object\",\"properties\":{"
        "\"pattern\":{\"type\":\"string\",\"description\":\"Glob pattern, relative to path (or "
        "absolute).\"},"
        "\"path\":{\"type\":\"string\",\"description\":\"Directory to search, " PATH_DOC ". "
        "Default: the work dir.\",\"default\":\".\"}},"
        "\"required\":[\"pattern\"],\"additionalProperties\":false}",
      .op = MCP_OP_GLOB,
      .read_only = true,
      .idempotent = true,
      .call = call_glob,
  },
  {
      .name = "grep",
      .title = "Search file contents",
      .description
      = "Search the contents of files in the sandbox with a regular expression (PCRE: \\\\s, "
        "\\\\w, \\\\d and lookarounds work). output_mode 'files_with_matches' (the default) "
        "lists the files, 'content' shows the matching lines as path:line:text, 'count' the "
        "number of matches per file. Hidden and binary files are skipped. At most 50 files or "
        "lines are shown, each line cut at 100 characters; narrow the search with path or "
        "glob_pattern.",
      .schema
      = "{\"type\":\"object\",\"properties\":{"
        "\"pattern\":{\"type\":\"string\",\"description\":\"Regular expression (PCRE).\"},"
        "\"path\":{\"type\":\"string\",\"description\":\"File or directory to search, " PATH_DOC
        ". Default: the work dir.\",\"default\":\".\"},"
        "\"glob_pattern\":{\"type\":\"string\",\"description\":\"Only search files whose names "
        "match this glob, e.g. '*.py' (or whose relative paths do, when it has a '/').\"},"
        "\"output_mode\":{\"type\":\"string\",\"enum\":[\"files_with_matches\",\"content\","
        "\"count\"],\"default\":\"files_with_matches\",\"description\":\"What to show.\"}},"
        "\"required\":[\"pattern\"],\"additionalProperties\":false}",
      .op = MCP_OP_GREP,
      .read_only = true,
      .idempotent = true,
      .call = call_grep,
  },
  {
      .name = "execute",
      .title = "Run a command",
      .description
      = "Run a shell command (sh -c) in the sandbox, an isolated Linux container, in its work "
        "dir. Returns stdout and stderr together; when the command fails, 'Command failed "
        "(exit code N):' comes first. The command and all its children are killed after "
        "`timeout` seconds (default 120). Output past 100,000 bytes is cut. For servers and "
        "other commands that keep running, use run_in_background.",
      .schema = "{\"type\":\"object\",\"properties\":{"
                "\"command\":{\"type\":\"string\",\"description\":\"The shell command.\"},"
                "\"timeout\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":3600,\"default\":120,"
                "\"description\":\"Time limit in seconds.\"}},"
                "\"required\":[\"command\"],\"additionalProperties\":false}",
      .op = MCP_OP_EXECUTE,
      .destructive = true,
      .runs_commands = true,
      .call = call_exec,
  },
  {
      .name = "run_in_background",
      .title = "Start a background process",
      .description
      = "Start a shell command in the background in the sandbox (a server, a watcher, a long "
        "build) and return its shell_id at once. Read what it prints with read_output, stop it "
        "with kill_shell, see them all with list_shells.",
      .schema = "{\"type\":\"object\",\"properties\":{"
                "\"command\":{\"type\":\"string\",\"description\":\"The shell command.\"}},"
                "\"required\":[\"command\"],\"additionalProperties\":false}",
      .op = MCP_OP_EXECUTE,
      .destructive = true,
      .runs_commands = true,
      .call = call_bg_start,
  },
  {
      .name = "read_output",
      .title = "Read a background process's output",
      .description
      = "Return what a background process printed since the last read_output (stdout and "
        "stderr together), and whether it is still running or how it exited.",
      .schema = "{\"type\":\"object\",\"properties\":{"
                "\"shell_id\":{\"type\":\"string\",\"description\":\"The id run_in_background "
                "returned.\"}},"
                "\"required\":[\"shell_id\"],\"additionalProperties\":false}",
      .op = MCP_OP_READ,
      .read_only = true,
      .call = call_bg_read,
  },
  {
      .name = "kill_shell",
      .title = "Stop a background process",
      .description
      = "Stop a background process and all its children (SIGTERM, then SIGKILL after a grace "
        "period).",
      .schema = "{\"type\":\"object\",\"properties\":{"
                "\"shell_id\":{\"type\":\"string\",\"description\":\"The id run_in_background "
                "returned.\"}},"
                "\"required\":[\"shell_id\"],\"additionalProperties\":false}",
      .op = MCP_OP_EXECUTE,
      .destructive = true,
      .idempotent = true,
      .call = call_bg_kill,
  },
  {
      .name = "kill_all",
      .title = "Kill every process in the sandbox",
      .description
      = "Kill every process in the sandbox, background processes included (its files are "
        "kept). The way out when the sandbox is full of processes, for example after a fork "
        "bomb, and execute says its process limit is reached.",
      .schema = "{\"type\":\"object\",\"properties\":{},\"additionalProperties\":false}",
      .op = MCP_OP_EXECUTE,
      .destructive = true,
      .idempotent = true,
      .call = call_kill_all,
  },
  {
      .name = "list_shells",
      .title = "List background processes",
      .description
      = "List the background processes started with run_in_background: their ids, commands, "
        "and whether each is running or how it exited.",
      .schema = "{\"type\":\"object\",\"properties\":{},\"additionalProperties\":false}",
      .op = MCP_OP_READ,
      .read_only = true,
      .idempotent = true,
      .call = call_bg_list,
  },
  { .name = NULL },
};

#define NTOOLS (sizeof tools / sizeof tools[0] - 1)

/* Parsed once, on first use, and never changed: shared by every thread. */
static json_t *schemas[NTOOLS];
static pthread_once_t schemas_once = PTHREAD_ONCE_INIT;
static bool schemas_ok;

static void
parse_schemas (void)
{
  for (size_t i = 0; i < NTOOLS; i++)
    if ((schemas[i] = json_loads (tools[i].schema, 0, NULL)) == NULL)
      return; /* a broken schema is a bug; the tests catch it */
  schemas_ok = true;
}

static json_t *
schema_of (const struct mcp_tool *t)
{
  pthread_once (&schemas_once, parse_schemas);
  return schemas_ok ? schemas[t - tools] : NULL;
}

const struct mcp_tool *
mcp_tool_find (const char *name)
{
  for (const struct mcp_tool *t = tools; t->name; t++)
    if (strcmp (t->name, name) == 0)
      return t;
  return NULL;
}

bool
mcp_tool_listed (const struct mcp_tool *t, const sbx_mcp_perms_t *p)
{
  return !mcp_perms_denies_all (p, t->op);
}

json_t *
mcp_tools_list (const sbx_mcp_perms_t *p, struct mcp_list_features features, bool network)
{
  json_t *list = json_array ();
  for (size_t i = 0; list && i < NTOOLS; i++)
    {
      const struct mcp_tool *t = &tools[i];
      json_t *schema = schema_of (t);
      if (!mcp_tool_listed (t, p))
        continue;
      json_t *o = schema ? json_pack ("{s:s, s:s, s:O}", "name", t->name, "description",
                                      t->description, "inputSchema", schema)
                         : NULL;
      if (o && features.titles)
        json_object_set_new (o, "title", json_string (t->title));
      if (o && features.annotations)
        {
          /* "ask" allows, but marks the tool as one to ask about. */
          bool ask = mcp_perms_may_ask (p, t->op);
          json_object_set_new (o, "annotations",
                               json_pack ("{s:s, s:b, s:b, s:b, s:b}", "title", t->title,
                                          "readOnlyHint", t->read_only && !ask, "destructiveHint",
                                          t->destructive || ask, "idempotentHint", t->idempotent,
                                          "openWorldHint", t->runs_commands && network));
        }
      if (o == NULL || json_array_append_new (list, o) < 0)
        {
          json_decref (list);
          return NULL;
        }
    }
  return list ? json_pack ("{s:o}", "tools", list) : NULL;
}

/* ------------------------------------------------------------ validation */

/* "path, offset, limit": the names of PROPS. */
static char *
names (json_t *props)
{
  char *text = NULL;
  size_t n = 0;
  FILE *f = open_memstream (&text, &n);
  if (f == NULL)
    return NULL;
  const char *key;
  json_t *v;
  size_t i = 0;
  json_object_foreach (props, key, v)
    fprintf (f, "%s%s", i++ ? ", " : "", key);
  if (i == 0)
    fputs ("no arguments", f);
  if (fclose (f) != 0)
    {
      free (text);
      return NULL;
    }
  return text;
}

/* NULL when V fits the property schema P, else why not. */
static char *
check_value (const char *tool, const char *key, json_t *p, json_t *v)
{
  const char *type = json_string_value (json_object_get (p, "type"));
  if (strcmp (type, "string") == 0)
    {
      if (!json_is_string (v))
        return sbx_strdup_printf ("Invalid arguments for %s: \"%s\" must be a string", tool, key);
      /* Only file contents may hold NULs; everything else is a C string. */
      if (strcmp (key, "content") != 0 && strlen (json_string_value (v)) != json_string_length (v))
        return sbx_strdup_printf (
            "Invalid arguments for %s: \"%s\" must not contain NUL characters", tool, key);
      json_t *choices = json_object_get (p, "enum"), *c;
      size_t i;
      bool found = choices == NULL;
      json_array_foreach (choices, i, c)
        found |= strcmp (json_string_value (c), json_string_value (v)) == 0;
      if (!found)
        {
          char *list = NULL;
          size_t n = 0;
          FILE *f = open_memstream (&list, &n);
          json_array_foreach (choices, i, c)
            if (f)
              fprintf (f, "%s\"%s\"", i ? ", " : "", json_string_value (c));
          if (f)
            fclose (f);
          char *m = sbx_strdup_printf ("Invalid arguments for %s: \"%s\" must be one of %s", tool,
                                       key, list ? list : "the listed values");
          free (list);
          return m;
        }
      return NULL;
    }
  if (strcmp (type, "integer") == 0)
    {
      double d = json_number_value (v);
      if (!json_is_integer (v)
          && !(json_is_real (v) && d >= -9e15 && d <= 9e15 && d == (double) (long long) d))
        return sbx_strdup_printf ("Invalid arguments for %s: \"%s\" must be an integer", tool, key);
      long long n = json_is_integer (v) ? json_integer_value (v) : (long long) d;
      json_t *min = json_object_get (p, "minimum"), *max = json_object_get (p, "maximum");
      if (min && n < json_integer_value (min))
        return sbx_strdup_printf ("Invalid arguments for %s: \"%s\" must be at least %lld", tool,
                                  key, (long long) json_integer_value (min));
      if (max && n > json_integer_value (max))
        return sbx_strdup_printf (
            "Invalid arguments for %s: \"%s\" must be at most %lld%s", tool, key,
            (long long) json_integer_value (max),
            strcmp (key, "timeout") == 0 ? " (use run_in_background for longer commands)" : "");
      return NULL;
    }
  if (strcmp (type, "boolean") == 0 && !json_is_boolean (v))
    return sbx_strdup_printf ("Invalid arguments for %s: \"%s\" must be true or false", tool, key);
  return NULL;
}

int
mcp_tool_check_args (const struct mcp_tool *t, json_t *args, char **why)
{
  *why = NULL;
  json_t *schema = schema_of (t);
  if (schema == NULL)
    return -1;
  json_t *props = json_object_get (schema, "properties");
  const char *key;
  json_t *v, *tmp;
  /* null stands for "not given": models send it for optional arguments. */
  json_object_foreach_safe (args, tmp, key, v)
    if (json_is_null (v))
      json_object_del (args, key);
  json_object_foreach (args, key, v)
    {
      json_t *p = json_object_get (props, key);
      if (p == NULL)
        {
          cleanup_free char *list = names (props);
          *why
              = sbx_strdup_printf ("Invalid arguments for %s: unknown argument \"%s\"; %s takes %s",
                                   t->name, key, t->name, list ? list : "other arguments");
          return *why ? 0 : -1;
        }
      if ((*why = check_value (t->name, key, p, v)) != NULL)
        return 0;
    }
  size_t i;
  json_t *r;
  json_array_foreach (json_object_get (schema, "required"), i, r)
    if (json_object_get (args, json_string_value (r)) == NULL)
      {
        *why = sbx_strdup_printf ("Invalid arguments for %s: the argument \"%s\" is missing",
                                  t->name, json_string_value (r));
        return *why ? 0 : -1;
      }
  return 0;
}

json_t *
mcp_tool_call (sbx_mcp_session_t *s, const struct mcp_tool *t, json_t *args)
{
  sbx_error_t *err = NULL;
  char *text = NULL;
  size_t n = 0;
  FILE *out = open_memstream (&text, &n);
  int r = out ? 0 : sbx_error_set (&err, SBX_E_NOMEM, "out of memory");
  /* Unlisted tools are refused before they get here; this is the second
     lock on the same door. */
  if (r == 0 && mcp_perms_denies_all (s->perms, t->op))
    r = mcp_perms_deny (s->perms, t->op, NULL, NULL, &err);
  if (r == 0)
    r = t->call (s, args, out, &err);
  if (out && fclose (out) != 0 && r == 0)
    r = sbx_error_set (&err, SBX_E_NOMEM, "out of memory");
  json_t *result = r < 0 ? mcp_result_error (err) : mcp_result_text (false, text, n);
  sbx_error_free (err);
  free (text);
  return result;
}

int
sbx_mcp_session_call (sbx_mcp_session_t *s, const char *tool, const char *args, char **result,
                      sbx_error_t **err)
{
  *result = NULL;
  const struct mcp_tool *t = tool ? mcp_tool_find (tool) : NULL;
  if (t == NULL)
    return sbx_error_set (err, SBX_E_INVALID, "unknown tool %s", tool ? tool : "(none)");
  json_error_t jerr;
  json_t *a = args ? json_loads (args, JSON_REJECT_DUPLICATES, &jerr) : json_object ();
  if (a == NULL || !json_is_object (a))
    {
      json_decref (a);
      return sbx_error_set (err, SBX_E_INVALID, "the arguments of %s must be a JSON object",
                            t->name);
    }
  cleanup_free char *why = NULL;
  json_t *res = NULL;
  if (mcp_tool_check_args (t, a, &why) == 0)
    res = why ? mcp_result_text (true, why, strlen (why)) : mcp_tool_call (s, t, a);
  json_decref (a);
  *result = res ? json_dumps (res, JSON_COMPACT) : NULL;
  json_decref (res);
  return *result ? 0 : sbx_error_set (err, SBX_E_NOMEM, "out of memory");
}
