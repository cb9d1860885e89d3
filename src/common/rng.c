/* rng.c — xoshiro256** seeded through splitmix64: deterministic, pure, not cryptographic. */
#include "keel/rng.h"

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* splitmix64 spreads any seed (even 0) into a well-mixed, never all-zero state. */
static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void kl_rng_seed(kl_rng_t *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

uint64_t kl_rng_next(kl_rng_t *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* Uniform in [0, span) by Lemire's multiply-and-reject: no modulo bias. */
static uint64_t rng_below(kl_rng_t *r, uint64_t span)
{
    unsigned __int128 m = (unsigned __int128)kl_rng_next(r) * span;
    uint64_t low = (uint64_t)m;
    if (low < span) {
        uint64_t threshold = (0 - span) % span;
        while (low < threshold) {
            m = (unsigned __int128)kl_rng_next(r) * span;
            low = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

int64_t kl_rng_range(kl_rng_t *r, int64_t lo, int64_t hi)
{
    if (hi <= lo) return lo;
    /* Unsigned arithmetic: hi - lo may exceed INT64_MAX, and the sum wraps back into range. */
    uint64_t span = (uint64_t)hi - (uint64_t)lo;
    return (int64_t)((uint64_t)lo + rng_below(r, span));
}

int kl_rng_chance(kl_rng_t *r, uint32_t num, uint32_t den)
{
    if (num == 0 || den == 0) return 0;
    if (num >= den) return 1;
    return rng_below(r, den) < num;
}
