/* Unit tests for the MCP server's permissions (src/mcp/permissions.c):
 * presets, rules files, path normalisation and decisions. */
#include "mcp.h"
#include "tap.h"

#define WD "/workspace"

static sbx_mcp_perms_t *
preset (const char *name)
{
  sbx_mcp_perms_t *p = NULL;
  sbx_error_t *err = NULL;
  if (mcp_perms_preset (name, &p, &err) < 0)
    diag ("preset %s: %s", name, sbx_error_message (err));
  sbx_error_free (err);
  return p;
}

/* The rules file TEXT; on failure, NULL and its error in *ERR. */
static sbx_mcp_perms_t *
rules (const char *text, sbx_error_t **err)
{
  sbx_mcp_perms_t *p = NULL;
  *err = NULL;
  sbx_mcp_perms_parse (text, strlen (text), "the rules file t.json", &p, err);
  return p;
}

static void
decides (const sbx_mcp_perms_t *p, enum mcp_op op, const char *path, enum mcp_action want,
         const char *what)
{
  enum mcp_action got = mcp_perms_check (p, op, path, WD, NULL);
  if (!ok (got == want, "%s: %s %s", what, mcp_op_name (op), path ? path : "(no path)"))
    diag ("got %d, want %d", got, want);
}

static void
normal_is (const char *path, const char *want)
{
  char *got = sbx_path_resolve (WD, path);
  is_str (got, want, "'%s' normalises to '%s'", path, want);
  free (got);
}

static void
test_normalize (void)
{
  normal_is ("a.py", "/workspace/a.py");
  normal_is ("", "/workspace");
  normal_is (".", "/workspace");
  normal_is ("a/../.env", "/workspace/.env");
  normal_is ("./a//b/./c/", "/workspace/a/b/c");
  normal_is ("../../../../etc/passwd", "/etc/passwd");
  normal_is ("/x/../../..", "/");
  normal_is ("/root/.ssh/../.ssh/id_rsa", "/root/.ssh/id_rsa");
  normal_is ("..", "/");
}

static void
test_presets (void)
{
  sbx_mcp_perms_t *p = preset ("default");
  decides (p, MCP_OP_READ, "/workspace/app.py", MCP_ALLOW, "default");
  decides (p, MCP_OP_READ, "/workspace/.env", MCP_DENY, "default");
  decides (p, MCP_OP_READ, "/.env", MCP_DENY, "default (top level)");
  decides (p, MCP_OP_READ, "/workspace/config/.env.local", MCP_DENY, "default");
  decides (p, MCP_OP_GREP, "/srv/tls/server.pem", MCP_DENY, "default");
  decides (p, MCP_OP_LS, "/root/.ssh", MCP_DENY, "default (the directory itself)");
  decides (p, MCP_OP_READ, "/root/.ssh/id_rsa", MCP_DENY, "default");
  decides (p, MCP_OP_READ, "/workspace/db_password.txt", MCP_DENY, "default");
  decides (p, MCP_OP_WRITE, "/workspace/app.py", MCP_ASK, "default (the seed's ask)");
  decides (p, MCP_OP_WRITE, "/workspace/.aws/credentials", MCP_DENY, "default");
  decides (p, MCP_OP_EXECUTE, NULL, MCP_ASK, "default");
  ok (!mcp_perms_denies_all (p, MCP_OP_WRITE) && !mcp_perms_denies_all (p, MCP_OP_EXECUTE),
      "default lists every tool");
  ok (mcp_perms_may_ask (p, MCP_OP_WRITE) && !mcp_perms_may_ask (p, MCP_OP_READ),
      "default marks writes, not reads, as ones to ask about");
  ok (mcp_perms_may_deny (p, MCP_OP_GREP), "default filters grep results");
  sbx_mcp_perms_free (p);

  p = preset ("permissive");
  decides (p, MCP_OP_READ, "/workspace/.env", MCP_ALLOW, "permissive");
  decides (p, MCP_OP_EXECUTE, NULL, MCP_ALLOW, "permissive");
  ok (!mcp_perms_may_deny (p, MCP_OP_GREP), "permissive filters nothing");
  sbx_mcp_perms_free (p);

  p = preset ("readonly");
  decides (p, MCP_OP_READ, "/etc/os-release", MCP_ALLOW, "readonly");
  decides (p, MCP_OP_READ, "/workspace/.env", MCP_DENY, "readonly");
  ok (mcp_perms_denies_all (p, MCP_OP_WRITE) && mcp_perms_denies_all (p, MCP_OP_EDIT)
          && mcp_perms_denies_all (p, MCP_OP_EXECUTE),
      "readonly denies write, edit and execute whatever the path");
  ok (!mcp_perms_denies_all (p, MCP_OP_READ), "readonly reads");
  sbx_mcp_perms_free (p);

  p = preset ("strict");
  decides (p, MCP_OP_READ, "/workspace/src/a.c", MCP_ASK, "strict");
  decides (p, MCP_OP_LS, "/workspace", MCP_ASK, "strict (the work dir itself)");
  decides (p, MCP_OP_READ, "/etc/passwd", MCP_DENY, "strict (outside the work dir)");
  decides (p, MCP_OP_READ, "/workspacex/a", MCP_DENY, "strict (a sibling of the work dir)");
  decides (p, MCP_OP_READ, "/workspace/.env", MCP_DENY, "strict");
  ok (mcp_perms_denies_all (p, MCP_OP_WRITE) && mcp_perms_denies_all (p, MCP_OP_EXECUTE),
      "strict denies writes and commands");
  sbx_mcp_perms_free (p);

  sbx_mcp_perms_t *none = NULL;
  sbx_error_t *err = NULL;
  check_fails (sbx_mcp_perms_load ("lenient", &none, &err), &err, SBX_E_INVALID,
               "not a preset (default, permissive, readonly, strict)",
               "an unknown preset (and no such file) names the known ones");
  check_fails (sbx_mcp_perms_load ("/etc", &none, &err), &err, SBX_E_IO, "permissions /etc",
               "a rules file that cannot be read is an error naming it");
}

