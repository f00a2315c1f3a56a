# mana's Fortran bindings (included by mpi-shim/Makefile): libmpifort.so.12 (also under
# MPICH's name libmpichfort.so.12, so mpif90.mpich binaries load it), mpif.h and mpi.mod, all
# generated from spec/ by gen/gen-fortran.mjs.
FORTRAN_GEN := $(GEN)/fortran.gen.c $(GEN)/mpi.f90 $(OUT)/include/mpif.h
FORTRAN_CFLAGS := $(CFLAGS) -fvisibility=hidden -Iinclude -Ifortran -fno-strict-aliasing
FORTRAN_OBJ := $(OUT)/obj/fortran/fortran.o $(OUT)/obj/fortran/fortran.gen.o
FC ?= gfortran
ifeq ($(FC),f77)
FC := gfortran
endif

$(FORTRAN_GEN) &: spec/mpi.api spec/abi.txt gen/gen-fortran.mjs gen/spec.mjs
	node gen/gen-fortran.mjs .

$(OUT)/obj/fortran/fortran.o: fortran/fortran.c fortran/fortran.h include/mpi.h
	@mkdir -p $(dir $@)
	$(CC) $(FORTRAN_CFLAGS) -c $< -o $@

$(OUT)/obj/fortran/fortran.gen.o: $(GEN)/fortran.gen.c fortran/fortran.h include/mpi.h
	@mkdir -p $(dir $@)
	$(CC) $(FORTRAN_CFLAGS) -c $< -o $@

# NEEDED libmpi.so.12, found next to it through $ORIGIN.
$(OUT)/lib/libmpifort.so.12: $(FORTRAN_OBJ) $(OUT)/lib/libmpi.so.12
	$(CC) -shared -o $@ $(FORTRAN_OBJ) -Wl,-soname,libmpifort.so.12 -Wl,-z,defs \
	  -L$(OUT)/lib -lmpi -Wl,-rpath,'$$ORIGIN'
	ln -sf libmpifort.so.12 $(OUT)/lib/libmpichfort.so.12
	ln -sf libmpifort.so.12 $(OUT)/lib/libmpifort.so
	ln -sf libmpifort.so.12 $(OUT)/lib/libmpichfort.so

# The module has constants, COMMON blocks and interfaces only: nothing of its object is needed.
$(OUT)/include/mpi.mod: $(GEN)/mpi.f90
	@mkdir -p $(OUT)/obj/fortran
	$(FC) -c -J $(OUT)/include -o $(OUT)/obj/fortran/mpi_mod.o $<

FORTRAN_TARGETS := $(OUT)/lib/libmpifort.so.12 $(OUT)/include/mpi.mod
