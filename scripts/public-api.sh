#!/usr/bin/env bash
# Rewrites PublicAPI.Unshipped.txt of every library package (or of the projects named, e.g. src/Keel/Keel.csproj) to
# list its public API as the code now has it: adds what is new (RS0016), removes what is gone (RS0017). Run it after
# changing public API, then review the diff of the PublicAPI.*.txt files: that diff is the API change.
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

if [ "$#" -gt 0 ]; then
  projects=("$@")
else
  mapfile -t projects < <(find src -name PublicAPI.Unshipped.txt -printf '%h\n' | sort | while read -r dir; do echo "$dir/$(basename "$dir").csproj"; done)
fi

for project in "${projects[@]}"; do
  echo "public-api: $project"
  dotnet format analyzers "$project" --diagnostics RS0016 RS0017 --severity info
done
