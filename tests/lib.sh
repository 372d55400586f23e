# Sourced by the tests/cli_*.sh scripts:  source "$(dirname "$0")/lib.sh" "$@"
# Gives the executable (argument 1) and the source tree (argument 2) as absolute paths, Debian's
# interpreter, a scratch folder removed on exit, and the pass/fail tally with its helpers.
set -u
bin=$(realpath "$1")
src=$(realpath "${2:-.}")
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
# need_h5py WHAT: h5py and numpy build the test inputs; without them the test cannot run.
need_h5py() {
  $py -c "import h5py, numpy" 2>/dev/null || { echo "h5py/numpy missing: cannot build $1"; exit 1; }
}
# check NAME EXPECTED_STATUS(zero|nonzero) PATTERN -- command...: the status, and PATTERN (an
# extended regular expression) somewhere in standard output or error.
check() {
  local name=$1 want=$2 pattern=$3; shift 4
  local out status
  out=$("$@" 2>&1); status=$?
  if { [ "$want" = zero ] && [ $status -eq 0 ]; } || { [ "$want" = nonzero ] && [ $status -ne 0 ]; }; then
    if printf '%s' "$out" | grep -qE -- "$pattern"; then ok; return; fi
  fi
  bad "$name (status $status): $(printf '%s' "$out" | tail -5)"
}
# finish: prints the tally; the script's status (end the script with it).
finish() {
  echo "$(basename "$0" .sh): $pass passed, $fail failed"
  [ "$fail" -eq 0 ]
}
