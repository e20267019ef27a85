/* libFuzzer target for the MCP server's rules files (src/mcp/permissions.c):
 * mcp_perms_parse, then, for a file it accepts, the decisions of every
 * operation (mcp_perms_check, mcp_perms_denial) on paths from the input and
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
#include "mcp.h"

#include "glob.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WORKDIR "/workspace"
#define MAX_PATHS 16

#define CHECK(cond)                                                                          \
  do                                                                                         \
    {                                                                                        \
      if (!(cond))                                                                           \
        {                                                                                    \
          fprintf (stderr, "fuzz_permissions: check failed: %s (line %d)\n", #cond,          \
                   __LINE__);                                                                \
          abort ();                                                                          \
        }                                                                                    \
    }                                                                                        \
  while (0)

/* The one call of the parser, so that a change of its error argument
 * (char ** today) is a change here only. */
static struct mcp_perms *
parse (const char *text, size_t len)
{
  struct mcp_perms *p = NULL;
  char *error = NULL;
  int r = mcp_perms_parse (text, len, "the rules file fuzz.json", &p, &error);
  CHECK (r == 0 ? p != NULL && error == NULL : p == NULL && error != NULL);
  free (error);
  return p;
}

static void
decide (const struct mcp_perms *p, enum mcp_op op, const char *path, const char *workdir)
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
      char *why = mcp_perms_denial (p, op, path, rule);
      CHECK (why != NULL && (path == NULL || strstr (why, path) != NULL));
      free (why);
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  const char *text = (const char *) data;
  const char *nul = memchr (text, '\0', size);
  size_t text_len = nul ? (size_t) (nul - text) : size;
  struct mcp_perms *p = parse (text, text_len);
  if (p == NULL)
    return 0;

  static const char *const fixed[] = {
    "/", WORKDIR, WORKDIR "/src/app.py", WORKDIR "/.env", WORKDIR "/a/B/.ENV.local",
    "/home/u/.ssh/id_rsa", "/etc/passwd", "/workspaces/x",
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
  mcp_perms_free (p);
  return 0;
}
