/* Host shim of the GAP8 HWCE API (AutoTiler v2 kernel library): the exact signatures, clio's
 * own declarations. Host implementation: gap8_host.c. */
#ifndef CLIO_SHIM_CNN_HWCE_H
#define CLIO_SHIM_CNN_HWCE_H
#define HWCE_CONV3x3 1
#define HWCE_CONV5x5 0
#define HWCE_CONV4x7 2
void HWCE_Enable(void);
void HWCE_Disable(void);
void HwCE_SoftReset(void);
void HWCE_GenericInit(unsigned int ConvType, unsigned int WStride, unsigned int Norm);
void HwCE_SetInputBias(int Bias);
void HwCE_SetYinMode(unsigned int Disable);
void HWCE_ProcessOneTile3x3_MultiOut(short int *In, short int *Out0, short int *Out1, short int *Out2,
                                     short int *Filter, short int Bias, unsigned int W, unsigned int H,
                                     unsigned int OutMask);
void HWCE_ProcessOneTile5x5(short int *In, short int *Out, short int *Filter, short int Bias, unsigned int W,
                            unsigned int H);
void HWCE_ProcessOneTile7x7(short int *In, short int *Out, short int *Filter, short int Bias, unsigned int W,
                            unsigned int H);
void HWCE_ProcessOneTile7x4(short int *In, short int *Out, short int *Filter, short int Bias, unsigned int W,
                            unsigned int H);
#endif
