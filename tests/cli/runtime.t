#!/usr/bin/env bash
# `sbx runtime ...` and --runtime / --runtime-file on create and run, through
# the CLI. Built-in images are cached by tag, so this is quick once
# build/tests/it_runtime has run; on a cold machine it builds what it uses.
. "$(dirname "$0")/lib.sh"
token="$(date +%s)$$"

# --- ls and show -----------------------------------------------------------
run $sbx runtime ls
ok "$(rc)" "runtime ls"
for name in python-minimal python-datascience python-web node-minimal node-react; do
  has out "$name"; ok $? "  lists $name"
done

run $sbx runtime ls --json
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert len(d["runtimes"]) == 5
for r in d["runtimes"]: assert set(r["flavours"]) == {"seed", "offline"}' "$tmp/out"
ok $? "runtime ls --json: five runtimes with both flavours"

run $sbx runtime show python-datascience
ok "$(rc)" "runtime show python-datascience"
has out '"scikit-learn"' && has out 'FROM python:3.12-slim' \
  && has out 'RUN ["pip", "install", "--no-cache-dir", "pandas", "numpy", "matplotlib", "scikit-learn", "seaborn"]'
ok $? "  the seed's definition and its Dockerfile"
has out 'FROM sbx/base:bookworm' && has out '"python3-sklearn"'
ok $? "  the offline flavour's Dockerfile, with Debian's packages"

run $sbx runtime show node-react --json
python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))
assert d["definition"]["work_dir"] == "/app"
assert [f["flavour"] for f in d["flavours"]] == ["seed", "offline"]
assert all(f["dockerfile"].startswith("# sbx runtime node-react") for f in d["flavours"])' "$tmp/out"
ok $? "runtime show --json: definition and both Dockerfiles"

# --- invalid definitions -----------------------------------------------------
cat >"$tmp/bad.json" <<'EOF'
{"name": "cli-bad", "base_image": "sbx/base:bookworm", "package_manager": "apt",
 "packages": ["jq; touch /pwned"]}
EOF
run $sbx runtime build --runtime-file "$tmp/bad.json"
[ "$(rc)" = 125 ] && has err "packages entry 'jq; touch /pwned'" && has err "$tmp/bad.json"
ok $? "a package with a shell command is refused, naming the file and the field"

echo '{"name": "cli-bad", "env_vars": {"A-B": "x"}}' >"$tmp/bad2.json"
run $sbx run --runtime-file "$tmp/bad2.json" --json -- true
[ "$(rc)" = 125 ] && python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))
assert d["error"]["code"] == "invalid_argument" and "env_vars key" in d["error"]["message"]' "$tmp/out"
ok $? "run --json: a bad env key is a JSON error naming the field"

echo '{"name": "cli-bad", "work_dir": "/srv/$(id)"}' >"$tmp/bad3.json"
run $sbx create --runtime-file "$tmp/bad3.json"
[ "$(rc)" = 125 ] && has err "work_dir"
ok $? "create: a work dir with shell characters is refused"

run $sbx run --runtime no-such-runtime -- true
[ "$(rc)" = 125 ] && has err "no built-in runtime is named 'no-such-runtime'"
ok $? "an unknown built-in is refused by name"

run $sbx run --runtime python-web --image sbx/base:bookworm -- true
[ "$(rc)" = 125 ] && has err "cannot be combined"
ok $? "--image and --runtime together are refused"

# --- building --------------------------------------------------------------
run $sbx runtime build python-minimal --flavour offline
ok "$(rc)" "runtime build python-minimal --flavour offline"
grep -qE '^sbx-runtime/python-minimal:[0-9a-f]{12}$' "$tmp/out"
ok $? "  prints the image's name alone on stdout"
has err "offline flavour"
ok $? "  and says which flavour on stderr"

run $sbx runtime build python-minimal --flavour offline --json
[ "$(rc)" = 0 ] && [ "$(wc -l <"$tmp/out")" = 1 ] && python3 -c 'import json,sys
d=json.load(open(sys.argv[1])); assert d["flavour"] == "offline" and d["built"] is False
assert d["image"].startswith("sbx-runtime/python-minimal:") and d["id"].startswith("sha256:")' "$tmp/out"
ok $? "  --json: one document on stdout; a second build re-uses the image"

cat >"$tmp/custom.json" <<EOF
{
  "name": "cli-custom",
  "description": "jq and a greeting",
  "base_image": "sbx/base:bookworm",
  "package_manager": "apt",
  "packages": ["jq"],
  "env_vars": {"GREETING": "hello from the runtime", "RUN_TOKEN": "$token"},
  "work_dir": "/srv/work"
}
EOF
run $sbx run --runtime-file "$tmp/custom.json" -- 'echo "$GREETING"; pwd; echo "{\"a\":1}" | jq .a'
if ! { [ "$(rc)" = 0 ] && [ "$(cat "$tmp/out")" = "$(printf 'hello from the runtime\n/srv/work\n1')" ]; }; then
  diag "$(cat "$tmp/out" "$tmp/err")"; false
fi
ok $? "run --runtime-file: built, then its env, work dir and packages in the sandbox"
has err "step " && has err "built sbx-runtime/cli-custom:"
ok $? "  the build's steps were shown on stderr"

run $sbx run --runtime-file "$tmp/custom.json" -e GREETING=overridden --workdir /tmp -- 'echo "$GREETING"; pwd'
[ "$(rc)" = 0 ] && [ "$(cat "$tmp/out")" = "$(printf 'overridden\n/tmp')" ] && ! has err "step "
ok $? "  --env and --workdir override the runtime's; nothing is built again"

cat >"$tmp/broken.json" <<EOF
{"name": "cli-broken", "base_image": "sbx/base:bookworm", "package_manager": "apt",
 "packages": ["sbx-no-such-package-$token"]}
EOF
run $sbx runtime build --runtime-file "$tmp/broken.json" --json
[ "$(rc)" = 125 ] && [ "$(wc -l <"$tmp/out")" = 1 ] && python3 -c 'import json,sys
d=json.load(open(sys.argv[1]))["error"]; assert d["code"] == "build_failed", d
assert "failed at step" in d["message"] and "Unable to locate package sbx-no-such-package-" in d["message"], d' "$tmp/out"
ok $? "a failing install: build_failed with the step and apt's last lines, only JSON on stdout"

# --- create with a built-in ------------------------------------------------------
run $sbx create --runtime node-minimal
id=$(cat "$tmp/out")
cleanup_ids+=("$id")
ok "$(rc)" "create --runtime node-minimal"
run $sbx exec "$id" -- 'node -e "console.log(6*7)"; pwd'
[ "$(rc)" = 0 ] && [ "$(cat "$tmp/out")" = "$(printf '42\n/app')" ]
ok $? "  node runs in /app"
$sbx rm "$id" >/dev/null 2>&1

# --- prune ------------------------------------------------------------------------
run $sbx runtime prune cli-custom --all
[ "$(rc)" = 0 ] && grep -q '^sbx-runtime/cli-custom:' "$tmp/out"
ok $? "runtime prune NAME --all removes that runtime's images"
run $sbx runtime prune cli-broken --all
ok "$(rc)" "runtime prune of a runtime without images"

done_testing
