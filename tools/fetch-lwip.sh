#!/bin/bash
# Fetch lwIP 2.1.3 from Debian's source package into DIR (default
# build/lwip), check it and unpack it there: DIR/lwip-2.1.3/ is what the
# kernel Makefile compiles.  Called by kernel/Makefile for apps that use the
# network; cached (DIR/.stamp), safe to run concurrently (flock).
#
# Nothing of the system's apt configuration is touched: a private sources
# list is written from the machine's own Debian sources (same mirror, same
# signing key, deb-src), apt-get uses private state and cache directories
# and only downloads.  The .dsc's Checksums-Sha256 check both tarballs; the
# orig tarball must also match the sha256 pinned below (a changed upload
# fails loudly).  lwIP's source is never copied into the repository nor
# patched: the port configures it (kernel/net/lwip/).
set -euo pipefail
VERSION=2.1.3+dfsg1
ORIG=lwip_${VERSION}.orig.tar.xz
ORIG_SHA256=0a8276d09fc4e97bbba2f953d74af2388fc2195ea156be9d7589e297a68fde24
DIR=$(realpath -m "${1:-$(dirname "$0")/../build/lwip}")
mkdir -p "$DIR"
exec 9>"$DIR/.lock"
flock 9
[ -f "$DIR/.stamp" ] && [ -d "$DIR/lwip-2.1.3/src" ] && exit 0

die() { echo "fetch-lwip: error: $1" >&2; echo "hint: $2" >&2; exit 1; }

# The first "deb" source of the machine: deb822 (debian.sources) or one-line.
mirror="" key="" suite=""
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    read -r mirror suite key < <(awk '
        /^$/ { if (deb && uri) exit; deb = 0 }
        /^Types:/ { deb = ($0 ~ /[ \t]deb([ \t]|$)/) }
        deb && /^URIs:/ { uri = $2 } deb && /^Suites:/ { suite = $2 }
        deb && /^Signed-By:/ { key = $2 }
        END { print uri, suite, key }' /etc/apt/sources.list.d/debian.sources)
fi
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
    read -r mirror suite < <(awk '$1 == "deb" && $2 !~ /^\[/ { print $2, $3; exit }' /etc/apt/sources.list)
fi
[ -n "$mirror" ] && [ -n "$suite" ] || \
    die "no Debian 'deb' source found in /etc/apt" "lwIP is fetched with apt-get source from the machine's Debian mirror"

apt="$DIR/apt"
mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$DIR/src"
if [ -n "$key" ]; then opts="[signed-by=$key] "; else opts=""; fi
echo "deb-src ${opts}${mirror} ${suite} main" > "$apt/sources.list"
O=(-o "Dir::Etc::sourcelist=$apt/sources.list" -o "Dir::Etc::sourceparts=-"
   -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache"
   -o "APT::Get::List-Cleanup=0" -o "Debug::NoLocking=1")
echo "fetch-lwip: apt-get source lwip ($mirror $suite, download only) into $DIR/src"
apt-get "${O[@]}" -qq update >"$apt/update.log" 2>&1 || \
    die "apt-get update of the private deb-src list failed (see $apt/update.log)" "is $mirror reachable?"
( cd "$DIR/src" && apt-get "${O[@]}" -qq --download-only source "lwip=2.1.3+dfsg1-2" ) \
    >"$apt/source.log" 2>&1 || \
    die "apt-get --download-only source lwip failed (see $apt/source.log)" "is lwip 2.1.3+dfsg1-2 still in $suite?"

cd "$DIR/src"
awk '/^Checksums-Sha256:/ { f = 1; next } /^[^ ]/ { f = 0 } f { print $1 "  " $3 }' \
    lwip_2.1.3+dfsg1-2.dsc | sha256sum --quiet -c - || \
    die "the tarballs do not match the .dsc's sha256" "delete $DIR and retry"
echo "$ORIG_SHA256  $ORIG" | sha256sum --quiet -c - || \
    die "$ORIG does not match the pinned sha256 $ORIG_SHA256" "Debian changed the upload: check it and update tools/fetch-lwip.sh"
rm -rf "$DIR/lwip-2.1.3"
tar -C "$DIR" -xf "$ORIG"
[ -f "$DIR/lwip-2.1.3/src/core/tcp.c" ] || die "$ORIG has no lwip-2.1.3/src/core/tcp.c" "check the tarball"
touch "$DIR/.stamp"
echo "fetch-lwip: lwIP 2.1.3 ready in $DIR/lwip-2.1.3"
