#!/usr/bin/env bash
# Installs what building and testing JeCloud needs on Debian, if it is missing.
# Idempotent; needs root only when something must be installed.
set -euo pipefail
export PATH=/usr/local/go/bin:$PATH DEBIAN_FRONTEND=noninteractive

if ! command -v go >/dev/null; then
  echo "setup: Go is missing: install Go 1.26 into /usr/local/go (https://go.dev/doc/install), then run this again" >&2
  exit 1
fi
# make and gcc (for -race) build and test; openssh-server gives the tests a
# real sshd on loopback (the system service is never started by the tests);
# redis-server is run by the Redis hook's tests; systemd-container (nspawn)
# and debootstrap give the end-to-end tests their servers (docs/lab.md);
# cloud-init checks the user-data jepush writes (cloud-init schema); sudo
# answers whether a caller of `sudo jeagent` is an administrator (TestSudoAdministrator);
# haproxy and caddy are the front door the proxy tests load configurations
# into, and pebble (Let's Encrypt's test CA) gives it certificates
# (docs/routing.md); haproxy is also the load balancer of your own that
# TestHAProxyRollingDeploy puts in front.
pkgs=(make gcc libc6-dev git openssh-server ca-certificates redis-server systemd-container debootstrap cloud-init sudo caddy pebble haproxy)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: missing packages: ${missing[*]}; run as root (sudo $0) to install them" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# versitygw: the real S3 server the backup tests run (internal/backup/s3test
# finds it in /var/cache/jecloud-tools/bin, or through $JECLOUD_VERSITYGW).
tools=/var/cache/jecloud-tools/bin
if [ ! -x "$tools/versitygw" ] && [ -z "${JECLOUD_VERSITYGW:-}" ] && ! command -v versitygw >/dev/null; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: versitygw is missing (the backup tests skip): run as root (sudo $0) to install it" >&2
  else
    echo "setup: installing versitygw v1.8.0 (S3 server for the backup tests) into $tools"
    GOBIN=$tools go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
  fi
fi
# Verdaccio (an npm registry cache, from the npm registry; 6.8 runs on Node 20)
# and express-generator: TestExpressApp makes a stock Express app and installs its
# dependencies on a lab server through the cache (docs/node.md, npm_registry).
npmtools=/var/cache/jecloud-tools/npm
if [ ! -x "$npmtools/node_modules/.bin/verdaccio" ] || [ ! -e "$npmtools/node_modules/express-generator/bin/express-cli.js" ]; then
  if [ "$(id -u)" != 0 ] || ! command -v npm >/dev/null; then
    echo "setup: Verdaccio is missing (TestExpressApp fails): run as root with Node.js and npm installed" >&2
  else
    echo "setup: installing verdaccio 6.8.0 and express-generator 4.16.1 into $npmtools"
    npm install --prefix "$npmtools" --no-audit --no-fund --loglevel=error verdaccio@6.8.0 express-generator@4.16.1
  fi
fi
