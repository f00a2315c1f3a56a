/* mana_image.h — the one implementation of the mana checkpoint image format.
 *
 * Used by three clients, which is why it must stay free of hidden state:
 *   - the checkpointer (libmana.so) writes images from its checkpoint thread while every
 *     other thread is parked in a signal handler, possibly holding the malloc lock: the
 *     writer therefore never calls malloc/stdio; it allocates through mana_img_alloc.
 *   - the restore program (mana_restore, static) reads images before it overwrites its own
 *     address space; it passes an allocator that places memory where the image has nothing.
 *   - the Node addon (mana inspect / verify) reads and verifies images with plain malloc.
 *
 * File layout (all integers little-endian, x86_64 only for now):
 *   [0, 8192)      struct mana_img_header (padded to MANA_IMG_HEADER_SIZE), written last
 *   [8192, ...)    region data: per region, a sequence of chunks of at most chunk_size raw
 *                  bytes; each chunk stored raw, zstd-compressed (one frame), or not at all
 *                  (all-zero chunk)
 *   [meta_offset)  metadata block: struct mana_img_meta, then the arrays in the order
 *                  threads, regions, chunks, fds, then the string table
 * Integrity: header_hash covers the header; meta_hash covers the metadata block; each chunk
 * has the XXH3-64 hash of its raw bytes. A truncated file fails on meta_offset/size, a flipped
 * byte fails on a hash, and every failure names the region and address.
 */
#ifndef MANA_IMAGE_H
#define MANA_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MANA_IMG_MAGIC "MANAIMG\0"
/* Version 2 added incremental images (parent fields in the header, MANA_C_PARENT chunks);
 * readers accept version 1 too (same layout without the parent fields). */
#define MANA_IMG_VERSION 2u
/* sizeof(struct mana_img_header) is 4640 (the sigaction table alone is 2 KiB), so the padded
 * header takes two pages; region data starts page-aligned right after it. */
#define MANA_IMG_HEADER_SIZE 8192u
#define MANA_IMG_CHUNK_SIZE (4u << 20) /* largest chunk a reader accepts (version 1 wrote these) */
/* What the writer cuts regions into. Smaller chunks let an incremental image reference more of
 * its parent (a 4 KiB change dirties 1 MiB, not 4 MiB); 32 bytes of metadata per MiB. */
#define MANA_IMG_WRITE_CHUNK_SIZE (1u << 20)
/* Longest parent chain a reader follows (the coordinator writes a full image far earlier). */
#define MANA_IMG_MAX_CHAIN 64

/* header flags */
#define MANA_IMG_F_COMPRESSED 0x1u /* at least one chunk is zstd-compressed */

/* region kinds (what the region was in the checkpointed process) */
enum mana_region_kind {
  MANA_R_ANON = 0,   /* private anonymous memory */
  MANA_R_FILE = 1,   /* private file mapping: contents saved, restored as anonymous */
  MANA_R_HEAP = 2,   /* [heap] (brk area) */
  MANA_R_STACK = 3,  /* [stack] of the main thread */
  MANA_R_SHARED_FILE = 4, /* MAP_SHARED file mapping: re-mapped from the file, no data */
  MANA_R_SHARED_ANON = 5, /* MAP_SHARED anonymous/shm: contents saved, restored private */
  MANA_R_GUARD = 6,  /* no read permission: restored as PROT_NONE, no data */
};

/* region flags */
#define MANA_RF_NO_DATA 0x1u /* nothing stored (guard pages, shared file mappings) */

/* chunk encodings */
/* MANA_C_PARENT: nothing stored; the parent image (header field parent) has a chunk starting at
 * the same address with the same raw_len and hash, which the reader uses (recursively). */
enum mana_chunk_enc { MANA_C_RAW = 0, MANA_C_ZSTD = 1, MANA_C_ZERO = 2, MANA_C_PARENT = 3 };

/* thread flags */
#define MANA_TF_MAIN 0x1u /* the thread whose tid == pid at checkpoint */
#define MANA_TF_CKPT 0x2u /* the checkpoint thread of libmana */
#define MANA_TF_HELPER 0x4u /* a helper thread of libmana's image writer (restored like others) */

/* fd kinds */
enum mana_fd_kind {
  MANA_FD_REGULAR = 0, /* regular file: reopened by path at restart, offset restored */
  MANA_FD_STD = 1,     /* 0,1,2: rebound to the restarting terminal, never reopened */
  MANA_FD_SKIPPED = 2, /* pipe, socket, device, ...: not restored (see docs) */
  MANA_FD_DELETED = 3, /* regular file deleted while open: not yet supported, reported */
  MANA_FD_DEVICE = 4,  /* /dev/null, /dev/zero, /dev/full, /dev/random, /dev/urandom: character
                          devices with stable paths, reopened by path at restart */
  MANA_FD_DELETED_SAVED = 5, /* regular file deleted while open, contents saved: libmana keeps
                          a copy in an anonymous region of the image and the restored process
                          recreates it as an unlinked file (the restore program skips it) */
};

