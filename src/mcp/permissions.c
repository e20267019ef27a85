/* Permissions that the server enforces: presets, rules files, path
 * normalisation and decisions. Pure: no I/O (cmd_mcp.c reads the file).
 *
 * Each operation of the seed (read, write, edit, execute, glob, grep, ls) has
 * rules (path glob, action), tried in order, first match wins, and a fallback
 * action. Patterns use src/common/glob.c: `*` stays within a segment, `**`
 * crosses. A pattern that starts with "/" or "**" is matched against the
 * whole absolute path (so the secret patterns match anywhere); any other
 * (such as "*.py", or "./" followed by "**") against the path below the
 * sandbox's work dir. */
#include "mcp.h"

#include <ctype.h>

#include "glob.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const mcp_secret_patterns[] = {
  "**/.env",         "**/.env.*",    "**/*.pem",    "**/*.key",      "**/*.crt",
  "**/credentials*", "**/secrets*",  "**/*secret*", "**/*password*", "**/.aws/**",
  "**/.ssh/**",      "**/.gnupg/**", NULL,
};

const char *const mcp_preset_names[] = { "default", "permissive", "readonly", "strict", NULL };

static const char *const op_names[MCP_OP_COUNT] = {
  [MCP_OP_READ] = "read",       [MCP_OP_WRITE] = "write", [MCP_OP_EDIT] = "edit",
  [MCP_OP_EXECUTE] = "execute", [MCP_OP_GLOB] = "glob",   [MCP_OP_GREP] = "grep",
  [MCP_OP_LS] = "ls",
};

static const char *const action_names[] = {
  [MCP_ALLOW] = "allow",
  [MCP_DENY] = "deny",
  [MCP_ASK] = "ask",
};

const char *
mcp_op_name (enum mcp_op op)
{
  return op < MCP_OP_COUNT ? op_names[op] : "?";
}

/* Operations whose calls carry a path; execute has none. */
static bool
has_paths (enum mcp_op op)
{
  return op != MCP_OP_EXECUTE;
}

/* ------------------------------------------------------------ building */

void
mcp_perms_free (struct mcp_perms *p)
{
  if (p == NULL)
    return;
  for (int op = 0; op < MCP_OP_COUNT; op++)
    {
      for (size_t i = 0; i < p->ops[op].nrules; i++)
        {
          free (p->ops[op].rules[i].pattern);
          free (p->ops[op].rules[i].description);
          sbx_glob_free (p->ops[op].rules[i].glob);
        }
      free (p->ops[op].rules);
    }
  free (p->origin);
  free (p);
}

static struct mcp_perms *
perms_new (const char *origin, enum mcp_action fallback)
{
  struct mcp_perms *p = calloc (1, sizeof *p);
  if (p == NULL || (p->origin = strdup (origin)) == NULL)
    {
      free (p);
      return NULL;
    }
  for (int op = 0; op < MCP_OP_COUNT; op++)
    p->ops[op].fallback = fallback;
  return p;
}

static int
add_rule (struct mcp_perms *p, enum mcp_op op, const char *pattern, enum mcp_action action,
          const char *description, bool icase, char **error)
{
  struct mcp_op_perms *o = &p->ops[op];
  const char *why = NULL;
  sbx_glob_t *g = NULL;
  if (sbx_glob_compile (pattern, &g, &why) < 0)
    {
      *error = sbx_strdup_printf ("invalid pattern '%s' in the %s rules of %s: %s", pattern,
                                  op_names[op], p->origin, why);
      return -1;
    }
  struct mcp_rule *rules = realloc (o->rules, (o->nrules + 1) * sizeof *rules);
  char *pat = strdup (pattern);
  char *desc = description ? strdup (description) : NULL;
  if (rules)
    o->rules = rules;
  if (rules == NULL || pat == NULL || (description && desc == NULL))
    {
      sbx_glob_free (g);
      free (pat);
      free (desc);
      *error = sbx_strdup_printf ("out of memory");
      return -1;
    }
  o->rules[o->nrules++] = (struct mcp_rule){
    .pattern = pat,
    .description = desc,
    .glob = g,
    .relative = pattern[0] != '/' && strncmp (pattern, "**", 2) != 0,
    .icase = icase,
    .action = action,
  };
  return 0;
}

