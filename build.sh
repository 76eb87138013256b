#!/usr/bin/env bash
# One entry point for contributors: ./build.sh [test|build|sample|format]
#   test    install or check what the tests need (scripts/test-deps.sh), build and run the whole test suite
#           (SQLite and a throwaway PostgreSQL), then the package check (scripts/package-check.sh: the packages
#           installed as a user would), then print the totals as the last line (the package check counts as one test)
#   build   build everything in Release
#   sample  run the sample app on the embedded SQLite default
#   format  check formatting (dotnet format --verify-no-changes)
set -euo pipefail
cd "$(dirname "$0")"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

case "${1:-test}" in
  build)
    dotnet build Keel.sln -c Release
    ;;
  sample)
    dotnet run --project samples/Keel.Sample -c Release
    ;;
  format)
    dotnet format Keel.sln --verify-no-changes
    ;;
  test)
    # PostgreSQL binaries, Chromium, PgBouncer: installed when run as root, else a one-line stop naming them.
    ./scripts/test-deps.sh
    # A temp folder of the run's own, swept of leftover servers (by their pid files) and removed when the run ends.
    source scripts/test-tmp.sh
    keel_tmp_begin
    log=$(mktemp)
    set +e
    dotnet test Keel.sln -c Release 2>&1 | tee "$log"
    status=${PIPESTATUS[0]}
    # Pack everything, build and test a project made from the template with those packages, run the installed tool.
    ./scripts/package-check.sh 2>&1 | tee -a "$log"
    check=${PIPESTATUS[0]}
    set -e
    if [ "$status" -eq 0 ]; then status=$check; fi
    # Sum the per-assembly summaries ("Passed!  - Failed: 0, Passed: 101, Skipped: 0, ...") into one line.
    awk -v check="$check" '
      /(Passed|Failed)! +- +Failed:/ {
        for (i = 1; i <= NF; i++) {
          if ($i == "Failed:")  { f += $(i+1) + 0 }
          if ($i == "Passed:")  { p += $(i+1) + 0 }
          if ($i == "Skipped:") { s += $(i+1) + 0 }
        }
        runs++
      }
      # An assembly whose test host died runs no test and prints no summary: count it as a failure, so it shows.
      /Test Run Aborted/ { aborted++ }
      # The package check: one test. If it died before its verdict line, it failed all the same.
      /^package-check: passed/ { p++; checked++ }
      /^package-check: FAILED/ { f++; checked++ }
      END {
        f += aborted
        if (check != 0 && checked == 0) { f++ }
        if (runs == 0) { f = (f > 0 ? f : 1) }
        line = p " passed, " f " failed"
        if (s > 0) { line = line ", " s " skipped" }
        print line
      }' "$log"
    rm -f "$log"
    exit "$status"
    ;;
  *)
    echo "usage: ./build.sh [test|build|sample|format]" >&2
    exit 2
    ;;
esac
