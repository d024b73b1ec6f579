#!/bin/sh
# Ctrl-C in `qvl chat`, driven through a FIFO (ctest helper). usage: chat_interrupt_test.sh QVL MODEL
# 1. One SIGINT while an answer streams stops that answer; the chat goes on and answers the next
#    message (stopped too, after its first token, to keep the test short); EOF then exits 0.
# 2. Two SIGINTs 0.2 s apart (within a second) exit the chat with status 130.
# With -n -1 and --temp 0 the tiny model writes thousands of tokens without an end-of-sequence
# token, so each answer is still streaming when its SIGINT arrives. Every wait is bounded
# (wait_for gives up after 30 s and the watchdog kills the chat after 60 s), so a hang fails
# the test instead of stalling it.
set -u
qvl=$1
model=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

# wait_for COMMAND...: polls every 0.1 s until COMMAND succeeds; status 1 after 30 s.
wait_for() {
  tries=0
  until "$@"; do
    tries=$((tries + 1))
    [ "$tries" -ge 300 ] && return 1
    sleep 0.1
  done
}
has_output() { [ -s "$dir/out" ]; }
answers_stopped() { [ "$(grep -c 'stopped, the partial answer is kept' "$dir/err")" -ge "$1" ]; }
output_grew() { [ "$(wc -c <"$dir/out")" -gt "$1" ]; }

# start_chat: a chat reading the FIFO; the write end stays open on fd 3 until closed.
start_chat() {
  rm -f "$dir/in" "$dir/out" "$dir/err"
  mkfifo "$dir/in"
  "$qvl" chat -m "$model" -n -1 --temp 0 <"$dir/in" >"$dir/out" 2>"$dir/err" &
  pid=$!
  # Its sleep must not hold ctest's output pipe open after the test ends.
  (sleep 60 && kill -KILL "$pid") >/dev/null 2>&1 &
  watchdog=$!
  exec 3>"$dir/in"
}
stop_watchdog() { kill "$watchdog" 2>/dev/null; }

start_chat
echo "Hello" >&3
wait_for has_output || echo "no answer began"
kill -INT "$pid"
wait_for answers_stopped 1 || echo "the first answer did not stop"
before=$(wc -c <"$dir/out")
echo "And again?" >&3
wait_for output_grew "$before" || echo "no second answer began"
kill -INT "$pid"
wait_for answers_stopped 2 || echo "the second answer did not stop"
exec 3>&-
wait "$pid"
echo "one interrupt: exit=$?"
stop_watchdog
cat "$dir/err"

start_chat
echo "Hello" >&3
wait_for has_output || echo "no answer began"
kill -INT "$pid"
sleep 0.2
kill -INT "$pid"
wait "$pid"
echo "two interrupts: exit=$?"
exec 3>&-
stop_watchdog
