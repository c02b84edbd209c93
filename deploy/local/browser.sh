#!/usr/bin/env bash
# What the browser tests (tests/web.rs) need: Debian's Chromium, a CJK font (so screenshots
# show Chinese, not boxes) and playwright-core from npm (web-tests/package-lock.json).
# Installs what is missing; does nothing when everything is there.
set -euo pipefail
cd "$(dirname "$0")/../.."

apt_install() {
  if [ "$(id -u)" != 0 ]; then
    echo "browser: $* missing and not root; install it with apt-get" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
fc-list 2>/dev/null | grep -qiE "WenQuanYi|Noto Sans CJK|Source Han" || missing+=(fonts-wqy-microhei)
if [ ${#missing[@]} -gt 0 ]; then
  echo "browser: installing ${missing[*]}"
  apt_install "${missing[@]}"
fi

# npm ci is quick when the lock is unchanged; it makes node_modules exactly the lock's.
if [ ! -d web-tests/node_modules/playwright-core ] \
  || [ web-tests/package-lock.json -nt web-tests/node_modules/.package-lock.json ]; then
  (cd web-tests && npm ci --no-audit --no-fund --silent)
fi
echo "browser: $(chromium --version 2>/dev/null | head -1), playwright-core $(node -p 'require("./web-tests/node_modules/playwright-core/package.json").version')"
