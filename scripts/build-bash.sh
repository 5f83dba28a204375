#!/usr/bin/env bash
# Build bash 5.2.15 with patches/bash-exec-wrapper.patch into a per-patch cache
# directory and print the binary's path as the last line on stdout.
# Progress goes to stderr.  Safe to run repeatedly and concurrently.
# The whole script is one { } block so bash parses it completely before
# running: editing or updating the file during a build cannot derail it.
{
set -euo pipefail
umask 022

readonly BASH_VER=5.2.15
readonly DEB_SRC_VERSION=5.2.15-2

# Pinned sha256 of everything we accept as input.
readonly SHA_DEB_ORIG=7a315bc0e9d90713159e4390ec1096a41e4f33cd8cc3d1a749a8e5ad56600f51   # bash_5.2.15.orig.tar.gz (already patch level 15)
readonly SHA_DEB_DEBIAN=998f8ea5b754a734ae7d8306e149c43d713ddfcf49623a036004b729237dbcca # bash_5.2.15-2.debian.tar.xz
readonly SHA_GNU_52=a139c166df7ff4471c5e0733051642ee5556c1cc8a4a78f145583c5c81ab32fb     # GNU bash-5.2.tar.gz (patch level 0)
# Upstream patches 001..015 are checked by their result: every file they touch
# must end up byte-identical to the same file in Debian's pinned 5.2.15 tree.
readonly PL15_MANIFEST='c8b73c330d48b271a2d5c724d776d9d507a07eda72cd19e89bad84c178ab9a49  builtins/common.h
354527e4075e97b277474e7d99a82d4753908d857daedd0606c4fb2d83f0712c  builtins/eval.def
e9de9e0e40e771ca669b53500f50904a8d2c78dfa332860ded394c74414cef4f  builtins/evalstring.c
77a8b2850af2b96f6dbfff101f49142b792c716a2228df292c372c15bbca5bb0  builtins/read.def
c1bb281be9ac815fce0ab20022689d8ca8702e63c0de2cae94ebc9b4e812d91d  builtins/shopt.def
a53165ca0df46c0a8cf84ab4165603a88ac428732639d17b7b77e97456600664  command.h
0b8a0196296cb3cc206a53d6286b4edc3285333ae18e8be7bab55f75e1cf94c6  execute_cmd.c
6235813f64840c65463feceb65e9c89b377654f7782b232a5ea88b49b1a10d93  expr.c
78c4af9b0f2c6766d1bb793d538f2599059a3e5299621c5d352c8d6c82332a04  general.c
7c4c53e1c63ad00ef32472cb1e5fca54936b18c77f1193a7d5e26d554e751bf9  jobs.c
1022cdb634238b9f7eac92abb2346a5b7f7b9904ad430ed4d02dc4a4dee3314e  lib/readline/nls.c
e4448de697288fc28d5dda4be388f5d2826e931d5713c8ad77a4f3885731c497  parse.y
aec7252159526afdb6ce4c07be456833a2ce11fd3257e0eed5b81b25f9170f4d  parser.h
ee84453eaf69468322ea762a77d132c99bd0519c75a9aca9e49ed2a1e2e65f0e  patchlevel.h
323a7b7aa4cda8119426f0b1b3afb1b30d10f1b2b73601e0d43a2c5d4e464fb3  print_cmd.c
69a6622c9460b228632cf4deb57233e59159f2bac8a600baa3c1f72635fbeff0  shell.c
c58891b261feb17e0fc8a63a6f3ddcbc4e18f3edb757774decfe89f5d95d0cd1  sig.c
11ee0bede04f47701517c4dc41e9410f4979adde261c54c6567fe432f70178a9  subst.c
24b032c05e41fbab15217cb29c89edb4f9c002e7599727948823e687c230421a  trap.c
af38cb98df60501b185d8c81c8c6d6d69023098cd0083cf552ff7d7f389e25b8  y.tab.c'
readonly GNU_MIRROR_URL=${BASH_GNU_MIRROR:-https://ftpmirror.gnu.org/bash}

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
PATCH_FILE=$ROOT/patches/bash-exec-wrapper.patch

log() { printf 'build-bash: %s\n' "$*" >&2; }
die() { printf 'build-bash: error: %s\n' "$*" >&2; exit 1; }

usage() {
  cat <<EOF
Usage: scripts/build-bash.sh [--stock] [--print-path] [--force] [--help]

Builds bash $BASH_VER with patches/bash-exec-wrapper.patch (every execve goes
through \$EXEC_WRAPPER) and prints the binary's path as the last stdout line.

  --stock       build the same source with the same configure flags WITHOUT our
                patch, and keep the whole build tree (tests/ with recho, zecho,
                printenv, xcase) beside it in src/: the reference for
                scripts/bash-suite.ts (npm run test:bash-suite)
  --print-path  print where the binary is/would be; exit 0 if it exists, 1 if not
  --force       rebuild even if a working binary is cached
  --help        this text

Source, first that applies:
  1. \$BASH_SOURCE_TARBALL: Debian's bash_5.2.15.orig.tar.gz or GNU bash-5.2.tar.gz
     (upstream patches 001-015 then come from \$BASH_PATCHES_DIR, Debian's
     patch set, or the GNU mirror); an unknown tarball needs BASH_SOURCE_SHA256.
  2. the distribution's source package ($DEB_SRC_VERSION) via apt-get source,
     using a private apt state directory (system apt config is not modified).
  3. GNU mirror download (\$BASH_GNU_MIRROR, default $GNU_MIRROR_URL).

Cache: \${CODEX_ESCALATE_CACHE_DIR:-\${XDG_CACHE_HOME:-\$HOME/.cache}/codex-shell-escalation}/bash-$BASH_VER-<patch sha256[0:12]>/bash
  (--stock: bash-$BASH_VER-stock-<build flags sha256[0:12]>/bash, its tree in src/)
EOF
}

FORCE=0
PRINT_ONLY=0
STOCK=0
for arg in "$@"; do
  case $arg in
    --stock) STOCK=1 ;;
    --force) FORCE=1 ;;
    --print-path) PRINT_ONLY=1 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $arg" ;;
  esac
