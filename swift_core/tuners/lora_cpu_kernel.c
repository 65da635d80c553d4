/* LoRA's low-rank half with its input dropout, in three CPU kernels (see lora_cpu_kernel.py).
 *
 * Why: the dropout mask of each adapted projection costs torch several passes over the
 * (tokens x in) activations (random draws, a compare, a masked copy, a masked gradient) and the
 * rank-r products are too skinny for a GEMM library to reach the CPU's peak. Here the mask is a
 * counter-based hash of (seed, row, column), applied while the input is read once; it is stored
 * as one bit per element (the input itself is kept, not a masked copy), and both backward
 * kernels read those bits.
 *
 * Mask: element (t, i) is dropped when the top 16 bits of mix(i * golden + key(seed, t)) are below
 * `cut` (p rounded to 1/65,536, as FastDropout rounds it). key is splitmix64 of (seed, t); mix is
 * murmur3's 32-bit finaliser. Bits: row t takes ceil(n / 8) bytes; bit l of byte b is 1 when
 * element 8b + l is kept.
 *
 * Every function splits work so that each output element is summed in the same order for any
 * thread count: results do not depend on the number of threads. Plain C with GCC/Clang vector
 * extensions (8 floats), built with -march=native by lora_cpu_kernel.py.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef float v8f __attribute__((vector_size(32)));
typedef uint32_t v8u __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));

int swift_lora_kernel_abi(void) { return 1; }

static inline uint32_t row_key(uint64_t seed, int64_t t) {
    uint64_t z = seed + (uint64_t)(t + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (uint32_t)z ^ (uint32_t)(z >> 32);
}

static inline uint32_t mix(uint32_t h) {
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

static inline int kept(uint32_t key, int64_t i, uint32_t cut) {
    return (mix((uint32_t)i * 0x9E3779B1u + key) >> 16) >= cut;
}

static const v8u LANE = {0, 1, 2, 3, 4, 5, 6, 7};
static const v8i BIT = {1, 2, 4, 8, 16, 32, 64, 128};

/* all ones in the lanes of elements i .. i + 7 that are kept */
static inline v8i keep_vec(uint32_t key, int64_t i, uint32_t cut) {
    v8u h = ((v8u){0} + (uint32_t)i + LANE) * 0x9E3779B1u + key;
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return (v8i)((h >> 16) >= cut);
}

static inline v8i bits_vec(uint8_t b) { return (((v8i){0} + (int32_t)b) & BIT) != 0; }

static inline uint8_t vec_bits(v8i keep) {
    v8i w = keep & BIT;
    return (uint8_t)(w[0] | w[1] | w[2] | w[3] | w[4] | w[5] | w[6] | w[7]);
}

static inline int bit(const uint8_t *row, int64_t i) { return (row[i >> 3] >> (i & 7)) & 1; }
static inline v8f loadu(const float *p) { v8f v; memcpy(&v, p, sizeof v); return v; }
static inline void storeu(float *p, v8f v) { memcpy(p, &v, sizeof v); }
static inline v8f masked(v8f x, v8i keep) { return (v8f)((v8i)x & keep); }
static inline float hsum(v8f v) { return v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7]; }

#define RB 8 /* rank rows per pass of the forward: 8 accumulators */

/* z[t, j] = scale * sum_i keep(t, i) x[t, i] A[j, i], x (T x n), A (r x n), z (T x r); writes the
 * keep bits (T x ceil(n / 8)). Threads split the rows. */
void swift_lora_down(const float *restrict x, const float *restrict A, float *restrict z,
                     uint8_t *restrict bits, int64_t T, int64_t n, int64_t r, uint64_t seed,
                     uint32_t cut, float scale, int threads) {
    int64_t nv = n / 8 * 8, nb = (n + 7) / 8;
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
    for (int64_t t = 0; t < T; t++) {
        const float *xt = x + t * n;
        uint8_t *bt = bits + t * nb;
        uint32_t key = row_key(seed, t);
        memset(bt, 0, (size_t)nb);
        for (int64_t i = nv; i < n; i++) bt[i >> 3] |= (uint8_t)(kept(key, i, cut) << (i & 7));
        for (int64_t j0 = 0; j0 < r; j0 += RB) {
            int64_t jb = r - j0 < RB ? r - j0 : RB;
            v8f acc[RB] = {{0}};
            const float *a = A + j0 * n;
            for (int64_t i = 0; i < nv; i += 8) {
                v8i k;
                if (j0 == 0) {
                    k = keep_vec(key, i, cut);
                    bt[i >> 3] = vec_bits(k);
                } else {
                    k = bits_vec(bt[i >> 3]);
                }
                v8f v = masked(loadu(xt + i), k);
                if (jb == RB)
                    for (int j = 0; j < RB; j++) acc[j] += v * loadu(a + j * n + i);
                else
                    for (int j = 0; j < jb; j++) acc[j] += v * loadu(a + j * n + i);
            }
            for (int j = 0; j < jb; j++) {
                float s = hsum(acc[j]);
                for (int64_t i = nv; i < n; i++) s += bit(bt, i) ? xt[i] * a[j * n + i] : 0.0f;
                z[t * r + j0 + j] = s * scale;
            }
        }
    }
}

