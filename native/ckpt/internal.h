/* internal.h — state shared by the parts of libmana (all hidden by libmana.map). */
#ifndef MANA_CKPT_INTERNAL_H
#define MANA_CKPT_INTERNAL_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "mana_fmt.h"
#include "mana_image.h"
#include "mana_restart.h"

#define MANA_MAX_THREADS 1024

enum slot_state { SLOT_FREE = 0, SLOT_CLAIMED = 1, SLOT_PARKED = 2 };

/* One application thread parked in the signal handler. Lives in libmana's bss, so it is
 * part of the image and the restored thread finds its own slot again. */
struct park_slot {
  volatile int state;
  int tid;
  uint64_t fs_base;
  uint64_t tid_addr;
  uint64_t robust_head, robust_len;
  uint64_t sigmask;
  stack_t altstack;
  int altstack_ok;
  int seen_seq;
  struct mana_ctx ctx;
  uint64_t pending;     /* signals pending for this thread at checkpoint (sigstate.c) */
};

struct mana_config {
  int enabled;          /* constructor found MANA_AGENT_SOCK */
  int write_threads;    /* MANA_WRITE_THREADS: threads that write an image, this one included */
  int write_direct;     /* MANA_WRITE_DIRECT (default 1): raw data with O_DIRECT */
  int write_stats;      /* MANA_WRITE_STATS=1: one line on stderr per image written */
  int ckpt_signal;
  int proc_id;
  int drop_fds;         /* MANA_DROP_FDS=1: record unrestorable fds as SKIPPED, don't refuse */
  int mpi_rank;         /* MPI rank mode (MANA_MPI_JOB=1): this rank, else -1 */
  int mpi_size;         /* the job's size when the launcher said, else -1 */
  int test_write_hold_ms; /* MANA_TEST_WRITE_HOLD_MS (tests only): pause once per image write */
  char sock_path[512];
};

extern struct mana_config mana_cfg;
extern struct mana_restart_info mana_restart_info;
extern long mana_tid_offset;   /* offset of `tid` in glibc's struct pthread, -1 unknown */

extern struct park_slot mana_slots[MANA_MAX_THREADS];
extern volatile int mana_nslots;
extern struct park_slot mana_ckpt_slot;   /* the checkpoint thread itself */
extern volatile int mana_resume_seq;
extern volatile int mana_suspending;
extern volatile int mana_in_handler;
extern int mana_ckpt_tid;

/* init.c */
uint64_t mana_get_fs_base(void);
/* MPI rank mode: the rank and size the launcher gave this process, from an environment
 * lookup (getenv, or the restart environment); 0 with *rank, *size (-1 unknown), or -1 when
 * the environment names no rank (a launcher or one of its daemons). */
/* the constructor has run (mana_cfg.enabled is final); before that, whether it will enable
 * libmana (the environment's verdict) */
extern volatile int mana_init_done;
int mana_will_be_enabled(void);
int mana_mpi_rank_from(const char *(*get)(const char *key, void *arg), void *arg, int *rank,
                       int *size);

/* plugin.c: mana_plugin.h's dispatchers, all on the checkpoint thread */
/* presuspend of every plugin registered now (they make up the round); 0, or -1 with the
 * failing plugin's one-line reason in err (later plugins are not asked) */
int mana_plugins_presuspend(char *err, size_t errlen);
/* restarted = 0: resume(0) of each plugin presuspended since the last resume;
 * restarted = 1: resume(1) of every plugin */
void mana_plugins_resume(int restarted);
/* before parking: the tids the round's plugins keep out (never signalled, parked or saved) */
int mana_plugins_collect_tids(char *err, size_t errlen);
int mana_plugin_tid_excluded(int tid);
/* whether [start, end) holds the stack of an excluded thread (it changes while the image is
 * written); and whether some excluded thread's stack could not be located */
int mana_plugins_stack_in(uint64_t start, uint64_t end);
int mana_plugins_stack_unknown(void);
/* fds plugins keep out of the image (their own sockets, ...): asked once per image */
void mana_plugins_collect_fds(void);
int mana_plugin_fd_excluded(int fd);
/* while parked: the ranges the round's plugins keep out of the image, cut to whole pages,
 * sorted and merged; returns how many */