/* The seed's secret patterns, denied, for every operation with paths, and
 * whatever the case of the name (.ENV, Credentials.json). */
static int
deny_secrets (struct mcp_perms *p, char **error)
{
  for (int op = 0; op < MCP_OP_COUNT; op++)
    for (size_t i = 0; has_paths (op) && mcp_secret_patterns[i]; i++)
      if (add_rule (p, op, mcp_secret_patterns[i], MCP_DENY, "a secret file", true, error) < 0)
        return -1;
  return 0;
}

static void
set_fallbacks (struct mcp_perms *p, enum mcp_action reads, enum mcp_action changes)
{
  p->ops[MCP_OP_READ].fallback = p->ops[MCP_OP_GLOB].fallback = reads;
  p->ops[MCP_OP_GREP].fallback = p->ops[MCP_OP_LS].fallback = reads;
  p->ops[MCP_OP_WRITE].fallback = p->ops[MCP_OP_EDIT].fallback = changes;
  p->ops[MCP_OP_EXECUTE].fallback = changes;
}

/* The presets, as the README documents them:
 *   default     everything, secrets denied; the seed's "ask" for write, edit
 *               and execute marks those tools destructive
 *   permissive  everything, secrets included
 *   readonly    reads (read, ls, glob, grep), secrets denied; no write, edit,
 *               execute or background processes
 *   strict      reads inside the work dir only, secrets denied, each one
 *               "ask" (the seed's strict asks for everything); nothing else */
int
mcp_perms_preset (const char *name, struct mcp_perms **out, char **error)
{
  static const enum mcp_op reads[] = { MCP_OP_READ, MCP_OP_GLOB, MCP_OP_GREP, MCP_OP_LS };
  int which = -1;
  for (int i = 0; mcp_preset_names[i]; i++)
    if (strcmp (name, mcp_preset_names[i]) == 0)
      which = i;
  if (which < 0)
    {
      *error = sbx_strdup_printf (
          "unknown permissions '%s': name a preset (default, permissive, readonly, "
          "strict) or a rules file (a path to a JSON file)",
          name);
      return -1;
    }
  char origin[64];
  snprintf (origin, sizeof origin, "the %s permissions", name);
  struct mcp_perms *p = perms_new (origin, MCP_ALLOW);
  if (p == NULL)
    {
      *error = sbx_strdup_printf ("out of memory");
      return -1;
    }
  int r = 0;
  switch (which)
    {
    case 0: /* default */
      set_fallbacks (p, MCP_ALLOW, MCP_ASK);
      r = deny_secrets (p, error);
      break;
    case 1: /* permissive */
      break;
    case 2: /* readonly */
      set_fallbacks (p, MCP_ALLOW, MCP_DENY);
      r = deny_secrets (p, error);
      break;
    case 3: /* strict */
      set_fallbacks (p, MCP_DENY, MCP_DENY);
      r = deny_secrets (p, error);
      for (size_t i = 0; r == 0 && i < sizeof reads / sizeof reads[0]; i++)
        r = add_rule (p, reads[i], "./**", MCP_ASK, "inside the work dir", false, error);
      break;
    }
  if (r < 0)
    {
      mcp_perms_free (p);
      return -1;
    }
  *out = p;
  return 0;
}

/* ---------------------------------------------------------- rules files */

static int
parse_action (json_t *v, enum mcp_action *a)
{
  const char *s = json_string_value (v);
  for (int i = 0; s && i < 3; i++)
    if (strcmp (s, action_names[i]) == 0)
      {
        *a = (enum mcp_action) i;
        return 0;
      }
  return -1;
}

