/* What each tool does: the seed's console toolset on libsbx, with the
 * seed's model-facing texts. A failure is a tool result with isError and a
 * sentence the model can act on. The arguments were checked against the
 * tool's schema before the call (tools.c). */
#include "mcp.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LS_SHOWN 1000
#define GLOB_SHOWN 100
/* Entries asked for when the permissions may leave some out. */
#define GLOB_ASKED 1000
#define GREP_SHOWN 50
/* Matches asked for: enough to count files and lines beyond those shown. */
#define GREP_ASKED 1000
/* What a listing or a search may cost the server, whatever the sandbox holds. */
#define RESULT_BYTES (1u << 20)
#define GREP_LINE_CHARS 100
#define BG_SHOWN SBX_DEFAULT_MAX_OUTPUT
#define DEFAULT_TIMEOUT 120

/* ------------------------------------------------------------- arguments */

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

/* --------------------------------------------------------------- sandbox */

static json_t *
sandbox (struct mcp_ctx *ctx, sbx_sandbox_t **sb)
{
  sbx_error_t *err = NULL;
  if (mcp_box_get (ctx->box, sb, &err) == 0)
    return NULL;
  json_t *r
      = err ? mcp_errorf ("Error: the sandbox could not be started: %s", sbx_error_message (err))
            : mcp_errorf ("Error: the server is shutting down.");
  sbx_error_free (err);
  return r;
}

/* ------------------------------------------------------------------ files */

static void
free_files (char **v)
{
  for (char **p = v; p && *p; p++)
    free (*p);
  free (v);
}

static char *
steal_str (char **p)
{
  char *s = *p;
  *p = NULL;
  return s;
}

json_t *
mcp_run_ls (struct mcp_ctx *ctx, json_t *args)
{
  sbx_sandbox_t *sb;
  struct mcp_target t;
  json_t *e = sandbox (ctx, &sb);
  if (e || (e = mcp_target (ctx, sb, MCP_OP_LS, arg_str (args, "path", "."), false, &t)))
    return e;
  sbx_file_list_t list = { 0 };
  sbx_error_t *err = NULL;
  struct mcp_out o;
  sbx_list_opts_t lo = { .max_entries = LS_SHOWN, .max_bytes = RESULT_BYTES };
  if (sbx_ls (sb, t.real, &lo, &list, &err) < 0)
    e = mcp_failure (err);
  else if (!mcp_out_open (&o))
    e = NULL;
  else
    {
      const char *wd = sbx_sandbox_workdir (sb);
      size_t hidden = 0, shown = 0;
      fprintf (o.f, "Contents of %s:\n", t.path);
      for (size_t i = 0; i < list.count; i++)
        {
          const sbx_file_info_t *f = &list.items[i];
          if (!mcp_allowed (ctx, MCP_OP_LS, f->path, wd))
            hidden++;
          else if (f->is_dir)
            fprintf (o.f, "  %s/\n", f->name), shown++;
          else
            fprintf (o.f, "  %s (%" PRIu64 " bytes)\n", f->name, f->size), shown++;
        }
      if (shown == 0 && hidden == 0)
        fputs ("  (empty)\n", o.f);
      if (list.truncated)
        fprintf (o.f, "  ... and %zu more entries\n", list.total - list.count);
      if (hidden)
        fprintf (o.f, "  (%zu entr%s left out by the permissions)\n", hidden,
                 hidden == 1 ? "y" : "ies");
      e = mcp_out_result (&o, false);
    }
  sbx_file_list_free (&list);
  mcp_target_clear (&t);
  return e;
}