done

# Missing tool -> name the Debian package that provides it.
need() {
  local tool=$1 pkg=$2
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found; install it: apt-get install $pkg"
}

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

need sha256sum coreutils
[[ -r $PATCH_FILE ]] || die "patch not found: $PATCH_FILE"
PATCH_ID=$(sha256_of "$PATCH_FILE" | cut -c1-12)
if [[ -z ${CODEX_ESCALATE_CACHE_DIR:-} && -z ${XDG_CACHE_HOME:-} && -z ${HOME:-} ]]; then
  die "cannot pick a cache directory: set CODEX_ESCALATE_CACHE_DIR (or XDG_CACHE_HOME / HOME)"
fi
CACHE_ROOT=${CODEX_ESCALATE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/codex-shell-escalation}
# Both builds use exactly these flags (the stock one is a reference only if
# it is the same program minus our patch); the stock cache key hashes them.
readonly CONFIGURE_FLAGS='--without-bash-malloc --disable-nls'
BUILD_CFLAGS=${CFLAGS:--O2 -g}
# Helper programs bash's own tests/ run (its Makefile's TESTS_SUPPORT).
readonly TESTS_SUPPORT='recho zecho printenv xcase'
if [[ $STOCK == 1 ]]; then
  STOCK_ID=$(printf '%s\n' "$CONFIGURE_FLAGS" "$BUILD_CFLAGS" "$TESTS_SUPPORT" | sha256sum | cut -c1-12)
  DEST_DIR=$CACHE_ROOT/bash-$BASH_VER-stock-$STOCK_ID
else
  DEST_DIR=$CACHE_ROOT/bash-$BASH_VER-$PATCH_ID
fi
DEST=$DEST_DIR/bash

# A cached binary counts only if it is 5.2.15 and actually intercepts: with a
# wrapper that cannot exist, an exec must fail closed with 126.
works() {
  local bin=$1 ver rc=0
  [[ -x $bin ]] || return 1
  ver=$(env -u EXEC_WRAPPER -u BASH_EXEC_WRAPPER "$bin" --norc --noprofile -c 'echo "${BASH_VERSINFO[0]}.${BASH_VERSINFO[1]}.${BASH_VERSINFO[2]}"' 2>/dev/null) || return 1
  [[ $ver == "$BASH_VER" ]] || return 1
  env -u BASH_EXEC_WRAPPER EXEC_WRAPPER=/nonexistent/codex-build-check "$bin" --norc --noprofile -c '/bin/true' 2>/dev/null || rc=$?
  if [[ $STOCK == 1 ]]; then
    # Stock ignores the wrapper, and its test tree must be complete.
    local t
    [[ $rc == 0 && -f $(dirname "$bin")/src/tests/run-all ]] || return 1
    for t in $TESTS_SUPPORT; do [[ -x $(dirname "$bin")/src/tests/$t ]] || return 1; done
    return 0
  fi
  [[ $rc == 126 ]]
}

