#!/usr/bin/env bash
# Installs Keel the way a user does, from packages only: packs every package into a temporary local feed, creates a
# project from the keel-worker template with its Keel packages from that feed alone (nuget.org still serves
# third-party ones), builds it and runs its tests, installs the keel tool from the feed into the temp folder and runs
# `keel demo` with it. Its last line is `package-check: passed …` or `package-check: FAILED …` (./build.sh test counts
# it in its totals). Everything it makes goes in one temp folder, removed on exit (kept when KEEL_PACKAGE_CHECK_KEEP
# is set, to look at its logs).
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

started=$(date +%s)
work=$(mktemp -d "${TMPDIR:-/tmp}/keel-package-check.XXXXXX")
# A version no package cache or feed can already hold: what restores is certainly what was packed now.
base=$(dotnet msbuild src/Keel/Keel.csproj -getProperty:Version)
version="$base-check.$(date +%Y%m%d%H%M%S).$$"
packages=${NUGET_PACKAGES:-$HOME/.nuget/packages}
expected=(Keel Keel.Hosting Keel.Sqlite Keel.PostgreSql Keel.MySql Keel.Dashboard Keel.Cli Keel.Tool Keel.Testing
  Keel.EntityFrameworkCore Keel.Storage.Conformance Keel.Templates)

cleanup() {
  local status=$?
  if [ -n "${KEEL_PACKAGE_CHECK_KEEP:-}" ]; then
    echo "package-check: kept $work (KEEL_PACKAGE_CHECK_KEEP)"
    exit "$status"
  fi
  rm -rf "$work"
  # The restores put this run's own version of each Keel package in the global cache: remove exactly those.
  for id in "${expected[@]}"; do
    rm -rf "${packages:?}/${id,,}/$version"
  done
  exit "$status"
}
trap cleanup EXIT

step() { echo "package-check: $*"; }
# Prints the end of a failed step's log (test summaries defused, so the totals count this check once) and stops.
fail() {
  local what=$1 log=$2
  if [ -f "$log" ]; then
    tail -n 40 "$log" | sed -e 's/^/    /' -e 's/\(Passed\|Failed\)!/\1:/'
  fi
  echo "package-check: FAILED — $what (in $(($(date +%s) - started)) s)"
  exit 1
}

# A package's nuspec, with whichever zip reader the machine has.
nuspec_of() {
  if command -v unzip >/dev/null 2>&1; then
    unzip -p "$1" "$2"
  else
    python3 -c 'import sys, zipfile; sys.stdout.write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]).decode())' "$1" "$2"
  fi
}
check_metadata=1
if ! command -v unzip >/dev/null 2>&1 && ! command -v python3 >/dev/null 2>&1; then
  check_metadata=
  step "no unzip or python3 here: the packages' metadata is not checked"
fi

step "packing every package as $version into a local feed"
dotnet pack Keel.sln -c Release -o "$work/feed" -p:PackageVersion="$version" >"$work/pack.log" 2>&1 || fail "dotnet pack" "$work/pack.log"
for id in "${expected[@]}"; do
  nupkg="$work/feed/$id.$version.nupkg"
  [ -f "$nupkg" ] || fail "no package $id was made" "$work/pack.log"
  if [ -n "$check_metadata" ]; then
    nuspec=$(nuspec_of "$nupkg" "$id.nuspec") || fail "cannot read $id's nuspec" "$work/pack.log"
    for field in '<description>' '<license type="expression">MIT</license>' '<readme>README.md</readme>' '<repository ' '<tags>'; do
      grep -qF "$field" <<<"$nuspec" || fail "$id's nuspec lacks $field" "$work/pack.log"
    done
  fi
  if [ "$id" != Keel.Templates ]; then
    [ -f "$work/feed/$id.$version.snupkg" ] || fail "no symbol package for $id" "$work/pack.log"
  fi
done

# Keel.* from the local feed only; everything else from nuget.org.
mkdir -p "$work/app"
cat >"$work/app/nuget.config" <<CONFIG
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <clear />
    <add key="keel-local" value="$work/feed" />
    <add key="nuget.org" value="https://api.nuget.org/v3/index.json" />
  </packageSources>
  <packageSourceMapping>
    <packageSource key="keel-local">
      <package pattern="Keel" />
      <package pattern="Keel.*" />
    </packageSource>
    <packageSource key="nuget.org">
      <package pattern="*" />
    </packageSource>
  </packageSourceMapping>
</configuration>
CONFIG

step "creating a project from the keel-worker template"
hive=(--debug:custom-hive "$work/hive")   # not the user's own template list
dotnet new install "$work/feed/Keel.Templates.$version.nupkg" "${hive[@]}" >"$work/new.log" 2>&1 || fail "dotnet new install Keel.Templates" "$work/new.log"
dotnet new keel-worker -n CheckWorker -o "$work/app/CheckWorker" "${hive[@]}" >>"$work/new.log" 2>&1 || fail "dotnet new keel-worker" "$work/new.log"
grep -q "Include=\"Keel.Testing\" Version=\"$version\"" "$work/app/CheckWorker/CheckWorker.Tests/CheckWorker.Tests.csproj" \
  || fail "the template does not reference Keel $version" "$work/new.log"

step "building the new project and running its tests"
(cd "$work/app/CheckWorker" && dotnet test CheckWorker.slnx -c Release) >"$work/test.log" 2>&1 || fail "the template project's build or tests" "$work/test.log"
grep -q "Passed!" "$work/test.log" || fail "the template project ran no tests" "$work/test.log"

step "installing the keel tool from the feed and running keel demo"
dotnet tool install Keel.Tool --version "$version" --tool-path "$work/tools" --configfile "$work/app/nuget.config" >"$work/tool.log" 2>&1 \
  || fail "dotnet tool install Keel.Tool" "$work/tool.log"
mkdir -p "$work/demo"
(cd "$work/demo" && "$work/tools/keel" demo) >"$work/demo.log" 2>&1 || fail "keel demo (from the installed tool)" "$work/demo.log"

echo "package-check: passed — ${#expected[@]} packages packed, a keel-worker project built and tested from them, keel demo ran from the installed tool (in $(($(date +%s) - started)) s)"
