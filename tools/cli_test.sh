#!/bin/sh
# ctest helper for the CLI tests: runs the command with stderr merged into stdout and prints
# "exit=<status>" last, so a PASS_REGULAR_EXPRESSION can check the output AND the exit status
# (ctest ignores the status once a regular expression is set).
"$@" 2>&1
echo "exit=$?"
