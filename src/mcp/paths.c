/* Paths in the sandbox: resolved there (symlinks and all), and checked
 * against the permissions as given and as resolved.
 *
 * Paths are checked twice: as given (made absolute and lexically
 * normalised), and once symlinks are resolved inside the sandbox; the
 * operation then works on the resolved path, so that neither "a/../.env" nor
 * a link to a secret gets around a rule. The agent resolves them itself
 * (sbx_resolve): a check costs no process. A check that cannot decide (out
 * of memory) fails: nothing reads as allowed by accident. */
#include "mcp.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What a file is: its path with symlinks resolved, and a fingerprint of its
 * content's identity (device, inode, size, modification and change times)
 * that changes when anything writes to it; "" when it does not exist. */
struct probe
{
  char *real;
  char fp[128];
};

static void
fingerprint (const sbx_path_info_t *info, char fp[128])
{
  if (!info->exists)
    fp[0] = '\0';
  else
    snprintf (fp, 128, "%" PRIu64 ":%" PRIu64 ":%" PRIu64 ":%" PRId64 ":%" PRId64, info->dev,
              info->ino, info->size, info->mtime_ns, info->ctime_ns);
}

static int
probe (sbx_sandbox_t *sb, const char *path, struct probe *out, sbx_error_t **err)
{
  sbx_path_info_t info;
  int r = sbx_resolve (sb, path, &info, err);
  if (r < 0)
    return r;
  out->real = info.path;
  fingerprint (&info, out->fp);
  return 0;
}

int
mcp_resolve_many (sbx_sandbox_t *sb, const char *const *paths, size_t n, char ***reals,
                  sbx_error_t **err)
{
  *reals = NULL;
  char **v = calloc (n + 1, sizeof *v);
  cleanup_free sbx_path_info_t *infos = calloc (n ? n : 1, sizeof *infos);
  if (v == NULL || infos == NULL)
    {
      free (v);
      return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
    }
  int r = sbx_resolve_many (sb, paths, n, infos, err);
  if (r < 0)
    {
      free (v);
      return r;
    }
  for (size_t i = 0; i < n; i++)
    v[i] = steal_pointer (&infos[i].path);
  *reals = v;
  return 0;
}

/* ----------------------------------------------------------- permissions */

/* 0 when OP may touch PATH; else the denial. VIA is the path the model
 * gave when PATH is where its symlinks lead. */
static int
check (sbx_mcp_session_t *s, enum mcp_op op, const char *path, const char *workdir, const char *via,
       sbx_error_t **err)
{
  const struct mcp_rule *rule;
  if (mcp_perms_check (s->perms, op, path, workdir, &rule) != MCP_DENY)
    return 0;
  int r = mcp_perms_deny (s->perms, op, path, rule, err);
  return via ? sbx_error_wrap (err, r, "%s leads to %s through a symbolic link", via, path) : r;
}

bool
mcp_allowed (sbx_mcp_session_t *s, enum mcp_op op, const char *path, const char *workdir)
{
  return mcp_perms_check (s->perms, op, path, workdir, NULL) != MCP_DENY;
}

void
mcp_target_clear (struct mcp_target *t)
{
  free (t->path);
  free (t->real);
  memset (t, 0, sizeof *t);
}

static int
resolve_target (sbx_mcp_session_t *s, sbx_sandbox_t *sb, enum mcp_op op, const char *given,
                bool always_probe, struct mcp_target *t, sbx_error_t **err)
{
  const char *wd = sbx_sandbox_workdir (sb);
  /* Lexically first: symlinks are resolved inside the sandbox below. */
  if ((t->path = sbx_path_resolve (wd, given)) == NULL)
    return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  int r = check (s, op, t->path, wd, NULL, err);
  if (r < 0)
    return r;
  if (!always_probe && !mcp_perms_may_deny (s->perms, op))
    return (t->real = strdup (t->path)) ? 0 : sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  struct probe p = { 0 };
  if ((r = probe (sb, t->path, &p, err)) < 0)
    return r;
  t->real = p.real;
  memcpy (t->fp, p.fp, sizeof t->fp);
  if (strcmp (t->real, t->path) != 0)
    return check (s, op, t->real, wd, t->path, err);
  return 0;
}

int
mcp_target (sbx_mcp_session_t *s, sbx_sandbox_t *sb, enum mcp_op op, const char *given,
            bool always_probe, struct mcp_target *t, sbx_error_t **err)
{
  memset (t, 0, sizeof *t);
  int r = resolve_target (s, sb, op, given, always_probe, t, err);
  if (r < 0)
    mcp_target_clear (t);
  return r;
}

void
mcp_remember (sbx_mcp_session_t *s, sbx_sandbox_t *sb, const char *real)
{
  struct probe p = { 0 };
  sbx_error_t *err = NULL;
  int r = probe (sb, real, &p, &err);
  mcp_seen_put (s, real, r < 0 ? "" : p.fp);
  sbx_error_free (err);
  free (p.real);
}
