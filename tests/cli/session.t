#!/usr/bin/env bash
# sbx session end to end: create, ls, end, gc from separate processes, which
# see one another's sessions through the state on the host; workspaces,
# limits, activity from other sbx commands, errors and exit codes.
. "$(dirname "$0")/lib.sh"

image=${SBX_TEST_IMAGE:-sbx-test/busybox:1}
state_root=${SBX_STATE_DIR:-/var/lib/sbx}
mgr=cli-$$
ws=$tmp/ws
mkdir -p "$ws"
session() { "$sbx" session "$1" --manager "$mgr" "${@:2}"; }
# The sessions' sandboxes go with the test, then the manager's state.
end_all() {
  for s in $(session ls --json 2>/dev/null | /usr/bin/python3 -c 'import json,sys; [print(x["session"]) for x in json.load(sys.stdin)]'); do
    session end "$s" >/dev/null 2>&1
  done
  rm -rf "${state_root:?}/managers/$mgr"
}
trap 'end_all; cleanup' EXIT
# A field of `session ls --json`'s entry for a session or sandbox.
field() {
  session ls --json | /usr/bin/python3 -c 'import json,sys
for x in json.load(sys.stdin):
    if sys.argv[1] in (x["session"], x["sandbox"]): print(x[sys.argv[2]])' "$1" "$2"
}

# --- create ------------------------------------------------------------------
run session create --user ann --workspace-root "$ws" --image "$image"
ann=$(out)
is "$(rc)" 0 "session create exits 0"
ok "$([[ "$ann" =~ ^sbx-[0-9a-f]{12}$ ]]; echo $?)" "it prints the sandbox id alone on stdout ($ann)"
ok "$(grep -qE '^sbx: session s-[0-9a-f]{16} of user ann$' "$tmp/err"; echo $?)" "and names the session on stderr"
ann_session=$(sed -n 's/^sbx: session \(s-[0-9a-f]*\) of user ann$/\1/p' "$tmp/err")

run "$sbx" exec "$ann" -- 'pwd; echo mine > notes.txt'
is "$(out)" "/workspace" "every sandbox command works on it; the work dir is the workspace"
is "$(cat "$ws/ann/workspace/notes.txt" 2>/dev/null)" "mine" "the file is in ROOT/ann/workspace on the host"

run session create --user bob --workspace-root "$ws" --image "$image" --json
bob=$(out | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["sandbox"])')
ok "$(out | grep -qE '^\{"session":"s-[0-9a-f]{16}","user":"bob","sandbox":"sbx-[0-9a-f]{12}"\}$'; echo $?)" \
  "session create --json: session, user and sandbox"
run "$sbx" exec "$bob" -- 'ls -A /workspace; cat /workspace/../ann/workspace/notes.txt 2>&1; grep -c ann /proc/mounts'
is "$(out)" "$(printf '%s\n' 'cat: can'"'"'t open '"'"'/workspace/../ann/workspace/notes.txt'"'"': No such file or directory' 0)" \
  "bob sees nothing of ann's"

# --- ls ----------------------------------------------------------------------
run session ls
is "$(rc)" 0 "session ls exits 0"
is "$(head -n1 "$tmp/out")" "SESSION               USER              SANDBOX               IDLE  STATE" "ls prints a header"
ok "$(grep -qE "^$ann_session    ann               $ann +[0-9]+s  running$" "$tmp/out"; echo $?)" \
  "and a line per session: id, user, sandbox, idle seconds, state"
is "$(wc -l <"$tmp/out")" 3 "two sessions, two lines"
run session ls --json
is "$(out | /usr/bin/python3 -c 'import json,sys
v = json.load(sys.stdin)
print(sorted(v[0].keys()), sorted((x["user"], x["state"]) for x in v))')" \
  "['created', 'idle_seconds', 'sandbox', 'session', 'state', 'user'] [('ann', 'running'), ('bob', 'running')]" \
  "ls --json: the fields of each session"