/* keep[t, i] = 1 where kept, 0 where dropped: the mask as bytes, for tests and references */
void swift_lora_unpack_keep(const uint8_t *restrict bits, uint8_t *restrict keep, int64_t T, int64_t n) {
    int64_t nb = (n + 7) / 8;
    for (int64_t t = 0; t < T; t++)
        for (int64_t i = 0; i < n; i++) keep[t * n + i] = (uint8_t)bit(bits + t * nb, i);
}

#define TB 16 /* rows per block: their slice of x stays in cache across the column blocks */
#define CV 3  /* column vectors (8 floats each) per tile */
#define JB 4  /* rank rows per tile: 4 x 3 accumulators, 7 loads per 12 FMAs */

/* gA[j, i] = sum_t gz[t, j] keep(t, i) x[t, i], gz (T x r), gA (r x n). Threads split the columns. */
void swift_lora_grad_a(const float *restrict gz, const float *restrict x, const uint8_t *restrict bits,
                       float *restrict gA, int64_t T, int64_t n, int64_t r, int threads) {
    int64_t nb = (n + 7) / 8, nv = n / 8, ncb = (nv + CV - 1) / CV;
    memset(gA, 0, sizeof(float) * (size_t)(r * n));
#pragma omp parallel num_threads(threads) if (threads > 1)
    for (int64_t t0 = 0; t0 < T; t0 += TB) {
        int64_t t1 = t0 + TB < T ? t0 + TB : T;
#pragma omp for schedule(static)
        for (int64_t cb = 0; cb < ncb; cb++) {
            int64_t c0 = cb * CV, cn = nv - c0 < CV ? nv - c0 : CV;
            for (int64_t j0 = 0; j0 < r; j0 += JB) {
                int64_t jb = r - j0 < JB ? r - j0 : JB;
                v8f acc[JB][CV];
                for (int j = 0; j < jb; j++)
                    for (int c = 0; c < cn; c++) acc[j][c] = loadu(gA + (j0 + j) * n + (c0 + c) * 8);
                for (int64_t t = t0; t < t1; t++) {
                    v8f v[CV];
                    const float *g = gz + t * r + j0;
                    if (jb == JB && cn == CV) {
                        for (int c = 0; c < CV; c++)
                            v[c] = masked(loadu(x + t * n + (c0 + c) * 8), bits_vec(bits[t * nb + c0 + c]));
                        for (int j = 0; j < JB; j++) {
                            float gj = g[j];
                            for (int c = 0; c < CV; c++) acc[j][c] += gj * v[c];
                        }
                    } else {
                        for (int c = 0; c < cn; c++)
                            v[c] = masked(loadu(x + t * n + (c0 + c) * 8), bits_vec(bits[t * nb + c0 + c]));
                        for (int j = 0; j < jb; j++) {
                            float gj = g[j];
                            for (int c = 0; c < cn; c++) acc[j][c] += gj * v[c];
                        }
                    }
                }
                for (int j = 0; j < jb; j++)
                    for (int c = 0; c < cn; c++) storeu(gA + (j0 + j) * n + (c0 + c) * 8, acc[j][c]);
            }
        }
    }
    for (int64_t t = 0; t < T; t++)
        for (int64_t i = nv * 8; i < n; i++) {
            if (!bit(bits + t * nb, i)) continue;
            float v = x[t * n + i];
            for (int64_t j = 0; j < r; j++) gA[j * n + i] += gz[t * r + j] * v;
        }
}

/* gx[t, i] += keep(t, i) * sum_j gz[t, j] A[j, i], gx (T x n) in place. Threads split the rows. */
void swift_lora_grad_x_add(const float *restrict gz, const float *restrict A, const uint8_t *restrict bits,
                           float *restrict gx, int64_t T, int64_t n, int64_t r, int threads) {
    int64_t nv = n / 8 * 8, nb = (n + 7) / 8;
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
    for (int64_t t = 0; t < T; t++) {
        const float *g = gz + t * r;
        const uint8_t *bt = bits + t * nb;
        float *o = gx + t * n;
        for (int64_t i = 0; i < nv; i += 8) {
            v8f s = {0};
            for (int64_t j = 0; j < r; j++) s += g[j] * loadu(A + j * n + i);
            storeu(o + i, loadu(o + i) + masked(s, bits_vec(bt[i >> 3])));
        }
        for (int64_t i = nv; i < n; i++) {
            if (!bit(bt, i)) continue;
            float s = 0;
            for (int64_t j = 0; j < r; j++) s += g[j] * A[j * n + i];
            o[i] += s;
        }
    }
}
