/* clio's host reference implementations of the legacy CMSIS_5 q7 kernels its `--cmsis
 * legacy-q7` lowering calls. Our own code, written from the documented arithmetic:
 *
 *   acc = (bias << bias_shift) + (out_shift > 0 ? 1 << (out_shift - 1) : 0) + sum(in * w)
 *   out = saturate_q7(acc >> out_shift)
 *
 * the same as clio's integer interpreter for Q formats (src/interp/int/conv.rs). Channel
 * constraints of the _fast / _RGB / depthwise variants are checked (ARM_MATH_SIZE_MISMATCH),
 * and arm_maxpool_q7_HWC clobbers its input as the real one does (it pools in place along x),
 * so tests catch a memory plan that reads it afterwards. Plain loops: tests only. */
#include "arm_nnfunctions.h"

static q7_t host_sat_q7(int32_t v)
{
    return (q7_t)(v < -128 ? -128 : (v > 127 ? 127 : v));
}

static int32_t host_init_acc(q7_t bias, uint16_t bias_shift, uint16_t out_shift)
{
    const uint32_t round = out_shift > 0 ? ((uint32_t)1 << (out_shift - 1)) : 0u;
    return (int32_t)(((uint32_t)(int32_t)bias << bias_shift) + round);
}

static void host_conv_q7(const q7_t *in, uint16_t dim_in, uint16_t ch_in, const q7_t *wt, uint16_t ch_out,
                         uint16_t k, uint16_t pad, uint16_t stride, const q7_t *bias, uint16_t bias_shift,
                         uint16_t out_shift, q7_t *out, uint16_t dim_out, int depthwise)
{
    for (int32_t oy = 0; oy < dim_out; oy++) {
        for (int32_t ox = 0; ox < dim_out; ox++) {
            for (int32_t oc = 0; oc < ch_out; oc++) {
                int32_t acc = host_init_acc(bias[oc], bias_shift, out_shift);
                for (int32_t ky = 0; ky < k; ky++) {
                    const int32_t iy = oy * stride - pad + ky;
                    if (iy < 0 || iy >= dim_in) {
                        continue;
                    }
                    for (int32_t kx = 0; kx < k; kx++) {
                        const int32_t ix = ox * stride - pad + kx;
                        if (ix < 0 || ix >= dim_in) {
                            continue;
                        }
                        const q7_t *px = in + (iy * dim_in + ix) * ch_in;
                        if (depthwise) {
                            acc = (int32_t)((uint32_t)acc + (uint32_t)(px[oc] * wt[(ky * k + kx) * ch_out + oc]));
                        } else {
                            const q7_t *pw = wt + ((oc * k + ky) * k + kx) * ch_in;
                            for (int32_t ic = 0; ic < ch_in; ic++) {
                                acc = (int32_t)((uint32_t)acc + (uint32_t)(px[ic] * pw[ic]));
                            }
                        }
                    }
                }
                out[(oy * dim_out + ox) * ch_out + oc] = host_sat_q7(acc >> out_shift);
            }
        }
    }
}

arm_status arm_convolve_HWC_q7_basic(const q7_t *Im_in, const uint16_t dim_im_in, const uint16_t ch_im_in,
                                     const q7_t *wt, const uint16_t ch_im_out, const uint16_t dim_kernel,
                                     const uint16_t padding, const uint16_t stride, const q7_t *bias,
                                     const uint16_t bias_shift, const uint16_t out_shift, q7_t *Im_out,
                                     const uint16_t dim_im_out, q15_t *bufferA, q7_t *bufferB)
{
    (void)bufferB;
    if (bufferA == NULL) {
        return ARM_MATH_ARGUMENT_ERROR;
    }
    host_conv_q7(Im_in, dim_im_in, ch_im_in, wt, ch_im_out, dim_kernel, padding, stride, bias, bias_shift, out_shift,
                 Im_out, dim_im_out, 0);
    return ARM_MATH_SUCCESS;
}

arm_status arm_convolve_HWC_q7_fast(const q7_t *Im_in, const uint16_t dim_im_in, const uint16_t ch_im_in,
                                    const q7_t *wt, const uint16_t ch_im_out, const uint16_t dim_kernel,
                                    const uint16_t padding, const uint16_t stride, const q7_t *bias,
                                    const uint16_t bias_shift, const uint16_t out_shift, q7_t *Im_out,
                                    const uint16_t dim_im_out, q15_t *bufferA, q7_t *bufferB)
{
    if (ch_im_in % 4 != 0 || ch_im_out % 2 != 0) {
        return ARM_MATH_SIZE_MISMATCH;
    }
    return arm_convolve_HWC_q7_basic(Im_in, dim_im_in, ch_im_in, wt, ch_im_out, dim_kernel, padding, stride, bias,
                                     bias_shift, out_shift, Im_out, dim_im_out, bufferA, bufferB);
}