int mana_plugins_collect_ranges(void);
/* the next piece of [*from, end) that is saved (1), or 0 when nothing of it is left */
int mana_plugins_next_piece(uint64_t *from, uint64_t end, uint64_t *ps, uint64_t *pe);
/* in the restored process: restart(env) of every plugin; 0, or -1 with a reason in err */
int mana_plugins_restart(char *err, size_t errlen);

/* sig.c */
int mana_real_sigaction(int sig, const struct sigaction *act, struct sigaction *old);
void mana_sig_forward(int sig, siginfo_t *si, void *uc);
int mana_real_sigmask(int how, const sigset_t *set, sigset_t *old);

/* park.c */
void mana_park_handler(int sig, siginfo_t *si, void *uc);
int mana_park_all(char *err, size_t errlen);
void mana_unpark_all(void);
void mana_fill_self_slot(struct park_slot *s);
void mana_fix_kernel_state(struct park_slot *s);

/* fmt.c: protocol payloads ("key=value\n") and small string helpers, without stdio or
 * malloc (safe while threads are parked); the string builder itself is mana_fmt.h's. */
void fmt_kv_str(struct mana_fmt *f, const char *k, const char *v);
void fmt_kv_u64(struct mana_fmt *f, const char *k, uint64_t v);
int mana_streq(const char *a, const char *b);
int mana_strneq(const char *a, const char *b, size_t n);
size_t mana_strlen(const char *s);
int mana_parse_u64(const char *s, const char **end, uint64_t *out, int base);
void mana_msleep(long ms);
uint64_t mana_now_ns(int clock);

/* sigstate.c */
void mana_sigstate_save(void);
void mana_sigstate_restore_thread(struct park_slot *s);
void mana_sigstate_restore_process(void);

/* wire.c */
void *mana_ckpt_thread_main(void *arg);
/* sends a message from an application thread (signals blocked, serialized with the
 * checkpoint thread's own sends); 0 or -1 */
int mana_send_from_app(int type, const char *payload);

/* api.c: the application API (mana.h) */
extern volatile int mana_api_disabled;    /* mana_disable_ckpt nesting, process-wide */
extern volatile int mana_api_gate;        /* 1 while the checkpoint thread wants to suspend */
extern volatile uint64_t mana_api_reply_seq; /* last CKPT_REQUEST answered */
extern volatile int mana_api_reply_ok;

/* pool.c: helper threads for the image writer (see the comment there) */
#define MANA_POOL_MAX (MANA_IMG_MAX_WORKERS - 1)
extern struct park_slot mana_pool_slots[MANA_POOL_MAX];
extern int mana_pool_n;
void mana_pool_start(int n);     /* the checkpoint thread, once, before any park round */
void mana_pool_started(void);    /* before every park round: helpers' tids are known */
int mana_pool_is_helper(int tid);
void mana_pool_begin(void);      /* before the image's memory map is read */
void mana_pool_run(void *ctx, void (*fn)(void *, int), void *arg);
void mana_pool_end(void);        /* after the image is closed or abandoned */
void mana_pool_reset(void);      /* the restored checkpoint thread */
int mana_pool_stack_in(uint64_t start, uint64_t end);

/* write.c */
/* parent: the previous image (relative to path's directory) or NULL/"" for a full image */
int mana_write_image(const char *path, int compress, uint64_t generation, const char *parent,
                     char *err,
                     size_t errlen, struct mana_img_header *hdr);
extern int mana_sock_fd;

/* maps.c */
int mana_add_regions(void *w, char *err);
/* fds.c */
int mana_add_fds(void *w, const char *image_path, char *err);
/* init.c: fds > 2 the program inherited from whatever started it (recorded at load time) */
#define MANA_MAX_INHERITED 8192 /* an MPI launcher leaks every rank's output pipes into each: 3 per rank of the node */
struct mana_inherited_fd {
  int fd;
  uint64_t dev, ino;
};
extern struct mana_inherited_fd mana_inherited[MANA_MAX_INHERITED];
extern int mana_ninherited;
void mana_record_inherited(void); /* fds.c: at load time, and in a restored process */
/* fds.c: deleted-while-open files whose contents were copied into memory for the image */
void mana_copy_deleted_fds(void);  /* before the memory map is read */
void mana_release_deleted(void);   /* after the image is written (or abandoned) */
void mana_recreate_deleted(void);  /* in the restored process, before RESUME */
/* 0, or -1 with a one-line refusal in err when the process has live children */
int mana_check_children(char *err, size_t errlen);

#endif