json_t *
mcp_run_read_file (struct mcp_ctx *ctx, json_t *args)
{
  sbx_sandbox_t *sb;
  struct mcp_target t;
  json_t *e = sandbox (ctx, &sb);
  if (e || (e = mcp_target (ctx, sb, MCP_OP_READ, arg_str (args, "path", NULL), true, &t)))
    return e;
  long long offset = arg_int (args, "offset", 0), limit = arg_int (args, "limit", 0);
  char *text = NULL;
  sbx_error_t *err = NULL;
  if (sbx_read (sb, t.real, (size_t) offset, (size_t) limit, &text, &err) < 0)
    e = mcp_failure (err);
  else
    {
      mcp_seen_put (ctx, t.real, t.fp);
      if (*text)
        e = mcp_tool_result (false, text);
      else if (offset == 0)
        e = mcp_okf ("%s is empty.", t.path);
      else
        e = mcp_okf ("%s has no lines after line %lld; read from a smaller offset.", t.path,
                     offset);
    }
  free (text);
  mcp_target_clear (&t);
  return e;
}

static size_t
count_lines (const char *s, size_t n)
{
  size_t lines = 0;
  for (size_t i = 0; i < n; i++)
    lines += s[i] == '\n';
  return lines + (n > 0 && s[n - 1] != '\n');
}

json_t *
mcp_run_write_file (struct mcp_ctx *ctx, json_t *args)
{
  sbx_sandbox_t *sb;
  struct mcp_target t;
  json_t *e = sandbox (ctx, &sb);
  if (e || (e = mcp_target (ctx, sb, MCP_OP_WRITE, arg_str (args, "path", NULL), true, &t)))
    return e;
  json_t *content = json_object_get (args, "content");
  const char *data = json_string_value (content);
  size_t len = json_string_length (content);
  sbx_error_t *err = NULL;
  if (sbx_write (sb, t.real, data, len, &err) < 0)
    e = mcp_failure (err);
  else
    {
      mcp_remember (ctx, sb, t.real);
      e = mcp_okf ("Wrote %zu lines to %s", count_lines (data, len), t.path);
    }
  mcp_target_clear (&t);
  return e;
}

json_t *
mcp_run_edit_file (struct mcp_ctx *ctx, json_t *args)
{
  sbx_sandbox_t *sb;
  struct mcp_target t;
  json_t *e = sandbox (ctx, &sb);
  if (e || (e = mcp_target (ctx, sb, MCP_OP_EDIT, arg_str (args, "path", NULL), true, &t)))
    return e;
  const char *old = arg_str (args, "old_string", ""), *new = arg_str (args, "new_string", "");
  bool all = arg_bool (args, "replace_all", false);
  const char *seen = mcp_seen_get (ctx, t.real);
  size_t n = 0;
  sbx_error_t *err = NULL;
  if (!*t.fp)
    e = mcp_errorf ("Error: %s does not exist; create it with write_file.", t.path);
  else if (seen == NULL)
    e = mcp_errorf (
        "Error: read %s with read_file before editing it: edit_file only changes a file "
        "whose current content you have seen.",
        t.path);
  else if (strcmp (seen, t.fp) != 0)
    e = mcp_errorf (
        "Error: %s changed since you last read it (something else wrote to it, such as a "
        "command). Read it again with read_file, then redo the edit.",
        t.path);
  else if (!*old)
    e = mcp_errorf ("Error: old_string is empty; give the exact text to replace (to write a whole "
                    "file, use write_file).");
  else if (strcmp (old, new) == 0)
    e = mcp_errorf ("Error: old_string and new_string are the same; there is nothing to change.");
  else if (sbx_edit (sb, t.real, old, new, all, &n, &err) < 0)
    {
      if (sbx_error_code (err) == SBX_E_EDIT_AMBIGUOUS)
        {
          e = mcp_errorf ("Error: %s (to replace every occurrence, set replace_all to true).",
                          sbx_error_message (err));
          sbx_error_free (err);
        }
      else
        e = mcp_failure (err);
    }
  else
    {
      mcp_remember (ctx, sb, t.real);
      e = mcp_okf ("Edited %s: replaced %zu occurrence(s)", t.path, n);
    }
  mcp_target_clear (&t);
  return e;
}

