/* clio's own GAP8 cluster kernels: see clio_gap8_kernels.h. Integer sums wrap (unsigned
 * arithmetic), as clio's integer interpreter's do. */
#include <string.h>
#include "pmsis.h"
#include "clio_gap8_kernels.h"

static void chunk(uint32_t n, uint32_t *first, uint32_t *last)
{
  uint32_t nc = (uint32_t)pi_cl_team_nb_cores(), id = (uint32_t)pi_core_id();
  uint32_t per = (n + nc - 1) / nc;
  *first = id * per < n ? id * per : n;
  *last = *first + per < n ? *first + per : n;
}

static int32_t wadd(int32_t a, int32_t b) { return (int32_t)((uint32_t)a + (uint32_t)b); }
static int32_t sat(int32_t v, int32_t lo, int32_t hi) { return v > hi ? hi : v < lo ? lo : v; }

void ClioKerParAccInit(ClioAccInit_T *a)
{
  uint32_t f, l;
  chunk(a->C, &f, &l);
  for (uint32_t c = f; c < l; c++)
    for (uint32_t i = 0; i < a->Size; i++) a->Acc[c * a->Size + i] = a->Init[c];
}

/* Runs BODY for each cell (y, x) of stripe `a`'s Sw x Hb output (rows split over the cores),
 * with V the band value there (int32, 0 in the padding). */
#define CLIO_STRIPE_CELLS(a, V, BODY) \
  do { \
    uint32_t f_, l_; \
    chunk((a)->Hb, &f_, &l_); \
    for (uint32_t y = f_; y < l_; y++) \
      for (uint32_t x = 0; x < (a)->Sw; x++) { \
        int iy_ = (int)y - (a)->PadT, ix_ = (int)((a)->X0 + x) - (a)->PadL; \
        int32_t V = (iy_ >= 0 && iy_ < (a)->Hr && ix_ >= 0 && ix_ < (a)->W) ? (a)->In[iy_ * (a)->W + ix_] : 0; \
        BODY \
      } \
  } while (0)

void ClioKerParStripe16(ClioStripe16_T *a)
{
  CLIO_STRIPE_CELLS(a, v, a->Out[y * a->Sw + x] = (int16_t)v;);
}

void ClioKerParStripe16D(ClioStripe16D_T *a)
{
  CLIO_STRIPE_CELLS(a, v, {
    int32_t lo = ((v + 128) & 255) - 128;
    a->Out[y * a->Sw + x] = (int16_t)(a->Digit ? (v - lo) / 256 : lo);
  });
}

void ClioKerParHwceAcc(ClioHwceAcc_T *a)
{
  uint32_t f, l;
  chunk(a->N, &f, &l);
  for (uint32_t j = f; j < l; j++) {
    int32_t *acc = a->Acc + (a->Oc + j) * a->Wo * a->Ho;
    for (uint32_t y = 0; y < a->Ho; y++)
      for (uint32_t x = 0; x < a->So; x++) {
        uint32_t v = (uint32_t)(int32_t)a->Tile[j][y * a->TileW + x] << a->Shift;
        acc[y * a->Wo + a->X0 + x] = wadd(acc[y * a->Wo + a->X0 + x], (int32_t)v);
      }
  }
}

/* Runs BODY for each cell of output (y, x)'s pooling window in channel c of a ClioPool struct
 * `a` that lies inside the input (padding cells are skipped), with V its value (int32). */
#define CLIO_POOL_WINDOW(a, c, y, x, V, BODY) \
  for (int wi_ = 0; wi_ < (a)->Fy; wi_++) \
    for (int wj_ = 0; wj_ < (a)->Fx; wj_++) { \
      int iy_ = (y) * (a)->Sy + wi_ - (a)->PadT, ix_ = (x) * (a)->Sx + wj_ - (a)->PadL; \
      if (iy_ >= 0 && iy_ < (a)->H && ix_ >= 0 && ix_ < (a)->W) { \
        int32_t V = (a)->In[((int)(c) * (a)->H + iy_) * (a)->W + ix_]; \
        BODY \
      } \
    }

/* The element-type-dependent kernels, from one template (see clio_gap8_kernels.h): T is the
 * element type, TS the struct infix, SUF the name suffix, [LO, HI] the saturation range. */
