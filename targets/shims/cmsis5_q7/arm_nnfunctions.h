/* clio's header shim for the legacy CMSIS_5 q7 API (CMSIS_5 <= 5.8; removed in CMSIS-NN 4.0):
 * the functions clio's `--cmsis legacy-q7` lowering calls, with their published signatures,
 * plus the q7_t / q15_t / arm_status types that arm_math.h provides in CMSIS_5. Link CMSIS_5's
 * NN library on the device, clio's host kernels (arm_nn_q7_host.c) in tests. */
#ifndef ARM_NNFUNCTIONS_H
#define ARM_NNFUNCTIONS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef int8_t q7_t;
typedef int16_t q15_t;
typedef int32_t q31_t;

typedef enum {
    ARM_MATH_SUCCESS = 0,
    ARM_MATH_ARGUMENT_ERROR = -1,
    ARM_MATH_LENGTH_ERROR = -2,
    ARM_MATH_SIZE_MISMATCH = -3,
    ARM_MATH_NANINF = -4,
    ARM_MATH_SINGULAR = -5,
    ARM_MATH_TEST_FAILURE = -6
} arm_status;

arm_status arm_convolve_HWC_q7_basic(const q7_t *Im_in, const uint16_t dim_im_in, const uint16_t ch_im_in,
                                     const q7_t *wt, const uint16_t ch_im_out, const uint16_t dim_kernel,
                                     const uint16_t padding, const uint16_t stride, const q7_t *bias,
                                     const uint16_t bias_shift, const uint16_t out_shift, q7_t *Im_out,
                                     const uint16_t dim_im_out, q15_t *bufferA, q7_t *bufferB);

arm_status arm_convolve_HWC_q7_fast(const q7_t *Im_in, const uint16_t dim_im_in, const uint16_t ch_im_in,
                                    const q7_t *wt, const uint16_t ch_im_out, const uint16_t dim_kernel,
                                    const uint16_t padding, const uint16_t stride, const q7_t *bias,
                                    const uint16_t bias_shift, const uint16_t out_shift, q7_t *Im_out,
                                    const uint16_t dim_im_out, q15_t *bufferA, q7_t *bufferB);

arm_status arm_convolve_HWC_q7_RGB(const q7_t *Im_in, const uint16_t dim_im_in, const uint16_t ch_im_in,
                                   const q7_t *wt, const uint16_t ch_im_out, const uint16_t dim_kernel,
                                   const uint16_t padding, const uint16_t stride, const q7_t *bias,
                                   const uint16_t bias_shift, const uint16_t out_shift, q7_t *Im_out,
                                   const uint16_t dim_im_out, q15_t *bufferA, q7_t *bufferB);

arm_status arm_depthwise_separable_conv_HWC_q7(const q7_t *Im_in, const uint16_t dim_im_in,
                                               const uint16_t ch_im_in, const q7_t *wt, const uint16_t ch_im_out,
                                               const uint16_t dim_kernel, const uint16_t padding,
                                               const uint16_t stride, const q7_t *bias, const uint16_t bias_shift,
                                               const uint16_t out_shift, q7_t *Im_out, const uint16_t dim_im_out,
                                               q15_t *bufferA, q7_t *bufferB);

arm_status arm_fully_connected_q7(const q7_t *pV, const q7_t *pM, const uint16_t dim_vec,
                                  const uint16_t num_of_rows, const uint16_t bias_shift, const uint16_t out_shift,
                                  const q7_t *bias, q7_t *pOut, q15_t *vec_buffer);

void arm_relu_q7(q7_t *data, uint16_t size);

void arm_maxpool_q7_HWC(q7_t *Im_in, const uint16_t dim_im_in, const uint16_t ch_im_in, const uint16_t dim_kernel,
                        const uint16_t padding, const uint16_t stride, const uint16_t dim_im_out, q7_t *bufferA,
                        q7_t *Im_out);

#ifdef __cplusplus
}
#endif

#endif /* ARM_NNFUNCTIONS_H */