json_t *
mcp_run_glob (struct mcp_ctx *ctx, json_t *args)
{
  sbx_sandbox_t *sb;
  struct mcp_target t;
  const char *pattern = arg_str (args, "pattern", "");
  /* An absolute pattern searches from the root, whatever the path says. */
  const char *base = pattern[0] == '/' ? "/" : arg_str (args, "path", ".");
  json_t *e = sandbox (ctx, &sb);
  if (e || (e = mcp_target (ctx, sb, MCP_OP_GLOB, base, false, &t)))
    return e;
  sbx_file_list_t list = { 0 };
  sbx_error_t *err = NULL;
  struct mcp_out o;
  /* Only what is shown is asked for, or a margin for what the permissions
     leave out. */
  bool filtered = mcp_perms_may_deny (ctx->perms, MCP_OP_GLOB);
  sbx_list_opts_t lo = { .max_entries = filtered ? GLOB_ASKED : GLOB_SHOWN,
                         .max_bytes = RESULT_BYTES };
  if (sbx_glob (sb, pattern, t.real, &lo, &list, &err) < 0)
    e = mcp_failure (err);
  else if (!mcp_out_open (&o))
    e = NULL;
  else
    {
      const char *wd = sbx_sandbox_workdir (sb);
      size_t found = 0, hidden = 0;
      for (size_t i = 0; i < list.count; i++)
        if (mcp_allowed (ctx, MCP_OP_GLOB, list.items[i].path, wd))
          list.items[found++] = list.items[i];
        else
          {
            hidden++;
            free (list.items[i].name);
            free (list.items[i].path);
          }
      /* Matches beyond those returned are counted, not checked. */
      size_t beyond = list.total - list.count;
      list.count = found;
      if (found + beyond == 0)
        fprintf (o.f, "No files found matching %s in %s\n", pattern, t.path);
      else
        fprintf (o.f, "Found %zu file(s) matching %s:\n", found + beyond, pattern);
      for (size_t i = 0; i < found && i < GLOB_SHOWN; i++)
        fprintf (o.f, "%s\n", list.items[i].path);
      if (found + beyond > GLOB_SHOWN)
        fprintf (o.f, "... and %zu more\n", found + beyond - (found < GLOB_SHOWN ? found : GLOB_SHOWN));
      if (hidden)
        fprintf (o.f, "(%zu file(s) left out by the permissions)\n", hidden);
      e = mcp_out_result (&o, false);
    }
  sbx_file_list_free (&list);
  mcp_target_clear (&t);
  return e;
}

/* The files grep may search, when the permissions may leave some out:
 * listed first (nothing read), checked by name and by where their symbolic
 * links lead, so that no file a rule denies is ever searched and nothing
 * the model sees depends on its content. *FILES (NULL-terminated, freed
 * with free_files) is what may be searched; *HIDDEN counts what may not. */
static json_t *
grep_allowed (struct mcp_ctx *ctx, sbx_sandbox_t *sb, const sbx_grep_opts_t *go, char ***files,
              size_t *hidden)
{
  const char *wd = sbx_sandbox_workdir (sb);
  sbx_file_list_t list = { 0 };
  sbx_error_t *err = NULL;
  sbx_grep_opts_t lo = *go;
  lo.max_matches = SBX_DEFAULT_MAX_ENTRIES;
  lo.max_bytes = SBX_DEFAULT_MAX_LIST_BYTES;
  *hidden = 0;
  if (sbx_grep_files (sb, &lo, &list, &err) < 0)
    return mcp_failure (err);
  const char **todo = calloc (list.count + 1, sizeof *todo);
  char **reals = NULL, **v = calloc (list.count + 1, sizeof *v);
  size_t ntodo = 0, n = 0;
  json_t *e = todo && v ? NULL : mcp_errorf ("Error: out of memory");
  for (size_t i = 0; e == NULL && i < list.count; i++)
    if (mcp_allowed (ctx, MCP_OP_GREP, list.items[i].path, wd))
      todo[ntodo++] = list.items[i].path;
    else
      (*hidden)++;
  if (e == NULL && ntodo > 0)
    e = mcp_resolve_many (sb, todo, ntodo, &reals);
  for (size_t i = 0; e == NULL && i < ntodo; i++)
    if (mcp_allowed (ctx, MCP_OP_GREP, reals[i], wd))
      v[n++] = steal_str (&reals[i]);
    else
      (*hidden)++;
  for (size_t i = 0; reals && i < ntodo; i++)
    free (reals[i]);
  free (reals);
  free (todo);
  sbx_file_list_free (&list);
  if (e)
    {
      free_files (v);
      return e;
    }
  *files = v;
  return NULL;
}