/* Callee-saved register context of a thread, as saved by mana_ctx_save (native/include/mana_ctx.h).
 * Restoring it makes mana_ctx_save return 1 in that thread. */
struct mana_ctx {
  uint64_t rbx, rbp, r12, r13, r14, r15, rsp, rip;
  uint32_t mxcsr;
  uint16_t fpucw;
  uint16_t pad;
};

struct mana_img_thread {
  uint32_t tid;        /* tid at checkpoint */
  uint32_t flags;      /* MANA_TF_* */
  uint64_t fs_base;    /* thread pointer (struct pthread *) */
  uint64_t tid_addr;   /* &pthread->tid: CLONE_PARENT_SETTID/CHILD_CLEARTID target, 0 if unknown */
  uint64_t sigmask;    /* blocked mask while parked */
  struct mana_ctx ctx;
};

struct mana_img_region {
  uint64_t start, end;   /* [start, end) page-aligned */
  uint32_t prot;         /* PROT_* */
  uint32_t kind;         /* enum mana_region_kind */
  uint32_t flags;        /* MANA_RF_* */
  uint32_t path_off;     /* into the string table; 0 = no path ("" at offset 0) */
  uint64_t file_offset;  /* offset of the mapping in its file */
  uint64_t first_chunk;  /* index into the chunk array */
  uint64_t nchunks;
  uint64_t stored_bytes; /* sum of the chunks' stored sizes */
};

struct mana_img_chunk {
  uint64_t file_off;   /* where the stored bytes are in the image file */
  uint32_t raw_len;    /* bytes of memory this chunk covers */
  uint32_t stored_len; /* bytes in the file (0 for MANA_C_ZERO) */
  uint32_t enc;        /* enum mana_chunk_enc */
  uint32_t pad;
  uint64_t hash;       /* XXH3-64 of the raw bytes */
};

struct mana_img_fd {
  int32_t fd;
  uint32_t kind;       /* enum mana_fd_kind */
  uint32_t flags;      /* open flags from fcntl(F_GETFL) */
  uint32_t fd_flags;   /* FD_CLOEXEC etc. */
  uint64_t offset;     /* lseek(fd, 0, SEEK_CUR) for regular files */
  uint32_t path_off;   /* string table */
  uint32_t mode;       /* st_mode at checkpoint */
  uint64_t size;       /* st_size at checkpoint */
};

/* Kernel-layout sigaction (what rt_sigaction takes on x86_64). */
struct mana_ksigaction {
  uint64_t handler;
  uint64_t flags;
  uint64_t restorer;
  uint64_t mask;
};

#define MANA_NSIG 64

/* Process-wide facts, written into the header. Strings are NUL-terminated. */
struct mana_img_info {
  uint32_t pid;
  uint32_t proc_id;          /* mana's stable process number (rank for MPI jobs) */
  uint64_t generation;       /* checkpoint generation this image belongs to */
  uint64_t created_unix_ns;
  char hostname[64];
  char kernel_release[65];   /* uname -r */
  char kernel_version[128];  /* uname -v */
  char glibc_version[32];    /* gnu_get_libc_version() of the saved process */
  char exe[512];             /* /proc/self/exe target */
  char cwd[512];
  char cmdline[1024];        /* argv joined by spaces (display only) */
  uint64_t vvar_start, vdso_start, vdso_end; /* [vvar_start, vdso_end) spans vvar, vvar_vclock, vdso */
  uint64_t vdso_size;        /* vdso_end - vdso_start, compared at restart */
  uint64_t brk_start, brk_cur;
  /* mm layout from /proc/self/stat (fields 26,27,45-51, 28): the restore program sets them
   * with prctl(PR_SET_MM_MAP) when it may (CAP_SYS_RESOURCE); otherwise glibc's malloc falls
   * back to mmap when sbrk fails, which the tests exercise as an unprivileged user. */
  uint64_t start_code, end_code, start_data, end_data, start_stack;
  uint64_t arg_start, arg_end, env_start, env_end;
  uint64_t restart_info_addr; /* &struct mana_restart_info inside libmana */
  uint64_t ctx_version;       /* layout version of struct mana_ctx, 1 */
  struct mana_ksigaction sigactions[MANA_NSIG]; /* index = signal number - 1 */
  uint64_t umask;
};

