#!/usr/bin/env bash
# Runs MPICH's own test suite (test/mpi of Debian's `mpich` source package, fetched at test
# time, never committed) natively and under mana, and reports pass/fail per test side by side.
# See docs/mpich-suite.md.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HERE=$REPO/scripts/mpich-suite
CACHE=${MANA_SUITE_CACHE:-/var/tmp/mana-mpich-suite}
TIMEOUT=${MPITEST_TIMEOUT:-60}
JOBS=${MANA_SUITE_JOBS:-$(nproc 2>/dev/null || echo 2)}
ALL_MODES=native-mpich,mana-mpich,mana-mpich-plainbin,native-openmpi,mana-openmpi
# checkpoint-restart modes: not in the default set (each test runs three times and restarts)
CKPT_MODES=mana-mpich-ckpt,mana-openmpi-ckpt,mana-mpich-ckpt-openmpi,mana-openmpi-ckpt-mpich
FULL_DIRS="attr errhan info init group topo comm datatype pt2pt io coll"
LISTNAME=testlist.mana-suite.$$   # per invocation: runs never read each other's lists
# test/mpi configure: C only, no threads/spawn/ft/dtpools/perf/partitioned tests.
CONFARGS=(--enable-fortran=no --disable-cxx --enable-threads=single --disable-spawn
          --disable-ft-tests --disable-dtpools --disable-perftest --disable-part)

