/* zstd_trace.c — zstd calls these optional tracing hooks through weak references; in a
 * static binary linked above 4 GiB an undefined weak function cannot be reached by a direct
 * call, so provide the "no tracing" versions. */
#include <stddef.h>

typedef unsigned long long ZSTD_TraceCtx;
struct ZSTD_DCtx_s;
struct ZSTD_CCtx_s;
struct ZSTD_Trace;
ZSTD_TraceCtx ZSTD_trace_decompress_begin(const struct ZSTD_DCtx_s *d);
void ZSTD_trace_decompress_end(ZSTD_TraceCtx c, const struct ZSTD_Trace *t);
ZSTD_TraceCtx ZSTD_trace_compress_begin(const struct ZSTD_CCtx_s *c);
void ZSTD_trace_compress_end(ZSTD_TraceCtx c, const struct ZSTD_Trace *t);

ZSTD_TraceCtx ZSTD_trace_decompress_begin(const struct ZSTD_DCtx_s *d) { (void)d; return 0; }
void ZSTD_trace_decompress_end(ZSTD_TraceCtx c, const struct ZSTD_Trace *t) { (void)c; (void)t; }
ZSTD_TraceCtx ZSTD_trace_compress_begin(const struct ZSTD_CCtx_s *c) { (void)c; return 0; }
void ZSTD_trace_compress_end(ZSTD_TraceCtx c, const struct ZSTD_Trace *t) { (void)c; (void)t; }
