#!/usr/bin/env bash
# Fortran bindings test: builds test/fortran/*.f and *.f90 twice, with mana's bindings
# (gfortran -I out/include ... -lmpifort -lmpi) and with Debian's mpif90.mpich, then compares the
# output of each against the mpif90.mpich build run natively under mpirun.mpich:
#   mana-build  under mpirun.mpich and mpirun.openmpi (mana's lower half for each)
#   mpich-build under both, unmodified, with LD_LIBRARY_PATH=out/lib (libmpichfort.so.12 = mana's)
# Lines starting with "info:" are shown, not compared (they legitimately differ: error strings of
# the other MPI, a known MPICH deviation). Usage: test/fortran/run.sh [NPROCS]  (default 3)
set -u
here=$(cd "$(dirname "$0")" && pwd)
shim=$(cd "$here/../.." && pwd)
np=${1:-3}
lib=$shim/out/lib
tmp=$(mktemp -d /tmp/mana-fortran.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1

make -s -C "$shim" fortran >"$tmp/make.log" 2>&1 || { cat "$tmp/make.log"; echo "0 passed, 1 failed"; exit 1; }

pass=0 fail=0
ok() { pass=$((pass + 1)); echo "PASS $1"; }
ko() { fail=$((fail + 1)); echo "FAIL $1"; [ -n "${2:-}" ] && sed 's/^/    /' "$2" | head -40; }

# Choice buffers of different types in one file need -fallow-argument-mismatch (gfortran >= 10),
# as with MPICH's own mpif90.
FFLAGS="-O1 -fallow-argument-mismatch -w"

run() { # name, output file, command...
  local name=$1 out=$2; shift 2
  if timeout 120 "$@" >"$out.raw" 2>"$out.err"; then
    grep -v '^info:' "$out.raw" | sort >"$out"
    grep "^info:" "$out.raw" | sort -u | sed "s|^|    [$name] |"
    return 0
  fi
  echo "    exit status $? ($name)"; cat "$out.err" "$out.raw" | head -30 | sed 's/^/    /'
  return 1
}

for src in "$here"/*.f "$here"/*.f90; do
  t=$(basename "${src%.*}")
  if ! mpif90.mpich $FFLAGS -o "$tmp/$t.mpich" "$src" 2>"$tmp/$t.cc"; then ko "$t: mpif90.mpich build" "$tmp/$t.cc"; continue; fi
  if ! gfortran $FFLAGS -I"$shim/out/include" -o "$tmp/$t.mana" "$src" -L"$lib" -lmpifort -lmpi \
      -Wl,-rpath,"$lib" 2>"$tmp/$t.cc"; then ko "$t: build with mana's mpif.h/mpi.mod" "$tmp/$t.cc"; continue; fi
  ok "$t: builds (native and mana)"
  if ! run native "$tmp/$t.ref" mpirun.mpich -n "$np" "$tmp/$t.mpich"; then ko "$t: native MPICH reference run"; continue; fi
  [ -s "$tmp/$t.ref" ] || { ko "$t: native run printed nothing"; continue; }

  # The mpif90.mpich build must really pick up mana's libmpichfort.so.12.
  if LD_LIBRARY_PATH=$lib ldd "$tmp/$t.mpich" | grep -q "libmpichfort.so.12 => $lib/"; then
    ok "$t: mpich build resolves libmpichfort.so.12 to mana's"
  else ko "$t: mpich build does not load mana's libmpichfort.so.12"; fi

  for mpi in mpich openmpi; do
    for build in mana mpich; do
      name="$t: $build build under mpirun.$mpi"
      out="$tmp/$t.$build.$mpi"
      if [ "$build" = mana ]; then cmd=("$tmp/$t.mana")
      else cmd=(env LD_LIBRARY_PATH="$lib" "$tmp/$t.mpich"); fi
      if [ "$mpi" = openmpi ]; then launcher=(mpirun.openmpi -n "$np")
      else launcher=(mpirun.mpich -n "$np"); fi
      if ! run "$build/$mpi" "$out" "${launcher[@]}" "${cmd[@]}"; then ko "$name"; continue; fi
      if diff -u "$tmp/$t.ref" "$out" >"$out.diff"; then ok "$name"; else ko "$name" "$out.diff"; fi
    done
  done
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