/* Writes LINE cut at GREP_LINE_CHARS characters (not bytes). */
static void
put_cut (FILE *f, const char *line)
{
  char *clean = sbx_utf8_sanitize_copy (line, strlen (line));
  const char *s = clean ? clean : line;
  size_t chars = 0, i = 0;
  for (; s[i] && chars < GREP_LINE_CHARS; chars++)
    do
      i++;
    while ((s[i] & 0xc0) == 0x80);
  fwrite (s, 1, i, f);
  if (s[i])
    fputs ("...", f);
  free (clean);
}

json_t *
mcp_run_grep (struct mcp_ctx *ctx, json_t *args)
{
  sbx_sandbox_t *sb;
  struct mcp_target t;
  const char *pattern = arg_str (args, "pattern", "");
  const char *mode = arg_str (args, "output_mode", "files_with_matches");
  json_t *e = sandbox (ctx, &sb);
  if (e || (e = mcp_target (ctx, sb, MCP_OP_GREP, arg_str (args, "path", "."), false, &t)))
    return e;
  sbx_grep_opts_t go = { .path = t.real, .glob = arg_str (args, "glob_pattern", NULL),
                         .max_matches = GREP_ASKED, .max_bytes = RESULT_BYTES };
  sbx_grep_result_t res = { 0 };
  sbx_error_t *err = NULL;
  size_t hidden = 0;
  char **allowed = NULL;
  struct mcp_out o;
  if (mcp_perms_may_deny (ctx->perms, MCP_OP_GREP)
      && (e = grep_allowed (ctx, sb, &go, &allowed, &hidden)) != NULL)
    ;
  else if (allowed && allowed[0] == NULL)
    ; /* nothing to search: no match */
  else if ((go.files = (const char *const *) allowed, sbx_grep (sb, pattern, &go, &res, &err) < 0))
    e = mcp_failure (err);
  if (e == NULL && mcp_out_open (&o))
    {
      size_t files = 0;
      for (size_t i = 0; i < res.count; i++)
        files += i == 0 || strcmp (res.items[i - 1].path, res.items[i].path) != 0;
      if (res.count == 0)
        fprintf (o.f, "No matches for %s in %s\n", pattern, t.path);
      else if (strcmp (mode, "content") == 0)
        {
          fprintf (o.f, "Found %zu matching line(s) in %zu file(s):\n", res.count, files);
          for (size_t i = 0; i < res.count && i < GREP_SHOWN; i++)
            {
              fprintf (o.f, "%s:%" PRIu64 ":", res.items[i].path, res.items[i].line_number);
              put_cut (o.f, res.items[i].line);
              fputc ('\n', o.f);
            }
          if (res.count > GREP_SHOWN)
            fprintf (o.f, "... and %zu more\n", res.count - GREP_SHOWN);
        }
      else
        {
          bool count = strcmp (mode, "count") == 0;
          if (count)
            fprintf (o.f, "Found %zu match(es) in %zu file(s):\n", res.count, files);
          else
            fprintf (o.f, "Found %zu file(s) with matches:\n", files);
          size_t shown = 0;
          for (size_t i = 0, n = 0; i < res.count; i++)
            {
              n++;
              if (i + 1 < res.count && strcmp (res.items[i + 1].path, res.items[i].path) == 0)
                continue;
              if (shown++ < GREP_SHOWN)
                {
                  if (count)
                    fprintf (o.f, "%s: %zu\n", res.items[i].path, n);
                  else
                    fprintf (o.f, "%s\n", res.items[i].path);
                }
              n = 0;
            }
          if (files > GREP_SHOWN)
            fprintf (o.f, "... and %zu more\n", files - GREP_SHOWN);
        }
      if (res.truncated)
        fprintf (o.f, "(the search stopped after %zu matches; narrow it with path or "
                 "glob_pattern)\n", res.count);
      if (hidden)
        fprintf (o.f, "(%zu file(s) the permissions keep out were not searched)\n", hidden);
      e = mcp_out_result (&o, false);
    }
  free_files (allowed);
  sbx_grep_result_free (&res);
  mcp_target_clear (&t);
  return e;
}