usage() {
  cat <<EOF
usage: scripts/mpich-suite.sh [--subset FILE | --full] [--modes M1,M2,...] [--report FILE.json]
                              [options]

Fetches MPICH's test suite (Debian source package \`mpich\`, test/mpi) into the cache, builds
it once per flavour and runs the selected tests in each mode, then prints a table
(test | one column per mode), totals, and the tests that pass natively but fail under mana.

selection (default: --subset test/mpich-suite/subset.txt):
  --subset FILE      tests listed in FILE: lines "DIR", "DIR/PROG" or "DIR/PROG NP [k=v...]"
  --full             all C tests of: $FULL_DIRS

modes (default: $ALL_MODES)
  native-mpich         built with mpicc.mpich,   run with mpirun.mpich
  native-openmpi       built with mpicc.openmpi, run with mpirun.openmpi --oversubscribe
  mana-mpich           built with \`bin/mana mpicc\`, run with
                       bin/mana launch --new-coordinator --coord-port 0 -- mpirun.mpich
  mana-openmpi         the same binaries, run with ... -- mpirun.openmpi --oversubscribe
  mana-mpich-plainbin  the native-mpich binaries (plain mpicc.mpich) run under mana launch
                       with mana's shim first in LD_LIBRARY_PATH
checkpoint-restart modes (only when named): $CKPT_MODES
  mana-X-ckpt          the mana-X job is checkpointed in its middle (each rank held before
                       the half of its MPI calls, counted in a first run), all its processes
                       are SIGKILLed and \`mana restart --mpi X\` runs it to the end
  mana-X-ckpt-Y        the same, restarted on the other MPI (\`mana restart --mpi Y\`)
  a test that ends before its checkpoint is taken is \`pass-nockpt\` (or \`fail-nockpt\`),
  never counted in the pass rate
  ckpt                 shorthand for all four

options:
  --report FILE.json   where to write the JSON report (default: OUTDIR/report.json)
  --outdir DIR         where logs, TAP and JUnit files go (default: a new directory
                       under \$MANA_SUITE_CACHE/runs)
  --timeout SECS       per-test time limit (default \$MPITEST_TIMEOUT, else 60)
  --interval SECS      mana modes (not the ckpt ones): checkpoint every SECS seconds
                       (mana launch -i)
  --jobs N             parallel make jobs (default \$MANA_SUITE_JOBS, else nproc)
  --skip-unavailable   a mana mode that cannot run (shim not built) is reported, but does
                       not make the exit status non-zero
  --list               print the selected tests and exit
  --fetch-only         fetch and unpack the suite, then exit
  --build-only         fetch and build what the selection and modes need, then exit
  -q, --quiet          no per-test progress lines
  -h, --help           this help

environment: MANA_SUITE_CACHE (default /var/tmp/mana-mpich-suite), MPITEST_TIMEOUT,
             MANA_SUITE_JOBS, MANA_SUITE_MPICH_VERSION (source version to fetch; default:
             that of the installed libmpich-dev), MANA_SUITE_MIRROR (Debian mirror URI),
             MANA_SUITE_MANA_CC (compiler for the mana flavour; default "bin/mana mpicc")
exit status: 0 all good; 1 some test passed natively but not under mana;
             2 setup error (fetch/build failed, bad usage, a requested mode unavailable)
EOF
}

log() { printf 'mpich-suite: %s\n' "$*" >&2; }
die() { log "$*"; exit 2; }

# ---------------------------------------------------------------------------------------
# options
SELECTION=subset
SUBSET_FILE=$REPO/test/mpich-suite/subset.txt
MODES=$ALL_MODES
REPORT=
OUTDIR=
INTERVAL=
SKIP_UNAVAILABLE=0
ACTION=run
QUIET=0
while [ $# -gt 0 ]; do
  case "$1" in
    --subset) SELECTION=subset; SUBSET_FILE=${2:?--subset needs a file}; shift 2 ;;
    --subset=*) SELECTION=subset; SUBSET_FILE=${1#*=}; shift ;;
    --full) SELECTION=full; shift ;;
    --modes) MODES=${2:?--modes needs a list}; shift 2 ;;
    --modes=*) MODES=${1#*=}; shift ;;
    --report) REPORT=${2:?--report needs a file}; shift 2 ;;
    --report=*) REPORT=${1#*=}; shift ;;
    --outdir) OUTDIR=${2:?--outdir needs a directory}; shift 2 ;;
    --outdir=*) OUTDIR=${1#*=}; shift ;;
    --timeout) TIMEOUT=${2:?--timeout needs seconds}; shift 2 ;;
    --timeout=*) TIMEOUT=${1#*=}; shift ;;
    --interval) INTERVAL=${2:?--interval needs seconds}; shift 2 ;;
    --interval=*) INTERVAL=${1#*=}; shift ;;
    --jobs|-j) JOBS=${2:?--jobs needs a number}; shift 2 ;;
    --jobs=*) JOBS=${1#*=}; shift ;;
    --skip-unavailable) SKIP_UNAVAILABLE=1; shift ;;
    --list) ACTION=list; shift ;;
    --fetch-only) ACTION=fetch; shift ;;
    --build-only) ACTION=build; shift ;;
    -q|--quiet) QUIET=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) log "unknown argument: $1 (see --help)"; exit 2 ;;
  esac
done
[[ "$TIMEOUT" =~ ^[0-9]+$ ]] || die "--timeout: not a number of seconds: $TIMEOUT"
[[ "$JOBS" =~ ^[0-9]+$ ]] || die "--jobs: not a number: $JOBS"
[ -z "$INTERVAL" ] || [[ "$INTERVAL" =~ ^[0-9]+$ ]] || die "--interval: not a number of seconds: $INTERVAL"
MODES=$(printf ',%s,' "$MODES" | sed "s/,ckpt,/,$CKPT_MODES,/g; s/^,//; s/,\$//")
IFS=, read -r -a MODE_LIST <<<"$MODES"
for m in "${MODE_LIST[@]}"; do
  case ",$ALL_MODES,$CKPT_MODES," in *",$m,"*) ;;
    *) die "unknown mode \"$m\" (modes: $ALL_MODES,$CKPT_MODES, or ckpt)" ;; esac
done
if [ "$SELECTION" = subset ] && [ "$ACTION" != fetch ]; then
  [ -f "$SUBSET_FILE" ] || die "subset file not found: $SUBSET_FILE"
  SUBSET_FILE=$(cd "$(dirname "$SUBSET_FILE")" && pwd)/$(basename "$SUBSET_FILE")
fi
command -v node >/dev/null || die "node is required"
export USER=${USER:-$(id -un)}   # runtests runs `ps -U $USER`

mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)

# ---------------------------------------------------------------------------------------
# fetch: Debian source package `mpich` -> $CACHE/src/<version>/test-mpi
SUITE_VERSION=
SRC=
fetch_suite() {
  local want=${MANA_SUITE_MPICH_VERSION:-}
  if [ -z "$want" ]; then
    want=$(dpkg-query -W -f='${source:Version}' libmpich-dev 2>/dev/null || true)
  fi
  if [ -n "$want" ] && [ -f "$CACHE/src/$want/test-mpi/.mana-complete" ]; then
    SUITE_VERSION=$want; SRC=$CACHE/src/$want/test-mpi; return 0
  fi
  exec 8>"$CACHE/fetch.lock"
  flock 8
  if [ -n "$want" ] && [ -f "$CACHE/src/$want/test-mpi/.mana-complete" ]; then
    SUITE_VERSION=$want; SRC=$CACHE/src/$want/test-mpi; exec 8>&-; return 0
  fi
  local codename mirror apt dl
  codename=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
  codename=${codename:-bookworm}
  mirror=${MANA_SUITE_MIRROR:-}
  if [ -z "$mirror" ]; then
    # the mirror the system already uses for its main archive (not -security)
    mirror=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/ {print $2}' |
             grep -v -e security -e nodesource -e google | grep -m1 debian || true)
  fi
  if [ -z "$mirror" ]; then
    mirror=$(grep -h '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
             awk '{for (i=2;i<=NF;i++) if ($i ~ /^https?:/) {print $i; exit}}' | grep -v security |
             grep -m1 debian || true)
  fi
  mirror=${mirror:-http://deb.debian.org/debian}
  apt=$CACHE/apt
  mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial"
  {
    echo "Types: deb deb-src"
    echo "URIs: $mirror"
    echo "Suites: $codename $codename-updates"
    echo "Components: main"
    [ -f /usr/share/keyrings/debian-archive-keyring.gpg ] &&
      echo "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"
  } >"$apt/mana-mpich-suite.sources"
  local aptopts=(-o "Dir::Etc::SourceList=$apt/mana-mpich-suite.sources"
                 -o Dir::Etc::SourceParts=/dev/null
                 -o "Dir::State::Lists=$apt/lists"
                 -o "Dir::Cache=$apt/cache"
                 -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache=
                 -o APT::Sandbox::User="$(id -un)")
  log "fetching the mpich source package ${want:+$want }from $mirror ($codename) ..."
  if ! apt-get "${aptopts[@]}" -q update >"$apt/update.log" 2>&1; then
    tail -5 "$apt/update.log" >&2
    die "apt-get update (private sources list $apt/mana-mpich-suite.sources) failed; see $apt/update.log"
  fi
  dl=$(mktemp -d "$CACHE/dl.XXXXXX")
  if ! (cd "$dl" && { { [ -n "$want" ] && apt-get "${aptopts[@]}" -q source --download-only "mpich=$want"; } ||
                      apt-get "${aptopts[@]}" -q source --download-only mpich; }) >"$apt/source.log" 2>&1; then
    tail -5 "$apt/source.log" >&2
    rm -rf "$dl"
    die "apt-get source --download-only mpich failed; see $apt/source.log"
  fi
  local dsc ver
  dsc=$(ls "$dl"/mpich_*.dsc | head -1)
  ver=$(awk '/^Version:/ {print $2; exit}' "$dsc")
  [ -n "$ver" ] || die "cannot read the version from $dsc"
  log "unpacking mpich $ver (test/mpi only is kept) ..."
  if command -v dpkg-source >/dev/null; then
    (cd "$dl" && dpkg-source -q -x "$(basename "$dsc")" tree) >"$dl/unpack.log" 2>&1 ||
      { cat "$dl/unpack.log" >&2; die "dpkg-source -x failed"; }
  else
    mkdir -p "$dl/tree"
    tar -xf "$(ls "$dl"/mpich_*.orig.tar.* | head -1)" -C "$dl/tree" --strip-components=1 \
      --wildcards '*/test/mpi/*' || die "tar could not unpack test/mpi"
  fi
  [ -x "$dl/tree/test/mpi/configure" ] || die "the unpacked source has no test/mpi/configure"
  rm -rf "$CACHE/src/$ver"
  mkdir -p "$CACHE/src/$ver"
  mv "$dl/tree/test/mpi" "$CACHE/src/$ver/test-mpi"
  mv "$dl"/mpich_* "$CACHE/src/$ver/" 2>/dev/null || true
  rm -rf "$dl" "$apt/lists" "$apt/cache"   # the private apt state is only needed for the fetch
  printf 'mpich %s from %s, unpacked %s\n' "$ver" "$mirror" "$(date -Is)" >"$CACHE/src/$ver/test-mpi/.mana-complete"
  SUITE_VERSION=$ver; SRC=$CACHE/src/$ver/test-mpi
  exec 8>&-
}

# ---------------------------------------------------------------------------------------
# build: one configured tree per flavour under $CACHE/build/<version>/<flavour>
mode_flavour() {
  case "$1" in
    native-mpich|mana-mpich-plainbin) echo native-mpich ;;
    native-openmpi) echo native-openmpi ;;
    mana-mpich|mana-openmpi|mana-*-ckpt*) echo mana ;;
  esac
}
mode_launcher() {
  case "$1" in *-ckpt*) mode_launcher "${1%%-ckpt*}" ;; *openmpi) echo openmpi ;; *) echo mpich ;; esac
}
mode_restart_mpi() {   # the MPI a ckpt mode restarts on; nothing for the other modes
  case "$1" in *-ckpt-*) echo "${1##*-ckpt-}" ;; *-ckpt) mode_launcher "$1" ;; esac
}
mode_is_mana() {
  case "$1" in mana-*) return 0 ;; *) return 1 ;; esac
}

flavour_cc() {
  case "$1" in
    native-mpich) echo mpicc.mpich ;;
    native-openmpi) echo mpicc.openmpi ;;
    mana) echo "${MANA_SUITE_MANA_CC:-$REPO/bin/mana mpicc}" ;;
  esac
}
flavour_cppflags() {
  case "$1" in native-openmpi) echo "-DOMPI_OMIT_MPI1_COMPAT_DECLS=0" ;; *) echo "" ;; esac
}
# The mana flavour is built with this checkout's shim: one tree per checkout, so that runs
# from several worktrees sharing the cache do not rebuild it from scratch in turn.
flavour_dir() {
  case "$1" in
    mana) echo "mana-$(printf '%s' "$REPO" | sha256sum | cut -c1-8)" ;;
    *) echo "$1" ;;
  esac
}
# What the configured tree depends on besides the suite itself: compiler identity, MPI
# version and, for mana, the shim's headers. A change starts the flavour's build afresh.
flavour_identity() {
  local f=$1 cc
  cc=$(flavour_cc "$f")
  printf '%s\n' "cc=$cc" "cppflags=$(flavour_cppflags "$f")" "confargs=${CONFARGS[*]}"
  case "$f" in
    native-mpich) mpicc.mpich -show 2>&1; dpkg-query -W libmpich-dev 2>/dev/null || true ;;
    native-openmpi) mpicc.openmpi -showme 2>&1; dpkg-query -W libopenmpi-dev 2>/dev/null || true ;;
    mana) find "$REPO/mpi-shim" -name '*.h' \( -path '*/include/*' -o -path '*/out/*' \) \
            -type f 2>/dev/null | LC_ALL=C sort | xargs -r sha256sum ;;
  esac
}

first_error() {  # the first compiler/configure error line of a log, shortened
  local l
  l=$(grep -m1 -E 'error:|Error|cannot|not found' "$1" 2>/dev/null || tail -1 "$1" 2>/dev/null)
  l=${l##*/}   # drop the directory part of a "path/file.c:line: error: ..." line
  printf '%s' "${l:0:200}"
}

# Configure the flavour's tree if needed. Sets BUILD (and FLAVOUR_ERROR on failure).
BUILD=
FLAVOUR_ERROR=
configure_flavour() {
  local f=$1 id
  BUILD=$CACHE/build/$SUITE_VERSION/$(flavour_dir "$f")
  id=$(flavour_identity "$f")
  if [ -f "$BUILD/.mana-configured" ] && [ "$(cat "$BUILD/.mana-configured")" = "$id" ]; then
    return 0
  fi
  log "configuring test/mpi for $f in $BUILD ..."
  rm -rf "$BUILD"
  mkdir -p "$BUILD"
  local cc cppflags
  cc=$(flavour_cc "$f"); cppflags=$(flavour_cppflags "$f")
  if ! (cd "$BUILD" && "$SRC/configure" CC="$cc" MPICC="$cc" CPPFLAGS="$cppflags" \
          "${CONFARGS[@]}" >configure.log 2>&1); then
    FLAVOUR_ERROR="configure of test/mpi with CC=\"$cc\" failed: $(first_error "$BUILD/configure.log") (see $BUILD/config.log)"
    log "$FLAVOUR_ERROR"
    return 1
  fi
  if ! make -C "$BUILD/util" -j"$JOBS" >"$BUILD/util-build.log" 2>&1; then
    FLAVOUR_ERROR="building test/mpi/util with CC=\"$cc\" failed: $(first_error "$BUILD/util-build.log") (see $BUILD/util-build.log)"
    log "$FLAVOUR_ERROR"
    return 1
  fi
  printf '%s\n' "$id" >"$BUILD/.mana-configured"
}

# Write the runtests lists for the selection into $BUILD and the manifest to $1.
select_tests() {   # manifest [--dry]
  local manifest=$1
  node "$HERE/suite.mjs" select --src "$SRC" --build "$BUILD" --list-name "$LISTNAME" ${2:-} \
    "$SELECTION_FILE" >"$manifest"
}
remove_lists() { [ -z "$BUILD" ] || rm -f "$BUILD"/*/"$LISTNAME"; }
unlock_build() { remove_lists; exec 9>&-; }
trap remove_lists EXIT

# Build the programs of the selection (make -k: a program that does not build is reported
# by runtests as a failed test).
build_selection() {
  local manifest=$1 f=$2 dir progs
  local dirs
  dirs=$(node -e 'const m=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));console.log(m.dirs.join(" "))' "$manifest")
  for dir in $dirs; do
    progs=$(node -e 'const m=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));console.log([...new Set(m.tests.filter(t=>t.dir===process.argv[2]).map(t=>t.prog))].join(" "))' "$manifest" "$dir")
    # shellcheck disable=SC2086
    if ! make -C "$BUILD/$dir" -k -j"$JOBS" $progs >"$BUILD/build-$dir.log" 2>&1; then
      local n
      n=$(for p in $progs; do [ -x "$BUILD/$dir/$p" ] || echo "$p"; done | wc -l)
      log "$f: $n program(s) in $dir did not build (they will be reported as build-fail); see $BUILD/build-$dir.log"
    fi
  done
}

# The ckpt modes' hold library (scripts/mpich-suite/hold.c), built for this run.
build_holdlib() {   # dir
  mkdir -p "$1"
  node "$HERE/hold-gen.mjs" "$REPO/mpi-shim/spec/mpi.api" "$1/hold.gen.c" &&
    cc -std=c11 -O2 -Wall -Wextra -Werror -shared -fPIC -I"$REPO/mpi-shim/include" \
      -I"$REPO/native/include" -o "$1/libmanasuite_hold.so" "$HERE/hold.c" "$1/hold.gen.c" -ldl
}

# ---------------------------------------------------------------------------------------
# mana availability
SHIM_LIB=$REPO/mpi-shim/out/lib
mana_unavailable_reason() {   # prints a one-line reason, or nothing if the mode can run
  local mode=$1
  if [ ! -f "$REPO/dist/cli/main.js" ]; then
    echo "mana CLI is not built (dist/cli/main.js missing): run npm run build"; return
  fi
  if [ ! -e "$SHIM_LIB/libmpi.so.12" ]; then
    echo "mana's MPI shim is not built: mpi-shim/out/lib/libmpi.so.12 is missing"; return
  fi
  if [ "$mode" = mana-mpich-plainbin ]; then
    if [ ! -e "$SHIM_LIB/libmpich.so.12" ]; then
      echo "mpi-shim/out/lib/libmpich.so.12 is missing (binaries from mpicc.mpich link libmpich.so.12)"; return
    fi
  else
    local t
    t=$(mktemp -d "${TMPDIR:-/tmp}/mana-suite-cc.XXXXXX")
    printf '#include <mpi.h>\nint main(int c, char **v) { MPI_Init(&c, &v); MPI_Finalize(); return 0; }\n' >"$t/hello.c"
    if ! (cd "$t" && "$REPO/bin/mana" mpicc -o hello hello.c) >"$t/log" 2>&1; then
      echo "\`bin/mana mpicc\` cannot compile an MPI program: $(head -1 "$t/log")"; rm -rf "$t"; return
    fi
    rm -rf "$t"
  fi
  if ! "$REPO/bin/mana" launch --help >/dev/null 2>&1; then
    echo "\`bin/mana launch --help\` fails"; return
  fi
}

# After building: the test programs must resolve their MPI library to the shim.
check_shim_resolution() {   # $1 = manifest; prints a reason on failure
  local manifest=$1 prog lib
  prog=$(node -e 'const m=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));for(const t of m.tests)console.log(t.dir+"/"+t.prog)' "$manifest" |
         while read -r p; do [ -x "$BUILD/$p" ] && { echo "$BUILD/$p"; break; }; done)
  [ -n "$prog" ] || return 0
  lib=$(LD_LIBRARY_PATH="$SHIM_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ldd "$prog" 2>/dev/null |
        awk '/libmpi(ch)?\.so\.12 =>/ {print $3; exit}')
  case "$lib" in
    "$SHIM_LIB"/*|"$(readlink -f "$SHIM_LIB")"/*) ;;
    *) echo "${prog#"$BUILD"/} resolves its MPI library to \"${lib:-nothing}\", not to mpi-shim/out/lib" ;;
  esac
}

# ---------------------------------------------------------------------------------------
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
json_str() { local s=$1; s=${s//\\/\\\\}; s=${s//\"/\\\"}; s=${s//$'\t'/ }; s=${s//$'\n'/ }; printf '"%s"' "$s"; }

fetch_suite
log "suite: mpich $SUITE_VERSION test/mpi in $SRC"
[ "$ACTION" = fetch ] && exit 0

if [ "$ACTION" = list ]; then
  OUTDIR=$(mktemp -d "${TMPDIR:-/tmp}/mana-suite-list.XXXXXX")
  trap 'remove_lists; rm -rf "$OUTDIR"' EXIT
elif [ -z "$OUTDIR" ]; then
  # keep the 20 most recent runs
  ls -1dt "$CACHE"/runs/*/ 2>/dev/null | tail -n +20 | while read -r old; do rm -rf "$old"; done
  OUTDIR=$CACHE/runs/$(date +%Y%m%d-%H%M%S)-$$
fi
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
REPORT=${REPORT:-$OUTDIR/report.json}
if [ "$SELECTION" = full ]; then
  SELECTION_FILE=$OUTDIR/selection.txt
  printf '%s\n' $FULL_DIRS >"$SELECTION_FILE"
  SELECTION_DESC="full: $FULL_DIRS"
else
  SELECTION_FILE=$SUBSET_FILE
  SELECTION_DESC="subset: ${SUBSET_FILE#"$REPO"/}"
fi

# the selection resolved against a configured tree's testlists, writing nothing into it
manifest_only() {
  mkdir -p "$CACHE/build/$SUITE_VERSION"
  exec 9>"$CACHE/build/$SUITE_VERSION/native-mpich.lock"
  flock 9
  configure_flavour native-mpich && select_tests "$1" --dry
  local rc=$?
  exec 9>&-
  return $rc
}

if [ "$ACTION" = list ]; then
  manifest_only "$OUTDIR/manifest.json" || exit 2
  node -e 'const m=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));for(const t of m.tests)console.log(t.id);console.error(`${m.tests.length} tests in ${m.dirs.length} directories`)' "$OUTDIR/manifest.json"
  exit 0
fi

STARTED=$(date -Is)
RUNS_JSON=$OUTDIR/runs.json
mode_entries=()
manifests=()
setup_failed=0
unavailable=0
declare -A FAILED_FLAVOURS=()

record_mode() {  # mode status message seconds junit tap log [buildSeconds] [checkpoints] [ckptResults]
  local rs=null ck=null
  [ -z "$(mode_restart_mpi "$1")" ] || rs=$(json_str "$(mode_restart_mpi "$1")")
  [ -z "${10:-}" ] || ck=$(json_str "${10}")
  mode_entries+=("{\"mode\":$(json_str "$1"),\"flavour\":$(json_str "$(mode_flavour "$1")"),\"launcher\":$(json_str "$(mode_launcher "$1")"),\"restartMpi\":$rs,\"ckptResults\":$ck,\"status\":$(json_str "$2"),\"message\":$(json_str "$3"),\"seconds\":${4:-null},\"buildSeconds\":${8:-null},\"checkpoints\":${9:-null},\"junit\":$(json_str "$5"),\"tap\":$(json_str "$6"),\"log\":$(json_str "$7")}")
}

for mode in "${MODE_LIST[@]}"; do
  f=$(mode_flavour "$mode")
  launcher=$(mode_launcher "$mode")
  out=$OUTDIR/$mode
  mkdir -p "$out"
  if mode_is_mana "$mode"; then
    reason=$(mana_unavailable_reason "$mode")
    if [ -n "$reason" ]; then
      log "$mode: unavailable: $reason"
      record_mode "$mode" unavailable "$reason" "" "" "" ""
      unavailable=1
      continue
    fi
  fi
  mkdir -p "$CACHE/build/$SUITE_VERSION"
  exec 9>"$CACHE/build/$SUITE_VERSION/$(flavour_dir "$f").lock"
  flock 9
  tb=$(date +%s.%N)
  if [ -n "${FAILED_FLAVOURS[$f]:-}" ] || ! configure_flavour "$f"; then
    FAILED_FLAVOURS[$f]=${FAILED_FLAVOURS[$f]:-$FLAVOUR_ERROR}
    FLAVOUR_ERROR=${FAILED_FLAVOURS[$f]}
    if mode_is_mana "$mode"; then
      # the suite does not compile against mana: every test counts as a build failure
      record_mode "$mode" build-failed "$FLAVOUR_ERROR" "" "" "" ""
    else
      record_mode "$mode" error "$FLAVOUR_ERROR" "" "" "" ""
      setup_failed=1
    fi
    unlock_build; continue
  fi
  if ! select_tests "$out/manifest.json"; then
    unlock_build; exit 2
  fi
  manifests+=("$out/manifest.json")
  ntests=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")).tests.length)' "$out/manifest.json")
  build_selection "$out/manifest.json" "$f"
  bsecs=$(elapsed "$tb")
  if [ "$ACTION" = build ]; then
    log "$mode: configured and built $f for $ntests tests in ${bsecs}s"
    unlock_build; continue
  fi
  if mode_is_mana "$mode"; then
    reason=$(check_shim_resolution "$out/manifest.json")
    if [ -n "$reason" ]; then
      log "$mode: unavailable: $reason"
      record_mode "$mode" unavailable "$reason" "" "" "" ""
      unavailable=1; unlock_build; continue
    fi
  fi
  dirs=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")).dirs.join(","))' "$out/manifest.json")
  log "$mode: running $ntests tests (timeout ${TIMEOUT}s each) ..."
  rm -f "$out/junit.xml" "$out/results.tap" "$out/checkpoints.tsv" "$out/ckpt-results.tsv"
  rstmpi=$(mode_restart_mpi "$mode")
  if [ -n "$rstmpi" ] && ! build_holdlib "$out/holdlib" >"$out/holdlib.log" 2>&1; then
    unlock_build
    die "$mode: cannot build the hold library: $(first_error "$out/holdlib.log") (see $out/holdlib.log)"
  fi
  : >"$out/progress.txt"
  t0=$(date +%s.%N)
  (
    cd "$BUILD"
    export MPITEST_TIMEOUT=$TIMEOUT
    export MANA_SUITE_LAUNCHER=$launcher MANA_SUITE_REPO=$REPO MANA_SUITE_PROGRESS=$out/progress.txt
    if [ -n "$rstmpi" ]; then
      mkdir -p "$out/ckpt-logs"
      export MANA_SUITE_CKPT=$rstmpi MANA_SUITE_HOLDLIB=$out/holdlib/libmanasuite_hold.so
      export MANA_SUITE_CKPTDIR=$out/ckpt MANA_SUITE_CKPTRESULTS=$out/ckpt-results.tsv
      export MANA_SUITE_CKPTLOGDIR=$out/ckpt-logs
    elif mode_is_mana "$mode"; then
      export MANA_SUITE_MANA=1 MANA_SUITE_CKPTDIR=$out/ckpt MANA_SUITE_PORTDIR=$out
      export MANA_SUITE_CKPTLOG=$out/checkpoints.tsv
      [ -n "$INTERVAL" ] && export MANA_SUITE_INTERVAL=$INTERVAL
    else
      export MANA_SUITE_MANA=0
    fi
    exec ./runtests -srcdir="$SRC" -tests="$LISTNAME" -testdirs="$dirs" \
      -mpiexec="$HERE/mpiexec.sh" -tapfile="$out/results.tap" -junitfile="$out/junit.xml"
  ) >"$out/runtests.log" 2>&1 &
  rt_pid=$!
  if [ "$QUIET" = 0 ]; then
    # progress: one line per finished job, written by mpiexec.sh (the verdict, which also
    # looks at the output, is runtests' and comes in the table at the end)
    # (a shell loop, not awk: mawk reads a pipe in blocks)
    tail -n +1 -F --pid="$rt_pid" "$out/progress.txt" 2>/dev/null | {
      i=0
      while read -r p_name p_np p_rc p_secs; do
        i=$((i + 1))
        printf '[%s %d/%d] %s %s ranks: exit %s, %ss\n' "$mode" "$i" "$ntests" "$p_name" "$p_np" "$p_rc" "$p_secs"
      done
    } >&2 || true
  fi
  rt_rc=0; wait "$rt_pid" || rt_rc=$?
  secs=$(elapsed "$t0")
  unlock_build
  if [ ! -s "$out/junit.xml" ]; then
    tail -5 "$out/runtests.log" >&2
    log "$mode: runtests produced no results (exit $rt_rc); see $out/runtests.log"
    record_mode "$mode" error "runtests produced no results (exit $rt_rc); see $out/runtests.log" "$secs" "" "$out/results.tap" "$out/runtests.log"
    setup_failed=1
    continue
  fi
  rm -rf "$out/ckpt"
  ckpts=null ckres=
  if [ -n "$rstmpi" ]; then
    touch "$out/ckpt-results.tsv"; ckres=$out/ckpt-results.tsv
    nrst=$(awk -F'\t' '$5 == "restarted"' "$out/ckpt-results.tsv" | wc -l)
  elif [ -f "$out/checkpoints.tsv" ]; then
    ckpts=$(awk -F'\t' '{ n += $1 } END { print n + 0 }' "$out/checkpoints.tsv")
  fi
  log "$mode: done in ${secs}s${ckres:+ ($nrst jobs checkpointed and restarted)}"
  record_mode "$mode" ran "" "$secs" "$out/junit.xml" "$out/results.tap" "$out/runtests.log" "$bsecs" "$ckpts" "$ckres"
done

[ "$ACTION" = build ] && exit $(( setup_failed || unavailable ? 2 : 0 ))

{
  printf '{"suite":{"package":"mpich","version":%s,"source":%s},' "$(json_str "$SUITE_VERSION")" "$(json_str "$SRC")"
  printf '"selection":%s,"timeout":%s,"startedAt":%s,"host":%s,"outdir":%s,"modes":[' \
    "$(json_str "$SELECTION_DESC")" "$TIMEOUT" "$(json_str "$STARTED")" "$(json_str "$(hostname)")" "$(json_str "$OUTDIR")"
  (IFS=,; printf '%s' "${mode_entries[*]}")
  printf ']}\n'
} >"$RUNS_JSON"

if [ ${#manifests[@]} -eq 0 ]; then
  # nothing ran: still produce a report listing the selection
  manifest_only "$OUTDIR/manifest.json" >/dev/null 2>&1 && manifests+=("$OUTDIR/manifest.json")
fi
rc=0
if [ ${#manifests[@]} -gt 0 ]; then
  mlist=$(IFS=,; echo "${manifests[*]}")
  set +e
  node "$HERE/suite.mjs" report --manifest "$mlist" --runs "$RUNS_JSON" --out "$REPORT" | tee "$OUTDIR/report.txt"
  rc=${PIPESTATUS[0]}
  set -e
else
  log "no manifest could be produced; no report"
  rc=2
fi
if [ "$rc" -ne 0 ] && [ "$rc" -ne 1 ]; then exit 2; fi
if [ "$setup_failed" = 1 ]; then exit 2; fi
if [ "$unavailable" = 1 ] && [ "$SKIP_UNAVAILABLE" = 0 ]; then
  [ "$rc" = 1 ] && exit 1
  exit 2
fi
exit "$rc"
