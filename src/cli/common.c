/* Shared by the commands: option parsing, error reporting and JSON output.
 * The options that make a sandbox are in create_opts.c. */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

bool cli_json;

/* getopt values of long-only options: past any character. */
#define OPT_BASE 256
/* The most options a command has (create's and a few of its own). */
#define MAX_OPTS 48

/* ------------------------------------------------------------ lists */

static int
strv_push (struct cli_strv *l, const char *s)
{
  const char **nv = realloc (l->v, (l->n + 2) * sizeof *nv);
  if (nv == NULL)
    return -1;
  nv[l->n++] = s;
  nv[l->n] = NULL;
  l->v = nv;
  return 0;
}

void
cli_strv_free (struct cli_strv *l)
{
  free (l->v);
  l->v = NULL;
  l->n = 0;
}

char *
cli_join_words (char **words, int n)
{
  size_t len = 1;
  for (int i = 0; i < n; i++)
    len += strlen (words[i]) + 1;
  char *s = malloc (len), *p = s;
  if (s == NULL)
    return NULL;
  for (int i = 0; i < n; i++)
    {
      if (i > 0)
        *p++ = ' ';
      p = stpcpy (p, words[i]);
    }
  *p = '\0';
  return s;
}

/* ---------------------------------------------------------- parsing */

static const struct cli_opt common_opts[] = {
  { "json", 0, CLI_FLAG, &cli_json, NULL, "print one JSON document on stdout" },
  { "help", 'h', CLI_FLAG, NULL, NULL, "show this help" },
  { NULL, 0, 0, NULL, NULL, NULL },
};

static size_t
opts_count (const struct cli_opt *opts)
{
  size_t n = 0;
  while (opts && opts[n].name)
    n++;
  return n;
}

/* "  -w, --workdir DIR" as --help shows it, in BUF; its length. */
static int
format_opt_head (char *buf, size_t size, const struct cli_opt *o)
{
  char letter[8] = "    ";
  if (o->letter)
    snprintf (letter, sizeof letter, "-%c, ", o->letter);
  return snprintf (buf, size, "  %s--%s%s%s", letter, o->name, o->arg ? " " : "",
                   o->arg ? o->arg : "");
}

static void
print_opts (const struct cli_opt *opts, int width)
{
  for (const struct cli_opt *o = opts; o && o->name; o++)
    {
      char head[128];
      int n = format_opt_head (head, sizeof head, o);
      printf ("%s%*s%s\n", head, n < width ? width - n : 2, "", o->help);
    }
}

static void
print_usage (const struct cli_command *cmd, const struct cli_opt *opts)
{
  printf ("Usage: sbx %s [OPTIONS]%s%s\n\n%s.\n%s%s\nOptions:\n", cmd->name,
          *cmd->synopsis ? " " : "", cmd->synopsis, cmd->summary, cmd->details ? "\n" : "",
          cmd->details ? cmd->details : "");
  /* One column for the descriptions, past the longest head. */
  int width = 0;
  for (const struct cli_opt *o = opts; o && o->name; o++)
    if (format_opt_head (NULL, 0, o) + 2 > width)
      width = format_opt_head (NULL, 0, o) + 2;
  for (const struct cli_opt *o = common_opts; o->name; o++)
    if (format_opt_head (NULL, 0, o) + 2 > width)
      width = format_opt_head (NULL, 0, o) + 2;
  print_opts (opts, width);
  print_opts (common_opts, width);
}

/* The K-th word of the synopsis ("ID PATH" -> "PATH"), to name a missing
 * operand. */
static void
operand_name (const struct cli_command *cmd, int k, char *buf, size_t size)
{
  const char *p = cmd->synopsis;
  for (int i = 0; i < k && p; i++)
    if ((p = strchr (p, ' ')))
      p++;
  size_t n = p ? strcspn (p, " ") : 0;
  snprintf (buf, size, "%.*s", (int) n, p ? p : "");
  if (*buf == '\0' || *buf == '[')
    snprintf (buf, size, "an argument");
}

static int
parse_count (const char *arg, int64_t *v)
{
  char *end;
  errno = 0;
  long long n = strtoll (arg, &end, 10);
  if (errno || end == arg || *end || n < 0 || *arg == '-' || *arg == '+')
    return -1;
  *v = n;
  return 0;
}