/* The on-disk header. Fixed-size fields only; padded to MANA_IMG_HEADER_SIZE on disk. */
struct mana_img_header {
  char magic[8];             /* MANA_IMG_MAGIC */
  uint32_t version;          /* MANA_IMG_VERSION */
  uint32_t header_size;      /* MANA_IMG_HEADER_SIZE */
  uint64_t flags;            /* MANA_IMG_F_* */
  uint64_t meta_offset, meta_size, meta_hash;
  uint64_t raw_bytes;        /* memory bytes covered by all regions */
  uint64_t stored_bytes;     /* region data bytes in the file */
  uint64_t file_size;        /* total image size: header + data + metadata */
  struct mana_img_info info;
  /* version 2: an incremental image names its parent; all zero in a full image (and when a
   * version-1 header is read) */
  uint64_t parent_header_hash; /* the parent's header_hash at write time */
  uint64_t parent_generation;
  uint64_t ref_bytes;          /* memory bytes held as MANA_C_PARENT references */
  char parent[256];            /* parent image path, relative to this image's directory */
  uint64_t header_hash;      /* XXH3-64 of all bytes of this struct before this field */
};

/* The metadata block that starts at meta_offset. */
struct mana_img_meta {
  uint64_t nthreads, nregions, nchunks, nfds, strtab_size;
};

/* Allocation used by the library. free receives the size given to alloc. */
struct mana_img_alloc {
  void *(*alloc)(void *ctx, size_t size); /* returns NULL on failure */
  void (*free)(void *ctx, void *ptr, size_t size);
  void *ctx;
};
/* An allocator over mmap/munmap (async-signal-safe; the checkpointer's default). */
extern const struct mana_img_alloc mana_img_mmap_alloc;

/* Errors: functions return 0 on success, -1 on failure with a one-line message (naming the
 * image, and the region or fd when there is one) in the caller's err buffer. */
#define MANA_IMG_ERRLEN 512

/* ---------- writing ---------- */
typedef struct mana_img_writer mana_img_writer;

struct mana_img_write_opts {
  int compress_level;   /* 0 = store raw; >0 = zstd level */
  int fsync;            /* 1: fsync the file before close returns */
  /* progress callback, may be NULL: called after each chunk with bytes of memory done */
  void (*progress)(void *arg, uint64_t raw_done, uint64_t stored_done);
  void *progress_arg;
  /* May be NULL: the previous image of this process, relative to the directory of the image
   * being written (which must be the same relative to its final directory). Chunks whose hash
   * and size equal the parent's chunk at the same address become MANA_C_PARENT references.
   * A parent that cannot be opened or read makes a full image instead (never a failure). */
  const char *parent;
  /* May be NULL: filled by mana_imgw_close with where the time went (for tuning reports). */
  struct mana_img_write_stats *stats;
  /* May be NULL: threads that help with large regions (see mana_img_workers). */
  const struct mana_img_workers *workers;
  /* 1: write 4 KiB-aligned raw data with O_DIRECT (no page-cache copy); the library falls back
   * to buffered writes where the filesystem refuses it. Metadata and header stay buffered. */
  int direct;
};

/* Helper threads for a writer. The library never creates threads (a checkpointer cannot while
 * the threads it froze may hold libc's locks): the caller owns them. run(ctx, fn, arg) must
 * call fn(arg, k) once for every k in 1..n-1, each on its own helper thread, and fn(arg, 0) on
 * the calling thread, and return when all n calls have returned. fn does not allocate. */
#define MANA_IMG_MAX_WORKERS 16
struct mana_img_workers {
  int n; /* threads that write, the calling thread included; <= 1: the caller alone */
  void (*run)(void *ctx, void (*fn)(void *arg, int k), void *arg);
  void *ctx;
};

/* Nanoseconds, summed over the threads that did the work (so cpu + io may exceed wall). */
struct mana_img_write_stats {
  uint64_t cpu_ns;    /* zero checks, hashes, parent lookups, compression */
  uint64_t io_ns;     /* write system calls of region data */
  uint64_t sync_ns;   /* metadata, header, both fsyncs and close */
  uint64_t wall_ns;   /* mana_imgw_open to the end of mana_imgw_close */
  uint32_t threads;   /* threads that wrote region data */
};

/* Creates path (O_CREAT|O_EXCL, mode 0600). */
int mana_imgw_open(mana_img_writer **w, const char *path, const struct mana_img_info *info,
                   const struct mana_img_write_opts *opts, const struct mana_img_alloc *a,
                   char err[MANA_IMG_ERRLEN]);
