/* The tools as typed operations: the seed's console toolset on libsbx.
 * Each takes its arguments, checks every path against the permissions (as
 * given and as resolved in the sandbox), calls the library, and hands back
 * a structured result; render.c makes the model's text of it. A failure is
 * an error whose sentence the model can act on. */
#include "mcp.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LS_SHOWN 1000
#define GLOB_SHOWN 100
/* Entries asked for when the permissions may leave some out. */
#define GLOB_ASKED 1000
/* Matches asked for: enough to count files and lines beyond those shown. */
#define GREP_ASKED 1000
/* What a listing or a search may cost the server, whatever the sandbox holds. */
#define RESULT_BYTES (1u << 20)

static void
free_strv (char **v)
{
  for (char **p = v; p && *p; p++)
    free (*p);
  free (v);
}

/* ------------------------------------------------------------------ files */

void
mcp_ls_result_clear (struct mcp_ls_result *r)
{
  free (r->path);
  sbx_file_list_free (&r->list);
  memset (r, 0, sizeof *r);
}

/* Keeps the entries of LIST that OP may show; the count of the others. */
static size_t
filter_list (sbx_mcp_session_t *s, enum mcp_op op, const char *workdir, sbx_file_list_t *list)
{
  size_t kept = 0, hidden = 0;
  for (size_t i = 0; i < list->count; i++)
    if (mcp_allowed (s, op, list->items[i].path, workdir))
      list->items[kept++] = list->items[i];
    else
      {
        hidden++;
        free (list->items[i].name);
        free (list->items[i].path);
      }
  list->count = kept;
  return hidden;
}

int
mcp_op_ls (sbx_mcp_session_t *s, const struct mcp_ls_args *a, struct mcp_ls_result *r,
           sbx_error_t **err)
{
  memset (r, 0, sizeof *r);
  sbx_sandbox_t *sb;
  struct mcp_target t;
  int rc = mcp_session_sandbox (s, true, &sb, err);
  if (rc < 0 || (rc = mcp_target (s, sb, MCP_OP_LS, a->path, false, &t, err)) < 0)
    return rc;
  sbx_list_opts_t lo = { .max_entries = LS_SHOWN, .max_bytes = RESULT_BYTES };
  rc = sbx_ls (sb, t.real, &lo, &r->list, err);
  if (rc == 0)
    {
      r->more = r->list.truncated ? r->list.total - r->list.count : 0;
      r->hidden = filter_list (s, MCP_OP_LS, sbx_sandbox_workdir (sb), &r->list);
      r->path = steal_pointer (&t.path);
    }
  mcp_target_clear (&t);
  return rc;
}

void
mcp_read_result_clear (struct mcp_read_result *r)
{
  free (r->path);
  free (r->text);
  memset (r, 0, sizeof *r);
}

int
mcp_op_read (sbx_mcp_session_t *s, const struct mcp_read_args *a, struct mcp_read_result *r,
             sbx_error_t **err)
{
  memset (r, 0, sizeof *r);
  sbx_sandbox_t *sb;
  struct mcp_target t;
  int rc = mcp_session_sandbox (s, true, &sb, err);
  if (rc < 0 || (rc = mcp_target (s, sb, MCP_OP_READ, a->path, true, &t, err)) < 0)
    return rc;
  rc = sbx_read (sb, t.real, (size_t) a->offset, (size_t) a->limit, &r->text, err);
  if (rc == 0)
    {
      mcp_seen_put (s, t.real, t.fp);
      r->offset = a->offset;
      r->path = steal_pointer (&t.path);
    }
  mcp_target_clear (&t);
  return rc;
}

void
mcp_write_result_clear (struct mcp_write_result *r)
{
  free (r->path);
  memset (r, 0, sizeof *r);
}

static size_t
count_lines (const char *s, size_t n)
{
  size_t lines = 0;
  for (size_t i = 0; i < n; i++)
    lines += s[i] == '\n';
  return lines + (n > 0 && s[n - 1] != '\n');
}