/* Stores ARG in O's destination; on a bad value, a malloc'd message. */
static char *
set_value (const struct cli_opt *o, const char *arg)
{
  char *msg = NULL;
  switch (o->type)
    {
    case CLI_FLAG:
      *(bool *) o->dest = true;
      return NULL;
    case CLI_STRING:
      *(const char **) o->dest = arg;
      return NULL;
    case CLI_LIST:
      if (strv_push (o->dest, arg) < 0)
        return strdup ("out of memory");
      return NULL;
    case CLI_SIZE:
      {
        sbx_error_t *err = NULL;
        if (sbx_parse_size (arg, o->dest, &err) == 0)
          return NULL;
        if (asprintf (&msg, "--%s: %s", o->name, sbx_error_message (err)) < 0)
          msg = NULL;
        sbx_error_free (err);
        return msg;
      }
    case CLI_COUNT:
      if (parse_count (arg, o->dest) == 0)
        return NULL;
      if (asprintf (&msg, "--%s expects a non-negative integer, not '%s'", o->name, arg) < 0)
        msg = NULL;
      return msg;
    case CLI_NUMBER:
    case CLI_SECONDS:
      {
        char *end;
        errno = 0;
        double d = strtod (arg, &end);
        sbx_error_t *err = NULL;
        if (errno == 0 && end != arg && *end == '\0' && isfinite (d) && d >= 0)
          {
            if (o->type == CLI_NUMBER || sbx_timeout_check (d, &err) == 0)
              {
                *(double *) o->dest = d;
                return NULL;
              }
            if (asprintf (&msg, "--%s: %s", o->name, sbx_error_message (err)) < 0)
              msg = NULL;
            sbx_error_free (err);
            return msg;
          }
        if (asprintf (&msg, "--%s expects a non-negative number, not '%s'", o->name, arg) < 0)
          msg = NULL;
        return msg;
      }
    }
  return NULL;
}

int
cli_parse (const struct cli_command *cmd, const struct cli_opt *opts, int argc, char **argv,
           struct cli_args *out)
{
  size_t n = opts_count (opts), total = n + 2;
  const struct cli_opt *all[MAX_OPTS + 2];
  struct option longopts[MAX_OPTS + 3];
  char shortopts[2 * MAX_OPTS + 7];
  if (n > MAX_OPTS)
    return cli_fail (SBX_E_INVALID, "internal error: sbx %s has more than %d options", cmd->name,
                     MAX_OPTS);
  char *p = stpcpy (shortopts, "+:"); /* stop at operands; report missing arguments */
  char *error = NULL;
  int ret = CLI_CONTINUE;

  memset (out, 0, sizeof *out);
  for (size_t i = 0; i < total; i++)
    {
      const struct cli_opt *o = i < n ? &opts[i] : &common_opts[i - n];
      all[i] = o;
      int has_arg = o->type == CLI_FLAG ? no_argument : required_argument;
      longopts[i] = (struct option){ o->name, has_arg, NULL, OPT_BASE + (int) i };
      if (o->letter)
        {
          *p++ = (char) o->letter;
          if (o->type != CLI_FLAG)
            *p++ = ':';
        }
    }
  *p = '\0';
  longopts[total] = (struct option){ 0 };

  optind = 0;
  opterr = 0;
  bool dashdash = false;
  for (;;)
    {
      int before = optind > 0 ? optind : 1;
      int c = getopt_long (argc, argv, shortopts, longopts, NULL);
      if (c == -1)
        {
          if (optind == before + 1 && strcmp (argv[before], "--") == 0)
            dashdash = true;
          /* Operands may come before, between or after options. */
          if (!dashdash && optind < argc && out->noperands < cmd->max_operands)
            {
              out->operand[out->noperands++] = argv[optind++];
              continue;
            }
          break;
        }

      const struct cli_opt *o = NULL;
      if (c >= OPT_BASE && c < OPT_BASE + (int) total)
        o = all[c - OPT_BASE];
      for (size_t i = 0; o == NULL && c != '?' && c != ':' && i < total; i++)
        if (all[i]->letter == c)
          o = all[i];

      char *msg = NULL;
      if (o == NULL)
        {
          const char *word = argv[optind - 1 < argc ? optind - 1 : argc - 1];
          char shortname[3] = { '-', (char) optopt, 0 };
          if (optopt >= OPT_BASE && optopt < OPT_BASE + (int) total)
            word = all[optopt - OPT_BASE]->name;
          else if (optopt > 0 && optopt < OPT_BASE)
            word = shortname;
          const char *fmt = c == ':'             ? "option '%s%s' needs an argument"
                            : optopt >= OPT_BASE ? "option '%s%s' takes no argument"
                                                 : "unknown option '%s%s'";
          if (asprintf (&msg, fmt, optopt >= OPT_BASE ? "--" : "", word) < 0)
            msg = NULL;
        }
      else if (o == &common_opts[1])
        {
          print_usage (cmd, opts);
          ret = 0;
          goto out;
        }
      else
        msg = set_value (o, optarg);
      if (msg && error == NULL)
        error = msg; /* reported once every option is seen, --json included */
      else
        free (msg);
    }

