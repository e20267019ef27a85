/* A client's session: its permissions, the source of its sandbox, and what
 * the model last read of each file, which edit_file requires (a file that
 * changed since, for example through a command, must be read again). One
 * process may hold many sessions; each runs one call at a time. */
#include "mcp.h"

#include <stdlib.h>
#include <string.h>

/* Files remembered per session; past this, the oldest is forgotten and the
 * model reads it again before an edit. */
#define SEEN_MAX 4096

struct seen_entry
{
  char *path, *fp;
};

struct mcp_seen
{
  struct seen_entry *v;
  size_t n, cap;
};

int
sbx_mcp_session_new (const sbx_mcp_session_opts_t *opts, sbx_mcp_session_t **out, sbx_error_t **err)
{
  *out = NULL;
  if (opts == NULL || opts->perms == NULL || opts->sandbox == NULL)
    return sbx_error_set (err, SBX_E_INVALID, "a session needs permissions and a sandbox source");
  sbx_mcp_session_t *s = calloc (1, sizeof *s);
  if (s == NULL || (opts->workdir && (s->workdir = strdup (opts->workdir)) == NULL))
    {
      free (s);
      return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
    }
  s->perms = opts->perms;
  s->network = opts->network;
  s->sandbox = opts->sandbox;
  s->userdata = opts->userdata;
  *out = s;
  return 0;
}

static void
seen_entry_free (struct seen_entry *e)
{
  free (e->path);
  free (e->fp);
}

void
sbx_mcp_session_free (sbx_mcp_session_t *s)
{
  if (s == NULL)
    return;
  for (size_t i = 0; s->seen && i < s->seen->n; i++)
    seen_entry_free (&s->seen->v[i]);
  if (s->seen)
    free (s->seen->v);
  free (s->seen);
  free (s->workdir);
  free (s);
}

int
mcp_session_sandbox (sbx_mcp_session_t *s, bool create, sbx_sandbox_t **sb, sbx_error_t **err)
{
  *sb = NULL;
  int r = s->sandbox (s->userdata, create, sb, err);
  if (r < 0)
    return r;
  if (create && *sb == NULL)
    return sbx_error_set (err, SBX_E_AGENT, "the sandbox could not be started");
  return 0;
}

/* ------------------------------------------------------- what was read */

static struct seen_entry *
seen_find (struct mcp_seen *s, const char *path)
{
  for (size_t i = 0; s && i < s->n; i++)
    if (strcmp (s->v[i].path, path) == 0)
      return &s->v[i];
  return NULL;
}

static void
seen_drop (struct mcp_seen *s, struct seen_entry *e)
{
  seen_entry_free (e);
  memmove (e, e + 1, (size_t) (s->v + s->n - (e + 1)) * sizeof *e);
  s->n--;
}

void
mcp_seen_put (sbx_mcp_session_t *session, const char *path, const char *fp)
{
  if (session->seen == NULL && (session->seen = calloc (1, sizeof *session->seen)) == NULL)
    return; /* forgetting is safe: edit_file then asks for a read */
  struct mcp_seen *s = session->seen;
  struct seen_entry *e = seen_find (s, path);
  if (e)
    seen_drop (s, e);
  if (!*fp)
    return;
  if (s->n == SEEN_MAX)
    seen_drop (s, &s->v[0]);
  if (s->n == s->cap)
    {
      size_t cap = s->cap ? s->cap * 2 : 16;
      struct seen_entry *v = realloc (s->v, cap * sizeof *v);
      if (v == NULL)
        return;
      s->v = v;
      s->cap = cap;
    }
  char *p = strdup (path), *f = strdup (fp);
  if (p == NULL || f == NULL)
    {
      free (p);
      free (f);
      return;
    }
  s->v[s->n++] = (struct seen_entry){ p, f };
}

const char *
mcp_seen_get (sbx_mcp_session_t *session, const char *path)
{
  struct seen_entry *e = seen_find (session->seen, path);
  return e ? e->fp : NULL;
}