# --- errors ------------------------------------------------------------------
run session create --user '../etc' --workspace-root "$ws" --image "$image"
is "$(rc)" 125 "a user id that tries path traversal is refused"
is "$(err)" "sbx: invalid user id '../etc': use 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit" \
  "with the grammar in the error"
ok "$([ ! -e "$tmp/etc" ] && [ "$(ls "$ws")" = "$(printf 'ann\nbob')" ]; echo $?)" "and nothing is made on the host"
run session create --workspace-root "$ws"
is "$(rc)" 125 "session create without --user fails"
is "$(head -n1 "$tmp/err")" "sbx session create: --user is required" "and says --user is required"
run session create --user ann --name fixed
is "$(head -n1 "$tmp/err")" "sbx session create: --name is not for sessions: each gets a sandbox of its own" "--name is refused"
run session create --user cy --workspace-root "$ws" --image "$image" --max-sessions 2
is "$(rc)" 125 "past --max-sessions, create fails"
is "$(err)" "sbx: the session limit of 2 is reached; end an idle session (\`sbx session gc\`) before starting another" \
  "and says the limit is reached"
run session create --user ann --workspace-root "$ws" --image "$image" --max-per-user 1
is "$(err)" "sbx: user ann has 1 session, the most a user may have; end one first" "past --max-per-user, create fails"
is "$(session ls --json | /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" 2 "refused creates leave no session"
run session end nosuch
is "$(rc)" 125 "ending an unknown session fails"
is "$(err)" "sbx: no session nosuch (see \`sbx session ls\`)" "and says so"
run session ls --manager '../x'
is "$(err)" "sbx: invalid manager name '../x': use 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit" \
  "a manager name that tries path traversal is refused"

# --- activity and gc ---------------------------------------------------------
sleep 2.2
"$sbx" write "$ann" touched.txt <<<"x"
run session gc --max-idle 2
is "$(err)" "sbx: ended 1 idle session; their workspaces are kept" "gc ends the idle session"
ok "$(docker inspect "$bob" >/dev/null 2>&1; [ $? != 0 ]; echo $?)" "bob's container is removed"
is "$(field "$ann" state)" "running" "a write from another process is activity: ann's session is kept"
ok "$([ -d "$ws/bob/workspace" ]; echo $?)" "bob's workspace is kept"
sleep 2.2
run "$sbx" exec "$ann" -- true
run session gc --max-idle 2 --json
is "$(out)" '{"reaped":0}' "gc --json: an exec is activity too"
run session gc
is "$(err)" "sbx: ended 0 idle sessions; their workspaces are kept" "gc without --max-idle uses each session's own timeout (3600 s)"

# --- end -----------------------------------------------------------------------
run session end "$ann"
is "$(rc)" 0 "session end takes the sandbox id too"
is "$(err)" "sbx: ended session $ann_session" "and names the session"
ok "$(docker inspect "$ann" >/dev/null 2>&1; [ $? != 0 ]; echo $?)" "its container is removed"
is "$(cat "$ws/ann/workspace/notes.txt")" "mine" "its workspace is kept"
run session create --user ann --workspace-root "$ws" --image "$image"
ann2=$(out)
run "$sbx" exec "$ann2" -- cat notes.txt touched.txt
is "$(out)" "$(printf 'mine\nx')" "the user's next session has her files"
run session end "$ann2" --purge --json
ok "$(out | grep -qE '^\{"session":"s-[0-9a-f]{16}","purged":true\}$'; echo $?)" "session end --purge --json"
ok "$([ ! -e "$ws/ann" ]; echo $?)" "--purge removes the user's folder"
ok "$([ -d "$ws/bob/workspace" ]; echo $?)" "and nothing of another user's"
is "$(session ls | wc -l)" 1 "no session is left"
is "$(docker ps -aq --filter "label=io.sbx.manager=$mgr" | wc -l)" 0 "and no container of the manager"

done_testing