  while (optind < argc && out->noperands < cmd->max_operands)
    out->operand[out->noperands++] = argv[optind++];
  if (optind < argc)
    {
      if (cmd->rest)
        {
          out->rest = argv + optind;
          out->nrest = argc - optind;
        }
      else if (error == NULL && asprintf (&error, "unexpected argument '%s'", argv[optind]) < 0)
        error = NULL;
    }
  if (error == NULL && out->noperands < cmd->min_operands)
    {
      char name[64];
      operand_name (cmd, out->noperands, name, sizeof name);
      if (asprintf (&error, "missing %s", name) < 0)
        error = NULL;
    }
  if (error == NULL && cmd->rest && out->nrest == 0)
    error = strdup ("missing COMMAND");
  if (error)
    ret = cli_usage_error (cmd, "%s", error);

out:
  free (error);
  return ret;
}

static void
report (int code, const char *message)
{
  if (cli_json)
    {
      json_t *doc = json_pack ("{s:{s:s,s:o}}", "error", "code", sbx_errc_name (code), "message",
                               cli_json_str (message));
      if (doc && cli_json_print (doc) == 0)
        return;
    }
  fprintf (stderr, "sbx: %s\n", message);
}

int
cli_usage_error (const struct cli_command *cmd, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  char *msg = sbx_strdup_vprintf (fmt, ap);
  va_end (ap);
  if (cli_json)
    report (SBX_E_INVALID, msg ? msg : "out of memory");
  else
    fprintf (stderr, "sbx %s: %s\nTry 'sbx %s --help' for more information.\n", cmd->name,
             msg ? msg : "out of memory", cmd->name);
  free (msg);
  return CLI_EXIT_FAILURE;
}

/* The name a subcommand is called by: the last word of "bg start". */
static const char *
short_name (const struct cli_command *cmd)
{
  const char *s = strrchr (cmd->name, ' ');
  return s ? s + 1 : cmd->name;
}

int
cli_dispatch (const struct cli_command *parent, const struct cli_command *const *subs, int argc,
              char **argv)
{
  const char *word = argc > 1 ? argv[1] : NULL;
  for (const struct cli_command *const *s = subs; word && *s; s++)
    if (strcmp (word, short_name (*s)) == 0)
      return (*s)->run (*s, argc - 1, argv + 1);

  bool help = word && (strcmp (word, "--help") == 0 || strcmp (word, "-h") == 0);
  if (!help)
    return word ? cli_usage_error (parent, "unknown command '%s'", word)
                : cli_usage_error (parent, "missing COMMAND");
  printf ("Usage: sbx %s COMMAND [OPTIONS]\n\n%s.\n\nCommands:\n", parent->name, parent->summary);
  for (const struct cli_command *const *s = subs; *s; s++)
    printf ("  %-12s%s\n", short_name (*s), (*s)->summary);
  printf ("\nRun 'sbx %s COMMAND --help' for a command's options.\n", parent->name);
  return 0;
}

void
cli_exec_opts_init (struct cli_exec_opts *eo)
{
  memset (eo, 0, sizeof *eo);
  eo->max_output = -1;
}

/* ------------------------------------------------------ sandboxes */

int
cli_parse_and_open (const struct cli_command *cmd, const struct cli_opt *opts, int argc,
                    char **argv, struct cli_args *a, sbx_sandbox_t **sb)
{
  int status = cli_parse (cmd, opts, argc, argv, a);
  sbx_error_t *err = NULL;
  if (status == CLI_CONTINUE && sbx_sandbox_open (a->operand[0], sb, &err) < 0)
    status = cli_error (err);
  return status;
}

