# Sourced by the command-line tests: `expect STATUS PATTERN -- command...`
# runs the command and counts a failure in $fails unless it exits STATUS and
# its output (stdout and stderr) matches the grep PATTERN.
fails=0
expect() {
  local want=$1 pattern=$2
  shift 3
  local out status
  out=$("$@" 2>&1)
  status=$?
  if [ "$status" -ne "$want" ] || ! grep -q -- "$pattern" <<<"$out"; then
    echo "FAIL: '$*' exited $status (want $want), output lacks '$pattern':"
    echo "$out" | sed 's/^/    /'
    fails=$((fails + 1))
  else
    echo "ok: $*"
  fi
}
