#!/usr/bin/env bash
# Rewrites PublicAPI.Unshipped.txt of every library package (or of the projects named, e.g. src/Keel/Keel.csproj) to
# list the public API the code now has beyond PublicAPI.Shipped.txt: run it after changing public API, then review the
# diff of the PublicAPI.*.txt files — that diff is the API change.
# The list is rebuilt from scratch (dotnet format's fix for RS0016 fills an empty list reliably, but not always one with
# holes); *REMOVED* lines, which mark released API taken away, are kept.
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

if [ "$#" -gt 0 ]; then
  projects=("$@")
else
  mapfile -t projects < <(find src -name PublicAPI.Unshipped.txt -printf '%h\n' | sort | while read -r dir; do echo "$dir/$(basename "$dir").csproj"; done)
fi

for project in "${projects[@]}"; do
  list="$(dirname "$project")/PublicAPI.Unshipped.txt"
  [ -f "$list" ] || { echo "public-api: $project has no PublicAPI.Unshipped.txt beside it" >&2; exit 2; }
  echo "public-api: $project"
  { echo '#nullable enable'; grep '^\*REMOVED\*' "$list" || true; } >"$list.new"
  mv "$list.new" "$list"
  dotnet format analyzers "$project" --diagnostics RS0016 --severity info
done