if [[ $PRINT_ONLY == 1 ]]; then
  printf '%s\n' "$DEST"
  [[ -x $DEST ]] && exit 0 || exit 1
fi

if [[ $FORCE == 0 ]] && works "$DEST"; then
  printf '%s\n' "$DEST"
  exit 0
fi

need flock util-linux
need mktemp coreutils
mkdir -p "$CACHE_ROOT" || die "cannot create cache directory $CACHE_ROOT"
exec 9>"$CACHE_ROOT/.build.lock" || die "cannot open lock file $CACHE_ROOT/.build.lock"
if ! flock -n 9; then
  log "another build is running; waiting for its lock ($CACHE_ROOT/.build.lock)"
  flock 9
fi
# The build we waited for may have produced exactly what we need.
if [[ $FORCE == 0 ]] && works "$DEST"; then
  log "using $DEST"
  printf '%s\n' "$DEST"
  exit 0
fi

need tar tar
need gzip gzip
need patch patch
need make make
need cc build-essential
# Only the lock holder creates .build.* dirs, so any left now are from a
# killed build.
rm -rf "$CACHE_ROOT"/.build.??????
WORK=$(mktemp -d "$CACHE_ROOT/.build.XXXXXX")
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
SRC=$WORK/src

patch_level() {
  sed -n 's/^#define[[:space:]]*PATCHLEVEL[[:space:]]*\([0-9]*\).*/\1/p' "$1/patchlevel.h"
}

# Unpack a tarball whose single top-level directory becomes $SRC.
unpack_into_src() {
  local tarball=$1 top
  mkdir -p "$WORK/unpack"
  tar -xf "$tarball" -C "$WORK/unpack" || die "cannot unpack $tarball"
  top=$(find "$WORK/unpack" -mindepth 1 -maxdepth 1 -type d)
  [[ -n $top && $(wc -l <<<"$top") == 1 && -f $top/patchlevel.h ]] || die "$tarball does not look like a bash source tarball"
  mv "$top" "$SRC"
}

# Bring a bash 5.2 tree up to patch level 15 with upstream patches: from
# $BASH_PATCHES_DIR (GNU bash52-NNN or Debian bash52-NNN.diff), else a
# downloaded GNU set. The resulting files are checked against PL15_MANIFEST.
bring_to_pl15() {
  local pl n f dir=${BASH_PATCHES_DIR:-}
  pl=$(patch_level "$SRC")
  [[ $pl =~ ^[0-9]+$ ]] || die "cannot read PATCHLEVEL from patchlevel.h"
  (( pl <= 15 )) || die "source is bash 5.2 patch level $pl; this build needs exactly 15"
  if (( pl == 15 )); then
    check_pl15
    return 0
  fi
  if [[ -z $dir ]]; then
    dir=$WORK/upstream-patches
    mkdir -p "$dir"
    for (( n = pl + 1; n <= 15; n++ )); do
      f=$(printf 'bash52-%03d' "$n")
      download "$GNU_MIRROR_URL/bash-5.2-patches/$f" "$dir/$f" || die "cannot download upstream patch $f (set BASH_PATCHES_DIR to a directory holding bash52-001..015)"
    done
  fi
  for (( n = pl + 1; n <= 15; n++ )); do
    f=$(printf 'bash52-%03d' "$n")
    if [[ -f $dir/$f ]]; then
      log "applying upstream $f"
      patch -s -p0 -d "$SRC" <"$dir/$f" >&2 || die "upstream patch $f does not apply"
    elif [[ -f $dir/$f.diff ]]; then
      log "applying upstream $f (Debian form)"
      patch -s -p1 -d "$SRC" <"$dir/$f.diff" >&2 || die "upstream patch $f.diff does not apply"
    else
      die "upstream patch $f not found in $dir"
    fi
  done
  check_pl15
}

check_pl15() {
  (cd "$SRC" && sha256sum --quiet -c <<<"$PL15_MANIFEST" >&2) ||
    die "the source tree does not match the pinned contents of bash 5.2.15 (files touched by upstream patches 001-015)"
}

download() {
  local url=$1 out=$2
  log "downloading $url"
  if command -v curl >/dev/null 2>&1; then
    curl -fsSL --retry 2 --connect-timeout 15 -o "$out" "$url" || return 1
  elif command -v wget >/dev/null 2>&1; then
    wget -q -T 15 -O "$out" "$url" || return 1
  else
    die "neither curl nor wget found; install one: apt-get install curl"
  fi
}

