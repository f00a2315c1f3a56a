! mana Fortran binding test through `use mpi`: nonblocking ring with statuses, Waitany's
! 1-based index, Iprobe's LOGICAL flag, allreduce, bcast, comm_split, a struct datatype with
! ADDRESS_KIND displacements, a user-defined reduction op, Wtime and error strings. Every line
! of output starts with the rank so the runner can sort and compare it with native MPICH's.
program f90module
  use mpi
  implicit none
  integer :: ierr, rank, nproc, next, prev, i, idx, cnt, sub, subrank, color
  integer :: sendv, recvv, reqs(2), statuses(MPI_STATUS_SIZE, 2), status(MPI_STATUS_SIZE)
  integer :: stype, blens(2), types(2), myop, ecls, rlen, tsize
  integer(kind=MPI_ADDRESS_KIND) :: disps(2), lb, extent
  integer :: pair(3), pairs(3, 2), vals(4), res(4)
  double precision :: t0, d(2), dsum(2)
  character(len=MPI_MAX_ERROR_STRING) :: estr
  character(len=MPI_MAX_OBJECT_NAME) :: cname
  character(len=20) :: ival
  integer :: info
  integer(kind=MPI_ADDRESS_KIND) :: tagub
  logical :: flag
  external :: absmax

  call MPI_Init(ierr)
  call MPI_Comm_rank(MPI_COMM_WORLD, rank, ierr)
  call MPI_Comm_size(MPI_COMM_WORLD, nproc, ierr)
  t0 = MPI_Wtime()
  next = mod(rank + 1, nproc)
  prev = mod(rank + nproc - 1, nproc)

  ! nonblocking ring: everybody sends rank*10 to next, receives from prev
  sendv = rank * 10
  call MPI_Irecv(recvv, 1, MPI_INTEGER, prev, 5, MPI_COMM_WORLD, reqs(1), ierr)
  call MPI_Isend(sendv, 1, MPI_INTEGER, next, 5, MPI_COMM_WORLD, reqs(2), ierr)
  call MPI_Waitall(2, reqs, statuses, ierr)
  write(*, '(I0,A,I0,A,I0,A,I0,A,L1)') rank, ' iring recv=', recvv, ' src=', &
       statuses(MPI_SOURCE, 1), ' tag=', statuses(MPI_TAG, 1), ' reqnull=', &
       reqs(1) == MPI_REQUEST_NULL .and. reqs(2) == MPI_REQUEST_NULL

  ! the same with MPI_STATUSES_IGNORE, then Waitany (index is 1-based in Fortran)
  call MPI_Irecv(recvv, 1, MPI_INTEGER, prev, 6, MPI_COMM_WORLD, reqs(1), ierr)
  call MPI_Isend(sendv, 1, MPI_INTEGER, next, 6, MPI_COMM_WORLD, reqs(2), ierr)
  call MPI_Waitall(2, reqs, MPI_STATUSES_IGNORE, ierr)
  write(*, '(I0,A,L1)') rank, ' statuses_ignore untouched=', all(MPI_STATUSES_IGNORE == 0) &
       .and. all(MPI_ERRCODES_IGNORE == 0)
  call MPI_Irecv(recvv, 1, MPI_INTEGER, prev, 8, MPI_COMM_WORLD, reqs(2), ierr)
  reqs(1) = MPI_REQUEST_NULL
  call MPI_Send(sendv, 1, MPI_INTEGER, next, 8, MPI_COMM_WORLD, ierr)
  call MPI_Waitany(2, reqs, idx, status, ierr)
  call MPI_Get_count(status, MPI_INTEGER, cnt, ierr)
  write(*, '(I0,A,I0,A,I0,A,I0)') rank, ' waitany index=', idx, ' recv=', recvv, ' count=', cnt
  call MPI_Waitany(2, reqs, idx, MPI_STATUS_IGNORE, ierr)
  ! MPI_UNDEFINED by the standard; MPICH 4.0.2's own binding returns MPI_UNDEFINED + 1
  if (rank == 0) write(*, '(A,I0,A,I0)') 'info: waitany on null requests index=', idx, &
       ' MPI_UNDEFINED=', MPI_UNDEFINED

  ! Iprobe returns a Fortran LOGICAL
  call MPI_Barrier(MPI_COMM_WORLD, ierr)
  call MPI_Iprobe(MPI_ANY_SOURCE, 98, MPI_COMM_WORLD, flag, status, ierr)
  write(*, '(I0,A,L1)') rank, ' iprobe nothing flag=', flag
  call MPI_Send(sendv, 1, MPI_INTEGER, next, 99, MPI_COMM_WORLD, ierr)
  flag = .false.
  do while (.not. flag)
     call MPI_Iprobe(prev, 99, MPI_COMM_WORLD, flag, status, ierr)
  end do
  call MPI_Recv(recvv, 1, MPI_INTEGER, status(MPI_SOURCE), 99, MPI_COMM_WORLD, status, ierr)
  write(*, '(I0,A,L1,A,I0)') rank, ' iprobe flag=', flag, ' recv=', recvv

  ! allreduce on a 2-element double array, bcast of a string-free integer
  d(1) = rank + 0.25d0
  d(2) = -rank
  call MPI_Allreduce(d, dsum, 2, MPI_DOUBLE_PRECISION, MPI_SUM, MPI_COMM_WORLD, ierr)
  write(*, '(I0,A,2F8.2)') rank, ' allreduce=', dsum
  i = -1
  if (rank == 0) i = 77
  call MPI_Bcast(i, 1, MPI_INTEGER, 0, MPI_COMM_WORLD, ierr)
  write(*, '(I0,A,I0)') rank, ' bcast=', i

  ! comm_split: first rank alone, the others together
  color = merge(0, 1, rank == 0)
  call MPI_Comm_split(MPI_COMM_WORLD, color, rank, sub, ierr)
  call MPI_Comm_rank(sub, subrank, ierr)
  call MPI_Allreduce(1, cnt, 1, MPI_INTEGER, MPI_SUM, sub, ierr)
  write(*, '(I0,A,I0,A,I0)') rank, ' split subrank=', subrank, ' subsize=', cnt
  call MPI_Comm_free(sub, ierr)

  ! struct datatype: (int, int) pair at displacements 0 and 8 bytes out of a 3-int record
  blens = (/1, 1/)
  disps = (/0_MPI_ADDRESS_KIND, 8_MPI_ADDRESS_KIND/)
  types = (/MPI_INTEGER, MPI_INTEGER/)
  call MPI_Type_create_struct(2, blens, disps, types, stype, ierr)
  call MPI_Type_commit(stype, ierr)
  call MPI_Type_size(stype, tsize, ierr)
  call MPI_Type_get_extent(stype, lb, extent, ierr)
  pairs = -1
  if (rank == 0) then
     pair = (/11, 22, 33/)
     call MPI_Send(pair, 1, stype, nproc - 1, 4, MPI_COMM_WORLD, ierr)
  end if
  if (rank == nproc - 1) then
     call MPI_Recv(pairs, 1, stype, 0, 4, MPI_COMM_WORLD, status, ierr)
     write(*, '(I0,A,I0,A,I0,A,I0,A,6(1X,I0))') rank, ' struct size=', tsize, ' lb=', lb, &
          ' extent=', extent, ' got=', pairs
  end if
  call MPI_Type_free(stype, ierr)

  ! a user-defined (Fortran) reduction: element-wise max of absolute values
  call MPI_Op_create(absmax, .true., myop, ierr)
  vals = (/rank, -rank * 3, 5 - rank, -7/)
  call MPI_Allreduce(vals, res, 4, MPI_INTEGER, myop, MPI_COMM_WORLD, ierr)
  write(*, '(I0,A,4(1X,I0))') rank, ' user op=', res
  call MPI_Op_free(myop, ierr)

  ! error class and string; errors come back as codes under MPI_ERRORS_RETURN
  call MPI_Error_class(MPI_ERR_COMM, ecls, ierr)
  call MPI_Error_string(MPI_ERR_RANK, estr, rlen, ierr)
  call MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN, ierr)
  call MPI_Send(sendv, 1, MPI_INTEGER, nproc + 5, 1, MPI_COMM_WORLD, ierr)
  call MPI_Error_class(ierr, i, cnt)
  if (rank == 0) then
     write(*, '(I0,A,L1,A,L1,A,L1)') rank, ' errclass ok=', ecls == MPI_ERR_COMM, &
          ' errstr ok=', rlen > 0 .and. len_trim(estr) == rlen, ' badrank=', i == MPI_ERR_RANK
     write(*, '(A,A)') 'info: errstr=', trim(estr)
  end if

  ! a predefined attribute through its Fortran key value, strings in and out
  call MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_TAG_UB, tagub, flag, ierr)
  write(*, '(I0,A,L1,A,L1)') rank, ' tag_ub flag=', flag, ' ok=', tagub >= 32767
  call MPI_Comm_set_name(MPI_COMM_WORLD, 'mana world   ', ierr)
  call MPI_Comm_get_name(MPI_COMM_WORLD, cname, rlen, ierr)
  write(*, '(I0,A,A,A,I0)') rank, ' comm name=', trim(cname), '| len=', rlen
  call MPI_Info_create(info, ierr)
  call MPI_Info_set(info, 'mana_key', 'some value', ierr)
  call MPI_Info_get(info, 'mana_key  ', len(ival), ival, flag, ierr)
  write(*, '(I0,A,L1,A,A,A)') rank, ' info flag=', flag, ' value=', ival, '|'
  call MPI_Info_get(info, 'absent', len(ival), ival, flag, ierr)
  write(*, '(I0,A,L1)') rank, ' info absent flag=', flag
  call MPI_Info_free(info, ierr)
  write(*, '(I0,A,L1)') rank, ' info freed=', info == MPI_INFO_NULL

  write(*, '(I0,A,L1)') rank, ' wtime ok=', MPI_Wtime() >= t0
  call MPI_Finalize(ierr)
  call MPI_Finalized(flag, ierr)
  write(*, '(I0,A,L1)') rank, ' finalized=', flag
end program f90module

subroutine absmax(invec, inoutvec, n, dtype)
  implicit none
  integer :: n, dtype, i
  integer :: invec(n), inoutvec(n)
  do i = 1, n
     inoutvec(i) = max(abs(invec(i)), abs(inoutvec(i)))
  end do
end subroutine absmax
