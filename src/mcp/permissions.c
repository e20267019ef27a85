/* Permissions that the server enforces: presets, rules files, path
 * normalisation and decisions. Pure, but for sbx_mcp_perms_load, which
 * reads a rules file.
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

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A rules file is small; a bigger one is a mistake. */
#define MAX_RULES_FILE (1u << 20)

const char *const mcp_secret_patterns[] = {
  "**/.env",         "**/.env.*",    "**/*.pem",    "**/*.key",      "**/*.crt",
  "**/credentials*", "**/secrets*",  "**/*secret*", "**/*password*", "**/.aws/**",
  "**/.ssh/**",      "**/.gnupg/**", NULL,
};

static const char *const preset_names[] = { "default", "permissive", "readonly", "strict", NULL };

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
sbx_mcp_perms_free (sbx_mcp_perms_t *p)
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

static sbx_mcp_perms_t *
perms_new (const char *origin, enum mcp_action fallback)
{
  struct sbx_mcp_perms *p = calloc (1, sizeof *p);
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
add_rule (sbx_mcp_perms_t *p, enum mcp_op op, const char *pattern, enum mcp_action action,
          const char *description, bool icase, sbx_error_t **err)
{
  struct mcp_op_perms *o = &p->ops[op];
  const char *why = NULL;
  sbx_glob_t *g = NULL;
  if (sbx_glob_compile (pattern, &g, &why) < 0)
    {
      return sbx_error_set (err, SBX_E_INVALID, "invalid pattern '%s' in the %s rules of %s: %s",
                            pattern, op_names[op], p->origin, why);
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
      return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
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
deny_secrets (sbx_mcp_perms_t *p, sbx_error_t **err)
{
  int r = 0;
  for (int op = 0; op < MCP_OP_COUNT; op++)
    for (size_t i = 0; r == 0 && has_paths (op) && mcp_secret_patterns[i]; i++)
      r = add_rule (p, op, mcp_secret_patterns[i], MCP_DENY, "a secret file", true, err);
  return r;
}

static void
set_fallbacks (sbx_mcp_perms_t *p, enum mcp_action reads, enum mcp_action changes)
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
mcp_perms_preset (const char *name, sbx_mcp_perms_t **out, sbx_error_t **err)
{
  static const enum mcp_op reads[] = { MCP_OP_READ, MCP_OP_GLOB, MCP_OP_GREP, MCP_OP_LS };
  int which = -1;
  for (int i = 0; preset_names[i]; i++)
    if (strcmp (name, preset_names[i]) == 0)
      which = i;
  if (which < 0)
    {
      return sbx_error_set (
          err, SBX_E_INVALID,
          "unknown permissions '%s': name a preset (default, permissive, readonly, "
          "strict) or a rules file (a path to a JSON file)",
          name);
    }
  char origin[64];
  snprintf (origin, sizeof origin, "the %s permissions", name);
  sbx_mcp_perms_t *p = perms_new (origin, MCP_ALLOW);
  if (p == NULL)
    {
      return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
    }
  int r = 0;
  switch (which)
    {
    case 0: /* default */
      set_fallbacks (p, MCP_ALLOW, MCP_ASK);
      r = deny_secrets (p, err);
      break;
    case 1: /* permissive */
      break;
    case 2: /* readonly */
      set_fallbacks (p, MCP_ALLOW, MCP_DENY);
      r = deny_secrets (p, err);
      break;
    case 3: /* strict */
      set_fallbacks (p, MCP_DENY, MCP_DENY);
      r = deny_secrets (p, err);
      for (size_t i = 0; r == 0 && i < sizeof reads / sizeof reads[0]; i++)
        r = add_rule (p, reads[i], "./**", MCP_ASK, "inside the work dir", false, err);
      break;
    }
  if (r < 0)
    {
      sbx_mcp_perms_free (p);
      return r;
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
parse_op (sbx_mcp_perms_t *p, enum mcp_op op, json_t *v, sbx_error_t **err)
{
  const char *name = op_names[op];
  if (json_is_string (v))
    {
      if (parse_action (v, &p->ops[op].fallback) == 0)
        return 0;
      return sbx_error_set (err, SBX_E_INVALID,
                            "\"%s\" in %s must be \"allow\", \"deny\" or \"ask\", or an object "
                            "{\"default\": ..., \"rules\": [...]}",
                            name, p->origin);
    }
  if (!json_is_object (v))
    {
      return sbx_error_set (
          err, SBX_E_INVALID,
          "\"%s\" in %s must be an action or an object {\"default\": ..., \"rules\": "
          "[...]}",
          name, p->origin);
    }
  const char *key;
  json_t *val;
  json_object_foreach (v, key, val)
    if (strcmp (key, "default") != 0 && strcmp (key, "rules") != 0)
      {
        return sbx_error_set (
            err, SBX_E_INVALID,
            "unknown key \"%s\" in \"%s\" of %s; expected \"default\" and \"rules\"", key, name,
            p->origin);
      }
  json_t *def = json_object_get (v, "default"), *rules = json_object_get (v, "rules");
  if (def && parse_action (def, &p->ops[op].fallback) < 0)
    {
      return sbx_error_set (err, SBX_E_INVALID,
                            "\"%s\".\"default\" in %s must be \"allow\", \"deny\" or \"ask\"", name,
                            p->origin);
    }
  if (rules && !json_is_array (rules))
    {
      return sbx_error_set (err, SBX_E_INVALID, "\"%s\".\"rules\" in %s must be an array", name,
                            p->origin);
    }
  if (json_array_size (rules) > 0 && !has_paths (op))
    {
      /* A command can reach any path, so rules on commands would be
       * advice, not enforcement: only allow or deny it as a whole. */
      return sbx_error_set (err, SBX_E_INVALID,
                            "\"%s\" in %s takes no rules, only a default (\"allow\", \"deny\" or "
                            "\"ask\"): a command's text can't be checked for the paths it reaches",
                            name, p->origin);
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
          return sbx_error_set (
              err, SBX_E_INVALID,
              "rule %zu of \"%s\" in %s must be {\"pattern\": \"GLOB\", \"action\": "
              "\"allow\"|\"deny\"|\"ask\"} with an optional \"description\"",
              i + 1, name, p->origin);
        }
      int r = add_rule (p, op, pattern, a, json_string_value (desc), false, err);
      if (r < 0)
        return r;
    }
  return 0;
}

int
sbx_mcp_perms_parse (const char *text, size_t len, const char *origin, sbx_mcp_perms_t **out,
                     sbx_error_t **err)
{
  json_error_t jerr;
  json_t *doc = json_loadb (text, len, 0, &jerr);
  if (doc == NULL || !json_is_object (doc))
    {
      int r = doc ? sbx_error_set (err, SBX_E_INVALID, "%s must hold a JSON object", origin)
                  : sbx_error_set (err, SBX_E_INVALID,
                                   "%s is not valid JSON: %s (line %d, column %d)", origin,
                                   jerr.text, jerr.line, jerr.column);
      json_decref (doc);
      return r;
    }
  /* Operations the file doesn't name get "default", and that is "deny":
   * a rules file says what is allowed. */
  enum mcp_action fallback = MCP_DENY;
  json_t *def = json_object_get (doc, "default");
  if (def && parse_action (def, &fallback) < 0)
    {
      json_decref (doc);
      return sbx_error_set (err, SBX_E_INVALID,
                            "\"default\" in %s must be \"allow\", \"deny\" or \"ask\"", origin);
    }
  sbx_mcp_perms_t *p = perms_new (origin, fallback);
  if (p == NULL)
    {
      json_decref (doc);
      return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
    }
  int r = 0;
  json_t *secrets = json_object_get (doc, "deny_secrets");
  if (secrets && !json_is_boolean (secrets))
    {
      r = sbx_error_set (err, SBX_E_INVALID, "\"deny_secrets\" in %s must be true or false",
                         origin);
    }
  else if (json_is_true (secrets))
    r = deny_secrets (p, err); /* first, so that no rule of the file overrides them */

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
          r = sbx_error_set (
              err, SBX_E_INVALID,
              "unknown key \"%s\" in %s; expected \"default\", \"deny_secrets\" or an "
              "operation: read, write, edit, execute, glob, grep, ls",
              key, origin);
        }
      else
        r = parse_op (p, op, val, err);
    }
  json_decref (doc);
  if (r < 0)
    {
      sbx_mcp_perms_free (p);
      return r;
    }
  *out = p;
  return 0;
}

const char *const *
sbx_mcp_perms_presets (void)
{
  return preset_names;
}

const char *
sbx_mcp_perms_origin (const sbx_mcp_perms_t *p)
{
  return p->origin;
}

int
sbx_mcp_perms_load (const char *arg, sbx_mcp_perms_t **out, sbx_error_t **err)
{
  *out = NULL;
  for (size_t i = 0; preset_names[i]; i++)
    if (strcmp (arg, preset_names[i]) == 0)
      return mcp_perms_preset (arg, out, err);
  FILE *f = fopen (arg, "re");
  if (f == NULL && errno == ENOENT)
    return sbx_error_set (err, SBX_E_INVALID,
                          "permissions %s: not a preset (default, permissive, readonly, strict) "
                          "and no such rules file",
                          arg);
  if (f == NULL)
    return sbx_error_set_errno (err, SBX_E_IO, errno, "permissions %s: cannot open the rules file",
                                arg);
  cleanup_free char *text = malloc (MAX_RULES_FILE + 1);
  size_t len = text ? fread (text, 1, MAX_RULES_FILE + 1, f) : 0;
  bool failed = text == NULL || ferror (f);
  fclose (f);
  if (failed || len > MAX_RULES_FILE)
    return sbx_error_set (err, failed ? SBX_E_IO : SBX_E_TOO_LARGE, "permissions %s: %s", arg,
                          len > MAX_RULES_FILE ? "the rules file is larger than 1 MiB"
                                               : "cannot read the rules file");
  cleanup_free char *origin = sbx_strdup_printf ("the rules file %s", arg);
  if (origin == NULL)
    return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  return sbx_mcp_perms_parse (text, len, origin, out, err);
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
mcp_perms_check (const sbx_mcp_perms_t *p, enum mcp_op op, const char *path, const char *workdir,
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
mcp_perms_denies_all (const sbx_mcp_perms_t *p, enum mcp_op op)
{
  const struct mcp_op_perms *o = &p->ops[op];
  return o->fallback == MCP_DENY && !any_rule (o, MCP_ALLOW) && !any_rule (o, MCP_ASK);
}

bool
mcp_perms_may_deny (const sbx_mcp_perms_t *p, enum mcp_op op)
{
  return p->ops[op].fallback == MCP_DENY || any_rule (&p->ops[op], MCP_DENY);
}

bool
mcp_perms_may_ask (const sbx_mcp_perms_t *p, enum mcp_op op)
{
  return p->ops[op].fallback == MCP_ASK || any_rule (&p->ops[op], MCP_ASK);
}

int
mcp_perms_deny (const sbx_mcp_perms_t *p, enum mcp_op op, const char *path,
                const struct mcp_rule *rule, sbx_error_t **err)
{
  const char *name = mcp_op_name (op);
  if (path == NULL)
    return sbx_error_set (err, SBX_E_PERMISSION, "Permission denied: %s is denied by %s.", name,
                          p->origin);
  if (rule == NULL)
    return sbx_error_set (err, SBX_E_PERMISSION,
                          "Permission denied: %s of %s is denied by %s (no rule allows it). Use a "
                          "path that is allowed.",
                          name, path, p->origin);
  return sbx_error_set (err, SBX_E_PERMISSION,
                        "Permission denied: %s of %s is denied by the rule \"%s\"%s%s%s of %s. "
                        "The permissions are enforced by the server; use another path.",
                        name, path, rule->pattern, rule->description ? " (" : "",
                        rule->description ? rule->description : "", rule->description ? ")" : "",
                        p->origin);
}
