#!/usr/bin/env bash
# The sbx CLI end to end: every command, its text and JSON forms, exit codes
# and error lines, against the real engine.
. "$(dirname "$0")/lib.sh"

image=${SBX_TEST_IMAGE:-sbx/base:bookworm}
state_root=${SBX_STATE_DIR:-/var/lib/sbx}

# --- create ------------------------------------------------------------------
run "$sbx" create --image "$image" --memory 256m --env GREETING=hello
id=$(out)
cleanup_ids+=("$id")
is "$(rc)" 0 "create exits 0"
ok "$([[ "$id" =~ ^sbx-[0-9a-f]{12}$ ]]; echo $?)" "create prints the id alone on stdout ($id)"
ok "$(grep -qxF "sbx: sandbox $id using image $image" "$tmp/err"; echo $?)" "create says which image on stderr"

# --- exec --------------------------------------------------------------------
run "$sbx" exec "$id" -- echo '$GREETING' world
is "$(out)" "hello world" "exec joins the words into one shell command"
run "$sbx" exec "$id" -- 'echo out; echo err >&2; exit 7'
is "$(rc)" 7 "exec exits with the command's exit code"
is "$(out)" "out" "stdout passes through"
is "$(err)" "err" "stderr passes through"
run "$sbx" exec "$id" --timeout 1 -- 'echo begun; sleep 30'
is "$(rc)" 124 "a timeout exits 124"
is "$(out)" "begun" "the partial output is printed"
is "$(err)" "sbx: command timed out after 1 s; its process tree was killed" "a line on stderr says it timed out"
run "$sbx" exec "$id" --max-output 5 -- 'seq 1 1000'
is "$(od -An -c "$tmp/out" | tr -d ' ')" "1\n2\n3" "only the first 5 bytes are printed"
is "$(err)" "sbx: output truncated at 5 bytes (the rest was discarded)" "a line on stderr says the output was truncated"
run "$sbx" exec "$id" --workdir /tmp --env X=1 -- 'echo $X $(pwd)'
is "$(out)" "1 /tmp" "--workdir and --env apply"
echo "from stdin" >"$tmp/in"
"$sbx" exec "$id" --stdin -- 'tr a-z A-Z' <"$tmp/in" >"$tmp/out" 2>"$tmp/err"
is "$(out)" "FROM STDIN" "--stdin forwards the CLI's input"
run "$sbx" exec "$id" --json --combined -- 'printf "a\377b"; exit 3'
is "$(out)" "$(printf '{"output":"a\357\277\275b","exit_code":3,"truncated":false,"timed_out":false,"oom_killed":false}')" \
  "exec --json: one document, invalid UTF-8 replaced"
is "$(rc)" 3 "exec --json still exits with the command's code"
run "$sbx" exec "$id" --combined -- 'echo out; echo err >&2'
is "$(out)" "$(printf 'out\nerr')" "--combined merges stderr into stdout in order"

# --- files -------------------------------------------------------------------
printf 'line one\nline two\nline three\n' | "$sbx" write "$id" notes/a.txt
is "$?" 0 "write from stdin"
head -c 3000 /dev/urandom >"$tmp/bin"
"$sbx" write "$id" /tmp/blob <"$tmp/bin"
"$sbx" cat "$id" /tmp/blob >"$tmp/bin2"
ok "$(cmp -s "$tmp/bin" "$tmp/bin2"; echo $?)" "write and cat are binary-safe"
run "$sbx" read "$id" notes/a.txt --offset 1 --limit 1
is "$(out)" "$(printf '     2\tline two\n... more lines follow; read on with offset=2')" "read numbers lines from the offset"
run "$sbx" edit "$id" notes/a.txt --old line --new LINE
is "$(rc)" 125 "an ambiguous edit fails with 125"
is "$(err)" "sbx: the old text occurs 3 times in /workspace/notes/a.txt; add surrounding lines to make it unique, or replace all occurrences" \
  "and says how many times the text occurs"
