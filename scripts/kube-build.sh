#!/usr/bin/env bash
# Builds the real Kubernetes control plane the tests run against (tests/kube): kube-apiserver and
# kube-controller-manager 1.20.2 from Debian bookworm's `kubernetes` source package, plus Debian's etcd.
# The three binaries are cached outside the repo, in
#   ${CHAOSPLANE_KUBE_CACHE:-$HOME/.cache/chaosplane/kube-1.20.2}/bin/
# and when they are all there this exits at once. A cold build takes ~200 s on 2 cores, ~1.4 GB of
# memory and ~2.2 GB of disk in a temporary directory that is removed afterwards.
#
# Everything comes from the Debian archive through apt, with a PRIVATE apt configuration (sources, lists
# and cache under the temporary directory) derived from the machine's own configured bookworm sources with
# deb-src added: the system's apt sources and lists are left untouched.
#  - source:  apt-get source --download-only kubernetes=$KUBE_DEB_VERSION, unpacked with its Debian patches
#  - Go:      golang-1.19-go + golang-1.19-src .debs, extracted with dpkg-deb -x (nothing is installed)
#  - etcd:    etcd-server .deb, extracted with dpkg-deb -x
#  - build:   GOPROXY=off CGO_ENABLED=0 make WHAT="cmd/kube-apiserver cmd/kube-controller-manager"
#             (the vendored tree builds offline; a plain `go build` does not work on this tree)
# Needs: apt-get, dpkg-deb, dpkg-source (dpkg-dev), make, rsync (scripts/system-deps.sh installs them).
set -euo pipefail

CACHE="${CHAOSPLANE_KUBE_CACHE:-$HOME/.cache/chaosplane/kube-1.20.2}"
BIN="$CACHE/bin"
BINARIES=(etcd kube-apiserver kube-controller-manager)
KUBE_DEB_VERSION="${KUBE_DEB_VERSION:-1.20.5+really1.20.2-1.1+deb12u1}"
SUITE=bookworm
GO_PACKAGES=(golang-1.19-go golang-1.19-src)

cached() {
    local name
    for name in "${BINARIES[@]}"; do
        [ -x "$BIN/$name" ] || return 1
    done
}

if cached; then
    echo "kube binaries cached in $BIN"
    exit 0
fi

for tool in apt-get apt-cache apt-config dpkg-deb dpkg-source make rsync flock awk; do
    command -v "$tool" >/dev/null || {
        echo "kube-build: '$tool' is missing (run scripts/system-deps.sh)" >&2
        exit 1
    }
done

# One build at a time: a second caller waits, then finds the cache filled.
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9
if cached; then
    echo "kube binaries cached in $BIN"
    exit 0
fi

started=$SECONDS
work="$(mktemp -d "${TMPDIR:-/tmp}/chaosplane-kube-build.XXXXXX")"
cleanup() {
    chmod -R u+w "$work" 2>/dev/null || true
    rm -rf "$work"
    rm -rf "$CACHE"/.staging.*
}
trap cleanup EXIT

# --- private apt configuration: the machine's bookworm sources, with deb-src added ------------------
apt_dir="$work/apt"
mkdir -p "$apt_dir/sources.list.d" "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
: >"$apt_dir/sources.list"
eval "$(apt-config shell SYSTEM_LIST Dir::Etc::SourceList/f SYSTEM_PARTS Dir::Etc::SourceParts/d)"
one_line_sources=()
[ -f "${SYSTEM_LIST:-}" ] && one_line_sources+=("$SYSTEM_LIST")
shopt -s nullglob
one_line_sources+=("${SYSTEM_PARTS%/}"/*.list)
deb822_sources=("${SYSTEM_PARTS%/}"/*.sources)
shopt -u nullglob
for file in "${one_line_sources[@]}"; do
    # `deb [options] URI SUITE COMPONENTS...` -> the same line, and its deb-src twin
    awk -v suite="$SUITE" '$1 == "deb" && index($0, " " suite) { print; sub(/^deb/, "deb-src"); print }' \
        "$file" >>"$apt_dir/sources.list"
done
for file in "${deb822_sources[@]}"; do
    # stanzas of type deb for a bookworm suite -> the same stanza with `Types: deb deb-src`
    awk -v suite="$SUITE" '
        BEGIN { RS = ""; ORS = "\n\n" }
        /(^|\n)Types:[^\n]*deb/ && $0 ~ ("(^|\n)Suites:[^\n]*" suite) && !/(^|\n)Enabled:[ \t]*no/ {
            sub(/(^|\n)Types:[^\n]*/, "\nTypes: deb deb-src"); sub(/^\n/, ""); print
        }' "$file" >"$apt_dir/sources.list.d/$(basename "$file")"
