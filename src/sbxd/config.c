/* sbxd's settings: flags, a JSON config file with the same names, and the
 * service token, which never comes from the command line (other users
 * read it in /proc): a file only its owner reads, or SBXD_TOKEN. */
#include "sbxd.h"

#include "sha256.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static const char usage[]
    = "usage: sbxd [options]\n"
      "Serves sandbox sessions over HTTP: the sandboxd protocol (0.2.21) and more.\n"
      "\n"
      "  --listen ADDR             HOST:PORT or unix:PATH (default 127.0.0.1:8080)\n"
      "  --config FILE             a JSON object of these options (\"max-sessions\": 5, ...);\n"
      "                            flags given as well win\n"
      "  --token-file FILE         the service token (a file only its owner may read);\n"
      "                            else the environment variable SBXD_TOKEN\n"
      "  --no-auth                 no token at all (loopback addresses only: protocol tests)\n"
      "  --name NAME               this instance's records and managers on the host (sbxd)\n"
      "  --runtime ALIAS=IMAGE     a runtime clients may ask for (repeat; the first is the\n"
      "                            default); --runtime NAME for a built-in runtime, whose\n"
      "                            image is built at start (default: one runtime, \"default\",\n"
      "                            on sbx's default image)\n"
      "  --max-sessions N          running sessions (20); past it, 429 or hibernation\n"
      "  --max-open-sessions N     running and hibernated sessions (no limit)\n"
      "  --max-sessions-per-tenant N  (no limit)\n"
      "  --idle-timeout SECONDS    an idle session is ended (1800)\n"
      "  --execute-timeout SECONDS every operation's ceiling: exec's timeout at most, 504 past it "
      "(300)\n"
      "  --evict-idle-after SECONDS  at capacity, hibernate the session idle longest if idle\n"
      "                            this long (needs --workspace-root; default: never)\n"
      "  --workspace-root DIR      each session's files in DIR/ID/workspace, kept across its "
      "sandboxes\n"
      "  --pool-size N             warm sandboxes of the default runtime (0)\n"
      "  --max-read-bytes SIZE     read, read_bytes and workspace reads (8MiB)\n"
      "  --max-body SIZE           request bodies (16MiB)\n"
      "  --workers N               threads running operations (64)\n"
      "  --max-inflight N          requests one session may have running at once (8); past\n"
      "                            it, 429\n"
      "  --max-connections-per-ip N  open connections from one address (256; TCP only)\n"
      "  --on-exit keep|stop       on SIGTERM, leave the sandboxes running (keep) or stop them\n"
      "  --memory SIZE --cpus N --pids N --network MODE   the sandboxes' limits (1GiB, 1,\n"
      "                            512, none: sbx's defaults)\n"
      "  --disk SIZE               what a sandbox may write: its storage quota where the\n"
      "                            engine has one, else each file (10GiB)\n"
      "  --allowed-host HOST       a Host header value to accept besides loopback ones (repeat)\n"
      "  --mcp-permissions P       what /mcp's tools may touch: a preset (default, permissive,\n"
      "                            readonly, strict) or a rules file (default: default)\n";

enum
{
  OPT_LISTEN = 256,
  OPT_CONFIG,
  OPT_TOKEN_FILE,
  OPT_NO_AUTH,
  OPT_NAME,
  OPT_RUNTIME,
  OPT_MAX_SESSIONS,
  OPT_MAX_OPEN,
  OPT_MAX_TENANT,
  OPT_IDLE,
  OPT_EXECUTE,
  OPT_EVICT,
  OPT_WORKSPACE,
  OPT_POOL,
  OPT_MAX_READ,
  OPT_MAX_BODY,
  OPT_WORKERS,
  OPT_MAX_INFLIGHT,
  OPT_MAX_PER_IP,
  OPT_ON_EXIT,
  OPT_MEMORY,
  OPT_DISK,
  OPT_CPUS,
  OPT_PIDS,
  OPT_NETWORK,
  OPT_ALLOWED_HOST,
  OPT_MCP_PERMISSIONS,
  OPT_HELP,
};

