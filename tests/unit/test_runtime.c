/* Runtimes, the pure part: definitions, validation, JSON, the generated
 * Dockerfile and the tag, fed with strings (no engine). */
#include "tap.h"

#include "../../src/lib/runtime.h"
#include "../../src/lib/sandbox.h"
#include "../../src/lib/sha256.h"

#include <stdio.h>
#include <unistd.h>

static const char site_ca[] = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

/* The plan of FLAVOUR (with or without a site CA); aborts the test on failure. */
static struct sbx_runtime_plan
plan_of (const sbx_runtime_t *rt, sbx_runtime_flavour f, bool ca)
{
  struct sbx_runtime_plan p;
  sbx_error_t *err = NULL;
  if (sbx_runtime_plan (rt, f, ca ? site_ca : NULL, ca ? sizeof site_ca - 1 : 0, &p, &err) < 0)
    {
      printf ("Bail out! plan of %s failed: %s\n", sbx_runtime_name (rt), sbx_error_message (err));
      exit (1);
    }
  return p;
}

static sbx_runtime_t *
from_json (const char *text)
{
  sbx_runtime_t *rt = NULL;
  sbx_error_t *err = NULL;
  if (sbx_runtime_from_json (text, &rt, &err) < 0)
    diag ("from_json failed: %s", sbx_error_message (err));
  sbx_error_free (err);
  return rt;
}

/* JSON that must be refused with a message naming FIELD. */
static void
json_refused (const char *text, const char *field, const char *why)
{
  sbx_runtime_t *rt = NULL;
  sbx_error_t *err = NULL;
  int r = sbx_runtime_from_json (text, &rt, &err);
  const char *msg = sbx_error_message (err);
  if (!ok (r == -SBX_E_INVALID && rt == NULL && strstr (msg, field), "refused: %s", why))
    diag ("r=%d message='%s'; wanted it to name '%s'", r, msg, field);
  sbx_error_free (err);
  sbx_runtime_free (rt);
}

static bool
contains (const char *hay, const char *needle)
{
  return hay && strstr (hay, needle);
}

