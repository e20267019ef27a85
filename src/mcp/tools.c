/* The tools' definitions: names, titles, descriptions written for a model,
 * JSON Schemas and annotations; the tool list for each protocol version; the
 * check of a call's arguments against the schema; the results' form (one
 * text content, valid UTF-8 whatever the sandbox held). The calls
 * themselves are in calls.c. */
#include "mcp.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --------------------------------------------------------------- results */

json_t *
mcp_result_text (bool is_error, const char *text, size_t n)
{
  char *clean = sbx_utf8_sanitize_copy (text, n);
  json_t *r = clean ? json_pack ("{s:[{s:s, s:s}], s:b}", "content", "type", "text", "text", clean,
                                 "isError", is_error)
                    : NULL;
  free (clean);
  return r;
}

json_t *
mcp_tool_result (bool is_error, const char *text)
{
  return mcp_result_text (is_error, text, strlen (text));
}

static json_t *
vresult (bool is_error, const char *fmt, va_list ap)
{
  char *s = NULL;
  if (vasprintf (&s, fmt, ap) < 0)
    return NULL;
  json_t *r = mcp_tool_result (is_error, s);
  free (s);
  return r;
}

json_t *
mcp_errorf (const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  json_t *r = vresult (true, fmt, ap);
  va_end (ap);
  return r;
}

json_t *
mcp_okf (const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  json_t *r = vresult (false, fmt, ap);
  va_end (ap);
  return r;
}

json_t *
mcp_failure (sbx_error_t *err)
{
  json_t *r = mcp_errorf ("Error: %s", err ? sbx_error_message (err) : "out of memory");
  sbx_error_free (err);
  return r;
}

bool
mcp_out_open (struct mcp_out *o)
{
  o->s = NULL;
  o->n = 0;
  o->f = open_memstream (&o->s, &o->n);
  return o->f != NULL;
}

json_t *
mcp_out_result (struct mcp_out *o, bool is_error)
{
  json_t *r = fclose (o->f) == 0 ? mcp_result_text (is_error, o->s, o->n) : NULL;
  free (o->s);
  return r;
}

/* ------------------------------------------------------------ the table */

#define PATH_DOC "absolute, or relative to the sandbox's work dir"

const struct mcp_tool mcp_tools[] = {
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
      .call = mcp_run_ls,
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
      .call = mcp_run_read_file,
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
      .call = mcp_run_write_file,
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
      .call = mcp_run_edit_file,
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
      .call = mcp_run_glob,
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
      .call = mcp_run_grep,
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
      .call = mcp_run_execute,
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
      .call = mcp_run_run_in_background,
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
      .call = mcp_run_read_output,
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
      .call = mcp_run_kill_shell,
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
      .call = mcp_run_kill_all,
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
      .call = mcp_run_list_shells,
  },
  { .name = NULL },
};

#define NTOOLS (sizeof mcp_tools / sizeof mcp_tools[0] - 1)

/* Parsed once by the thread that reads messages; the tool worker never
 * touches them. */
static json_t *schemas[NTOOLS];

int
mcp_tools_init (void)
{
  for (size_t i = 0; i < NTOOLS; i++)
    {
      json_error_t jerr;
      if (schemas[i] == NULL && (schemas[i] = json_loads (mcp_tools[i].schema, 0, &jerr)) == NULL)
        {
          fprintf (stderr, "sbx mcp: the schema of %s is broken: %s\n", mcp_tools[i].name,
                   jerr.text);
          return -1;
        }
    }
  return 0;
}

void
mcp_tools_cleanup (void)
{
  for (size_t i = 0; i < NTOOLS; i++)
    {
      json_decref (schemas[i]);
      schemas[i] = NULL;
    }
}

const struct mcp_tool *
mcp_tool_find (const char *name)
{
  for (const struct mcp_tool *t = mcp_tools; t->name; t++)
    if (strcmp (t->name, name) == 0)
      return t;
  return NULL;
}

bool
mcp_tool_listed (const struct mcp_tool *t, const struct mcp_perms *p)
{
  return !mcp_perms_denies_all (p, t->op);
}