from_tarball() {
  local tb=$1 sum
  [[ -r $tb ]] || die "BASH_SOURCE_TARBALL=$tb is not a readable file"
  sum=$(sha256_of "$tb")
  case $sum in
    "$SHA_DEB_ORIG") log "source: $tb (Debian bash_5.2.15.orig.tar.gz, sha256 ok)" ;;
    "$SHA_GNU_52") log "source: $tb (GNU bash-5.2.tar.gz, sha256 ok)" ;;
    *)
      if [[ -n ${BASH_SOURCE_SHA256:-} && $sum == "${BASH_SOURCE_SHA256,,}" ]]; then
        log "source: $tb (sha256 matches BASH_SOURCE_SHA256)"
      else
        die "BASH_SOURCE_TARBALL=$tb has sha256 $sum, which is not a pinned bash 5.2/5.2.15 tarball (set BASH_SOURCE_SHA256=$sum to accept it deliberately)"
      fi ;;
  esac
  unpack_into_src "$tb"
  bring_to_pl15
}

# Write deb-src entries mirroring every configured Debian "deb" source.
derive_deb_src() {
  local out_list=$1 out_parts=$2 f
  : >"$out_list"
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -r $f ]] || continue
    # one-line format: "deb[-src] [opts] uri suite comps" -> the same as deb-src
    sed -n 's/^[[:space:]]*deb\(-src\)\{0,1\}\([[:space:]]\)/deb-src\2/p' "$f" >>"$out_list"
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -r $f ]] || continue
    # deb822: keep each stanza whose Types include deb or deb-src; make it deb-src only
    awk '
      function flush() { if (stanza != "" && isdeb && enabled) printf "%s\n", stanza; stanza=""; isdeb=0; enabled=1 }
      BEGIN { enabled=1 }
      /^[[:space:]]*$/ { flush(); next }
      /^#/ { next }
      /^Types:/ { for (i = 2; i <= NF; i++) if ($i == "deb" || $i == "deb-src") isdeb=1; stanza = stanza "Types: deb-src\n"; next }
      /^Enabled:[[:space:]]*no/ { enabled=0 }
      { stanza = stanza $0 "\n" }
      END { flush() }
    ' "$f" >"$out_parts/$(basename "$f")"
  done
}