int
mcp_op_write (sbx_mcp_session_t *s, const struct mcp_write_args *a, struct mcp_write_result *r,
              sbx_error_t **err)
{
  memset (r, 0, sizeof *r);
  sbx_sandbox_t *sb;
  struct mcp_target t;
  int rc = mcp_session_sandbox (s, true, &sb, err);
  if (rc < 0 || (rc = mcp_target (s, sb, MCP_OP_WRITE, a->path, true, &t, err)) < 0)
    return rc;
  rc = sbx_write (sb, t.real, a->content, a->len, err);
  if (rc == 0)
    {
      mcp_remember (s, sb, t.real);
      r->lines = count_lines (a->content, a->len);
      r->path = steal_pointer (&t.path);
    }
  mcp_target_clear (&t);
  return rc;
}

void
mcp_edit_result_clear (struct mcp_edit_result *r)
{
  free (r->path);
  memset (r, 0, sizeof *r);
}

/* Whether the model may edit T: it read the file, as it is now. */
static int
check_fresh (sbx_mcp_session_t *s, const struct mcp_edit_args *a, const struct mcp_target *t,
             sbx_error_t **err)
{
  const char *seen = mcp_seen_get (s, t->real);
  if (!*t->fp)
    return sbx_error_set (err, SBX_E_NOT_FOUND, "%s does not exist; create it with write_file.",
                          t->path);
  if (seen == NULL)
    return sbx_error_set (err, SBX_E_INVALID,
                          "read %s with read_file before editing it: edit_file only changes a "
                          "file whose current content you have seen.",
                          t->path);
  if (strcmp (seen, t->fp) != 0)
    return sbx_error_set (err, SBX_E_INVALID,
                          "%s changed since you last read it (something else wrote to it, such "
                          "as a command). Read it again with read_file, then redo the edit.",
                          t->path);
  if (!*a->old_string)
    return sbx_error_set (err, SBX_E_INVALID,
                          "old_string is empty; give the exact text to replace (to write a "
                          "whole file, use write_file).");
  if (strcmp (a->old_string, a->new_string) == 0)
    return sbx_error_set (err, SBX_E_INVALID,
                          "old_string and new_string are the same; there is nothing to change.");
  return 0;
}

int
mcp_op_edit (sbx_mcp_session_t *s, const struct mcp_edit_args *a, struct mcp_edit_result *r,
             sbx_error_t **err)
{
  memset (r, 0, sizeof *r);
  sbx_sandbox_t *sb;
  struct mcp_target t;
  int rc = mcp_session_sandbox (s, true, &sb, err);
  if (rc < 0 || (rc = mcp_target (s, sb, MCP_OP_EDIT, a->path, true, &t, err)) < 0)
    return rc;
  sbx_error_t *e = NULL;
  if ((rc = check_fresh (s, a, &t, err)) == 0
      && (rc = sbx_edit (sb, t.real, a->old_string, a->new_string, a->replace_all, &r->replaced,
                         &e))
             == -SBX_E_EDIT_AMBIGUOUS)
    rc = sbx_error_set (err, SBX_E_EDIT_AMBIGUOUS,
                        "%s (to replace every occurrence, set replace_all to true).",
                        sbx_error_message (e));
  else if (rc < 0 && e)
    sbx_error_propagate (err, steal_pointer (&e));
  sbx_error_free (e);
  if (rc == 0)
    {
      mcp_remember (s, sb, t.real);
      r->path = steal_pointer (&t.path);
    }
  mcp_target_clear (&t);
  return rc;
}

void
mcp_glob_result_clear (struct mcp_glob_result *r)
{
  free (r->path);
  sbx_file_list_free (&r->list);
  memset (r, 0, sizeof *r);
}

int
mcp_op_glob (sbx_mcp_session_t *s, const struct mcp_glob_args *a, struct mcp_glob_result *r,
             sbx_error_t **err)
{
  memset (r, 0, sizeof *r);
  sbx_sandbox_t *sb;
  struct mcp_target t;
  /* An absolute pattern searches from the root, whatever the path says. */
  const char *base = a->pattern[0] == '/' ? "/" : a->path;
  int rc = mcp_session_sandbox (s, true, &sb, err);
  if (rc < 0 || (rc = mcp_target (s, sb, MCP_OP_GLOB, base, false, &t, err)) < 0)
    return rc;
  /* Only what is shown is asked for, or a margin for what the permissions
     leave out. */
  bool filtered = mcp_perms_may_deny (s->perms, MCP_OP_GLOB);
  sbx_list_opts_t lo = { .max_entries = filtered ? GLOB_ASKED : GLOB_SHOWN,
                         .max_bytes = RESULT_BYTES };
  rc = sbx_glob (sb, a->pattern, t.real, &lo, &r->list, err);
  if (rc == 0)
    {
      /* Matches beyond those returned are counted, not checked. */
      r->beyond = r->list.total - r->list.count;
      r->hidden = filter_list (s, MCP_OP_GLOB, sbx_sandbox_workdir (sb), &r->list);
      r->pattern = a->pattern;
      r->path = steal_pointer (&t.path);
    }
  mcp_target_clear (&t);
  return rc;
}