int
cli_sandbox_command (const struct cli_command *cmd, int argc, char **argv,
                     int (*act) (sbx_sandbox_t *sb, sbx_error_t **err))
{
  struct cli_args a;
  sbx_sandbox_t *sb = NULL;
  int status = cli_parse_and_open (cmd, NULL, argc, argv, &a, &sb);
  if (status != CLI_CONTINUE)
    return status;
  sbx_error_t *err = NULL;
  if (act (sb, &err) < 0)
    status = cli_error (err);
  else
    status = cli_json ? cli_json_print (json_pack ("{s:o}", "id", cli_json_str (a.operand[0]))) : 0;
  sbx_sandbox_free (sb);
  return status;
}

/* ------------------------------------------------------ reporting */

int
cli_error (sbx_error_t *err)
{
  report (err ? sbx_error_code (err) : SBX_E_NOMEM,
          err ? sbx_error_message (err) : "out of memory");
  sbx_error_free (err);
  return CLI_EXIT_FAILURE;
}

int
cli_fail (int code, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  char *msg = sbx_strdup_vprintf (fmt, ap);
  va_end (ap);
  report (msg ? code : SBX_E_NOMEM, msg ? msg : "out of memory");
  free (msg);
  return CLI_EXIT_FAILURE;
}

void
cli_note (const char *fmt, ...)
{
  va_list ap;
  fflush (stdout); /* keep the order of what a terminal shows */
  fputs ("sbx: ", stderr);
  va_start (ap, fmt);
  vfprintf (stderr, fmt, ap);
  va_end (ap);
  fputc ('\n', stderr);
}

/* ------------------------------------------------------------ JSON */

json_t *
cli_json_string (const char *s, size_t len)
{
  char *clean = sbx_utf8_sanitize_copy (s, len);
  json_t *j = clean ? json_string_nocheck (clean) : NULL;
  free (clean);
  return j;
}

json_t *
cli_json_str (const char *s)
{
  return s ? cli_json_string (s, strlen (s)) : json_null ();
}

/* The length of the valid UTF-8 sequence at S (N bytes left), 0 if none. */
static size_t
utf8_seq (const unsigned char *s, size_t n)
{
  size_t len = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;
  if (len == 0 || len > n)
    return 0;
  for (size_t i = 1; i < len; i++)
    if ((s[i] & 0xc0) != 0x80)
      return 0;
  /* Overlong and surrogate forms, and past U+10FFFF. */
  if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f)
      || (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))
    return 0;
  return len;
}

void
cli_put_visible (FILE *f, const char *s)
{
  const unsigned char *p = (const unsigned char *) s;
  size_t n = strlen (s);
  for (size_t i = 0; i < n;)
    {
      unsigned char c = p[i];
      size_t len = c >= 0x80 ? utf8_seq (p + i, n - i) : 1;
      if (c == '\\')
        fputs ("\\\\", f);
      else if (c == '\n')
        fputs ("\\n", f);
      else if (c == '\t')
        fputs ("\\t", f);
      else if (c == '\r')
        fputs ("\\r", f);
      else if (c < 0x20 || c == 0x7f || len == 0)
        fprintf (f, "\\x%02x", c);
      else if (len == 2 && c == 0xc2 && p[i + 1] < 0xa0)
        /* C1 controls (CSI is one) move terminals too. */
        fprintf (f, "\\u%04x", p[i + 1]);
      else
        fwrite (p + i, 1, len, f);
      i += len ? len : 1;
    }
}

int
cli_json_print (json_t *doc)
{
  if (doc == NULL)
    {
      cli_json = false; /* no memory for another document: say it in text */
      return cli_fail (SBX_E_NOMEM, "out of memory");
    }
  int r = json_dumpf (doc, stdout, JSON_COMPACT);
  json_decref (doc);
  if (r < 0 || putchar ('\n') == EOF || fflush (stdout) == EOF)
    {
      fprintf (stderr, "sbx: cannot write to stdout: %s\n", strerror (errno));
      return CLI_EXIT_FAILURE;
    }
  return 0;
}

json_t *
cli_json_file_list (const sbx_file_list_t *list)
{
  json_t *a = json_array ();
  for (size_t i = 0; a && i < list->count; i++)
    {
      const sbx_file_info_t *f = &list->items[i];
      json_t *item = json_pack ("{s:o,s:o,s:b,s:I}", "name", cli_json_str (f->name), "path",
                                cli_json_str (f->path), "is_dir", f->is_dir, "size",
                                (json_int_t) f->size);
      if (item == NULL || json_array_append_new (a, item) < 0)
        {
          json_decref (a);
          return NULL;
        }
    }
  return a ? json_pack ("{s:o, s:b}", "entries", a, "truncated", list->truncated) : NULL;
}