static const struct option options[] = {
  { "listen", required_argument, NULL, OPT_LISTEN },
  { "config", required_argument, NULL, OPT_CONFIG },
  { "token-file", required_argument, NULL, OPT_TOKEN_FILE },
  { "no-auth", no_argument, NULL, OPT_NO_AUTH },
  { "name", required_argument, NULL, OPT_NAME },
  { "runtime", required_argument, NULL, OPT_RUNTIME },
  { "max-sessions", required_argument, NULL, OPT_MAX_SESSIONS },
  { "max-open-sessions", required_argument, NULL, OPT_MAX_OPEN },
  { "max-sessions-per-tenant", required_argument, NULL, OPT_MAX_TENANT },
  { "idle-timeout", required_argument, NULL, OPT_IDLE },
  { "execute-timeout", required_argument, NULL, OPT_EXECUTE },
  { "evict-idle-after", required_argument, NULL, OPT_EVICT },
  { "workspace-root", required_argument, NULL, OPT_WORKSPACE },
  { "pool-size", required_argument, NULL, OPT_POOL },
  { "max-read-bytes", required_argument, NULL, OPT_MAX_READ },
  { "max-body", required_argument, NULL, OPT_MAX_BODY },
  { "workers", required_argument, NULL, OPT_WORKERS },
  { "max-inflight", required_argument, NULL, OPT_MAX_INFLIGHT },
  { "max-connections-per-ip", required_argument, NULL, OPT_MAX_PER_IP },
  { "on-exit", required_argument, NULL, OPT_ON_EXIT },
  { "memory", required_argument, NULL, OPT_MEMORY },
  { "disk", required_argument, NULL, OPT_DISK },
  { "cpus", required_argument, NULL, OPT_CPUS },
  { "pids", required_argument, NULL, OPT_PIDS },
  { "network", required_argument, NULL, OPT_NETWORK },
  { "allowed-host", required_argument, NULL, OPT_ALLOWED_HOST },
  { "mcp-permissions", required_argument, NULL, OPT_MCP_PERMISSIONS },
  { "help", no_argument, NULL, OPT_HELP },
  { NULL, 0, NULL, 0 },
};