void
mcp_grep_result_clear (struct mcp_grep_result *r)
{
  free (r->path);
  sbx_grep_result_free (&r->matches);
  memset (r, 0, sizeof *r);
}

/* The files grep may search, when the permissions may leave some out:
 * listed first (nothing read), checked by name and by where their symbolic
 * links lead, so that no file a rule denies is ever searched and nothing
 * the model sees depends on its content. *FILES (NULL-terminated) is what
 * may be searched; *HIDDEN counts what may not. */
static int
grep_allowed (sbx_mcp_session_t *s, sbx_sandbox_t *sb, const sbx_grep_opts_t *go, char ***files,
              size_t *hidden, sbx_error_t **err)
{
  const char *wd = sbx_sandbox_workdir (sb);
  sbx_file_list_t list = { 0 };
  sbx_grep_opts_t lo = *go;
  lo.max_matches = SBX_DEFAULT_MAX_ENTRIES;
  lo.max_bytes = SBX_DEFAULT_MAX_LIST_BYTES;
  *hidden = 0;
  *files = NULL;
  int r = sbx_grep_files (sb, &lo, &list, err);
  if (r < 0)
    return r;
  cleanup_free const char **todo = calloc (list.count + 1, sizeof *todo);
  char **reals = NULL, **v = calloc (list.count + 1, sizeof *v);
  size_t ntodo = 0, n = 0;
  if (todo == NULL || v == NULL)
    r = sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  for (size_t i = 0; r == 0 && i < list.count; i++)
    if (mcp_allowed (s, MCP_OP_GREP, list.items[i].path, wd))
      todo[ntodo++] = list.items[i].path;
    else
      (*hidden)++;
  if (r == 0 && ntodo > 0)
    r = mcp_resolve_many (sb, todo, ntodo, &reals, err);
  for (size_t i = 0; r == 0 && i < ntodo; i++)
    if (mcp_allowed (s, MCP_OP_GREP, reals[i], wd))
      v[n++] = steal_pointer (&reals[i]);
    else
      (*hidden)++;
  /* Taken entries are NULL: each is freed, not up to the first NULL. */
  for (size_t i = 0; reals && i < ntodo; i++)
    free (reals[i]);
  free (reals);
  sbx_file_list_free (&list);
  if (r < 0)
    {
      free_strv (v);
      return r;
    }
  *files = v;
  return 0;
}

int
mcp_op_grep (sbx_mcp_session_t *s, const struct mcp_grep_args *a, struct mcp_grep_result *r,
             sbx_error_t **err)
{
  memset (r, 0, sizeof *r);
  sbx_sandbox_t *sb;
  struct mcp_target t;
  int rc = mcp_session_sandbox (s, true, &sb, err);
  if (rc < 0 || (rc = mcp_target (s, sb, MCP_OP_GREP, a->path, false, &t, err)) < 0)
    return rc;
  sbx_grep_opts_t go
      = { .path = t.real, .glob = a->glob, .max_matches = GREP_ASKED, .max_bytes = RESULT_BYTES };
  char **allowed = NULL;
  if (mcp_perms_may_deny (s->perms, MCP_OP_GREP))
    rc = grep_allowed (s, sb, &go, &allowed, &r->hidden, err);
  go.files = (const char *const *) allowed;
  /* With nothing allowed to search there is no match. */
  if (rc == 0 && !(allowed && allowed[0] == NULL))
    rc = sbx_grep (sb, a->pattern, &go, &r->matches, err);
  free_strv (allowed);
  if (rc == 0)
    {
      for (size_t i = 0; i < r->matches.count; i++)
        r->files += i == 0 || strcmp (r->matches.items[i - 1].path, r->matches.items[i].path) != 0;
      r->pattern = a->pattern;
      r->mode = a->mode;
      r->path = steal_pointer (&t.path);
    }
  mcp_target_clear (&t);
  return rc;
}

