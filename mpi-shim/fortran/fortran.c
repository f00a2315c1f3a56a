/* Hand-written part of mana's Fortran bindings: the COMMON blocks and string conversion. */
#include <stdio.h>
#include <unistd.h>
#include "fortran.h"

struct f_mpipriv1 mpipriv1_;
struct f_mpipriv2 mpipriv2_;
struct f_mpiprivc mpiprivc_;
MPI_Fint mpifcmb5_;
MPI_Fint mpifcmb9_;

/* Scratch for string conversion: a few KiB; running out of memory there leaves nothing sensible
   to report through ierror, so say so and stop. */
void *f_xalloc(size_t n) {
  void *p = calloc(1, n);
  if (!p) {
    fprintf(stderr, "mana: out of memory in a Fortran MPI call\n");
    abort();
  }
  return p;
}

/* A NUL-terminated copy without the trailing blanks Fortran pads with (the MPI standard says
   trailing blanks of keys, names and values are not significant). */
char *f_str_in(const char *s, size_t len) {
  while (len > 0 && s[len - 1] == ' ') len--;
  char *c = f_xalloc(len + 1);
  memcpy(c, s, len);
  return c;
}

void f_str_out(char *dst, size_t len, const char *src) {
  size_t n = strnlen(src, len);
  memcpy(dst, src, n);
  memset(dst + n, ' ', len - n);
}

_Noreturn void f_unsupported(const char *name) {
  /* write(2) rather than stdio: the message must get out even if Fortran I/O holds stdout */
  const char *parts[] = {"mana: ", name, " (Fortran binding) is not supported\n"};
  for (size_t i = 0; i < 3; i++)
    if (write(2, parts[i], strlen(parts[i])) < 0) break;
  _exit(1);
}