static void
test_rules_files (void)
{
  sbx_error_t *error;
  sbx_mcp_perms_t *p = rules (
      "{\"default\": \"deny\", \"deny_secrets\": true,"
      " \"read\": {\"default\": \"allow\", \"rules\": ["
      "   {\"pattern\": \"/etc/**\", \"action\": \"deny\", \"description\": \"system files\"},"
      "   {\"pattern\": \"*.log\", \"action\": \"deny\"},"
      "   {\"pattern\": \"/etc/hostname\", \"action\": \"allow\"}]},"
      " \"write\": {\"rules\": [{\"pattern\": \"src/**\", \"action\": \"allow\"}]},"
      " \"execute\": \"ask\"}",
      &error);
  ok (p != NULL, "a rules file parses");
  if (p == NULL)
    {
      diag ("%s", sbx_error_message (error));
      sbx_error_free (error);
      return;
    }
  decides (p, MCP_OP_READ, "/etc/hostname", MCP_DENY, "first match wins");
  decides (p, MCP_OP_READ, "/workspace/app.log", MCP_DENY, "relative pattern");
  decides (p, MCP_OP_READ, "/workspace/logs/app.log", MCP_ALLOW, "'*' stays in one segment");
  decides (p, MCP_OP_READ, "/tmp/app.log", MCP_ALLOW, "relative patterns stay in the work dir");
  decides (p, MCP_OP_READ, "/workspace/.env", MCP_DENY, "deny_secrets comes first");
  decides (p, MCP_OP_WRITE, "/workspace/src/a/b/c.py", MCP_ALLOW, "'**' crosses segments");
  decides (p, MCP_OP_WRITE, "/workspace/setup.py", MCP_DENY, "the file's default");
  decides (p, MCP_OP_WRITE, "/workspace/src/.env", MCP_DENY, "secrets before the file's rules");
  decides (p, MCP_OP_GLOB, "/workspace", MCP_DENY, "operations not named get the default");
  decides (p, MCP_OP_EXECUTE, NULL, MCP_ASK, "execute as a whole");
  ok (!mcp_perms_denies_all (p, MCP_OP_WRITE), "write with an allow rule is listed");
  ok (mcp_perms_denies_all (p, MCP_OP_GLOB), "glob with no allow rule is not listed");

  const struct mcp_rule *rule = NULL;
  mcp_perms_check (p, MCP_OP_READ, "/etc/shadow", WD, &rule);
  sbx_error_t *d = NULL;
  int r = mcp_perms_deny (p, MCP_OP_READ, "/etc/shadow", rule, &d);
  const char *m = sbx_error_message (d);
  ok (r == -SBX_E_PERMISSION && strstr (m, "\"/etc/**\"") && strstr (m, "system files")
          && strstr (m, "t.json"),
      "a denial is a failure naming the rule, its description and the file");
  diag ("%s", m);
  sbx_error_free (d);
  d = NULL;
  mcp_perms_check (p, MCP_OP_WRITE, "/workspace/setup.py", WD, &rule);
  r = mcp_perms_deny (p, MCP_OP_WRITE, "/workspace/setup.py", rule, &d);
  ok (r == -SBX_E_PERMISSION && rule == NULL && strstr (sbx_error_message (d), "no rule allows it"),
      "a denial by default says so");
  sbx_error_free (d);
  ok (mcp_perms_deny (p, MCP_OP_READ, "/x", NULL, NULL) < 0,
      "a denial is a failure even when nobody takes its error");
  sbx_mcp_perms_free (p);

  static const struct
  {
    const char *text, *needle;
  } bad[] = {
    { "[]", "JSON object" },
    { "{\"read\": ", "not valid JSON" },
    { "{\"reed\": \"allow\"}", "unknown key \"reed\"" },
    { "{\"read\": \"maybe\"}", "\"allow\", \"deny\" or \"ask\"" },
    { "{\"default\": 1}", "\"default\"" },
    { "{\"read\": {\"rules\": [{\"pattern\": \"a\"}]}}", "rule 1 of \"read\"" },
    { "{\"read\": {\"rules\": [{\"pattern\": \"a\", \"action\": \"deny\", \"x\": 1}]}}",
      "rule 1 of \"read\"" },
    { "{\"read\": {\"rules\": [{\"pattern\": \"[a\", \"action\": \"deny\"}]}}",
      "invalid pattern '[a'" },
    { "{\"execute\": {\"rules\": [{\"pattern\": \"rm *\", \"action\": \"deny\"}]}}",
      "takes no rules" },
    { "{\"deny_secrets\": \"yes\"}", "true or false" },
    { "{\"read\": {\"default\": \"allow\", \"rule\": []}}", "unknown key \"rule\"" },
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    {
      p = rules (bad[i].text, &error);
      const char *why = sbx_error_message (error);
      if (!ok (p == NULL && error && sbx_error_code (error) == SBX_E_INVALID
                   && strstr (why, bad[i].needle),
               "refused: %s", bad[i].text))
        diag ("error: %s", why);
      sbx_mcp_perms_free (p);
      sbx_error_free (error);
    }
}

int
main (void)
{
  test_normalize ();
  test_presets ();
  test_rules_files ();
  return done_testing ();
}