arm_status arm_convolve_HWC_q7_RGB(const q7_t *Im_in, const uint16_t dim_im_in, const uint16_t ch_im_in,
                                   const q7_t *wt, const uint16_t ch_im_out, const uint16_t dim_kernel,
                                   const uint16_t padding, const uint16_t stride, const q7_t *bias,
                                   const uint16_t bias_shift, const uint16_t out_shift, q7_t *Im_out,
                                   const uint16_t dim_im_out, q15_t *bufferA, q7_t *bufferB)
{
    if (ch_im_in != 3) {
        return ARM_MATH_SIZE_MISMATCH;
    }
    return arm_convolve_HWC_q7_basic(Im_in, dim_im_in, ch_im_in, wt, ch_im_out, dim_kernel, padding, stride, bias,
                                     bias_shift, out_shift, Im_out, dim_im_out, bufferA, bufferB);
}

arm_status arm_depthwise_separable_conv_HWC_q7(const q7_t *Im_in, const uint16_t dim_im_in,
                                               const uint16_t ch_im_in, const q7_t *wt, const uint16_t ch_im_out,
                                               const uint16_t dim_kernel, const uint16_t padding,
                                               const uint16_t stride, const q7_t *bias, const uint16_t bias_shift,
                                               const uint16_t out_shift, q7_t *Im_out, const uint16_t dim_im_out,
                                               q15_t *bufferA, q7_t *bufferB)
{
    (void)bufferB;
    if (ch_im_in != ch_im_out || ch_im_in % 2 != 0) {
        return ARM_MATH_SIZE_MISMATCH;
    }
    if (bufferA == NULL) {
        return ARM_MATH_ARGUMENT_ERROR;
    }
    host_conv_q7(Im_in, dim_im_in, ch_im_in, wt, ch_im_out, dim_kernel, padding, stride, bias, bias_shift, out_shift,
                 Im_out, dim_im_out, 1);
    return ARM_MATH_SUCCESS;
}

arm_status arm_fully_connected_q7(const q7_t *pV, const q7_t *pM, const uint16_t dim_vec,
                                  const uint16_t num_of_rows, const uint16_t bias_shift, const uint16_t out_shift,
                                  const q7_t *bias, q7_t *pOut, q15_t *vec_buffer)
{
    if (vec_buffer == NULL) {
        return ARM_MATH_ARGUMENT_ERROR;
    }
    for (int32_t r = 0; r < num_of_rows; r++) {
        int32_t acc = host_init_acc(bias[r], bias_shift, out_shift);
        for (int32_t k = 0; k < dim_vec; k++) {
            acc = (int32_t)((uint32_t)acc + (uint32_t)(pV[k] * pM[r * dim_vec + k]));
        }
        pOut[r] = host_sat_q7(acc >> out_shift);
    }
    return ARM_MATH_SUCCESS;
}

void arm_relu_q7(q7_t *data, uint16_t size)
{
    for (uint32_t i = 0; i < size; i++) {
        if (data[i] < 0) {
            data[i] = 0;
        }
    }
}

void arm_maxpool_q7_HWC(q7_t *Im_in, const uint16_t dim_im_in, const uint16_t ch_im_in, const uint16_t dim_kernel,
                        const uint16_t padding, const uint16_t stride, const uint16_t dim_im_out, q7_t *bufferA,
                        q7_t *Im_out)
{
    (void)bufferA;
    for (int32_t oy = 0; oy < dim_im_out; oy++) {
        for (int32_t ox = 0; ox < dim_im_out; ox++) {
            const int32_t y0 = oy * stride - padding, x0 = ox * stride - padding;
            const int32_t ys = y0 < 0 ? 0 : y0, xs = x0 < 0 ? 0 : x0;
            const int32_t ye = y0 + dim_kernel > dim_im_in ? dim_im_in : y0 + dim_kernel;
            const int32_t xe = x0 + dim_kernel > dim_im_in ? dim_im_in : x0 + dim_kernel;
            for (int32_t c = 0; c < ch_im_in; c++) {
                int32_t m = -128;
                for (int32_t y = ys; y < ye; y++) {
                    for (int32_t x = xs; x < xe; x++) {
                        const int32_t v = Im_in[(y * dim_im_in + x) * ch_im_in + c];
                        m = v > m ? v : m;
                    }
                }
                Im_out[(oy * dim_im_out + ox) * ch_im_in + c] = (q7_t)m;
            }
        }
    }
    /* The real kernel leaves its input overwritten. */
    for (uint32_t i = 0; i < (uint32_t)dim_im_in * dim_im_in * ch_im_in; i++) {
        Im_in[i] = (q7_t)0x55;
    }
}