static int bad (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
static int
bad (const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  fputs ("sbxd: ", stderr);
  vfprintf (stderr, fmt, ap);
  fputs ("\n", stderr);
  va_end (ap);
  return -1;
}

static int
parse_count (const char *flag, const char *arg, size_t max, size_t *out)
{
  char *end;
  errno = 0;
  unsigned long long v = strtoull (arg, &end, 10);
  if (errno || end == arg || *end || arg[0] == '-' || v > max)
    return bad ("--%s wants a whole number from 0 to %zu, not '%s'", flag, max, arg);
  *out = (size_t) v;
  return 0;
}

static int
parse_seconds (const char *flag, const char *arg, double *out)
{
  char *end;
  errno = 0;
  double v = strtod (arg, &end);
  if (errno || end == arg || *end || !isfinite (v) || v < 0 || v > SBX_MAX_TIMEOUT)
    return bad ("--%s wants seconds from 0 to %.0f, not '%s'", flag, SBX_MAX_TIMEOUT, arg);
  *out = v;
  return 0;
}

static int
parse_size (const char *flag, const char *arg, int64_t *out)
{
  sbx_error_t *err = NULL;
  if (sbx_parse_size (arg, out, &err) == 0)
    return 0;
  bad ("--%s: %s", flag, sbx_error_message (err));
  sbx_error_free (err);
  return -1;
}

/* The service token from PATH: refused when others may read the file. */
static int
read_token_file (const char *path, char **token)
{
  cleanup_close int fd = open (path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  struct stat st;
  if (fd < 0 || fstat (fd, &st) < 0)
    return bad ("cannot read the token file %s: %s", path, strerror (errno));
  if (!S_ISREG (st.st_mode))
    return bad ("the token file %s is not a regular file", path);
  if (st.st_mode & 077)
    return bad ("the token file %s may be read by others (mode %04o): chmod 600 it", path,
                (unsigned) (st.st_mode & 07777));
  char buf[4097];
  ssize_t n = read (fd, buf, sizeof buf);
  if (n < 0)
    return bad ("cannot read the token file %s: %s", path, strerror (errno));
  if (n == (ssize_t) sizeof buf)
    return bad ("the token file %s is longer than 4096 bytes", path);
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
    n--;
  buf[n] = '\0';
  *token = strdup (buf);
  return *token ? 0 : bad ("out of memory");
}

static int
check_token (const char *token, const char *origin)
{
  size_t n = strlen (token);
  if (n < 16)
    return bad ("the service token (%s) has %zu characters: use at least 16 (for example: "
                "head -c 32 /dev/urandom | base64)",
                origin, n);
  for (const char *p = token; *p; p++)
    if (*p < 0x21 || *p > 0x7e)
      return bad ("the service token (%s) holds a space or a character outside printable "
                  "ASCII, which no HTTP header could carry",
                  origin);
  return 0;
}

static int
add_runtime (sbxd_config_t *c, const char *spec)
{
  sbxd_runtime_t *rts = realloc (c->runtimes, (c->n_runtimes + 1) * sizeof *rts);
  if (rts == NULL)
    return bad ("out of memory");
  c->runtimes = rts;
  sbxd_runtime_t *rt = &rts[c->n_runtimes];
  memset (rt, 0, sizeof *rt);
  const char *eq = strchr (spec, '=');
  rt->alias = eq ? strndup (spec, (size_t) (eq - spec)) : strdup (spec);
  rt->image = eq ? strdup (eq + 1) : NULL;
  if (rt->alias == NULL || (eq && rt->image == NULL))
    return bad ("out of memory");
  c->n_runtimes++;
  if (!sbx_session_id_valid (rt->alias))
    return bad ("--runtime: the alias '%s' is not of [A-Za-z0-9][A-Za-z0-9._-]{0,63}", rt->alias);
  if (eq && !eq[1])
    return bad ("--runtime %s: the image is empty", spec);
  for (size_t i = 0; i + 1 < c->n_runtimes; i++)
    if (strcmp (c->runtimes[i].alias, rt->alias) == 0)
      return bad ("--runtime: the alias '%s' is given twice", rt->alias);
  return 0;
}

static int
add_host (sbxd_config_t *c, const char *host)
{
  size_t n = 0;
  while (c->allowed_hosts && c->allowed_hosts[n])
    n++;
  char **h = realloc (c->allowed_hosts, (n + 2) * sizeof *h);
  if (h == NULL)
    return bad ("out of memory");
  c->allowed_hosts = h;
  h[n] = strdup (host);
  h[n + 1] = NULL;
  return h[n] ? 0 : bad ("out of memory");
}

static int
set_string (char **dst, const char *value)
{
  free (*dst);
  *dst = strdup (value);
  return *dst ? 0 : bad ("out of memory");
}

/* One option; FROM_FILE: from the config file, which may not name another. */
static int
apply (sbxd_config_t *c, int opt, const char *arg, bool from_file, char **token_file)
{
  size_t n;
  int64_t size;
  const char *flag = NULL;
  for (const struct option *o = options; o->name; o++)
    if (o->val == opt)
      flag = o->name;
  switch (opt)
    {
    case OPT_LISTEN:
      return set_string (&c->listen, arg);
    case OPT_CONFIG:
      return from_file ? bad ("a config file may not name another (\"config\")") : 0;
    case OPT_TOKEN_FILE:
      return set_string (token_file, arg);
    case OPT_NO_AUTH:
      c->auth_off = true;
      return 0;
    case OPT_NAME:
      if (!sbx_session_id_valid (arg) || strlen (arg) > 24)
        return bad ("--name wants up to 24 characters of [A-Za-z0-9._-], not '%s'", arg);
      return set_string (&c->name, arg);
    case OPT_RUNTIME:
      return add_runtime (c, arg);
    case OPT_MAX_SESSIONS:
      return parse_count (flag, arg, 100000, &c->max_sessions);
    case OPT_MAX_OPEN:
      return parse_count (flag, arg, 100000, &c->max_open_sessions);
    case OPT_MAX_TENANT:
      return parse_count (flag, arg, 100000, &c->max_per_tenant);
    case OPT_IDLE:
      return parse_seconds (flag, arg, &c->idle_timeout);
    case OPT_EXECUTE:
      if (parse_seconds (flag, arg, &c->execute_timeout) < 0)
        return -1;
      return c->execute_timeout >= 1 ? 0 : bad ("--execute-timeout must be at least 1 second");
    case OPT_EVICT:
      return parse_seconds (flag, arg, &c->evict_idle_after);
    case OPT_WORKSPACE:
      return set_string (&c->workspace_root, arg);
    case OPT_POOL:
      return parse_count (flag, arg, 64, &c->pool_size);
    case OPT_MAX_READ:
    case OPT_MAX_BODY:
      if (parse_size (flag, arg, &size) < 0)
        return -1;
      if (size < 1024 || size > (int64_t) 1 << 30)
        return bad ("--%s must be from 1KiB to 1GiB", flag);
      *(opt == OPT_MAX_READ ? &c->max_read_bytes : &c->max_body) = (size_t) size;
      return 0;
    case OPT_WORKERS:
      if (parse_count (flag, arg, 1024, &n) < 0)
        return -1;
      if (n < 1)
        return bad ("--workers must be at least 1");
      c->workers = (unsigned) n;
      return 0;
    case OPT_MAX_INFLIGHT:
    case OPT_MAX_PER_IP:
      if (parse_count (flag, arg, opt == OPT_MAX_INFLIGHT ? 1024 : 65536, &n) < 0)
        return -1;
      if (n < 1)
        return bad ("--%s must be at least 1", flag);
      *(opt == OPT_MAX_INFLIGHT ? &c->max_inflight : &c->max_per_ip) = (unsigned) n;
      return 0;
    case OPT_ON_EXIT:
      if (strcmp (arg, "keep") != 0 && strcmp (arg, "stop") != 0)
        return bad ("--on-exit wants keep or stop, not '%s'", arg);
      c->stop_on_exit = strcmp (arg, "stop") == 0;
      return 0;
    case OPT_MEMORY:
      return parse_size (flag, arg, &c->memory);
    case OPT_DISK:
      return parse_size (flag, arg, &c->disk);
    case OPT_PIDS:
      if (parse_count (flag, arg, 1 << 22, &n) < 0)
        return -1;
      c->pids = (int64_t) n;
      return 0;
    case OPT_CPUS:
      {
        char *end;
        c->cpus = strtod (arg, &end);
        if (end == arg || *end || !isfinite (c->cpus) || c->cpus <= 0 || c->cpus > 1024)
          return bad ("--cpus wants a number above 0, not '%s'", arg);
        return 0;
      }
    case OPT_NETWORK:
      return set_string (&c->network, arg);
    case OPT_ALLOWED_HOST:
      return add_host (c, arg);
    case OPT_MCP_PERMISSIONS:
      return set_string (&c->mcp_permissions, arg);
    default:
      return bad ("unknown option");
    }
}

/* The config file's options, applied as if given as flags. */
static int
apply_file (sbxd_config_t *c, const char *path, char **token_file)
{
  json_error_t jerr;
  json_t *doc = json_load_file (path, JSON_REJECT_DUPLICATES, &jerr);
  if (doc == NULL)
    return bad ("the config file %s: %s (line %d)", path, jerr.text, jerr.line);
  int r = 0;
  const char *key;
  json_t *value;
  if (!json_is_object (doc))
    r = bad ("the config file %s is not a JSON object", path);
  json_object_foreach (json_is_object (doc) ? doc : NULL, key, value)
    {
      const struct option *o = options;
      while (o->name && strcmp (o->name, key) != 0)
        o++;
      if (o->name == NULL || o->val == OPT_HELP)
        {
          r = bad ("the config file %s: unknown option \"%s\" (see sbxd --help)", path, key);
          break;
        }
      json_t *items = json_is_array (value) ? value : NULL;
      size_t n = items ? json_array_size (items) : 1;
      for (size_t i = 0; i < n && r == 0; i++)
        {
          json_t *v = items ? json_array_get (items, i) : value;
          char num[64];
          const char *arg = NULL;
          if (o->has_arg == no_argument)
            {
              /* A switch: true or false, nothing else. */
              if (json_is_false (v))
                continue;
              arg = json_is_true (v) ? "" : NULL;
            }
          else if (json_is_string (v))
            arg = json_string_value (v);
          else if (json_is_integer (v))
            arg = (snprintf (num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value (v)),
                   num);
          else if (json_is_real (v))
            arg = (snprintf (num, sizeof num, "%.17g", json_real_value (v)), num);
          if (arg == NULL)
            r = bad ("the config file %s: \"%s\" has a value of the wrong type", path, key);
          else
            r = apply (c, o->val, arg, true, token_file);
        }
      if (r < 0)
        break;
    }
  json_decref (doc);
  return r;
}

static bool
loopback_listen (const char *listen)
{
  return strncmp (listen, "unix:", 5) == 0 || strncmp (listen, "127.", 4) == 0
         || strncmp (listen, "[::1]:", 6) == 0 || strncmp (listen, "localhost:", 10) == 0;
}

int
sbxd_config_load (int argc, char **argv, sbxd_config_t *c)
{
  memset (c, 0, sizeof *c);
  c->max_sessions = 20;
  c->idle_timeout = 1800;
  c->execute_timeout = 300;
  c->max_read_bytes = 8u << 20;
  c->max_body = 16u << 20;
  c->workers = 64;
  c->max_inflight = 8;
  c->max_per_ip = 256;
  c->memory = SBX_DEFAULT_MEMORY;
  c->cpus = SBX_DEFAULT_CPUS;
  c->pids = SBX_DEFAULT_PIDS;
  c->disk = SBX_DEFAULT_DISK;
  cleanup_free char *token_file = NULL;
  const char *config_file = NULL;
  for (int i = 1; i < argc; i++)
    if (strcmp (argv[i], "--config") == 0 && i + 1 < argc)
      config_file = argv[i + 1];
    else if (strncmp (argv[i], "--config=", 9) == 0)
      config_file = argv[i] + 9;
  if (config_file && apply_file (c, config_file, &token_file) < 0)
    return -1;
  /* Runtimes and hosts from flags replace the file's. */
  bool flag_runtimes = false, flag_hosts = false;
  optind = 1;
  opterr = 0;
  for (int opt, index = -1; (opt = getopt_long (argc, argv, ":", options, &index)) != -1;
       index = -1)
    {
      /* No abbreviations: "--token x" must not read as --token-file. */
      if (index >= 0)
        {
          const char *given
              = argv[optind - 1 - (options[index].has_arg && optarg && optarg == argv[optind - 1])];
          size_t n = strlen (options[index].name);
          if (strncmp (given + 2, options[index].name, n) != 0
              || (given[2 + n] != '\0' && given[2 + n] != '='))
            return bad ("unknown option '%s' (see sbxd --help)", given);
        }
      if (opt == OPT_HELP)
        {
          fputs (usage, stdout);
          return 1;
        }
      if (opt == '?' || opt == ':')
        return bad ("%s '%s' (see sbxd --help)",
                    opt == '?' ? "unknown option" : "a value is missing after", argv[optind - 1]);
      if (opt == OPT_RUNTIME && !flag_runtimes)
        {
          for (size_t i = 0; i < c->n_runtimes; i++)
            free (c->runtimes[i].alias), free (c->runtimes[i].image);
          c->n_runtimes = 0;
          flag_runtimes = true;
        }
      if (opt == OPT_ALLOWED_HOST && !flag_hosts)
        {
          for (size_t i = 0; c->allowed_hosts && c->allowed_hosts[i]; i++)
            free (c->allowed_hosts[i]);
          free (c->allowed_hosts);
          c->allowed_hosts = NULL;
          flag_hosts = true;
        }
      if (apply (c, opt, optarg, false, &token_file) < 0)
        return -1;
    }
  if (optind < argc)
    return bad ("unexpected argument '%s' (see sbxd --help)", argv[optind]);
  if (c->listen == NULL && set_string (&c->listen, "127.0.0.1:8080") < 0)
    return -1;
  if (c->name == NULL && set_string (&c->name, "sbxd") < 0)
    return -1;
  if (c->n_runtimes == 0 && add_runtime (c, "default") < 0)
    return -1;
  sbx_error_t *err = NULL;
  if (sbx_mcp_perms_load (c->mcp_permissions ? c->mcp_permissions : "default", &c->perms, &err) < 0)
    {
      bad ("--mcp-permissions: %s", sbx_error_message (err));
      sbx_error_free (err);
      return -1;
    }
  if (c->evict_idle_after > 0 && c->workspace_root == NULL)
    return bad ("--evict-idle-after needs --workspace-root: a hibernated session's files "
                "must outlive its sandbox");
  if (c->max_open_sessions && c->max_sessions > c->max_open_sessions)
    return bad ("--max-open-sessions (%zu) is below --max-sessions (%zu)", c->max_open_sessions,
                c->max_sessions);
  c->loopback = loopback_listen (c->listen);
  if (c->auth_off)
    {
      if (token_file || getenv ("SBXD_TOKEN"))
        return bad ("--no-auth and a service token exclude each other");
      if (!c->loopback)
        return bad ("--no-auth is for a loopback address or a Unix socket only, not %s", c->listen);
      return 0;
    }
  if (token_file)
    {
      if (read_token_file (token_file, &c->token) < 0 || check_token (c->token, token_file) < 0)
        return -1;
      sbx_sha256_hex (c->token, strlen (c->token), c->token_hash);
      return 0;
    }
  const char *env = getenv ("SBXD_TOKEN");
  if (env == NULL || !*env)
    return bad ("no service token: give --token-file FILE (mode 600) or set SBXD_TOKEN; "
                "clients send it in X-Sandbox-Token or Authorization: Bearer");
  if (set_string (&c->token, env) < 0 || check_token (c->token, "SBXD_TOKEN") < 0)
    return -1;
  sbx_sha256_hex (c->token, strlen (c->token), c->token_hash);
  return 0;
}

void
sbxd_config_free (sbxd_config_t *c)
{
  for (size_t i = 0; i < c->n_runtimes; i++)
    {
      free (c->runtimes[i].alias);
      free (c->runtimes[i].image);
      free (c->runtimes[i].description);
      sbx_options_free (c->runtimes[i].opts);
      if (c->runtimes[i].manager)
        sbx_manager_free (c->runtimes[i].manager);
    }
  free (c->runtimes);
  for (size_t i = 0; c->allowed_hosts && c->allowed_hosts[i]; i++)
    free (c->allowed_hosts[i]);
  free (c->allowed_hosts);
  free (c->listen);
  free (c->name);
  if (c->token)
    explicit_bzero (c->token, strlen (c->token));
  free (c->token);
  free (c->workspace_root);
  free (c->network);
  free (c->mcp_permissions);
  sbx_mcp_perms_free (c->perms);
  memset (c, 0, sizeof *c);
}

sbxd_runtime_t *
sbxd_config_runtime (sbxd_config_t *c, const char *alias)
{
  if (alias == NULL)
    return &c->runtimes[0];
  for (size_t i = 0; i < c->n_runtimes; i++)
    if (strcmp (c->runtimes[i].alias, alias) == 0)
      return &c->runtimes[i];
  return NULL;
}
