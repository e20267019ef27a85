/* The texts the model reads, made from the operations' results, with the
 * seed's wording; and the CallToolResult that carries them (one text
 * content, valid UTF-8 whatever the sandbox held). */
#include "mcp.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GLOB_SHOWN 100
#define GREP_SHOWN 50
#define GREP_LINE_CHARS 100
#define BG_SHOWN SBX_DEFAULT_MAX_OUTPUT

json_t *
mcp_result_text (bool is_error, const char *text, size_t n)
{
  cleanup_free char *clean = sbx_utf8_sanitize_copy (text, n);
  return clean ? json_pack ("{s:[{s:s, s:s}], s:b}", "content", "type", "text", "text", clean,
                            "isError", is_error)
               : NULL;
}

json_t *
mcp_result_error (const sbx_error_t *err)
{
  /* A denial says so itself ("Permission denied: ... by the rule ..."). */
  const char *msg = sbx_error_message (err);
  bool denial = strncmp (msg, "Permission denied:", 18) == 0;
  cleanup_free char *text = sbx_strdup_printf ("%s%s", denial ? "" : "Error: ", msg);
  return text ? mcp_result_text (true, text, strlen (text)) : NULL;
}

/* ------------------------------------------------------------------ files */

void
mcp_render_ls (FILE *f, const struct mcp_ls_result *r)
{
  fprintf (f, "Contents of %s:\n", r->path);
  for (size_t i = 0; i < r->list.count; i++)
    {
      const sbx_file_info_t *e = &r->list.items[i];
      if (e->is_dir)
        fprintf (f, "  %s/\n", e->name);
      else
        fprintf (f, "  %s (%" PRIu64 " bytes)\n", e->name, e->size);
    }
  if (r->list.count == 0 && r->hidden == 0)
    fputs ("  (empty)\n", f);
  if (r->more)
    fprintf (f, "  ... and %zu more entries\n", r->more);
  if (r->hidden)
    fprintf (f, "  (%zu entr%s left out by the permissions)\n", r->hidden,
             r->hidden == 1 ? "y" : "ies");
}

void
mcp_render_read (FILE *f, const struct mcp_read_result *r)
{
  if (*r->text)
    fputs (r->text, f);
  else if (r->offset == 0)
    fprintf (f, "%s is empty.", r->path);
  else
    fprintf (f, "%s has no lines after line %lld; read from a smaller offset.", r->path, r->offset);
}

void
mcp_render_write (FILE *f, const struct mcp_write_result *r)
{
  fprintf (f, "Wrote %zu lines to %s", r->lines, r->path);
}

void
mcp_render_edit (FILE *f, const struct mcp_edit_result *r)
{
  fprintf (f, "Edited %s: replaced %zu occurrence(s)", r->path, r->replaced);
}

void
mcp_render_glob (FILE *f, const struct mcp_glob_result *r)
{
  size_t found = r->list.count, all = found + r->beyond;
  if (all == 0)
    fprintf (f, "No files found matching %s in %s\n", r->pattern, r->path);
  else
    fprintf (f, "Found %zu file(s) matching %s:\n", all, r->pattern);
  size_t shown = found < GLOB_SHOWN ? found : GLOB_SHOWN;
  for (size_t i = 0; i < shown; i++)
    fprintf (f, "%s\n", r->list.items[i].path);
  if (all > GLOB_SHOWN)
    fprintf (f, "... and %zu more\n", all - shown);
  if (r->hidden)
    fprintf (f, "(%zu file(s) left out by the permissions)\n", r->hidden);
}

/* LINE cut at GREP_LINE_CHARS characters (not bytes). */
static void
put_cut (FILE *f, const char *line)
{
  cleanup_free char *clean = sbx_utf8_sanitize_copy (line, strlen (line));
  const char *s = clean ? clean : line;
  size_t chars = 0, i = 0;
  for (; s[i] && chars < GREP_LINE_CHARS; chars++)
    do
      i++;
    while ((s[i] & 0xc0) == 0x80);
  fwrite (s, 1, i, f);
  if (s[i])
    fputs ("...", f);
}

