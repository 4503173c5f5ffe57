/* Host shim of the AutoTiler cluster-kernel subset clio calls: the argument struct and
 * signatures as published in CNN_BasicKernels.h (clio's own declarations). */
#ifndef CLIO_SHIM_CNN_BASICKERNELS_H
#define CLIO_SHIM_CNN_BASICKERNELS_H
typedef signed char v4s __attribute__((vector_size(4)));
typedef struct {
  signed char *__restrict__ In; unsigned short int W; unsigned short int UsedW; unsigned short int H;
  unsigned short int UsedH; unsigned short int InFeatures; unsigned short int OutFeatures;
  short int TotalInFeatures; signed char *__restrict__ Filter; signed char *__restrict__ Out;
  signed char *__restrict__ Bias; v4s Pad; unsigned char Norm; unsigned char N; unsigned char S;
  unsigned char Orientation; unsigned char D; unsigned char Ny; unsigned char Sy; unsigned char Dy;
} KerConv_fps_T;
void KerParConvDW3x3Stride1_fps(KerConv_fps_T *Arg);
void KerParConvDW3x3Stride2_fps(KerConv_fps_T *Arg);
#endif