run "$sbx" edit "$id" notes/a.txt --old line --new LINE --all
is "$(out)" "Edited notes/a.txt: replaced 3 occurrence(s)" "edit --all reports the count"
run "$sbx" ls "$id" notes
is "$(out)" "a.txt (29 bytes)" "ls shows name and size"
# A directory's size is the file system's own (4096 on ext4, other sizes elsewhere).
dir_size=$("$sbx" exec "$id" -- stat -c %s /workspace/notes)
run "$sbx" ls "$id" --json /workspace
is "$(out)" '{"entries":[{"name":"notes","path":"/workspace/notes","is_dir":true,"size":'"$dir_size"'}],"truncated":false}' \
  "ls --json: the entry as stat sees it, and the truncated flag"
# Names and lines holding control characters: escaped for a person (no
# escape sequence reaches the terminal, no name fakes another entry), exact
# in --json.
run "$sbx" exec "$id" -- 'mkdir -p esc && cd esc && touch "$(printf "a\nfake (1 bytes)")" "$(printf "b\033[31mred")" && printf "x\033]0;title\007y\n" > "$(printf "c\tt")"'
run "$sbx" ls "$id" esc
is "$(out)" "$(printf '%s\n' 'a\nfake (1 bytes) (0 bytes)' 'b\x1b[31mred (0 bytes)' 'c\tt (13 bytes)')" "ls escapes control characters in names"
run "$sbx" ls "$id" esc --json
ok "$(has out '"name":"a\nfake (1 bytes)"'; echo $?)" "ls --json keeps the exact name"
run "$sbx" glob "$id" 'esc/*'
is "$(out)" "$(printf '%s\n' '/workspace/esc/a\nfake (1 bytes)' '/workspace/esc/b\x1b[31mred' '/workspace/esc/c\tt')" "glob escapes them"
run "$sbx" grep "$id" 'title' --path esc
is "$(out)" '/workspace/esc/c\tt:1:x\x1b]0;title\x07y' "grep escapes paths and lines"
run "$sbx" bg start "$id" -- "$(printf 'sleep 30 # \033[2J')"
bgid=$(out)
run "$sbx" bg ls "$id"
ok "$(has out 'sleep 30 # \x1b[2J'; echo $?)" "bg ls escapes commands"
"$sbx" bg kill "$id" "$bgid" >/dev/null 2>&1
run "$sbx" glob "$id" '**/*.txt'
is "$(out)" "/workspace/notes/a.txt" "glob prints matching paths"
run "$sbx" grep "$id" 'LINE\s+t\w+' --glob '*.txt'
is "$(out)" "$(printf '/workspace/notes/a.txt:2:LINE two\n/workspace/notes/a.txt:3:LINE three')" "grep prints path:line:text"
run "$sbx" grep "$id" 'bad('
is "$(rc)" 125 "an invalid pattern fails with 125"
is "$(err)" "sbx: invalid regular expression at offset 4: missing closing parenthesis" "with the error on stderr"
run "$sbx" read "$id" /nope.txt --json
is "$(rc)" 125 "reading a missing file exits 125"
is "$(out)" '{"error":{"code":"not_found","message":"cannot open /nope.txt: No such file or directory"}}' \
  "and --json gives the error code and message"

# --- background --------------------------------------------------------------
run "$sbx" bg start "$id" -- 'echo started; sleep 300'
bg=$(out)
is "$(rc)" 0 "bg start prints an id ($bg)"
# Read until the first output arrives (or 10 s pass).
seen=
for _ in $(seq 1 100); do
  run "$sbx" bg read "$id" "$bg"
  seen+=$(out)
  [ -n "$seen" ] && break
  sleep 0.1
done
is "$seen" "started" "bg read prints new output"
is "$(err)" "sbx: process $bg (pid $(sed -n 's/.*(pid \([0-9]*\)).*/\1/p' "$tmp/err")) is running" "and its state on stderr"
run "$sbx" bg kill "$id" "$bg"
is "$(rc)" 0 "bg kill"

