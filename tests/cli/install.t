#!/usr/bin/env bash
# `make install`: everything lands under PREFIX, no build-tree path is baked
# into what is installed, and a program built against the installed library
# finds the installed agent. Built in a build folder of its own, so the
# tree's build/ is left as it was.
. "$(dirname "$0")/lib.sh"

image=${SBX_TEST_IMAGE:-sbx-test/busybox:1}
prefix=$tmp/prefix
unset SBX_AGENT

run make --no-print-directory BUILD="$tmp/build" PREFIX="$prefix" install
is "$(rc)" 0 "make install PREFIX=... succeeds" || diag "$(tail -5 "$tmp/err")"
missing=""
for f in bin/sbx libexec/sbx/sbx-agent lib/libsbx.so.0 lib/libsbx.so lib/libsbx.a \
         lib/libsbx-mcp.a include/sbx.h include/sbx_mcp.h lib/pkgconfig/sbx.pc; do
  [ -e "$prefix/$f" ] || missing="$missing $f"
done
is "$missing" "" "every file is installed"
ok "$(! grep -q -a "$PWD" "$prefix/lib/libsbx.so.0" "$prefix/bin/sbx"; echo $?)" \
  "no path of the build tree is baked into the library or the CLI"
ok "$(grep -q -a "$prefix/libexec/sbx/sbx-agent" "$prefix/lib/libsbx.so.0"; echo $?)" \
  "the library names the installed agent"
is "$(echo $(PKG_CONFIG_PATH=$prefix/lib/pkgconfig pkg-config --cflags --libs sbx))" \
  "-I$prefix/include -L$prefix/lib -lsbx" "the installed sbx.pc names the installed paths"

# A program of the user's, away from the tree, on the installed library.
mkdir -p "$tmp/user"
cat >"$tmp/user/hello.c" <<'EOF'
#include <sbx.h>
#include <stdio.h>
#include <stdlib.h>

int
main (int argc, char **argv)
{
  (void) argc;
  sbx_options_t *o = sbx_options_new ();
  sbx_sandbox_t *sb = NULL;
  sbx_error_t *err = NULL;
  sbx_exec_result_t res = { 0 };
  int r = sbx_options_set_image (o, argv[1], &err);
  if (r == 0)
    r = sbx_sandbox_new (o, &sb, &err);
  if (r == 0)
    r = sbx_exec (sb, "echo installed", NULL, &res, &err);
  printf ("%s", r == 0 ? res.output : sbx_error_message (err));
  sbx_exec_result_free (&res);
  sbx_sandbox_remove (sb, NULL);
  sbx_sandbox_free (sb);
  sbx_options_free (o);
  sbx_error_free (err);
  return r == 0 ? 0 : 1;
}
EOF
run cc -o "$tmp/user/hello" "$tmp/user/hello.c" \
  $(PKG_CONFIG_PATH=$prefix/lib/pkgconfig pkg-config --cflags --libs sbx) -Wl,-rpath,"$prefix/lib"
is "$(rc)" 0 "a program builds against the installed library" || diag "$(cat "$tmp/err")"
run sh -c "cd / && '$tmp/user/hello' '$image'"
is "$(out)" "installed" "and finds the installed agent" || diag "$(err)"
run sh -c "cd / && '$prefix/bin/sbx' run --image '$image' -- echo from the installed CLI"
is "$(out)" "from the installed CLI" "the installed CLI works from anywhere" || diag "$(err)"
done_testing