done
if ! grep -qs . "$apt_dir/sources.list" "$apt_dir"/sources.list.d/*.sources; then
    echo "kube-build: no apt source for Debian $SUITE is configured on this machine" >&2
    exit 1
fi
apt_opts=(
    -o "Dir::Etc::SourceList=$apt_dir/sources.list"
    -o "Dir::Etc::SourceParts=$apt_dir/sources.list.d"
    -o "Dir::State::Lists=$apt_dir/lists"
    -o "Dir::Cache=$apt_dir/cache"
)
[ "$(id -u)" -eq 0 ] && apt_opts+=(-o "APT::Sandbox::User=root")

echo "kube-build: fetching the kubernetes source, Go 1.19 and etcd from Debian $SUITE"
apt-get "${apt_opts[@]}" -qq update

# The pinned Debian revision if the archive still has it, else the newest revision of 1.20.2.
versions="$(apt-cache "${apt_opts[@]}" showsrc kubernetes | awk '/^Version:/ { print $2 }')"
version="$KUBE_DEB_VERSION"
if ! grep -qxF "$version" <<<"$versions"; then
    version="$(grep -F '+really1.20.2-' <<<"$versions" | sort -V | tail -n1 || true)"
    [ -n "$version" ] || {
        echo "kube-build: Debian's kubernetes source package 1.20.2 is not available (found: $versions)" >&2
        exit 1
    }
    echo "kube-build: $KUBE_DEB_VERSION is gone from the archive; using $version"
fi

mkdir -p "$work/src" "$work/debs" "$work/root"
(cd "$work/src" && apt-get "${apt_opts[@]}" -qq source --download-only "kubernetes=$version" >/dev/null)
(cd "$work/debs" && apt-get "${apt_opts[@]}" -qq download "${GO_PACKAGES[@]}" etcd-server >/dev/null)
for deb in "$work"/debs/*.deb; do
    dpkg-deb -x "$deb" "$work/root"
done
# unpacks the upstream tarball and applies Debian's patches (--no-check: apt has already verified the
# files against the signed archive index; the .dsc's own signature needs keys that are not installed)
dpkg-source --no-check -x "$work/src/kubernetes_${version}.dsc" "$work/src/kubernetes" >/dev/null

# --- build ----------------------------------------------------------------------------------------
goroot="$work/root/usr/lib/go-1.19"
echo "kube-build: building kube-apiserver and kube-controller-manager with $("$goroot/bin/go" version)"
mkdir -p "$work/home" "$work/gocache" "$work/gopath"
(
    cd "$work/src/kubernetes"
    env -u GOFLAGS -u GO111MODULE -u GOOS -u GOARCH \
        HOME="$work/home" GOROOT="$goroot" PATH="$goroot/bin:$PATH" \
        GOCACHE="$work/gocache" GOPATH="$work/gopath" GOPROXY=off CGO_ENABLED=0 \
        make WHAT="cmd/kube-apiserver cmd/kube-controller-manager"
)

# --- install: stage next to the cache, then rename each binary into place (atomic per file) --------
staging="$(mktemp -d "$CACHE/.staging.XXXXXX")"
cp -L "$work/src/kubernetes/_output/bin/kube-apiserver" "$staging/"
cp -L "$work/src/kubernetes/_output/bin/kube-controller-manager" "$staging/"
cp -L "$work/root/usr/bin/etcd" "$staging/"
chmod 0755 "$staging"/*
mkdir -p "$BIN"
for name in "${BINARIES[@]}"; do
    mv -f "$staging/$name" "$BIN/$name"
done
echo "kube-build: kube-apiserver and kube-controller-manager $version, etcd $(dpkg-deb -f "$work"/debs/etcd-server_*.deb Version)"
echo "kube-build: binaries in $BIN; built in $((SECONDS - started)) s"
