/* Paths in the sandbox: resolved there (symlinks and all), checked against
 * the permissions as given and as resolved, and what the model last saw of
 * each file (edit_file refuses a file that changed since).
 *
 * Paths are checked twice: as given (made absolute and lexically
 * normalised), and once symlinks are resolved inside the sandbox; the
 * operation then works on the resolved path, so that neither "a/../.env" nor
 * a link to a secret gets around a rule. The agent resolves them itself
 * (sbx_resolve): a check costs no process. */
#include "mcp.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEEN_MAX 4096

/* What a file is: its path with symlinks resolved, and a fingerprint of its
 * content's identity (device, inode, size, modification and change times)
 * that changes when anything writes to it; "" when it does not exist. */
struct probe
{
  char *real;
  char fp[128];
};

/* The agent answers these itself: no process, no tool needed in the image. */
static void
fingerprint (const sbx_path_info_t *info, char fp[128])
{
  if (!info->exists)
    fp[0] = '\0';
  else
    snprintf (fp, 128, "%" PRIu64 ":%" PRIu64 ":%" PRIu64 ":%" PRId64 ":%" PRId64, info->dev,
              info->ino, info->size, info->mtime_ns, info->ctime_ns);
}

static json_t *
probe (sbx_sandbox_t *sb, const char *path, struct probe *out)
{
  sbx_path_info_t info;
  sbx_error_t *err = NULL;
  if (sbx_resolve (sb, path, &info, &err) < 0)
    return mcp_failure (err);
  out->real = info.path;
  fingerprint (&info, out->fp);
  return NULL;
}

/* Resolves many paths at once (grep's files). */
json_t *
mcp_resolve_many (sbx_sandbox_t *sb, const char *const *paths, size_t n, char ***reals)
{
  char **v = calloc (n + 1, sizeof *v);
  sbx_path_info_t *infos = calloc (n ? n : 1, sizeof *infos);
  sbx_error_t *err = NULL;
  if (v == NULL || infos == NULL)
    {
      free (v);
      free (infos);
      return mcp_errorf ("Error: out of memory");
    }
  if (sbx_resolve_many (sb, paths, n, infos, &err) < 0)
    {
      free (v);
      free (infos);
      return mcp_failure (err);
    }
  for (size_t i = 0; i < n; i++)
    {
      v[i] = infos[i].path;
      infos[i].path = NULL;
    }
  free (infos);
  *reals = v;
  return NULL;
}

/* ----------------------------------------------------------- permissions */

/* NULL when OP may touch PATH; else the denial. VIA is the path the model
 * gave when PATH is where its symlinks lead. */
static json_t *
check (struct mcp_ctx *ctx, enum mcp_op op, const char *path, const char *workdir, const char *via)
{
  const struct mcp_rule *rule;
  if (mcp_perms_check (ctx->perms, op, path, workdir, &rule) != MCP_DENY)
    return NULL;
  char *m = mcp_perms_denial (ctx->perms, op, path, rule);
  json_t *r = m == NULL ? NULL
              : via     ? mcp_errorf ("%s leads to %s through a symbolic link. %s", via, path, m)
                        : mcp_errorf ("%s", m);
  free (m);
  return r;
}

bool
mcp_allowed (struct mcp_ctx *ctx, enum mcp_op op, const char *path, const char *workdir)
{
  return mcp_perms_check (ctx->perms, op, path, workdir, NULL) != MCP_DENY;
}

void
mcp_target_clear (struct mcp_target *t)
{
  free (t->path);
  free (t->real);
}

static json_t *
resolve_target (struct mcp_ctx *ctx, sbx_sandbox_t *sb, enum mcp_op op, const char *given,
                bool always_probe, struct mcp_target *t)
{
  const char *wd = sbx_sandbox_workdir (sb);
  /* Lexically only: symlinks are resolved inside the sandbox (tools.c). */
  if ((t->path = sbx_path_resolve (wd, given)) == NULL)
    return mcp_errorf ("Error: out of memory");
  json_t *e = check (ctx, op, t->path, wd, NULL);
  if (e)
    return e;
  if (!always_probe && !mcp_perms_may_deny (ctx->perms, op))
    return (t->real = strdup (t->path)) ? NULL : mcp_errorf ("Error: out of memory");
  struct probe p = { 0 };
  if ((e = probe (sb, t->path, &p)) != NULL)
    return e;
  t->real = p.real;
  memcpy (t->fp, p.fp, sizeof t->fp);
  if (strcmp (t->real, t->path) != 0)
    return check (ctx, op, t->real, wd, t->path);
  return NULL;
}

/* Resolves the path GIVEN for OP and checks it. ALWAYS_PROBE also when no
 * rule could deny (the fingerprint is needed, or the symlink resolution).
 * On failure, the error to return, and *T needs no clearing. */
json_t *
mcp_target (struct mcp_ctx *ctx, sbx_sandbox_t *sb, enum mcp_op op, const char *given,
            bool always_probe, struct mcp_target *t)
{
  memset (t, 0, sizeof *t);
  json_t *e = resolve_target (ctx, sb, op, given, always_probe, t);
  if (e)
    {
      mcp_target_clear (t);
      memset (t, 0, sizeof *t);
    }
  return e;
}

/* ------------------------------------------------------- what was read */

struct seen_entry
{
  char *path, *fp;
};

struct mcp_seen
{
  struct seen_entry *v;
  size_t n, cap;
};

void
mcp_seen_free (struct mcp_seen *s)
{
  for (size_t i = 0; s && i < s->n; i++)
    {
      free (s->v[i].path);
      free (s->v[i].fp);
    }
  if (s)
    free (s->v);
  free (s);
}

static struct seen_entry *
seen_find (struct mcp_seen *s, const char *path)
{
  for (size_t i = 0; s && i < s->n; i++)
    if (strcmp (s->v[i].path, path) == 0)
      return &s->v[i];
  return NULL;
}

/* Remembers that the model saw PATH as FP ("" forgets it). Past SEEN_MAX
 * files, the oldest is forgotten: the model then reads it again. */
void
mcp_seen_put (struct mcp_ctx *ctx, const char *path, const char *fp)
{
  if (ctx->seen == NULL && (ctx->seen = calloc (1, sizeof *ctx->seen)) == NULL)
    return;
  struct mcp_seen *s = ctx->seen;
  struct seen_entry *e = seen_find (s, path);
  if (e)
    {
      free (e->path);
      free (e->fp);
      memmove (e, e + 1, (size_t) (s->v + s->n - (e + 1)) * sizeof *e);
      s->n--;
    }
  if (!*fp)
    return;
  if (s->n == SEEN_MAX)
    {
      free (s->v[0].path);
      free (s->v[0].fp);
      memmove (s->v, s->v + 1, (s->n - 1) * sizeof *s->v);
      s->n--;
    }
  if (s->n == s->cap)
    {
      size_t cap = s->cap ? s->cap * 2 : 16;
      struct seen_entry *v = realloc (s->v, cap * sizeof *v);
      if (v == NULL)
        return; /* forgetting is safe: edit_file then asks for a read */
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

/* After a write or an edit: the model knows what the file now holds. */
void
mcp_remember (struct mcp_ctx *ctx, sbx_sandbox_t *sb, const char *real)
{
  struct probe p = { 0 };
  json_t *e = probe (sb, real, &p);
  mcp_seen_put (ctx, real, e ? "" : p.fp);
  json_decref (e);
  free (p.real);
}

const char *
mcp_seen_get (struct mcp_ctx *ctx, const char *path)
{
  struct seen_entry *e = seen_find (ctx->seen, path);
  return e ? e->fp : NULL;
}