/* ---------------------------------------------------------------- commands */

/* Appends OUTPUT to O, ending with a newline. */
static void
put_output (FILE *f, const char *data, size_t len)
{
  fwrite (data, 1, len, f);
  if (len > 0 && data[len - 1] != '\n')
    fputc ('\n', f);
}

json_t *
mcp_run_execute (struct mcp_ctx *ctx, json_t *args)
{
  sbx_sandbox_t *sb;
  json_t *e = sandbox (ctx, &sb);
  if (e)
    return e;
  long long timeout = arg_int (args, "timeout", DEFAULT_TIMEOUT);
  sbx_exec_opts_t opts;
  sbx_exec_opts_init (&opts);
  opts.timeout = (double) timeout;
  sbx_exec_result_t res = { 0 };
  sbx_error_t *err = NULL;
  struct mcp_out o;
  if (sbx_exec (sb, arg_str (args, "command", ""), &opts, &res, &err) < 0)
    {
      sbx_exec_result_free (&res);
      return mcp_failure (err);
    }
  if (!mcp_out_open (&o))
    {
      sbx_exec_result_free (&res);
      return NULL;
    }
  if (res.timed_out)
    fprintf (o.f,
             "Command timed out after %lld seconds and was killed with all its children "
             "(exit code %d).%s\n",
             timeout, res.exit_code,
             res.output_len ? " Output before the timeout:" : " It printed nothing.");
  else if (res.oom_killed)
    fprintf (o.f, "Command was killed because the sandbox ran out of memory (exit code %d).%s\n",
             res.exit_code, res.output_len ? " Output before that:" : "");
  else if (res.exit_code != 0)
    fprintf (o.f, "Command failed (exit code %d):\n", res.exit_code);
  put_output (o.f, res.output, res.output_len);
  if (res.output_len == 0 && !res.timed_out && !res.oom_killed)
    fputs ("(no output)\n", o.f);
  if (res.truncated)
    fprintf (o.f,
             "[output truncated: only the first %d bytes are shown; send the output to a "
             "file and read parts of it]\n",
             SBX_DEFAULT_MAX_OUTPUT);
  sbx_exec_result_free (&res);
  return mcp_out_result (&o, false);
}

json_t *
mcp_run_run_in_background (struct mcp_ctx *ctx, json_t *args)
{
  sbx_sandbox_t *sb;
  json_t *e = sandbox (ctx, &sb);
  if (e)
    return e;
  const char *command = arg_str (args, "command", "");
  char *id = NULL;
  sbx_error_t *err = NULL;
  if (sbx_bg_start (sb, command, NULL, &id, &err) < 0)
    return mcp_failure (err);
  e = mcp_okf ("Started background process %s: %s\nRead its output with read_output (shell_id "
               "\"%s\"); stop it with kill_shell.",
               id, command, id);
  free (id);
  return e;
}

