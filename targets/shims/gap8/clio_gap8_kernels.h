/* clio's own GAP8 cluster kernels (portable C, parallel over output channels with
 * pi_core_id / pi_cl_team_nb_cores; shipped with the generated code and built for the device
 * too). They exist because the AutoTiler _fps/_fp kernels round and saturate after every
 * input plane, while clio's Q arithmetic rounds once: multi-plane layers accumulate in int32
 * here (as AutoTiler's double-precision variants do) and are reduced once. */
#ifndef CLIO_GAP8_KERNELS_H
#define CLIO_GAP8_KERNELS_H
#include <stdint.h>

/* Acc[c][i] = Init[c] for every channel c and i < Size (Init = bias << bias_shift + rounding). */
typedef struct { int32_t *Acc; const int32_t *Init; uint16_t C; uint32_t Size; } ClioAccInit_T;
void ClioKerParAccInit(ClioAccInit_T *Arg);

/* Out (int16, Sw x Hb) = the stripe at padded column X0 of a zero-padded band: padded row y,
 * column X0 + x holds In[(y - PadT) * W + X0 + x - PadL] where that lies in the Hr x W raw band
 * In (8-bit, the band's rows inside the plane), 0 elsewhere. */
typedef struct { const int8_t *In; int16_t *Out; uint16_t W, Hr, X0, Sw, Hb; uint8_t PadT, PadL; } ClioStripe16_T;
void ClioKerParStripe16(ClioStripe16_T *Arg);

/* The same from a 16-bit band (q16 layers on the HWCE), keeping balanced 8-bit digit Digit of
 * each value: x = 256 xh + xl with xl = ((x + 128) mod 256) - 128 (Digit 0) in [-128, 127] and
 * xh = (x - xl) / 256 (Digit 1) in [-128, 128]. */
typedef struct { const int16_t *In; int16_t *Out; uint16_t W, Hr, X0, Sw, Hb; uint8_t PadT, PadL, Digit; } ClioStripe16D_T;
void ClioKerParStripe16D(ClioStripe16D_T *Arg);

/* Acc[Oc + j][y][X0 + x] += Tile[j][y * TileW + x] << Shift for j < N, x < So, y < Ho. */
typedef struct {
  int32_t *Acc; const int16_t *Tile[3];
  uint16_t N, Oc, So, TileW, Ho, Wo, X0; uint8_t Shift;
} ClioHwceAcc_T;
void ClioKerParHwceAcc(ClioHwceAcc_T *Arg);

/* The kernels below exist twice, generated from one template (CLIO_GAP8_KERNELS in
 * clio_gap8_kernels.c): for 8-bit Q data (int8_t, suffix _fps, structs Clio<Name>_T) and for
 * 16-bit Q data (int16_t, suffix _fp, structs Clio<Name>_fp_T). The arithmetic is the same
 * (int32 accumulation, one rounding), only the element type and its saturation differ. */
#define CLIO_GAP8_KERNEL_DECLS(T, TS, SUF) \
/* Acc[o] += sum In * Filter over a (grouped, strided, dilated, zero-padded) convolution of \
 * CHW planes; Filter is [OutFeatures][InFeatures / Groups][Fy][Fx]. */ \
typedef struct { \
  const T *In; int32_t *Acc; const T *Filter; \
  uint16_t W, H, Wo, Ho, InFeatures, OutFeatures, Groups; \
  uint8_t Fx, Fy, Sx, Sy, Dx, Dy, PadT, PadL; \
} ClioKerConvAcc32##TS##_T; \
void ClioKerParConvAcc32##SUF(ClioKerConvAcc32##TS##_T *Arg); \
/* Out = clamp(saturate(Acc >> Norm[c]), Lo, Hi): one rounding (its constant is in Init). */ \
typedef struct { const int32_t *Acc; T *Out; const uint8_t *Norm; uint16_t C; uint32_t Size; T Lo, Hi; } ClioReduct##TS##_T; \
void ClioKerParReduct##SUF(ClioReduct##TS##_T *Arg); \
/* Out = min(max(In, Lo), Hi) over Size values (ReLU, ReLU6 in Q format). */ \
typedef struct { const T *In; T *Out; uint32_t Size; T Lo, Hi; } ClioClamp##TS##_T; \
void ClioKerParClamp##SUF(ClioClamp##TS##_T *Arg); \
/* Max pooling of C planes, cells outside the input ignored. */ \
typedef struct { \
  const T *In; T *Out; uint16_t C, W, H, Wo, Ho; uint8_t Fx, Fy, Sx, Sy, PadT, PadL; \
} ClioPool##TS##_T; \
void ClioKerParMaxPool##SUF(ClioPool##TS##_T *Arg); \
/* Average pooling of C planes (same Q format in and out), TFLite's rounded average: the sum \
 * of the window's cells inside the input, divided by their count with C division after adding \
 * (or subtracting, for a negative sum) half the count; 0 for a window with no cell inside. */ \
void ClioKerParAvgPool##SUF(ClioPool##TS##_T *Arg); \
/* Global average pooling in Q formats, per channel c: \
 * Out[c] = saturate(round((sum of the Size values of plane c) << Left / Divisor)), the sum in \
 * 64 bits and one rounding half away from zero (clio's pow2 mean: Left = max(Qy - Qx, 0), \
 * Divisor = Size << max(Qx - Qy, 0)). */ \
typedef struct { const T *In; T *Out; uint16_t C; uint32_t Size; uint8_t Left; int64_t Divisor; } ClioMean##TS##_T; \
void ClioKerParGlobalAvgPool##SUF(ClioMean##TS##_T *Arg); \
/* Out[c][i] = In[c][i] for C planes of Size values: one operand of a channel concatenation \
 * (planar CHW), Out pointing at its channel offset in the result. */ \
typedef struct { const T *In; T *Out; uint16_t C; uint32_t Size; } ClioConcat##TS##_T; \
void ClioKerParConcat##SUF(ClioConcat##TS##_T *Arg); \
/* Q-format add: acc = In1 << ShiftA + In2 << ShiftB (int32), then round_norm by Norm, or a \
 * saturating left shift by LeftShift, saturated to the element type. */ \
typedef struct { \
  const T *In1; const T *In2; T *Out; uint32_t Size; uint8_t ShiftA, ShiftB, Norm, LeftShift; \
} ClioAdd##TS##_T; \
void ClioKerParAdd##SUF(ClioAdd##TS##_T *Arg);

/* 8-bit Q (q8): ClioKerConvAcc32_T, ClioKerParConvAcc32_fps, ... */
CLIO_GAP8_KERNEL_DECLS(int8_t, , _fps)
/* 16-bit Q (q16): ClioKerConvAcc32_fp_T, ClioKerParConvAcc32_fp, ... */
CLIO_GAP8_KERNEL_DECLS(int16_t, _fp, _fp)

#endif