void
mcp_render_grep (FILE *f, const struct mcp_grep_result *r)
{
  const sbx_grep_result_t *m = &r->matches;
  if (m->count == 0)
    fprintf (f, "No matches for %s in %s\n", r->pattern, r->path);
  else if (r->mode == MCP_GREP_CONTENT)
    {
      fprintf (f, "Found %zu matching line(s) in %zu file(s):\n", m->count, r->files);
      for (size_t i = 0; i < m->count && i < GREP_SHOWN; i++)
        {
          fprintf (f, "%s:%" PRIu64 ":", m->items[i].path, m->items[i].line_number);
          put_cut (f, m->items[i].line);
          fputc ('\n', f);
        }
      if (m->count > GREP_SHOWN)
        fprintf (f, "... and %zu more\n", m->count - GREP_SHOWN);
    }
  else
    {
      bool count = r->mode == MCP_GREP_COUNT;
      if (count)
        fprintf (f, "Found %zu match(es) in %zu file(s):\n", m->count, r->files);
      else
        fprintf (f, "Found %zu file(s) with matches:\n", r->files);
      size_t shown = 0;
      for (size_t i = 0, n = 0; i < m->count; i++)
        {
          n++;
          if (i + 1 < m->count && strcmp (m->items[i + 1].path, m->items[i].path) == 0)
            continue;
          if (shown++ < GREP_SHOWN)
            {
              if (count)
                fprintf (f, "%s: %zu\n", m->items[i].path, n);
              else
                fprintf (f, "%s\n", m->items[i].path);
            }
          n = 0;
        }
      if (r->files > GREP_SHOWN)
        fprintf (f, "... and %zu more\n", r->files - GREP_SHOWN);
    }
  if (m->truncated)
    fprintf (f, "(the search stopped after %zu matches; narrow it with path or glob_pattern)\n",
             m->count);
  if (r->hidden)
    fprintf (f, "(%zu file(s) the permissions keep out were not searched)\n", r->hidden);
}

/* ---------------------------------------------------------------- commands */

/* DATA, ending with a newline. */
static void
put_output (FILE *f, const char *data, size_t len)
{
  fwrite (data, 1, len, f);
  if (len > 0 && data[len - 1] != '\n')
    fputc ('\n', f);
}

void
mcp_render_exec (FILE *f, const struct mcp_exec_result *r)
{
  const sbx_exec_result_t *x = &r->exec;
  if (x->timed_out)
    fprintf (f,
             "Command timed out after %lld seconds and was killed with all its children "
             "(exit code %d).%s\n",
             r->timeout, x->exit_code,
             x->output_len ? " Output before the timeout:" : " It printed nothing.");
  else if (x->oom_killed)
    fprintf (f, "Command was killed because the sandbox ran out of memory (exit code %d).%s\n",
             x->exit_code, x->output_len ? " Output before that:" : "");
  else if (x->exit_code != 0)
    fprintf (f, "Command failed (exit code %d):\n", x->exit_code);
  put_output (f, x->output, x->output_len);
  if (x->output_len == 0 && !x->timed_out && !x->oom_killed)
    fputs ("(no output)\n", f);
  if (x->truncated)
    fprintf (f,
             "[output truncated: only the first %d bytes are shown; send the output to a "
             "file and read parts of it]\n",
             SBX_DEFAULT_MAX_OUTPUT);
}

void
mcp_render_bg_start (FILE *f, const struct mcp_bg_result *r)
{
  fprintf (f,
           "Started background process %s: %s\nRead its output with read_output (shell_id "
           "\"%s\"); stop it with kill_shell.",
           r->id, r->command, r->id);
}

static void
put_status (FILE *f, const sbx_bg_info_t *info)
{
  if (info->running)
    fprintf (f, "running (pid %" PRId64 ")", info->pid);
  else
    fprintf (f, "exited with code %d", info->exit_code);
}

void
mcp_render_bg_read (FILE *f, const struct mcp_bg_result *r)
{
  fprintf (f, "Process %s (%s): ", r->id, r->info.command);
  put_status (f, &r->info);
  fputc ('\n', f);
  if (r->len == 0)
    fputs ("(no new output)\n", f);
  put_output (f, r->output, r->len < BG_SHOWN ? r->len : BG_SHOWN);
  if (r->len > BG_SHOWN)
    fprintf (f, "[%zu more bytes of output were dropped: only %d bytes are shown per read]\n",
             r->len - BG_SHOWN, BG_SHOWN);
  if (r->info.dropped)
    fprintf (f,
             "[%" PRIu64 " bytes of output were lost before this read because the buffer was "
             "full; read more often]\n",
             r->info.dropped);
}

void
mcp_render_bg_kill (FILE *f, const struct mcp_bg_result *r)
{
  fprintf (f, "Killed background process %s.", r->id);
}

void
mcp_render_kill_all (FILE *f, const struct mcp_bg_result *r)
{
  fprintf (f, "Killed %zu process%s; the sandbox and its files are kept.", r->count,
           r->count == 1 ? "" : "es");
}

void
mcp_render_bg_list (FILE *f, const struct mcp_bg_result *r)
{
  fputs (r->count == 0 ? "No background processes.\n" : "Background processes:\n", f);
  for (size_t i = 0; i < r->count; i++)
    {
      fprintf (f, "  %s: %s (", r->list[i].id, r->list[i].command);
      put_status (f, &r->list[i]);
      fputs (")\n", f);
    }
}
