// addon.cc — mana_native.node: the image library for `mana inspect` / `mana verify` and tests.
//
// Thin by intent: every check lives in the C library so that the restore program and the
// CLI reject the same images with the same one-line messages; this file only converts.
#include <napi.h>

#include <fcntl.h>
#include <gnu/libc-version.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "mana_image.h"

namespace {

void *heap_alloc(void *, size_t n) { return std::malloc(n); }
void heap_free(void *, void *p, size_t) { std::free(p); }
// Node has a normal heap; the mmap allocator would cost a syscall per small table.
const mana_img_alloc kHeap = {heap_alloc, heap_free, nullptr};

struct Reader {
  mana_img_reader *r = nullptr;
  ~Reader() { mana_imgr_close(r); }
};

std::string Hex(uint64_t v) {
  char b[24];
  std::snprintf(b, sizeof b, "0x%" PRIx64, v);
  return b;
}

std::string Hash16(uint64_t v) {
  char b[24];
  std::snprintf(b, sizeof b, "%016" PRIx64, v);
  return b;
}

// Header strings are NUL-terminated by the reader; strnlen guards a patched header anyway.
template <size_t N>
Napi::String Str(Napi::Env env, const char (&s)[N]) {
  return Napi::String::New(env, s, strnlen(s, N));
}

Napi::Number Num(Napi::Env env, uint64_t v) { return Napi::Number::New(env, static_cast<double>(v)); }

std::string Prot(const mana_img_region &g) {
  std::string s = "---p";
  if (g.prot & 1) s[0] = 'r';  // PROT_READ
  if (g.prot & 2) s[1] = 'w';  // PROT_WRITE
  if (g.prot & 4) s[2] = 'x';  // PROT_EXEC
  if (g.kind == MANA_R_SHARED_FILE || g.kind == MANA_R_SHARED_ANON) s[3] = 's';
  return s;
}

std::string PathArg(const Napi::CallbackInfo &info) {
  if (info.Length() < 1 || !info[0].IsString())
    throw Napi::TypeError::New(info.Env(), "mana: expected an image path (string)");
  return info[0].As<Napi::String>().Utf8Value();
}

Napi::Value ReadImage(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string path = PathArg(info);
  char err[MANA_IMG_ERRLEN];
  Reader rd;
  if (mana_imgr_open(&rd.r, path.c_str(), &kHeap, err)) throw Napi::Error::New(env, err);
  const mana_img_header *h = mana_imgr_header(rd.r);

  Napi::Object o = Napi::Object::New(env);
  o.Set("path", path);
  o.Set("version", Num(env, h->version));
  o.Set("compressed", Napi::Boolean::New(env, (h->flags & MANA_IMG_F_COMPRESSED) != 0));
  o.Set("fileSize", Num(env, h->file_size));
  o.Set("rawBytes", Num(env, h->raw_bytes));
  o.Set("storedBytes", Num(env, h->stored_bytes));
  o.Set("headerHash", Hash16(h->header_hash));
  // incremental images: where the referenced chunks live ("" for a full image)
  o.Set("parent", Str(env, h->parent));
  o.Set("parentHeaderHash", h->parent[0] ? Hash16(h->parent_header_hash) : std::string(""));
  o.Set("parentGeneration", Num(env, h->parent_generation));
  o.Set("refBytes", Num(env, h->ref_bytes));

  const mana_img_info &in = h->info;
  Napi::Object i = Napi::Object::New(env);
  i.Set("pid", Num(env, in.pid));
  i.Set("procId", Num(env, in.proc_id));
  i.Set("generation", Num(env, in.generation));
  i.Set("createdUnixMs", Num(env, in.created_unix_ns / 1000000));
  i.Set("hostname", Str(env, in.hostname));
  i.Set("kernelRelease", Str(env, in.kernel_release));
  i.Set("kernelVersion", Str(env, in.kernel_version));
  i.Set("glibcVersion", Str(env, in.glibc_version));
  i.Set("exe", Str(env, in.exe));
  i.Set("cwd", Str(env, in.cwd));
  i.Set("cmdline", Str(env, in.cmdline));
  i.Set("vdsoSize", Num(env, in.vdso_size));
  i.Set("brkStart", Hex(in.brk_start));
  i.Set("brkCur", Hex(in.brk_cur));
  o.Set("info", i);

  uint64_t nt = mana_imgr_nthreads(rd.r);
  Napi::Array threads = Napi::Array::New(env, nt);
  for (uint64_t k = 0; k < nt; k++) {
    const mana_img_thread *t = mana_imgr_thread(rd.r, k);
    Napi::Object x = Napi::Object::New(env);
    x.Set("tid", Num(env, t->tid));
    x.Set("main", Napi::Boolean::New(env, (t->flags & MANA_TF_MAIN) != 0));
    x.Set("ckpt", Napi::Boolean::New(env, (t->flags & MANA_TF_CKPT) != 0));
    x.Set("helper", Napi::Boolean::New(env, (t->flags & MANA_TF_HELPER) != 0));
    x.Set("fsBase", Hex(t->fs_base));
    threads.Set(static_cast<uint32_t>(k), x);
  }
  o.Set("threads", threads);

  uint64_t nr = mana_imgr_nregions(rd.r);
  Napi::Array regions = Napi::Array::New(env, nr);
  for (uint64_t k = 0; k < nr; k++) {
    const mana_img_region *g = mana_imgr_region(rd.r, k);
    uint64_t zero = 0, zstd = 0, ref = 0;
    for (uint64_t c = 0; c < g->nchunks; c++) {
      uint32_t enc = mana_imgr_chunk(rd.r, g->first_chunk + c)->enc;
      zero += enc == MANA_C_ZERO;
      zstd += enc == MANA_C_ZSTD;
      ref += enc == MANA_C_PARENT;
    }
    Napi::Object x = Napi::Object::New(env);
    x.Set("start", Hex(g->start));
    x.Set("end", Hex(g->end));
    x.Set("size", Num(env, g->end - g->start));
    x.Set("prot", Prot(*g));
    x.Set("kind", mana_img_region_kind_name(g->kind));
    x.Set("path", mana_imgr_str(rd.r, g->path_off));
    x.Set("storedBytes", Num(env, g->stored_bytes));
    x.Set("chunks", Num(env, g->nchunks));
    x.Set("zeroChunks", Num(env, zero));
    x.Set("compressedChunks", Num(env, zstd));
    x.Set("parentChunks", Num(env, ref));
    regions.Set(static_cast<uint32_t>(k), x);
  }
  o.Set("regions", regions);

  uint64_t nf = mana_imgr_nfds(rd.r);
  Napi::Array fds = Napi::Array::New(env, nf);
  for (uint64_t k = 0; k < nf; k++) {
    const mana_img_fd *f = mana_imgr_fd(rd.r, k);
    Napi::Object x = Napi::Object::New(env);
    x.Set("fd", Napi::Number::New(env, f->fd));
    x.Set("kind", mana_img_fd_kind_name(f->kind));
    x.Set("path", mana_imgr_str(rd.r, f->path_off));
    x.Set("offset", Num(env, f->offset));
    x.Set("flags", Num(env, f->flags));
    x.Set("size", Num(env, f->size));
    fds.Set(static_cast<uint32_t>(k), x);
  }
  o.Set("fds", fds);
  return o;
}

// Integrity problems are a result, not an exception: `mana inspect --verify` reports them.
Napi::Value VerifyImage(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string path = PathArg(info);
  char err[MANA_IMG_ERRLEN];
  Reader rd;
  Napi::Object o = Napi::Object::New(env);
  uint64_t chunks = 0, raw = 0;
  bool ok = mana_imgr_open(&rd.r, path.c_str(), &kHeap, err) == 0;
  if (ok) {
    raw = mana_imgr_header(rd.r)->raw_bytes;
    for (uint64_t k = 0; k < mana_imgr_nregions(rd.r); k++) chunks += mana_imgr_region(rd.r, k)->nchunks;
    ok = mana_imgr_verify(rd.r, err) == 0;
  }
  o.Set("ok", Napi::Boolean::New(env, ok));
  if (!ok) o.Set("error", std::string(err));
  o.Set("chunks", Num(env, chunks));
  o.Set("rawBytes", Num(env, raw));
  return o;
}

uint64_t VdsoSize() {
  FILE *f = std::fopen("/proc/self/maps", "r");
  if (!f) return 0;
  char line[512];
  uint64_t size = 0;
  while (std::fgets(line, sizeof line, f)) {
    if (!std::strstr(line, "[vdso]")) continue;
    unsigned long long a, b;
    if (std::sscanf(line, "%llx-%llx", &a, &b) == 2) size = b - a;
    break;
  }
  std::fclose(f);
  return size;
}

Napi::Value HostFacts(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  struct utsname u;
  Napi::Object o = Napi::Object::New(env);
  if (uname(&u) == 0) {
    o.Set("kernelRelease", std::string(u.release));
    o.Set("kernelVersion", std::string(u.version));
  } else {
    o.Set("kernelRelease", "");
    o.Set("kernelVersion", "");
  }
  o.Set("glibcVersion", gnu_get_libc_version());
  o.Set("vdsoSize", Num(env, VdsoSize()));
  return o;
}

// Fabricates "an image from another machine" for restart-compatibility tests. Works on the
// raw header, without the reader's checks, so that it can also patch a damaged image.
Napi::Value PatchHeaderForTest(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string path = PathArg(info);
  if (info.Length() < 2 || !info[1].IsObject())
    throw Napi::TypeError::New(env, "mana: patchHeaderForTest expects (path, changes)");
  Napi::Object ch = info[1].As<Napi::Object>();
  int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) throw Napi::Error::New(env, "mana: cannot open image " + path + ": " + std::strerror(errno));
  mana_img_header h;
  bool ok = pread(fd, &h, sizeof h, 0) == static_cast<ssize_t>(sizeof h) &&
            std::memcmp(h.magic, MANA_IMG_MAGIC, sizeof h.magic) == 0;
  if (!ok) {
    close(fd);
    throw Napi::Error::New(env, "mana: " + path + " is not a mana image (cannot patch its header)");
  }
  if (ch.Has("vdsoSize") && !ch.Get("vdsoSize").IsUndefined()) {
    h.info.vdso_size = static_cast<uint64_t>(ch.Get("vdsoSize").ToNumber().Int64Value());
    h.info.vdso_end = h.info.vdso_start + h.info.vdso_size;  // keep the layout self-consistent
  }
  if (ch.Has("kernelRelease") && !ch.Get("kernelRelease").IsUndefined()) {
    std::string rel = ch.Get("kernelRelease").ToString().Utf8Value();
    std::memset(h.info.kernel_release, 0, sizeof h.info.kernel_release);
    std::memcpy(h.info.kernel_release, rel.data(), std::min(rel.size(), sizeof h.info.kernel_release - 1));
  }
  h.header_hash = mana_img_header_hash(&h);
  ok = pwrite(fd, &h, sizeof h, 0) == static_cast<ssize_t>(sizeof h);
  int e = errno;
  if (close(fd) < 0 && ok) {
    ok = false;
    e = errno;
  }
  if (!ok) throw Napi::Error::New(env, "mana: cannot write header of " + path + ": " + std::strerror(e));
  return env.Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("readImage", Napi::Function::New(env, ReadImage, "readImage"));
  exports.Set("verifyImage", Napi::Function::New(env, VerifyImage, "verifyImage"));
  exports.Set("hostFacts", Napi::Function::New(env, HostFacts, "hostFacts"));
  exports.Set("patchHeaderForTest", Napi::Function::New(env, PatchHeaderForTest, "patchHeaderForTest"));
  return exports;
}

}  // namespace

NODE_API_MODULE(mana_native, Init)
