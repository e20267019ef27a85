/* The seed's Docker sandbox example, written against libsbx.
 * Build: cc fibonacci.c $(pkg-config --cflags --libs sbx) */
#include <sbx.h>
#include <stdio.h>

static const char program[] = "def fibonacci(n):\n"
                              "    if n <= 1:\n"
                              "        return n\n"
                              "    return fibonacci(n-1) + fibonacci(n-2)\n"
                              "\n"
                              "for i in range(10):\n"
                              "    print(fibonacci(i), end=' ')\n";

int
main (void)
{
  sbx_sandbox_t *sandbox = NULL;
  sbx_error_t *err = NULL;
  sbx_exec_result_t result = { 0 };
  int status = 1;

  /* Default options: the seed's image if it can be had, else sbx's base image.
   * Nothing starts until the first operation. */
  if (sbx_sandbox_new (NULL, &sandbox, &err) < 0
      || sbx_write (sandbox, "/workspace/app.py", program, sizeof program - 1, &err) < 0
      || sbx_exec (sandbox, "python /workspace/app.py", NULL, &result, &err) < 0)
    {
      fprintf (stderr, "error: %s\n", sbx_error_message (err));
      goto out;
    }
  fprintf (stderr, "sandbox %s, image %s\n", sbx_sandbox_id (sandbox), sbx_sandbox_image (sandbox));
  printf ("%s\n", result.output); /* 0 1 1 2 3 5 8 13 21 34 */
  status = result.exit_code;

out:
  sbx_exec_result_free (&result);
  sbx_error_free (err);
  err = NULL;
  if (sandbox && sbx_sandbox_stop (sandbox, &err) < 0) /* removes the container */
    fprintf (stderr, "cleanup: %s\n", sbx_error_message (err));
  sbx_error_free (err);
  sbx_sandbox_free (sandbox);
  return status;
}