int mana_imgw_add_thread(mana_img_writer *w, const struct mana_img_thread *t, char err[MANA_IMG_ERRLEN]);
int mana_imgw_add_fd(mana_img_writer *w, const struct mana_img_fd *f, const char *path,
                     char err[MANA_IMG_ERRLEN]);
/* Stores [r->start, r->end) read from memory at `data` (normally == (void*)r->start) unless
 * r->flags has MANA_RF_NO_DATA. `data` must stay unchanged until mana_imgw_close returns. With
 * workers, the chunks of a large region are stored by several threads, each at a file offset
 * it reserves, so their order in the file may differ from their order in memory (readers
 * follow each chunk's file_off). Fields first_chunk/nchunks/stored_bytes/path_off are filled by
 * the writer. Unpopulated pages may be passed: all-zero chunks are stored as MANA_C_ZERO. */
int mana_imgw_add_region(mana_img_writer *w, const struct mana_img_region *r, const char *path,
                         const void *data, char err[MANA_IMG_ERRLEN]);
/* Writes metadata and header, fsyncs (if asked), closes. On failure the file is unlinked.
 * Always frees the writer. hdr_out may be NULL. */
int mana_imgw_close(mana_img_writer *w, struct mana_img_header *hdr_out, char err[MANA_IMG_ERRLEN]);
/* Abandons a write: closes and unlinks the file, frees the writer. */
void mana_imgw_abort(mana_img_writer *w);
/* The descriptor of the parent image an incremental write reads, or -1: the writer's own, not
 * the program's (a checkpointer leaves it out of the image's fd table). */
int mana_imgw_parent_fd(const mana_img_writer *w);

/* ---------- reading ---------- */
typedef struct mana_img_reader mana_img_reader;

/* Opens and validates header and metadata (not region data). */
int mana_imgr_open(mana_img_reader **r, const char *path, const struct mana_img_alloc *a,
                   char err[MANA_IMG_ERRLEN]);
const struct mana_img_header *mana_imgr_header(const mana_img_reader *r);
uint64_t mana_imgr_nthreads(const mana_img_reader *r);
const struct mana_img_thread *mana_imgr_thread(const mana_img_reader *r, uint64_t i);
uint64_t mana_imgr_nregions(const mana_img_reader *r);
const struct mana_img_region *mana_imgr_region(const mana_img_reader *r, uint64_t i);
const struct mana_img_chunk *mana_imgr_chunk(const mana_img_reader *r, uint64_t i);
uint64_t mana_imgr_nfds(const mana_img_reader *r);
const struct mana_img_fd *mana_imgr_fd(const mana_img_reader *r, uint64_t i);
const char *mana_imgr_str(const mana_img_reader *r, uint32_t off);
/* Reads region i into dst (end - start bytes, writable), decompressing and verifying each
 * chunk's hash. Zero chunks are memset only if zero_fill (fresh anonymous memory is zero). */
int mana_imgr_read_region(mana_img_reader *r, uint64_t i, void *dst, int zero_fill,
                          char err[MANA_IMG_ERRLEN]);
/* Memory taken from the allocator by a reader: the metadata block (about 32 bytes per 4 MiB of
 * memory plus 64 per region), 4 MiB once the first compressed chunk is read, and 4 MiB more
 * for mana_imgr_verify. */
/* Reads and verifies every chunk of every region without keeping the data. */
int mana_imgr_verify(mana_img_reader *r, char err[MANA_IMG_ERRLEN]);
/* Opens the parent image of an incremental image (once; later calls return the same reader),
 * checking that its header hash is the one recorded. *p = NULL and 0 for a full image. The
 * parent belongs to r (closed with it). */
int mana_imgr_parent(mana_img_reader *r, mana_img_reader **p, char err[MANA_IMG_ERRLEN]);
/* The image's path as given to mana_imgr_open. */
const char *mana_imgr_path(const mana_img_reader *r);
/* The image file's descriptor (the restore program closes it before restoring fds). */
int mana_imgr_fd_of(const mana_img_reader *r);
void mana_imgr_close(mana_img_reader *r);

/* ---------- helpers (added with the implementation; names for display and tests) ---------- */
/* "anon", "file", "heap", "stack", "shared-file", "shared-anon", "guard"; "?" if unknown. */
const char *mana_img_region_kind_name(uint32_t kind);
/* "regular", "std", "skipped", "deleted", "device", "deleted-saved"; "?" if unknown. */
const char *mana_img_fd_kind_name(uint32_t kind);
/* XXH3-64, the hash used for chunks, the metadata block and the header. */
uint64_t mana_img_hash(const void *p, size_t n);
/* The header_hash a header must carry (hash of the bytes before header_hash). */
uint64_t mana_img_header_hash(const struct mana_img_header *h);

#ifdef __cplusplus
}
#endif
#endif
