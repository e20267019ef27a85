/* sbx cat: a file's raw bytes, streamed to stdout. */
#include "cli.h"

#include "base64.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int
to_stdout (const void *data, size_t len, void *userdata)
{
  int *write_errno = userdata;
  if (sbx_write_all (STDOUT_FILENO, data, len) < 0)
    {
      *write_errno = errno;
      return 1;
    }
  return 0;
}

/* JSON cannot hold bytes: text stays text, anything else is base64. */
static int
print_json (const char *path, const char *data, size_t len)
{
  json_t *valid = json_stringn (data, len);
  json_t *content = valid;
  if (content == NULL)
    {
      char *b64 = sbx_base64_encode (data, len);
      content = b64 ? json_string (b64) : NULL;
      free (b64);
    }
  return cli_json_print (json_pack ("{s:o,s:I,s:s,s:o}", "path", cli_json_str (path), "size",
                                    (json_int_t) len, "encoding", valid ? "utf-8" : "base64",
                                    "content", content));
}

static int
cmd_cat (const struct cli_command *cmd, int argc, char **argv)
{
  struct cli_args a;
  sbx_sandbox_t *sb = NULL;
  int status = cli_parse_and_open (cmd, NULL, argc, argv, &a, &sb);
  if (status != CLI_CONTINUE)
    return status;
  sbx_error_t *err = NULL;
  int write_errno = 0;
  status = 0;
  if (cli_json)
    {
      void *data = NULL;
      size_t len = 0;
      if (sbx_read_bytes (sb, a.operand[1], &data, &len, &err) < 0)
        status = cli_error (err);
      else
        status = print_json (a.operand[1], data, len);
      free (data);
    }
  else if (sbx_read_stream (sb, a.operand[1], to_stdout, &write_errno, &err) < 0)
    {
      if (write_errno)
        {
          sbx_error_free (err);
          status = cli_fail (SBX_E_IO, "cannot write to stdout: %s", strerror (write_errno));
        }
      else
        status = cli_error (err);
    }
  sbx_sandbox_free (sb);
  return status;
}

const struct cli_command cli_cmd_cat = {
  "cat",
  "ID PATH",
  "Copy a file's raw bytes to standard output",
  "Files of any size are streamed. With --json, the content is a string when the file is\n"
  "UTF-8 (\"encoding\": \"utf-8\"), else base64 (\"encoding\": \"base64\"); at most 64 MiB.\n",
  2,
  2,
  false,
  cmd_cat,
};