#define CLIO_GAP8_KERNELS(T, TS, SUF, LO, HI) \
void ClioKerParConvAcc32##SUF(ClioKerConvAcc32##TS##_T *a) \
{ \
  uint32_t f, l; \
  chunk(a->OutFeatures, &f, &l); \
  uint32_t cg = a->InFeatures / a->Groups, og = a->OutFeatures / a->Groups; \
  for (uint32_t o = f; o < l; o++) { \
    uint32_t g = o / og; \
    int32_t *acc = a->Acc + o * a->Wo * a->Ho; \
    for (uint32_t ci = 0; ci < cg; ci++) { \
      const T *in = a->In + (g * cg + ci) * a->W * a->H; \
      const T *flt = a->Filter + (o * cg + ci) * a->Fx * a->Fy; \
      for (int y = 0; y < a->Ho; y++) \
        for (int x = 0; x < a->Wo; x++) { \
          uint32_t s = 0; \
          for (int i = 0; i < a->Fy; i++) { \
            int iy = y * a->Sy + i * a->Dy - a->PadT; \
            if (iy < 0 || iy >= a->H) continue; \
            for (int j = 0; j < a->Fx; j++) { \
              int ix = x * a->Sx + j * a->Dx - a->PadL; \
              if (ix < 0 || ix >= a->W) continue; \
              s += (uint32_t)((int32_t)in[iy * a->W + ix] * (int32_t)flt[i * a->Fx + j]); \
            } \
          } \
          acc[y * a->Wo + x] = wadd(acc[y * a->Wo + x], (int32_t)s); \
        } \
    } \
  } \
} \
\
void ClioKerParReduct##SUF(ClioReduct##TS##_T *a) \
{ \
  uint32_t f, l; \
  chunk(a->C, &f, &l); \
  for (uint32_t c = f; c < l; c++) \
    for (uint32_t i = 0; i < a->Size; i++) { \
      T v = (T)sat(a->Acc[c * a->Size + i] >> a->Norm[c], LO, HI); \
      a->Out[c * a->Size + i] = v < a->Lo ? a->Lo : v > a->Hi ? a->Hi : v; \
    } \
} \
\
void ClioKerParClamp##SUF(ClioClamp##TS##_T *a) \
{ \
  uint32_t f, l; \
  chunk(a->Size, &f, &l); \
  for (uint32_t i = f; i < l; i++) a->Out[i] = a->In[i] < a->Lo ? a->Lo : a->In[i] > a->Hi ? a->Hi : a->In[i]; \
} \
\
void ClioKerParMaxPool##SUF(ClioPool##TS##_T *a) \
{ \
  uint32_t f, l; \
  chunk(a->C, &f, &l); \
  for (uint32_t c = f; c < l; c++) \
    for (int y = 0; y < a->Ho; y++) \
      for (int x = 0; x < a->Wo; x++) { \
        int32_t m = INT32_MIN; \
        CLIO_POOL_WINDOW(a, c, y, x, v, m = v > m ? v : m;) \
        a->Out[(c * a->Ho + y) * a->Wo + x] = (T)sat(m, LO, HI); \
      } \
} \
\
void ClioKerParAdd##SUF(ClioAdd##TS##_T *a) \
{ \
  uint32_t f, l; \
  chunk(a->Size, &f, &l); \
  for (uint32_t i = f; i < l; i++) { \
    int32_t acc = wadd((int32_t)((uint32_t)(int32_t)a->In1[i] << a->ShiftA), \
                       (int32_t)((uint32_t)(int32_t)a->In2[i] << a->ShiftB)); \
    int32_t v; \
    if (a->LeftShift > 0) { \
      int64_t w = (int64_t)acc * ((int64_t)1 << a->LeftShift); \
      v = (int32_t)(w > INT32_MAX ? INT32_MAX : w < INT32_MIN ? INT32_MIN : w); \
    } else { \
      v = wadd(acc, a->Norm > 0 ? (int32_t)1 << (a->Norm - 1) : 0) >> a->Norm; \
    } \
    a->Out[i] = (T)sat(v, LO, HI); \
  } \
} \
\
void ClioKerParAvgPool##SUF(ClioPool##TS##_T *a) \
{ \
  uint32_t f, l; \
  chunk(a->C, &f, &l); \
  for (uint32_t c = f; c < l; c++) \
    for (int y = 0; y < a->Ho; y++) \
      for (int x = 0; x < a->Wo; x++) { \
        uint32_t s = 0; \
        int32_t n = 0; \
        CLIO_POOL_WINDOW(a, c, y, x, v, s += (uint32_t)v; n++;) \
        int32_t acc = (int32_t)s; \
        int32_t v = n == 0 ? 0 : acc > 0 ? (acc + n / 2) / n : (acc - n / 2) / n; \
        a->Out[(c * a->Ho + y) * a->Wo + x] = (T)sat(v, LO, HI); \
      } \
} \
\
void ClioKerParGlobalAvgPool##SUF(ClioMean##TS##_T *a) \
{ \
  uint32_t f, l; \
  chunk(a->C, &f, &l); \
  for (uint32_t c = f; c < l; c++) { \
    int64_t sum = 0; \
    for (uint32_t i = 0; i < a->Size; i++) sum += a->In[c * a->Size + i]; \
    int64_t num = (int64_t)((uint64_t)sum << a->Left); \
    int64_t half = a->Divisor / 2; \
    int64_t v = num >= 0 ? (num + half) / a->Divisor : (num - half) / a->Divisor; \
    a->Out[c] = (T)(v > (HI) ? (HI) : v < (LO) ? (LO) : v); \
  } \
} \
\
void ClioKerParConcat##SUF(ClioConcat##TS##_T *a) \
{ \
  uint32_t f, l; \
  chunk(a->C, &f, &l); \
  if (f < l) memcpy(a->Out + f * a->Size, a->In + f * a->Size, (l - f) * a->Size * sizeof(T)); \
}

/* 8-bit Q (q8): ClioKerParConvAcc32_fps, ... */
CLIO_GAP8_KERNELS(int8_t, , _fps, -128, 127)
/* 16-bit Q (q16): ClioKerParConvAcc32_fp, ... */
CLIO_GAP8_KERNELS(int16_t, _fp, _fp, -32768, 32767)
