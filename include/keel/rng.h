/* rng.h — small seeded PRNG (xoshiro256**-style): same seed, same sequence. Pure. */
#ifndef KEEL_RNG_H
#define KEEL_RNG_H

#include <stdint.h>

typedef struct kl_rng {
    uint64_t s[4];
} kl_rng_t;

void kl_rng_seed(kl_rng_t *r, uint64_t seed);
uint64_t kl_rng_next(kl_rng_t *r);
/* Uniform in [lo, hi); returns lo when hi <= lo. */
int64_t kl_rng_range(kl_rng_t *r, int64_t lo, int64_t hi);
/* True with probability num/den. */
int kl_rng_chance(kl_rng_t *r, uint32_t num, uint32_t den);

#endif