json_t *
mcp_tools_list (const struct mcp_perms *p, const char *version, bool network)
{
  json_t *tools = json_array ();
  for (size_t i = 0; tools && i < NTOOLS; i++)
    {
      const struct mcp_tool *t = &mcp_tools[i];
      if (!mcp_tool_listed (t, p))
        continue;
      json_t *o = json_pack ("{s:s, s:s, s:o}", "name", t->name, "description", t->description,
                             "inputSchema", json_deep_copy (schemas[i]));
      /* Tool.title came with 2025-06-18, annotations with 2025-03-26. */
      if (o && mcp_version_at_least (version, "2025-06-18"))
        json_object_set_new (o, "title", json_string (t->title));
      if (o && mcp_version_at_least (version, "2025-03-26"))
        {
          /* "ask" allows, but marks the tool as one to ask about. */
          bool ask = mcp_perms_may_ask (p, t->op);
          json_object_set_new (o, "annotations",
                               json_pack ("{s:s, s:b, s:b, s:b, s:b}", "title", t->title,
                                          "readOnlyHint", t->read_only && !ask, "destructiveHint",
                                          t->destructive || ask, "idempotentHint", t->idempotent,
                                          "openWorldHint", t->runs_commands && network));
        }
      if (o == NULL || json_array_append_new (tools, o) < 0)
        {
          json_decref (tools);
          return NULL;
        }
    }
  return tools ? json_pack ("{s:o}", "tools", tools) : NULL;
}

/* ------------------------------------------------------------ validation */

/* "path, offset, limit": the names of PROPS. */
static char *
names (json_t *props)
{
  struct mcp_out o;
  if (!mcp_out_open (&o))
    return NULL;
  const char *key;
  json_t *v;
  size_t i = 0;
  json_object_foreach (props, key, v) fprintf (o.f, "%s%s", i++ ? ", " : "", key);
  if (i == 0)
    fputs ("no arguments", o.f);
  if (fclose (o.f) != 0)
    {
      free (o.s);
      return NULL;
    }
  return o.s;
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
      json_array_foreach (choices, i, c) found
          |= strcmp (json_string_value (c), json_string_value (v)) == 0;
      if (!found)
        {
          char *list = NULL;
          size_t n = 0;
          FILE *f = open_memstream (&list, &n);
          json_array_foreach (choices, i, c) if (f)
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

char *
mcp_tool_check_args (const struct mcp_tool *t, json_t *args)
{
  json_t *schema = schemas[t - mcp_tools];
  json_t *props = json_object_get (schema, "properties");
  const char *key;
  json_t *v, *tmp;
  /* null stands for "not given": models send it for optional arguments. */
  json_object_foreach_safe (args, tmp, key, v) if (json_is_null (v)) json_object_del (args, key);
  json_object_foreach (args, key, v)
  {
    json_t *p = json_object_get (props, key);
    if (p == NULL)
      {
        char *list = names (props);
        char *m
            = sbx_strdup_printf ("Invalid arguments for %s: unknown argument \"%s\"; %s takes %s",
                                 t->name, key, t->name, list ? list : "other arguments");
        free (list);
        return m;
      }
    char *why = check_value (t->name, key, p, v);
    if (why)
      return why;
  }
  size_t i;
  json_t *r;
  json_array_foreach (json_object_get (schema, "required"), i, r)
    if (json_object_get (args, json_string_value (r)) == NULL)
      return sbx_strdup_printf ("Invalid arguments for %s: the argument \"%s\" is missing",
                                t->name, json_string_value (r));
  return NULL;
}

json_t *
mcp_tool_call (struct mcp_ctx *ctx, const struct mcp_tool *t, json_t *args)
{
  /* Unlisted tools are refused before they get here; this is the second
   * lock on the same door. */
  if (mcp_perms_denies_all (ctx->perms, t->op))
    {
      char *m = mcp_perms_denial (ctx->perms, t->op, NULL, NULL);
      json_t *r = m ? mcp_tool_result (true, m) : NULL;
      free (m);
      return r;
    }
  return t->call (ctx, args);
}