/* ---------------------------------------------------------------- commands */

void
mcp_exec_result_clear (struct mcp_exec_result *r)
{
  sbx_exec_result_free (&r->exec);
  memset (r, 0, sizeof *r);
}

int
mcp_op_exec (sbx_mcp_session_t *s, const struct mcp_exec_args *a, struct mcp_exec_result *r,
             sbx_error_t **err)
{
  memset (r, 0, sizeof *r);
  sbx_sandbox_t *sb;
  int rc = mcp_session_sandbox (s, true, &sb, err);
  if (rc < 0)
    return rc;
  sbx_exec_opts_t opts;
  sbx_exec_opts_init (&opts);
  opts.timeout = (double) a->timeout;
  r->timeout = a->timeout;
  return sbx_exec (sb, a->command, &opts, &r->exec, err);
}

void
mcp_bg_result_clear (struct mcp_bg_result *r)
{
  free (r->id);
  free (r->output);
  sbx_bg_info_clear (&r->info);
  sbx_bg_info_list_free (r->list, r->count);
  memset (r, 0, sizeof *r);
}

int
mcp_op_bg_start (sbx_mcp_session_t *s, const struct mcp_bg_args *a, struct mcp_bg_result *r,
                 sbx_error_t **err)
{
  memset (r, 0, sizeof *r);
  sbx_sandbox_t *sb;
  int rc = mcp_session_sandbox (s, true, &sb, err);
  if (rc == 0 && (rc = sbx_bg_start (sb, a->command, NULL, &r->id, err)) == 0)
    r->command = a->command;
  return rc;
}

/* The tools that only look at background processes make no sandbox: with
 * none, there is no process. */
static int
existing (sbx_mcp_session_t *s, const struct mcp_bg_args *a, sbx_sandbox_t **sb, sbx_error_t **err)
{
  int rc = mcp_session_sandbox (s, false, sb, err);
  if (rc == 0 && *sb == NULL && a->shell_id)
    return sbx_error_set (err, SBX_E_NO_PROCESS,
                          "there is no background process %s; start one with run_in_background.",
                          a->shell_id);
  return rc;
}

int
mcp_op_bg_read (sbx_mcp_session_t *s, const struct mcp_bg_args *a, struct mcp_bg_result *r,
                sbx_error_t **err)
{
  memset (r, 0, sizeof *r);
  sbx_sandbox_t *sb;
  int rc = existing (s, a, &sb, err);
  if (rc == 0)
    rc = sbx_bg_read (sb, a->shell_id, &r->output, &r->len, &r->info, err);
  if (rc == 0 && (r->id = strdup (a->shell_id)) == NULL)
    rc = sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  return rc;
}

int
mcp_op_bg_kill (sbx_mcp_session_t *s, const struct mcp_bg_args *a, struct mcp_bg_result *r,
                sbx_error_t **err)
{
  memset (r, 0, sizeof *r);
  sbx_sandbox_t *sb;
  int rc = existing (s, a, &sb, err);
  if (rc == 0)
    rc = sbx_bg_kill (sb, a->shell_id, err);
  if (rc == 0 && (r->id = strdup (a->shell_id)) == NULL)
    rc = sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  return rc;
}

int
mcp_op_kill_all (sbx_mcp_session_t *s, const struct mcp_bg_args *a, struct mcp_bg_result *r,
                 sbx_error_t **err)
{
  memset (r, 0, sizeof *r);
  sbx_sandbox_t *sb;
  int rc = existing (s, a, &sb, err);
  if (rc == 0 && sb)
    rc = sbx_sandbox_kill_all (sb, &r->count, err);
  return rc;
}

int
mcp_op_bg_list (sbx_mcp_session_t *s, const struct mcp_bg_args *a, struct mcp_bg_result *r,
                sbx_error_t **err)
{
  memset (r, 0, sizeof *r);
  sbx_sandbox_t *sb;
  int rc = existing (s, a, &sb, err);
  if (rc == 0 && sb)
    rc = sbx_bg_list (sb, &r->list, &r->count, err);
  return rc;
}