static int
parse_op (struct mcp_perms *p, enum mcp_op op, json_t *v, char **error)
{
  const char *name = op_names[op];
  if (json_is_string (v))
    {
      if (parse_action (v, &p->ops[op].fallback) == 0)
        return 0;
      *error
          = sbx_strdup_printf ("\"%s\" in %s must be \"allow\", \"deny\" or \"ask\", or an object "
                               "{\"default\": ..., \"rules\": [...]}",
                               name, p->origin);
      return -1;
    }
  if (!json_is_object (v))
    {
      *error = sbx_strdup_printf (
          "\"%s\" in %s must be an action or an object {\"default\": ..., \"rules\": "
          "[...]}",
          name, p->origin);
      return -1;
    }
  const char *key;
  json_t *val;
  json_object_foreach (v, key, val) if (strcmp (key, "default") != 0 && strcmp (key, "rules") != 0)
  {
    *error = sbx_strdup_printf (
        "unknown key \"%s\" in \"%s\" of %s; expected \"default\" and \"rules\"", key, name,
        p->origin);
    return -1;
  }
  json_t *def = json_object_get (v, "default"), *rules = json_object_get (v, "rules");
  if (def && parse_action (def, &p->ops[op].fallback) < 0)
    {
      *error = sbx_strdup_printf ("\"%s\".\"default\" in %s must be \"allow\", \"deny\" or \"ask\"",
                                  name, p->origin);
      return -1;
    }
  if (rules && !json_is_array (rules))
    {
      *error = sbx_strdup_printf ("\"%s\".\"rules\" in %s must be an array", name, p->origin);
      return -1;
    }
  if (json_array_size (rules) > 0 && !has_paths (op))
    {
      /* A command can reach any path, so rules on commands would be
       * advice, not enforcement: only allow or deny it as a whole. */
      *error = sbx_strdup_printf (
          "\"%s\" in %s takes no rules, only a default (\"allow\", \"deny\" or "
          "\"ask\"): a command's text can't be checked for the paths it reaches",
          name, p->origin);
      return -1;
    }
  size_t i;
  json_t *rule;
  json_array_foreach (rules, i, rule)
  {
    enum mcp_action a;
    const char *pattern = json_string_value (json_object_get (rule, "pattern"));
    json_t *desc = json_object_get (rule, "description");
    size_t known = 2 + (desc != NULL);
    if (!json_is_object (rule) || pattern == NULL || !*pattern
        || parse_action (json_object_get (rule, "action"), &a) < 0
        || (desc && !json_is_string (desc)) || json_object_size (rule) != known)
      {
        *error = sbx_strdup_printf (
            "rule %zu of \"%s\" in %s must be {\"pattern\": \"GLOB\", \"action\": "
            "\"allow\"|\"deny\"|\"ask\"} with an optional \"description\"",
            i + 1, name, p->origin);
        return -1;
      }
    if (add_rule (p, op, pattern, a, json_string_value (desc), false, error) < 0)
      return -1;
  }
  return 0;
}

int
mcp_perms_parse (const char *text, size_t len, const char *origin, struct mcp_perms **out,
                 char **error)
{
  json_error_t jerr;
  json_t *doc = json_loadb (text, len, 0, &jerr);
  if (doc == NULL || !json_is_object (doc))
    {
      *error = doc ? sbx_strdup_printf ("%s must hold a JSON object", origin)
                   : sbx_strdup_printf ("%s is not valid JSON: %s (line %d, column %d)", origin,
                                        jerr.text, jerr.line, jerr.column);
      json_decref (doc);
      return -1;
    }
  /* Operations the file doesn't name get "default", and that is "deny":
   * a rules file says what is allowed. */
  enum mcp_action fallback = MCP_DENY;
  json_t *def = json_object_get (doc, "default");
  if (def && parse_action (def, &fallback) < 0)
    {
      *error
          = sbx_strdup_printf ("\"default\" in %s must be \"allow\", \"deny\" or \"ask\"", origin);
      json_decref (doc);
      return -1;
    }
  struct mcp_perms *p = perms_new (origin, fallback);
  if (p == NULL)
    {
      *error = sbx_strdup_printf ("out of memory");
      json_decref (doc);
      return -1;
    }
  int r = 0;
  json_t *secrets = json_object_get (doc, "deny_secrets");
  if (secrets && !json_is_boolean (secrets))
    {
      *error = sbx_strdup_printf ("\"deny_secrets\" in %s must be true or false", origin);
      r = -1;
    }
  else if (json_is_true (secrets))
    r = deny_secrets (p, error); /* first, so that no rule of the file overrides them */

  const char *key;
  json_t *val;
  json_object_foreach (doc, key, val)
  {
    if (r < 0)
      break;
    if (strcmp (key, "default") == 0 || strcmp (key, "deny_secrets") == 0)
      continue;
    int op = -1;
    for (int i = 0; i < MCP_OP_COUNT; i++)
      if (strcmp (key, op_names[i]) == 0)
        op = i;
    if (op < 0)
      {
        *error = sbx_strdup_printf (
            "unknown key \"%s\" in %s; expected \"default\", \"deny_secrets\" or an "
            "operation: read, write, edit, execute, glob, grep, ls",
            key, origin);
        r = -1;
      }
    else
      r = parse_op (p, op, val, error);
  }
  json_decref (doc);
  if (r < 0)
    {
      mcp_perms_free (p);
      return -1;
    }
  *out = p;
  return 0;
}

