/* mana.h — optional application API of the mana checkpointer (libmana.so). */
#ifndef MANA_H
#define MANA_H

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when this process runs under mana (libmana loaded and connected to an agent), else 0. */
int mana_is_enabled(void);

#ifdef __cplusplus
}
#endif
#endif
