! mana Fortran binding test, Fortran 77 style (include 'mpif.h'): ring send/recv with status,
! allreduce, bcast, comm_split, a derived datatype, Wtime and an error string. Every line of
! output starts with the rank so the runner can sort and compare it with native MPICH's.
      program f77basic
      implicit none
      include 'mpif.h'
      integer ierr, rank, nproc, next, prev, token, isum, key
      integer status(MPI_STATUS_SIZE), cnt, color, sub, subrank
      integer subsize, vtype, tsize, i, buf(12), rlen, bval
      double precision t0, t1, dsum, dval
      character*(MPI_MAX_ERROR_STRING) estr
      character*(MPI_MAX_PROCESSOR_NAME) pname
      logical flag

      call MPI_INIT(ierr)
      call MPI_INITIALIZED(flag, ierr)
      call MPI_COMM_RANK(MPI_COMM_WORLD, rank, ierr)
      call MPI_COMM_SIZE(MPI_COMM_WORLD, nproc, ierr)
      write(*,'(I0,A,L1,A,I0)') rank, ' init flag=', flag,
     &     ' size=', nproc
      t0 = MPI_WTIME()

!     ring: rank 0 starts a token, each rank adds its rank + 1
      next = mod(rank + 1, nproc)
      prev = mod(rank + nproc - 1, nproc)
      if (rank .eq. 0) then
        token = 100
        call MPI_SEND(token, 1, MPI_INTEGER, next, 7, MPI_COMM_WORLD,
     &       ierr)
        call MPI_RECV(token, 1, MPI_INTEGER, prev, MPI_ANY_TAG,
     &       MPI_COMM_WORLD, status, ierr)
      else
        call MPI_RECV(token, 1, MPI_INTEGER, MPI_ANY_SOURCE,
     &       MPI_ANY_TAG, MPI_COMM_WORLD, status, ierr)
        token = token + rank
        call MPI_SEND(token, 1, MPI_INTEGER, next, 7 + rank,
     &       MPI_COMM_WORLD, ierr)
      endif
      call MPI_GET_COUNT(status, MPI_INTEGER, cnt, ierr)
      write(*,'(I0,A,I0,A,I0,A,I0,A,I0)') rank, ' ring token=', token,
     &     ' src=', status(MPI_SOURCE), ' tag=', status(MPI_TAG),
     &     ' count=', cnt

!     MPI_STATUS_IGNORE must be recognised by address
      if (rank .eq. 0) then
        call MPI_SEND(token, 1, MPI_INTEGER, next, 9, MPI_COMM_WORLD,
     &       ierr)
      endif
      if (rank .eq. 1) then
        call MPI_RECV(bval, 1, MPI_INTEGER, 0, 9, MPI_COMM_WORLD,
     &       MPI_STATUS_IGNORE, ierr)
        write(*,'(I0,A,I0,A,L1)') rank, ' status_ignore recv=', bval,
     &       ' untouched=', MPI_STATUS_IGNORE(MPI_SOURCE) .eq. 0 .and.
     &       MPI_STATUS_IGNORE(MPI_TAG) .eq. 0
      endif

!     allreduce of integers and doubles, and MPI_IN_PLACE
      call MPI_ALLREDUCE(rank, isum, 1, MPI_INTEGER, MPI_SUM,
     &     MPI_COMM_WORLD, ierr)
      dval = 0.5d0 * rank
      call MPI_ALLREDUCE(dval, dsum, 1, MPI_DOUBLE_PRECISION, MPI_MAX,
     &     MPI_COMM_WORLD, ierr)
      bval = rank + 1
      call MPI_ALLREDUCE(MPI_IN_PLACE, bval, 1, MPI_INTEGER, MPI_PROD,
     &     MPI_COMM_WORLD, ierr)
      write(*,'(I0,A,I0,A,F6.2,A,I0)') rank, ' allreduce sum=', isum,
     &     ' max=', dsum, ' inplace prod=', bval

!     bcast from the last rank
      bval = 0
      if (rank .eq. nproc - 1) bval = 4242
      call MPI_BCAST(bval, 1, MPI_INTEGER, nproc - 1, MPI_COMM_WORLD,
     &     ierr)
      write(*,'(I0,A,I0)') rank, ' bcast=', bval

!     comm_split by parity, key = -rank (reverse order)
      color = mod(rank, 2)
      key = -rank
      call MPI_COMM_SPLIT(MPI_COMM_WORLD, color, key, sub, ierr)
      call MPI_COMM_RANK(sub, subrank, ierr)
      call MPI_COMM_SIZE(sub, subsize, ierr)
      call MPI_ALLREDUCE(rank, isum, 1, MPI_INTEGER, MPI_SUM, sub, ierr)
      write(*,'(I0,A,I0,A,I0,A,I0,A,I0)') rank, ' split color=', color,
     &     ' subrank=', subrank, ' subsize=', subsize, ' subsum=', isum
      call MPI_COMM_FREE(sub, ierr)
      write(*,'(I0,A,L1)') rank, ' comm_free null=',
     &     sub .eq. MPI_COMM_NULL

!     derived datatype: every other element of 12 integers, rank 0 -> last
      call MPI_TYPE_VECTOR(6, 1, 2, MPI_INTEGER, vtype, ierr)
      call MPI_TYPE_COMMIT(vtype, ierr)
      call MPI_TYPE_SIZE(vtype, tsize, ierr)
      do i = 1, 12
        buf(i) = -1
      enddo
      if (rank .eq. 0) then
        do i = 1, 12
          buf(i) = i * 10
        enddo
        call MPI_SEND(buf, 1, vtype, nproc - 1, 3, MPI_COMM_WORLD, ierr)
      endif
      if (rank .eq. nproc - 1) then
        call MPI_RECV(buf, 1, vtype, 0, 3, MPI_COMM_WORLD, status, ierr)
        call MPI_GET_COUNT(status, MPI_INTEGER, cnt, ierr)
        write(*,'(I0,A,I0,A,I0,A,12(1X,I0))') rank, ' vector size=',
     &       tsize, ' count=', cnt, ' buf=', (buf(i), i = 1, 12)
      endif
      call MPI_TYPE_FREE(vtype, ierr)

!     error string of a predefined class
      call MPI_ERROR_STRING(MPI_ERR_TRUNCATE, estr, rlen, ierr)
      if (rank .eq. 0) then
        write(*,'(I0,A,L1,A,L1)') rank, ' errstr ok=', rlen .gt. 0,
     &       ' ierr0=', ierr .eq. MPI_SUCCESS
        write(*,'(A,A)') 'info: errstr=', estr(1:rlen)
      endif
      call MPI_GET_PROCESSOR_NAME(pname, rlen, ierr)
      write(*,'(I0,A,L1)') rank, ' procname ok=', rlen .gt. 0

      t1 = MPI_WTIME()
      flag = MPI_WTICK() .gt. 0d0
      write(*,'(I0,A,L1,A,L1)') rank, ' wtime ok=',
     &     t1 .ge. t0 .and. t0 .gt. 0d0, ' wtick ok=', flag
      call MPI_BARRIER(MPI_COMM_WORLD, ierr)
      call MPI_FINALIZE(ierr)
      end