/* ------------------------------------------------------------ decisions */

static bool
rule_matches (const struct mcp_rule *r, const char *path, const char *workdir)
{
  const char *rel = path + (path[0] == '/');
  if (r->relative)
    {
      size_t n = strlen (workdir);
      while (n > 0 && workdir[n - 1] == '/')
        n--;
      if (strncmp (path, workdir, n) != 0 || (path[n] != '/' && path[n] != '\0'))
        return false;
      rel = path + n + (path[n] == '/');
    }
  if (!r->icase)
    return sbx_glob_match (r->glob, rel);
  /* The patterns are lowercase: so is the path they are matched with. */
  char lower[SBX_GLOB_MAX_LEN + 1];
  size_t n = strlen (rel);
  if (n > SBX_GLOB_MAX_LEN)
    return r->action == MCP_DENY; /* undecidable: fail closed */
  for (size_t i = 0; i <= n; i++)
    lower[i] = (char) tolower ((unsigned char) rel[i]);
  return sbx_glob_match (r->glob, lower);
}

enum mcp_action
mcp_perms_check (const struct mcp_perms *p, enum mcp_op op, const char *path, const char *workdir,
                 const struct mcp_rule **rule)
{
  const struct mcp_op_perms *o = &p->ops[op];
  for (size_t i = 0; path && i < o->nrules; i++)
    if (rule_matches (&o->rules[i], path, workdir ? workdir : "/"))
      {
        if (rule)
          *rule = &o->rules[i];
        return o->rules[i].action;
      }
  if (rule)
    *rule = NULL;
  return o->fallback;
}

static bool
any_rule (const struct mcp_op_perms *o, enum mcp_action a)
{
  for (size_t i = 0; i < o->nrules; i++)
    if (o->rules[i].action == a)
      return true;
  return false;
}

bool
mcp_perms_denies_all (const struct mcp_perms *p, enum mcp_op op)
{
  const struct mcp_op_perms *o = &p->ops[op];
  return o->fallback == MCP_DENY && !any_rule (o, MCP_ALLOW) && !any_rule (o, MCP_ASK);
}

bool
mcp_perms_may_deny (const struct mcp_perms *p, enum mcp_op op)
{
  return p->ops[op].fallback == MCP_DENY || any_rule (&p->ops[op], MCP_DENY);
}

bool
mcp_perms_may_ask (const struct mcp_perms *p, enum mcp_op op)
{
  return p->ops[op].fallback == MCP_ASK || any_rule (&p->ops[op], MCP_ASK);
}

char *
mcp_perms_denial (const struct mcp_perms *p, enum mcp_op op, const char *path,
                  const struct mcp_rule *rule)
{
  const char *name = mcp_op_name (op);
  if (path == NULL)
    return sbx_strdup_printf ("Permission denied: %s is denied by %s.", name, p->origin);
  if (rule == NULL)
    return sbx_strdup_printf (
        "Permission denied: %s of %s is denied by %s (no rule allows it). Use a path that "
        "is allowed.",
        name, path, p->origin);
  return sbx_strdup_printf (
      "Permission denied: %s of %s is denied by the rule \"%s\"%s%s%s of %s. The "
      "permissions are enforced by the server; use another path.",
      name, path, rule->pattern, rule->description ? " (" : "",
      rule->description ? rule->description : "", rule->description ? ")" : "", p->origin);
}

