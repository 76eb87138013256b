# Sourced by ./build.sh test and .ci/run (one copy of this logic): gives the run a temp folder of its own, so the
# throwaway PostgreSQL, MariaDB and PgBouncer servers the tests and benchmarks start live under it, and on exit stops
# whatever a killed test host left running there — by the pid each server recorded, and only if that process still
# runs from this folder, never by name — then removes the folder.
# Usage: source scripts/test-tmp.sh; keel_tmp_begin   (sets and exports TMPDIR; installs the EXIT trap)

keel_tmp_sweep() {
  local dir=$1 pidfile pid
  while IFS= read -r pidfile; do
    pid=$(head -n 1 "$pidfile" 2>/dev/null || true)
    if [[ "$pid" =~ ^[0-9]+$ ]] && grep -qa "$(dirname "$pidfile")" "/proc/$pid/cmdline" 2>/dev/null; then
      kill -9 "$pid" 2>/dev/null || true
      for _ in $(seq 50); do [ -e "/proc/$pid" ] || break; sleep 0.1; done
    fi
  done < <(find "$dir" \( -name postmaster.pid -o -name pgbouncer.pid -o -name mariadbd.pid \) 2>/dev/null)
  # Backends of a killed server may still be exiting: retry the removal briefly, never fail the run on it.
  for _ in 1 2 3 4 5; do rm -rf "$dir" 2>/dev/null && break; sleep 1; done
}

keel_tmp_begin() {
  # Nested (.ci/run calls ./build.sh test): the outer run's folder and trap serve both.
  if [ -n "${KEEL_RUN_TMPDIR:-}" ] && [ -d "$KEEL_RUN_TMPDIR" ]; then
    return 0
  fi
  KEEL_RUN_TMPDIR=$(mktemp -d "${TMPDIR:-/tmp}/keel-run.XXXXXX")
  # The servers run as the postgres and mysql users: they must be able to enter it.
  chmod 755 "$KEEL_RUN_TMPDIR"
  export KEEL_RUN_TMPDIR TMPDIR="$KEEL_RUN_TMPDIR"
  trap 'status=$?; keel_tmp_sweep "$KEEL_RUN_TMPDIR"; exit $status' EXIT
}