static void
test_sha256 (void)
{
  static const struct
  {
    size_t n;
    const char *hex;
  } vec[] = {
    { 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
    { 55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318" },
    { 56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a" },
    { 63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34" },
    { 64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb" },
    { 1000, "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3" },
  };
  char a[1000], hex[65];
  memset (a, 'a', sizeof a);
  for (size_t i = 0; i < sizeof vec / sizeof vec[0]; i++)
    {
      sbx_sha256_hex (a, vec[i].n, hex);
      is_str (hex, vec[i].hex, "sha256 of %zu times 'a'", vec[i].n);
    }
  sbx_sha256_hex ("abc", 3, hex);
  is_str (hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "sha256 of abc");
}

static void
test_builtins (void)
{
  const char *const *names = sbx_runtime_builtin_names ();
  size_t n = 0;
  while (names[n])
    n++;
  is_int (n, 5, "five built-ins");
  static const char *const expect[] = { "python-minimal", "python-datascience", "python-web",
                                        "node-minimal", "node-react" };
  for (size_t i = 0; i < 5 && i < n; i++)
    is_str (names[i], expect[i], "built-in %zu is %s", i, expect[i]);

  sbx_runtime_t *rt = NULL;
  sbx_error_t *err = NULL;
  int r = sbx_runtime_builtin ("python-gpu", &rt, &err);
  ok (r == -SBX_E_NOT_FOUND && contains (sbx_error_message (err), "python-gpu"),
      "an unknown built-in is refused by name");
  sbx_error_free (err);

  /* The seed's definitions. */
  struct
  {
    const char *name, *workdir, *seed_image, *seed_run, *offline_run;
  } cases[] = {
    { "python-minimal", "/workspace", "python:3.12-slim", NULL,
      "\"sh\", \"python3-pip\", \"python3-venv\"]" },
    { "python-datascience", "/workspace", NULL,
      "RUN [\"pip\", \"install\", \"--no-cache-dir\", \"pandas\", \"numpy\", \"matplotlib\", "
      "\"scikit-learn\", \"seaborn\"]",
      "\"sh\", \"python3-pandas\", \"python3-numpy\", \"python3-matplotlib\", \"python3-sklearn\", "
      "\"python3-seaborn\"" },
    { "python-web", "/workspace", NULL,
      "RUN [\"pip\", \"install\", \"--no-cache-dir\", \"fastapi\", \"uvicorn\", \"sqlalchemy\", "
      "\"httpx\"]",
      "\"python3-fastapi\", \"python3-uvicorn\", \"python3-sqlalchemy\", \"python3-httpx\"" },
    { "node-minimal", "/app", "node:20-slim", NULL,
      "apt-get install -y --no-install-recommends "
      "nodejs npm" },
    { "node-react", "/app", NULL,
      "RUN [\"npm\", \"install\", \"--no-audit\", \"--no-fund\", \"--no-update-notifier\", "
      "\"typescript\", \"vite\", \"react\", \"react-dom\", \"@types/react\"]",
      "\"typescript\", \"vite@6\", \"react\", \"react-dom\", \"@types/react\"]" },
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    {
      rt = NULL;
      if (!ok (sbx_runtime_builtin (cases[i].name, &rt, NULL) == 0, "%s loads", cases[i].name))
        continue;
      is_str (sbx_runtime_workdir (rt), cases[i].workdir, "  work dir");
      ok (sbx_runtime_has_flavour (rt, SBX_FLAVOUR_OFFLINE), "  has an offline flavour");
      ok (*sbx_runtime_description (rt), "  has a description");
      struct sbx_runtime_plan seed = plan_of (rt, SBX_FLAVOUR_SEED, false);
      struct sbx_runtime_plan off = plan_of (rt, SBX_FLAVOUR_OFFLINE, false);
      if (cases[i].seed_image)
        {
          is_str (seed.image, cases[i].seed_image, "  seed flavour: the seed's image, as is");
          ok (seed.dockerfile == NULL && seed.base == NULL, "  seed flavour: nothing to build");
        }
      else
        {
          bool python = strncmp (cases[i].name, "python", 6) == 0;
          ok (contains (seed.dockerfile,
                        python ? "\nFROM python:3.12-slim\n" : "\nFROM node:20-slim\n"),
              "  seed flavour: FROM the seed's base image");
          if (!ok (contains (seed.dockerfile, cases[i].seed_run), "  seed flavour: installs "
                                                                  "the seed's packages"))
            diag ("%s", seed.dockerfile);
        }
      ok (contains (off.dockerfile, "\nFROM sbx/base:bookworm\n"), "  offline flavour: FROM "
                                                                   "sbx's base image");
      if (!ok (contains (off.dockerfile, cases[i].offline_run), "  offline flavour: Debian's "
                                                                "packages"))
        diag ("%s", off.dockerfile);
      char want[64];
      snprintf (want, sizeof want, "\nWORKDIR %s\n", cases[i].workdir);
      ok (contains (off.dockerfile, want), "  offline flavour: WORKDIR %s", cases[i].workdir);
      snprintf (want, sizeof want, "sbx-runtime/%s:", cases[i].name);
      ok (strncmp (off.image, want, strlen (want)) == 0 && strlen (off.image) == strlen (want) + 12
              && strspn (off.image + strlen (want), "0123456789abcdef") == 12,
          "  offline tag is sbx-runtime/NAME:HASH12 (%s)", off.image);
      ok (strcmp (seed.image ? seed.image : "", off.image) != 0, "  the flavours differ");
      sbx_runtime_plan_clear (&seed);
      sbx_runtime_plan_clear (&off);
      sbx_runtime_free (rt);
    }

  /* node-minimal's and node-react's offline flavours start with the same
   * steps, so the engine builds Debian's Node once for both. */
  sbx_runtime_t *a = NULL, *b = NULL;
  sbx_runtime_builtin ("node-minimal", &a, NULL);
  sbx_runtime_builtin ("node-react", &b, NULL);
  struct sbx_runtime_plan pa = plan_of (a, SBX_FLAVOUR_OFFLINE, true);
  struct sbx_runtime_plan pb = plan_of (b, SBX_FLAVOUR_OFFLINE, true);
  const char *nl_a = strchr (pa.dockerfile, '\n'), *nl_b = strchr (pb.dockerfile, '\n');
  ok (nl_a && nl_b && strncmp (nl_a, nl_b, strlen (nl_a)) == 0,
      "node-react's offline Dockerfile extends node-minimal's");
  sbx_runtime_plan_clear (&pa);
  sbx_runtime_plan_clear (&pb);
  sbx_runtime_free (a);
  sbx_runtime_free (b);
}

static void
test_tags (void)
{
  sbx_runtime_t *rt = from_json ("{\"name\": \"t1\", \"base_image\": \"sbx/base:bookworm\", "
                                 "\"package_manager\": \"apt\", \"packages\": [\"jq\"], "
                                 "\"env_vars\": {\"B\": \"2\", \"A\": \"1\"}}");
  if (!ok (rt != NULL, "a custom runtime from JSON"))
    return;
  struct sbx_runtime_plan p1 = plan_of (rt, SBX_FLAVOUR_SEED, false);
  struct sbx_runtime_plan p2 = plan_of (rt, SBX_FLAVOUR_SEED, false);
  is_str (p1.image, p2.image, "the tag is stable");
  ok (strlen (p1.hash) == 64, "the hash is a SHA-256");

  sbx_runtime_t *swapped = from_json ("{\"name\": \"t1\", \"base_image\": \"sbx/base:bookworm\", "
                                      "\"package_manager\": \"apt\", \"packages\": [\"jq\"], "
                                      "\"env_vars\": {\"A\": \"1\", \"B\": \"2\"}, "
                                      "\"description\": \"other words\", \"cache_image\": false}");
  struct sbx_runtime_plan p3 = plan_of (swapped, SBX_FLAVOUR_SEED, false);
  is_str (p3.image, p1.image, "env order, description and cache flag leave the tag alone");
  const char *a_line = strstr (p3.dockerfile, "ENV A=\"1\"\n");
  const char *b_line = strstr (p3.dockerfile, "ENV B=\"2\"\n");
  ok (a_line && b_line && a_line < b_line, "ENV lines are sorted by key");

  sbx_runtime_add_package (swapped, "curl", NULL);
  struct sbx_runtime_plan p4 = plan_of (swapped, SBX_FLAVOUR_SEED, false);
  ok (strcmp (p4.image, p1.image) != 0, "another package changes the tag");
  sbx_runtime_set_env (swapped, "A", "changed", NULL);
  struct sbx_runtime_plan p5 = plan_of (swapped, SBX_FLAVOUR_SEED, false);
  ok (strcmp (p5.image, p4.image) != 0, "another env value changes the tag");
  sbx_runtime_set_workdir (swapped, "/srv", NULL);
  struct sbx_runtime_plan p6 = plan_of (swapped, SBX_FLAVOUR_SEED, false);
  ok (strcmp (p6.image, p5.image) != 0, "another work dir changes the tag");

  struct sbx_runtime_plan p7 = plan_of (rt, SBX_FLAVOUR_SEED, true);
  ok (strcmp (p7.image, p1.image) != 0, "site CA certificates change the tag");
  ok (contains (p7.dockerfile, "COPY [\"sbx-site-ca.crt\", \"/usr/local/share/ca-certificates/"
                               "sbx-site-ca.crt\"]\n")
          && contains (p7.dockerfile, "update-ca-certificates")
          && contains (p7.dockerfile, "ENV NODE_EXTRA_CA_CERTS="),
      "site CA certificates are installed before any step");
  ok (!contains (p1.dockerfile, "ca-certificates/"), "no CA step without site CA certificates");

  struct sbx_runtime_plan *all[] = { &p1, &p2, &p3, &p4, &p5, &p6, &p7 };
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
    sbx_runtime_plan_clear (all[i]);
  sbx_runtime_free (rt);
  sbx_runtime_free (swapped);
}

static void
test_quoting (void)
{
  sbx_runtime_t *rt = NULL;
  sbx_runtime_new ("quoting", &rt, NULL);
  int r = sbx_runtime_set_base_image (rt, "sbx/base:bookworm", NULL);
  r |= sbx_runtime_set_env (rt, "TRICKY", "a\"b$HOME\\c `x` 'y'\tz\\", NULL);
  r |= sbx_runtime_add_setup_command (rt, "echo \"$HOME\" > /tmp/x \\", NULL);
  r |= sbx_runtime_add_setup_command (rt, "printf '%s\\n' \"]\" ", NULL);
  r |= sbx_runtime_set_package_manager (rt, "pip", NULL);
  r |= sbx_runtime_add_package (rt, "numpy>=1.0", NULL);
  r |= sbx_runtime_add_package (rt, "requests[socks]", NULL);
  r |= sbx_runtime_add_package (rt, "é", NULL) == 0 ? 1 : 0; /* refused: not the seed's rule */
  ok (r == 0, "a definition with characters that a shell or a Dockerfile would interpret");
  struct sbx_runtime_plan p = plan_of (rt, SBX_FLAVOUR_SEED, false);
  ok (contains (p.dockerfile, "\nENV TRICKY=\"a\\\"b\\$HOME\\\\c `x` 'y'\tz\\\\\"\n"),
      "ENV escapes \\, \" and $ inside double quotes");
  ok (contains (p.dockerfile, "\nRUN [\"sh\", \"-c\", \"echo \\\"$HOME\\\" > /tmp/x \\\\\"]\n"),
      "a setup command is a JSON string in an exec-form RUN");
  ok (contains (p.dockerfile, "RUN [\"pip\", \"install\", \"--no-cache-dir\", \"numpy>=1.0\", "
                              "\"requests[socks]\"]"),
      "packages are JSON strings: no shell sees '>' or '['");
  /* No instruction may continue onto the next line. */
  bool continued = false;
  for (const char *l = p.dockerfile; *l;)
    {
      const char *nl = strchr (l, '\n');
      size_t len = nl ? (size_t) (nl - l) : strlen (l);
      if (len > 0 && l[len - 1] == '\\')
        continued = true;
      l += len + (nl != NULL);
    }
  ok (!continued, "no line of the Dockerfile ends with a backslash");
  if (continued)
    diag ("%s", p.dockerfile);
  sbx_runtime_plan_clear (&p);
  sbx_runtime_free (rt);

  rt = from_json ("{\"name\": \"aptq\", \"base_image\": \"debian:12\", \"package_manager\": "
                  "\"apt\", \"packages\": [\"libfoo1=1.2~3\", \"bar+\"]}");
  p = plan_of (rt, SBX_FLAVOUR_SEED, false);
  ok (contains (p.dockerfile, "--no-install-recommends \\\"$@\\\" && rm -rf "
                              "/var/lib/apt/lists/*\", \"sh\", \"libfoo1=1.2~3\", \"bar+\"]"),
      "apt gets its packages as \"$@\", never in its command text");
  sbx_runtime_plan_clear (&p);
  sbx_runtime_free (rt);

  rt = from_json ("{\"name\": \"cargoq\", \"base_image\": \"rust:1\", \"package_manager\": "
                  "\"cargo\", \"packages\": [\"ripgrep\"]}");
  p = plan_of (rt, SBX_FLAVOUR_SEED, false);
  ok (contains (p.dockerfile, "RUN [\"cargo\", \"install\", \"ripgrep\"]"), "cargo install");
  sbx_runtime_plan_clear (&p);
  sbx_runtime_free (rt);
}

static void
test_invalid (void)
{
  json_refused ("{\"name\": \"Bad Name\"}", "runtime name", "a name with a space and capitals");
  json_refused ("{\"name\": \"a--b\"}", "runtime name", "a name with a doubled separator");
  json_refused ("{\"name\": \"x\", \"base_image\": \"b:1\", \"packages\": [\"foo; rm -rf /\"]}",
                "packages entry 'foo; rm -rf /'", "a package with a shell command");
  json_refused ("{\"name\": \"x\", \"base_image\": \"b:1\", \"packages\": [\"$(id)\"]}",
                "packages entry", "a package with a command substitution");
  json_refused ("{\"name\": \"x\", \"base_image\": \"b:1\", \"packages\": [\"-e.\"]}",
                "packages entry", "a package that would be an option");
  json_refused ("{\"name\": \"x\", \"base_image\": \"b:1\", \"packages\": [\"a b\"]}",
                "packages entry", "a package with a space");
  json_refused ("{\"name\": \"x\", \"base_image\": \"b:1\", \"packages\": [\"a\\nb\"]}",
                "packages entry", "a package with a newline");
  json_refused ("{\"name\": \"x\", \"env_vars\": {\"1BAD\": \"v\"}}", "env_vars key '1BAD'",
                "an env key starting with a digit");
  json_refused ("{\"name\": \"x\", \"env_vars\": {\"A-B\": \"v\"}}", "env_vars key",
                "an env key with a dash");
  json_refused ("{\"name\": \"x\", \"env_vars\": {\"A\": \"v\\nRUN evil\"}}",
                "env_vars value for A", "an env value with a newline");
  json_refused ("{\"name\": \"x\", \"env_vars\": {\"A\": \"v\\r\"}}", "env_vars value",
                "an env value with a carriage return");
  json_refused ("{\"name\": \"x\", \"env_vars\": {\"A\": 1}}", "env_vars.A",
                "an env value that is not a string");
  json_refused ("{\"name\": \"x\", \"work_dir\": \"app\"}", "work_dir", "a relative work dir");
  json_refused ("{\"name\": \"x\", \"work_dir\": \"/app;rm -rf /\"}", "work_dir",
                "a work dir with shell characters");
  json_refused ("{\"name\": \"x\", \"work_dir\": \"/a b\"}", "work_dir", "a work dir with a space");
  json_refused ("{\"name\": \"x\", \"work_dir\": \"/app/$HOME\"}", "work_dir",
                "a work dir with a variable");
  json_refused ("{\"name\": \"x\", \"work_dir\": \"/a/../etc\"}", "work_dir", "a work dir with ..");
  json_refused ("{\"name\": \"x\", \"work_dir\": \"/\"}", "work_dir", "the root as work dir");
  json_refused ("{\"name\": \"x\", \"work_dir\": \"/.sbx/run\"}", "work_dir",
                "a work dir in the agent's folder");
  json_refused ("{\"name\": \"x\", \"base_image\": \"b:1\", \"setup_commands\": [\"a\\nb\"]}",
                "setup_commands entry 1", "a setup command with a newline");
  json_refused ("{\"name\": \"x\", \"base_image\": \"b:1\", \"setup_commands\": [\"\"]}",
                "setup_commands entry", "an empty setup command");
  json_refused ("{\"name\": \"x\", \"image\": \"python 3\"}", "image 'python 3'",
                "an image with a space");
  json_refused ("{\"name\": \"x\", \"base_image\": \"$(evil)\"}", "base_image",
                "a base image with a substitution");
  json_refused ("{\"name\": \"x\", \"base_image\": \"-x\"}", "base_image",
                "a base image that is an option");
  json_refused ("{\"name\": \"x\", \"base_image\": \"b:1\", \"package_manager\": \"yum\"}",
                "package_manager 'yum'", "an unknown package manager");
  json_refused ("{\"name\": \"x\", \"description\": \"a\\nb\"}", "description",
                "a description with a newline");
  json_refused ("{\"name\": \"x\", \"image\": \"a:1\", \"base_image\": \"b:1\"}",
                "both image and base_image", "image and base_image together");
  json_refused ("{\"name\": \"x\", \"packages\": [\"jq\"]}", "base_image",
                "packages without a base image");
  json_refused ("{\"name\": \"x\", \"image\": \"a:1\", \"setup_commands\": [\"true\"]}",
                "base_image", "setup commands on an image used as is");
  json_refused ("{\"name\": \"x\", \"pakages\": []}", "unknown field 'pakages'",
                "a misspelt field");
  json_refused ("{\"name\": \"x\", \"base_image\": \"b:1\", \"offline\": {\"work_dir\": \"/a\"}}",
                "offline.work_dir", "a runtime-wide field inside offline");
  json_refused ("{\"name\": \"x\", \"base_image\": \"b:1\", \"offline\": {\"packages\": "
                "[\"a;b\"]}}",
                "offline.packages entry", "a bad package in the offline flavour");
  json_refused ("{\"name\": \"x\", \"base_image\": \"b:1\", \"offline\": {}}", "offline",
                "an offline flavour without an image");
  json_refused ("{\"name\": \"x\", \"packages\": \"jq\"}", "'packages' must be an array",
                "packages as a string");
  json_refused ("{\"name\": \"x\", \"cache_image\": \"yes\"}", "cache_image", "cache as a string");
  json_refused ("{\"description\": \"no name\"}", "'name'", "no name");
  json_refused ("{\"name\": \"x\", \"name\": \"y\"}", "JSON", "a duplicate key");
  json_refused ("[\"name\"]", "JSON object", "not an object");
  json_refused ("{\"name\": \"x\",}", "not valid JSON", "broken JSON");

  /* The setters refuse the same things. */
  sbx_runtime_t *rt = NULL;
  sbx_error_t *err = NULL;
  sbx_runtime_new ("ok", &rt, NULL);
  int r = sbx_runtime_set_env (rt, "K", "a\nb", &err);
  ok (r == -SBX_E_INVALID && contains (sbx_error_message (err), "env_vars value for K"),
      "set_env refuses a newline");
  sbx_error_free (err), err = NULL;
  r = sbx_runtime_add_setup_command (rt, "echo\x01", &err);
  ok (r == -SBX_E_INVALID && contains (sbx_error_message (err), "setup_commands"),
      "add_setup_command refuses a control character");
  sbx_error_free (err), err = NULL;
  r = sbx_runtime_add_package (rt, "a\xff", &err);
  ok (r == -SBX_E_INVALID && contains (sbx_error_message (err), "packages"),
      "add_package refuses bytes outside the rule");
  sbx_error_free (err), err = NULL;
  r = sbx_runtime_set_description (rt, "caf\xc3", &err);
  ok (r == -SBX_E_INVALID && contains (sbx_error_message (err), "description"),
      "set_description refuses invalid UTF-8");
  sbx_error_free (err), err = NULL;
  r = sbx_runtime_set_flavour (rt, SBX_FLAVOUR_OFFLINE, &err);
  ok (r == -SBX_E_INVALID && contains (sbx_error_message (err), "no offline flavour"),
      "a custom runtime has no offline flavour to pin");
  sbx_error_free (err), err = NULL;
  sbx_runtime_free (rt);
  r = sbx_runtime_new ("a/b", &rt, &err);
  ok (r == -SBX_E_INVALID && rt == NULL && contains (sbx_error_message (err), "runtime name 'a/b'"),
      "sbx_runtime_new refuses a name with a slash");
  sbx_error_free (err);
}

static void
test_json (void)
{
  const char *text = "{\"name\": \"ml-env\", \"description\": \"torch\", \"base_image\": "
                     "\"python:3.12-slim\", \"packages\": [\"torch\", \"transformers\"], "
                     "\"env_vars\": {\"PYTHONUNBUFFERED\": \"1\"}, \"work_dir\": \"/srv/ml\", "
                     "\"setup_commands\": [\"apt-get update\"], \"cache_image\": true, "
                     "\"image\": null}";
  sbx_runtime_t *rt = from_json (text);
  if (!ok (rt != NULL, "the seed's custom runtime example, in JSON"))
    return;
  is_str (sbx_runtime_name (rt), "ml-env", "  name");
  is_str (sbx_runtime_description (rt), "torch", "  description");
  is_str (sbx_runtime_workdir (rt), "/srv/ml", "  work dir");
  ok (!sbx_runtime_has_flavour (rt, SBX_FLAVOUR_OFFLINE), "  no offline flavour");
  struct sbx_runtime_plan p = plan_of (rt, SBX_FLAVOUR_SEED, false);
  ok (contains (p.dockerfile, "ENV PYTHONUNBUFFERED=\"1\"\nWORKDIR /srv/ml\n"
                              "RUN [\"sh\", \"-c\", \"apt-get update\"]\n"
                              "RUN [\"pip\", \"install\", \"--no-cache-dir\", \"torch\", "
                              "\"transformers\"]\n"),
      "  env, work dir, setup commands, then the packages");

  char *out = NULL;
  ok (sbx_runtime_to_json (rt, &out, NULL) == 0 && contains (out, "\"package_manager\": \"pip\""),
      "to_json writes the seed's fields");
  sbx_runtime_t *again = from_json (out);
  struct sbx_runtime_plan q = again ? plan_of (again, SBX_FLAVOUR_SEED, false)
                                    : (struct sbx_runtime_plan){ 0 };
  is_str (q.image, p.image, "to_json and from_json round-trip to the same image");
  free (out);
  sbx_runtime_plan_clear (&p);
  sbx_runtime_plan_clear (&q);
  sbx_runtime_free (again);
  sbx_runtime_free (rt);

  /* A built-in shown as JSON loads back with both flavours. */
  sbx_runtime_builtin ("node-react", &rt, NULL);
  sbx_runtime_to_json (rt, &out, NULL);
  again = from_json (out);
  ok (again && sbx_runtime_has_flavour (again, SBX_FLAVOUR_OFFLINE),
      "a built-in's JSON keeps its offline flavour");
  struct sbx_runtime_plan a = plan_of (rt, SBX_FLAVOUR_OFFLINE, false);
  struct sbx_runtime_plan b = again ? plan_of (again, SBX_FLAVOUR_OFFLINE, false)
                                    : (struct sbx_runtime_plan){ 0 };
  is_str (b.image, a.image, "  and the same offline image");
  sbx_runtime_plan_clear (&a);
  sbx_runtime_plan_clear (&b);
  free (out);

  /* Changing what a built-in installs drops its offline flavour; its env
   * does not. */
  sbx_runtime_set_env (again, "X", "1", NULL);
  ok (sbx_runtime_has_flavour (again, SBX_FLAVOUR_OFFLINE), "set_env keeps the offline flavour");
  sbx_runtime_add_package (again, "lodash", NULL);
  ok (!sbx_runtime_has_flavour (again, SBX_FLAVOUR_OFFLINE),
      "add_package drops the offline flavour");
  sbx_runtime_free (again);
  sbx_runtime_free (rt);

  /* A file. */
  char path[] = "/tmp/sbx-test-runtime-XXXXXX";
  int fd = mkstemp (path);
  const char *bad = "{\"name\": \"f\", \"work_dir\": \"rel\"}";
  ok (fd >= 0 && write (fd, bad, strlen (bad)) == (ssize_t) strlen (bad), "a runtime file");
  close (fd);
  sbx_error_t *err = NULL;
  int r = sbx_runtime_load_file (path, &rt, &err);
  ok (r == -SBX_E_INVALID && contains (sbx_error_message (err), path)
          && contains (sbx_error_message (err), "work_dir"),
      "a bad runtime file's error names the file and the field");
  sbx_error_free (err), err = NULL;
  unlink (path);
  r = sbx_runtime_load_file (path, &rt, &err);
  ok (r == -SBX_E_NOT_FOUND, "a missing runtime file: not_found");
  sbx_error_free (err);
}

static void
test_options (void)
{
  sbx_runtime_t *rt = from_json (
      "{\"name\": \"opts\", \"base_image\": \"sbx/base:bookworm\", "
      "\"package_manager\": \"apt\", \"packages\": [\"jq\"], "
      "\"work_dir\": \"/app\", \"env_vars\": {\"GREETING\": \"hi there\"}}");
  sbx_options_t *o = sbx_options_new ();
  sbx_options_set_image (o, "something:1", NULL);
  sbx_error_t *err = NULL;
  int r = sbx_options_set_runtime (o, rt, &err);
  ok (r == 0, "sbx_options_set_runtime");
  sbx_error_free (err);
  is_str (o->workdir, "/app", "  the work dir comes from the runtime");
  ok (o->env && o->env[0] && strcmp (o->env[0], "GREETING=hi there") == 0 && o->env[1] == NULL,
      "  the env comes from the runtime");
  ok (o->image == NULL, "  an image set before is dropped");
  ok (o->runtime != NULL && o->runtime != rt, "  the options keep a copy");
  sbx_runtime_free (rt);
  sbx_options_set_workdir (o, "/elsewhere", NULL);
  is_str (o->workdir, "/elsewhere", "  a work dir set afterwards wins");
  sbx_options_t copy;
  ok (sbx_options_copy (&copy, o) == 0 && copy.runtime && copy.runtime != o->runtime
          && strcmp (sbx_runtime_name (copy.runtime), "opts") == 0,
      "  a copy of the options copies the runtime");
  sbx_options_clear (&copy);
  sbx_options_free (o);
}

int
main (void)
{
  test_sha256 ();
  test_builtins ();
  test_tags ();
  test_quoting ();
  test_invalid ();
  test_json ();
  test_options ();
  return done_testing ();
}