from_apt() {
  command -v apt-get >/dev/null 2>&1 || { log "apt-get not available"; return 1; }
  local apt=$WORK/apt dl=$WORK/apt-dl
  mkdir -p "$apt/etc/sources.list.d" "$apt/state/lists/partial" "$apt/cache/archives/partial" "$dl"
  derive_deb_src "$apt/etc/sources.list" "$apt/etc/sources.list.d"
  if ! grep -qs . "$apt/etc/sources.list" "$apt"/etc/sources.list.d/*; then
    log "no Debian apt sources configured"
    return 1
  fi
  local -a opts=(
    -o "Dir::Etc::SourceList=$apt/etc/sources.list"
    -o "Dir::Etc::SourceParts=$apt/etc/sources.list.d"
    -o "Dir::State=$apt/state"
    -o "Dir::Cache=$apt/cache"
    -o "APT::Sandbox::User=$(id -un)"
  )
  log "apt-get update (private state in $apt)"
  # Some configured repositories may have no source indexes; that is fine as
  # long as the bash source package is found afterwards.
  apt-get "${opts[@]}" -q update >"$WORK/apt-update.log" 2>&1 ||
    log "apt-get update reported errors (see below); trying anyway: $(tail -n 3 "$WORK/apt-update.log" | tr '\n' ' ')"
  log "apt-get source --download-only bash=$DEB_SRC_VERSION"
  if ! (cd "$dl" && apt-get "${opts[@]}" -q source --download-only "bash=$DEB_SRC_VERSION") >"$WORK/apt-source.log" 2>&1; then
    log "apt-get source failed: $(tail -n 3 "$WORK/apt-source.log" | tr '\n' ' ')"
    return 1
  fi
  local orig=$dl/bash_$BASH_VER.orig.tar.gz deb=$dl/bash_$DEB_SRC_VERSION.debian.tar.xz
  [[ -f $orig && -f $deb ]] || { log "apt-get source did not produce $orig and $deb"; return 1; }
  [[ $(sha256_of "$orig") == "$SHA_DEB_ORIG" ]] || die "sha256 mismatch for $orig"
  [[ $(sha256_of "$deb") == "$SHA_DEB_DEBIAN" ]] || die "sha256 mismatch for $deb"
  log "source: Debian bash $DEB_SRC_VERSION (sha256 ok)"
  if command -v dpkg-source >/dev/null 2>&1; then
    (cd "$dl" && dpkg-source -q --no-check -x "bash_$DEB_SRC_VERSION.dsc" "$SRC") >&2 || die "dpkg-source -x failed"
  else
    log "dpkg-source not found (package dpkg-dev); applying the Debian patch series by hand"
    need xz xz-utils
    unpack_into_src "$orig"
    tar -xJf "$deb" -C "$SRC" || die "cannot unpack $deb"
    local p
    while read -r p; do
      p=${p%%#*}; p=${p//[[:space:]]/}
      [[ -n $p ]] || continue
      patch -s -p1 -d "$SRC" <"$SRC/debian/patches/$p" >&2 || die "Debian patch $p does not apply"
    done <"$SRC/debian/patches/series"
  fi
  # The Debian orig tarball is already 5.2 + upstream 001..015; check it.
  [[ $(patch_level "$SRC") == 15 ]] || die "Debian source is not at patch level 15"
  check_pl15
}

from_gnu() {
  local tb=$WORK/bash-5.2.tar.gz
  download "$GNU_MIRROR_URL/bash-5.2.tar.gz" "$tb" || return 1
  [[ $(sha256_of "$tb") == "$SHA_GNU_52" ]] || die "sha256 mismatch for downloaded bash-5.2.tar.gz"
  log "source: GNU bash-5.2.tar.gz (sha256 ok)"
  unpack_into_src "$tb"
  bring_to_pl15
}

if [[ -n ${BASH_SOURCE_TARBALL:-} ]]; then
  from_tarball "$BASH_SOURCE_TARBALL"
elif from_apt; then
  :
else
  rm -rf "$SRC" "$WORK/unpack"
  log "falling back to the GNU mirror"
  from_gnu || die "could not get bash source: no BASH_SOURCE_TARBALL, apt source failed, GNU mirror unreachable"
fi

if [[ $STOCK == 0 ]]; then
  log "applying $(basename "$PATCH_FILE")"
  patch -s -p1 -d "$SRC" <"$PATCH_FILE" >&2 || die "our patch does not apply to the bash $BASH_VER tree"
else
  log "stock build: $(basename "$PATCH_FILE") NOT applied"
fi

JOBS=$(nproc 2>/dev/null || echo 2)
log "configuring ($CONFIGURE_FLAGS)"
# Patch files get fresh mtimes; keep generated files newer than their inputs
# so make does not want bison/autoconf.
touch "$SRC/y.tab.c" "$SRC/y.tab.h" "$SRC/configure" "$SRC/config.h.in" 2>/dev/null || true
# shellcheck disable=SC2086 # CONFIGURE_FLAGS is a fixed list of words
(cd "$SRC" && ./configure -q $CONFIGURE_FLAGS \
  CFLAGS="$BUILD_CFLAGS" >"$WORK/configure.log" 2>&1) || {
  tail -n 20 "$WORK/configure.log" >&2
  die "configure failed (a C compiler and make are needed: apt-get install build-essential)"
}
log "building with make -j$JOBS (about a minute)"
(cd "$SRC" && make -j"$JOBS" bash >"$WORK/make.log" 2>&1) || {
  tail -n 30 "$WORK/make.log" >&2
  die "make failed; full log was $WORK/make.log"
}
# Install atomically: a complete directory is renamed into place.
STAGE=$WORK/stage
mkdir -p "$STAGE"
if [[ $STOCK == 1 ]]; then
  log "building the test helpers ($TESTS_SUPPORT)"
  # shellcheck disable=SC2086
  (cd "$SRC" && make $TESTS_SUPPORT >>"$WORK/make.log" 2>&1 && cp $TESTS_SUPPORT tests/) || {
    tail -n 30 "$WORK/make.log" >&2
    die "make $TESTS_SUPPORT failed"
  }
  mv "$SRC" "$STAGE/src"
  cp "$STAGE/src/bash" "$STAGE/bash"
else
  cp "$SRC/bash" "$STAGE/bash"
fi
chmod 755 "$STAGE" "$STAGE/bash"
works "$STAGE/bash" || die "the built bash does not pass the self-check"
if [[ -e $DEST_DIR ]]; then
  mv "$DEST_DIR" "$WORK/old"
fi
mv -T "$STAGE" "$DEST_DIR"
log "installed $DEST"
printf '%s\n' "$DEST"
exit 0
}