# --- ps, stop, rm, run -------------------------------------------------------
run "$sbx" ps
ok "$(has out "$id"; echo $?)" "ps lists the sandbox"
run "$sbx" stop "$id"
is "$(rc)" 0 "stop"
run "$sbx" exec "$id" -- true
is "$(rc)" 125 "an unnamed sandbox is gone after stop"
is "$(err)" "sbx: sandbox $id does not exist (see \`sbx ps\`)" "and the error says so"
ok "$([ ! -e "$state_root/sandboxes/$id" ]; echo $?)" "its host folder is gone"

name="sbx-cli-test-$$"
run "$sbx" create --image "$image" --name "$name"
cleanup_ids+=("$name")
"$sbx" exec "$name" -- 'echo kept > k.txt' >/dev/null
run "$sbx" stop "$name"
run "$sbx" exec "$name" -- cat k.txt
is "$(out)" "kept" "a named sandbox survives stop and starts again on use"
run "$sbx" rm "$name"
is "$(rc)" 0 "rm"
run "$sbx" ps --json
ok "$([ "$(rc)" = 0 ] && ! has out "$name"; echo $?)" "rm leaves no container"
ok "$([ ! -e "$state_root/sandboxes/$name" ]; echo $?)" "rm leaves no host folder"

run "$sbx" run --image "$image" -- "python3 -c 'print(6*7)'"
is "$(out)" "42" "run creates, runs and prints"
run "$sbx" run --image "$image" -- 'exit 5'
is "$(rc)" 5 "run exits with the command's code"

# --- the C example, built with pkg-config from the public header ------------
if [ -x build/examples/fibonacci ]; then
  run build/examples/fibonacci
  is "$(out)" "0 1 1 2 3 5 8 13 21 34 " "examples/fibonacci prints the seed's output"
  ok "$(has err "image "; echo $?)" "and says which image its sandbox used"
else
  ok 1 "build/examples/fibonacci is built (make example)"
fi

# --- errors and help ---------------------------------------------------------
run "$sbx" create --memory lots
is "$(rc)" 125 "a bad option value exits 125"
is "$(err)" "$(printf '%s\n' "sbx create: --memory: invalid size 'lots': use a number with an optional unit, such as 512m or 2g" \
  "Try 'sbx create --help' for more information.")" "naming the value"
DOCKER_HOST=unix:///nonexistent.sock run "$sbx" ps
is "$(rc)" 125 "no engine: exit 125"
is "$(err)" "sbx: cannot reach the Docker engine at unix:///nonexistent.sock (No such file or directory); start dockerd (for example \`dockerd &\` or \`systemctl start docker\`) or point DOCKER_HOST at a running engine" \
  "naming the socket"
for cmd in create exec write read cat edit ls glob grep ps stop rm run image bg; do
  run "$sbx" $cmd --help
  [ "$(rc)" = 0 ] && has out "Usage" || { ok 1 "$cmd --help"; diag "$(out)$(err)"; continue; }
  ok 0 "$cmd --help"
done

# --- the seed's image ---------------------------------------------------------
# The seed's documents name python:3.12-slim everywhere: where it can't be
# had, sbx's base image stands in, and sbx says so.
if ! docker image inspect python:3.12-slim >/dev/null 2>&1; then
  run "$sbx" create --image python:3.12-slim
  seed_id=$(out)
  cleanup_ids+=("$seed_id")
  is "$(rc)" 0 "create --image python:3.12-slim works where that image can't be had"
  ok "$(has err "sbx: python:3.12-slim is not here and could not be pulled: sbx's base image sbx/base:bookworm stands in"; echo $?)" \
    "and says which image stands in"
  ok "$(has err "sbx: sandbox $seed_id using image sbx/base:bookworm"; echo $?)" "and that it uses it"
  run "$sbx" exec "$seed_id" -- 'python -c "print(6*7)"'
  is "$(out)" 42 "the stand-in runs the seed's python commands"
else
  run "$sbx" create --image python:3.12-slim
  cleanup_ids+=("$(out)")
  ok "$(! has err "stands in"; echo $?)" "the seed's image, when present, is used as asked"
fi

done_testing
