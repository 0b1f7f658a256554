#!/bin/sh
# Install the Debian packages given as arguments when any is missing.
# As root this runs apt-get (update first: a fresh machine has no package lists);
# otherwise it prints the exact command and fails.
missing=""
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && { echo "deps: all present ($*)"; exit 0; }
cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends$missing"
if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing:$missing" >&2
  echo "deps: run as root: sudo sh -c '$cmd'" >&2
  exit 1
fi
echo "deps: installing:$missing"
sh -c "$cmd"