/* The sandbox for the tools that only look at background processes: none
 * is made for them. */
static sbx_sandbox_t *
existing (struct mcp_ctx *ctx)
{
  return mcp_box_peek (ctx->box);
}

static void
put_status (FILE *f, const sbx_bg_info_t *info)
{
  if (info->running)
    fprintf (f, "running (pid %" PRId64 ")", info->pid);
  else
    fprintf (f, "exited with code %d", info->exit_code);
}

json_t *
mcp_run_read_output (struct mcp_ctx *ctx, json_t *args)
{
  const char *id = arg_str (args, "shell_id", "");
  sbx_sandbox_t *sb = existing (ctx);
  if (sb == NULL)
    return mcp_errorf (
        "Error: there is no background process %s; start one with run_in_background.", id);
  char *data = NULL;
  size_t len = 0;
  sbx_bg_info_t info = { 0 };
  sbx_error_t *err = NULL;
  struct mcp_out o;
  if (sbx_bg_read (sb, id, &data, &len, &info, &err) < 0)
    return mcp_failure (err);
  json_t *e = NULL;
  if (mcp_out_open (&o))
    {
      fprintf (o.f, "Process %s (%s): ", id, info.command);
      put_status (o.f, &info);
      fputc ('\n', o.f);
      if (len == 0)
        fputs ("(no new output)\n", o.f);
      put_output (o.f, data, len < BG_SHOWN ? len : BG_SHOWN);
      if (len > BG_SHOWN)
        fprintf (o.f, "[%zu more bytes of output were dropped: only %d bytes are shown per read]\n",
                 len - BG_SHOWN, BG_SHOWN);
      if (info.dropped)
        fprintf (o.f,
                 "[%" PRIu64 " bytes of output were lost before this read because the "
                 "buffer was full; read more often]\n",
                 info.dropped);
      e = mcp_out_result (&o, false);
    }
  free (data);
  sbx_bg_info_clear (&info);
  return e;
}

json_t *
mcp_run_kill_shell (struct mcp_ctx *ctx, json_t *args)
{
  const char *id = arg_str (args, "shell_id", "");
  sbx_sandbox_t *sb = existing (ctx);
  sbx_error_t *err = NULL;
  if (sb == NULL)
    return mcp_errorf ("Error: there is no background process %s.", id);
  if (sbx_bg_kill (sb, id, &err) < 0)
    return mcp_failure (err);
  return mcp_okf ("Killed background process %s.", id);
}

json_t *
mcp_run_kill_all (struct mcp_ctx *ctx, json_t *args)
{
  (void) args;
  sbx_sandbox_t *sb = existing (ctx);
  sbx_error_t *err = NULL;
  size_t killed = 0;
  if (sb && sbx_sandbox_kill_all (sb, &killed, &err) < 0)
    return mcp_failure (err);
  return mcp_okf ("Killed %zu process%s; the sandbox and its files are kept.", killed,
                  killed == 1 ? "" : "es");
}

json_t *
mcp_run_list_shells (struct mcp_ctx *ctx, json_t *args)
{
  (void) args;
  sbx_sandbox_t *sb = existing (ctx);
  sbx_bg_info_t *items = NULL;
  size_t count = 0;
  sbx_error_t *err = NULL;
  struct mcp_out o;
  if (sb && sbx_bg_list (sb, &items, &count, &err) < 0)
    return mcp_failure (err);
  json_t *e = NULL;
  if (mcp_out_open (&o))
    {
      if (count == 0)
        fputs ("No background processes.\n", o.f);
      else
        fputs ("Background processes:\n", o.f);
      for (size_t i = 0; i < count; i++)
        {
          fprintf (o.f, "  %s: %s (", items[i].id, items[i].command);
          put_status (o.f, &items[i]);
          fputs (")\n", o.f);
        }
      e = mcp_out_result (&o, false);
    }
  sbx_bg_info_list_free (items, count);
  return e;
}
