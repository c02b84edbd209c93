#!/usr/bin/env bash
# Vendor Apache ECharts into the dashboards (docs/DASHBOARDS.md, "ECharts").
#
# The halls' networks are closed and the pages allow no other origin, so ECharts is compiled
# into the binary like every other page asset. This fetches the pinned release from the npm
# registry (npm checks the tarball against the registry's integrity hash), and copies its
# "common" build (line, bar, pie, scatter, grid, legend, markLine, …; canvas and SVG renderers;
# no eval) and its licence files into dashboard-api/web/, where include_bytes! finds them.
#
#   scripts/update-echarts.sh            # the pinned version below
#   ECHARTS_VERSION=6.2.0 scripts/update-echarts.sh   # to move the pin: then update the pin here
set -euo pipefail
version="${ECHARTS_VERSION:-6.1.0}"
root="$(cd "$(dirname "$0")/.." && pwd)"
web="$root/dashboard-api/web"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
npm pack --silent "echarts@$version" >/dev/null
tar xzf "echarts-$version.tgz"
grep -q "\"$version\"" package/dist/echarts.common.min.js || {
  echo "echarts $version: dist/echarts.common.min.js does not state its version" >&2
  exit 1
}
if grep -q "new Function\|eval(" package/dist/echarts.common.min.js; then
  echo "echarts $version: the common build evaluates strings; the pages' CSP forbids that" >&2
  exit 1
fi
cp package/dist/echarts.common.min.js "$web/echarts.min.js"
cp package/LICENSE "$web/echarts-LICENSE.txt"
cp package/NOTICE "$web/echarts-NOTICE.txt"
cp package/licenses/LICENSE-d3 "$web/echarts-LICENSE-d3.txt"
echo "echarts $version → $web/echarts.min.js ($(wc -c <"$web/echarts.min.js") bytes) and its licences"
