/* libFuzzer target for the MCP server's rules files (src/mcp/permissions.c):
 * sbx_mcp_perms_parse, then, for a file it accepts, the decisions of every
 * operation (mcp_perms_check, mcp_perms_deny) on paths from the input and
 * the file's own patterns, normalised as the server does (sbx_path_resolve),
 * and on a few fixed ones (secrets, one longer than the glob matcher takes).
 *
 * Checked: a parse gives a result or an error, never both; a decision is
 * the rule's that it names, or the fallback; the summaries the server lists
 * and filters tools by (denies_all, may_deny, may_ask) agree with every
 * decision.
 *
 * Input: the rules file (JSON), then optionally a NUL and NUL-separated
 * paths, absolute or relative to the work dir. */
#include "check.h"
#include "mcp.h"

#include "glob.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WORKDIR "/workspace"
#define MAX_PATHS 16

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static sbx_mcp_perms_t *
parse (const char *text, size_t len)
{
  sbx_mcp_perms_t *p = NULL;
  sbx_error_t *err = NULL;
  int r = sbx_mcp_perms_parse (text, len, "the rules file fuzz.json", &p, &err);
  CHECK (r == 0 ? p != NULL && err == NULL
                : p == NULL && err != NULL && r == -sbx_error_code (err));
  sbx_error_free (err);
  return p;
}

static void
decide (const sbx_mcp_perms_t *p, enum mcp_op op, const char *path, const char *workdir)
{
  const struct mcp_op_perms *o = &p->ops[op];
  const struct mcp_rule *rule = (const struct mcp_rule *) 1;
  enum mcp_action a = mcp_perms_check (p, op, path, workdir, &rule);
  CHECK (a == MCP_ALLOW || a == MCP_DENY || a == MCP_ASK);
  if (rule)
    CHECK (path && rule >= o->rules && rule < o->rules + o->nrules && a == rule->action);
  else
    CHECK (a == o->fallback);
  CHECK (mcp_perms_check (p, op, path, workdir, NULL) == a);
  CHECK (!mcp_perms_denies_all (p, op) || a == MCP_DENY);
  CHECK (mcp_perms_may_deny (p, op) || a != MCP_DENY);
  CHECK (mcp_perms_may_ask (p, op) || a != MCP_ASK);
  if (a == MCP_DENY)
    {
      sbx_error_t *why = NULL;
      CHECK (mcp_perms_deny (p, op, path, rule, &why) < 0);
      CHECK (why != NULL && (path == NULL || strstr (sbx_error_message (why), path) != NULL));
      sbx_error_free (why);
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  const char *text = (const char *) data;
  const char *nul = memchr (text, '\0', size);
  size_t text_len = nul ? (size_t) (nul - text) : size;
  sbx_mcp_perms_t *p = parse (text, text_len);
  if (p == NULL)
    return 0;

  static const char *const fixed[] = {
    "/",
    WORKDIR,
    WORKDIR "/src/app.py",
    WORKDIR "/.env",
    WORKDIR "/a/B/.ENV.local",
    "/home/u/.ssh/id_rsa",
    "/etc/passwd",
    "/workspaces/x",
  };
  char *paths[MAX_PATHS] = { 0 };
  size_t npaths = 0;
  for (const char *s = nul, *end = text + size; s && s < end && npaths < MAX_PATHS;)
    {
      const char *next = memchr (s + 1, '\0', (size_t) (end - s - 1));
      size_t n = (size_t) ((next ? next : end) - (s + 1));
      char *given = strndup (s + 1, n);
      CHECK (given != NULL);
      paths[npaths] = sbx_path_resolve (WORKDIR, given);
      npaths += paths[npaths] != NULL;
      free (given);
      s = next;
    }
  /* Longer than the glob matcher takes (rules fail closed). */
  static char longest[SBX_GLOB_MAX_LEN + 64];
  if (longest[0] == '\0')
    {
      memset (longest, 'a', sizeof longest - 1);
      memcpy (longest, WORKDIR "/", sizeof WORKDIR);
      memcpy (longest + sizeof longest - 6, "/.env", 6);
    }

  for (int op = 0; op < MCP_OP_COUNT; op++)
    {
      decide (p, op, NULL, WORKDIR);
      decide (p, op, longest, WORKDIR);
      for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        decide (p, op, fixed[i], WORKDIR);
      for (size_t i = 0; i < npaths; i++)
        {
          decide (p, op, paths[i], WORKDIR);
          decide (p, op, paths[i], NULL);
        }
      /* Each pattern of the file (not the fixed secret ones), taken as a
       * path, against every rule. */
      for (size_t i = 0; i < p->ops[op].nrules; i++)
        {
          if (p->ops[op].rules[i].icase)
            continue;
          char *path = sbx_path_resolve (WORKDIR, p->ops[op].rules[i].pattern);
          if (path)
            decide (p, op, path, WORKDIR);
          free (path);
        }
    }
  for (size_t i = 0; i < npaths; i++)
    free (paths[i]);
  sbx_mcp_perms_free (p);
  return 0;
}
