/* clio's host reference implementations of the CMSIS-NN s8 kernels its STM32 backend calls.
 *
 * Our own code, written from the arithmetic CMSIS-NN documents (and TFLite's reference
 * kernels, which CMSIS-NN states it matches bit for bit); it mirrors clio's integer interpreter
 * (src/interp/int/) and fixed-point helpers (src/quant/math.rs) so that generated C can be
 * checked bit-exactly against them on the host. Plain loops, no speed: tests only.
 *
 *   requantize(v, m, s) = rounding_divide_by_pot(srdhm(v * 2^max(s, 0), m), max(-s, 0))
 *   srdhm(a, b)         = (int32)(((int64)a * b + nudge) / 2^31), nudge = ab >= 0 ? 2^30 : 1 - 2^30
 *   rounding_divide_by_pot rounds half away from zero.
 *
 * Scratch buffers: every kernel checks ctx->size against its *_get_buffer_size (the formulas of
 * a Cortex-M7 build: DSP, no MVE) and fails with ARM_CMSIS_NN_ARG_ERROR when it is too small,
 * so tests catch an undersized scratch buffer. */
#include "arm_nnfunctions.h"

static int32_t host_srdhm(int32_t a, int32_t b)
{
    if (a == b && a == INT32_MIN) {
        return INT32_MAX;
    }
    const int64_t ab = (int64_t)a * (int64_t)b;
    const int64_t nudge = ab >= 0 ? ((int64_t)1 << 30) : (1 - ((int64_t)1 << 30));
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

static int32_t host_rdbp(int32_t x, int32_t exponent)
{
    const int32_t e = exponent < 0 ? 0 : (exponent > 31 ? 31 : exponent);
    const int32_t mask = (int32_t)(((int64_t)1 << e) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> e) + (remainder > threshold ? 1 : 0);
}

/* x * 2^exponent with saturation (exponent > 0), rounding division otherwise. */
static int32_t host_sat_rmul_pot(int32_t x, int32_t exponent)
{
    if (exponent > 0) {
        const int32_t threshold = (int32_t)(((int64_t)1 << (31 - exponent)) - 1);
        if (x > threshold) {
            return INT32_MAX;
        }
        if (x < -threshold) {
            return INT32_MIN;
        }
        return (int32_t)((uint32_t)x << exponent);
    }
    if (exponent < 0) {
        return host_rdbp(x, -exponent);
    }
    return x;
}

static int32_t host_requantize(int32_t x, int32_t multiplier, int32_t shift)
{
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift < 0 ? -shift : 0;
    return host_rdbp(host_srdhm((int32_t)((uint32_t)x << left), multiplier), right);
}

static int32_t host_clamp(int32_t v, int32_t lo, int32_t hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

static int32_t host_align4(int32_t x)
{
    return (x + 3) / 4 * 4;
}

int32_t arm_convolve_wrapper_s8_get_buffer_size(const cmsis_nn_conv_params *conv_params,
                                                const cmsis_nn_dims *input_dims, const cmsis_nn_dims *filter_dims,
                                                const cmsis_nn_dims *output_dims)
{
    (void)conv_params;
    (void)output_dims;
    return 2 * host_align4(filter_dims->w * filter_dims->h * input_dims->c) * (int32_t)sizeof(int16_t);
}

int32_t arm_depthwise_conv_wrapper_s8_get_buffer_size(const cmsis_nn_dw_conv_params *dw_conv_params,
                                                      const cmsis_nn_dims *input_dims,
                                                      const cmsis_nn_dims *filter_dims,
                                                      const cmsis_nn_dims *output_dims)
{
    (void)dw_conv_params;
    (void)output_dims;
    return 2 * host_align4(filter_dims->w * filter_dims->h * input_dims->c) * (int32_t)sizeof(int16_t);
}

int32_t arm_fully_connected_s8_get_buffer_size(const cmsis_nn_dims *filter_dims)
{
    (void)filter_dims;
    return 0;
}

int32_t arm_avgpool_s8_get_buffer_size(const int dim_dst_width, const int ch_src)
{
    (void)dim_dst_width;
    return ch_src * (int32_t)sizeof(int32_t);
}

static int host_ctx_ok(const cmsis_nn_context *ctx, int32_t needed)
{
    if (needed <= 0) {
        return 1;
    }
    return ctx != 0 && ctx->buf != 0 && ctx->size >= needed;
}

/* Shared by the plain and the depthwise convolution: output channel oc reads input channels
 * [oc / ch_mult] (depthwise) or all of them (plain). */
static void host_conv(const cmsis_nn_dims *in, const int8_t *x, const cmsis_nn_dims *f, const int8_t *w,
                      const int32_t *bias, const cmsis_nn_dims *out, int8_t *y, int32_t in_off, int32_t out_off,
                      cmsis_nn_tile stride, cmsis_nn_tile pad, cmsis_nn_tile dil, cmsis_nn_activation act,
                      const int32_t *mult, const int32_t *shift, int32_t depthwise, int32_t ch_mult)
{
    for (int32_t b = 0; b < out->n; b++) {
        for (int32_t oy = 0; oy < out->h; oy++) {
            for (int32_t ox = 0; ox < out->w; ox++) {
                for (int32_t oc = 0; oc < out->c; oc++) {
                    int32_t acc = 0;
                    for (int32_t ky = 0; ky < f->h; ky++) {
                        const int32_t iy = oy * stride.h - pad.h + ky * dil.h;
                        if (iy < 0 || iy >= in->h) {
                            continue;
                        }
                        for (int32_t kx = 0; kx < f->w; kx++) {
                            const int32_t ix = ox * stride.w - pad.w + kx * dil.w;
                            if (ix < 0 || ix >= in->w) {
                                continue;
                            }
                            const int8_t *px = x + ((b * in->h + iy) * in->w + ix) * in->c;
                            if (depthwise) {
                                const int32_t ic = oc / ch_mult;
                                acc += (px[ic] + in_off) * w[(ky * f->w + kx) * out->c + oc];
                            } else {
                                const int8_t *pw = w + ((oc * f->h + ky) * f->w + kx) * in->c;
                                for (int32_t ic = 0; ic < in->c; ic++) {
                                    acc += (px[ic] + in_off) * pw[ic];
                                }
                            }
                        }
                    }
                    if (bias) {
                        acc += bias[oc];
                    }
                    const int32_t v = host_requantize(acc, mult[oc], shift[oc]) + out_off;
                    y[((b * out->h + oy) * out->w + ox) * out->c + oc] =
                        (int8_t)host_clamp(v, act.min, act.max);
                }
            }
        }
    }
}

arm_cmsis_nn_status arm_convolve_wrapper_s8(const cmsis_nn_context *ctx, const cmsis_nn_conv_params *conv_params,
                                            const cmsis_nn_per_channel_quant_params *quant_params,
                                            const cmsis_nn_dims *input_dims, const int8_t *input_data,
                                            const cmsis_nn_dims *filter_dims, const int8_t *filter_data,
                                            const cmsis_nn_dims *bias_dims, const int32_t *bias_data,
                                            const cmsis_nn_dims *output_dims, int8_t *output_data)
{
    (void)bias_dims;
    const int32_t need =
        arm_convolve_wrapper_s8_get_buffer_size(conv_params, input_dims, filter_dims, output_dims);
    if (!host_ctx_ok(ctx, need) || filter_dims->c != input_dims->c || filter_dims->n != output_dims->c) {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    host_conv(input_dims, input_data, filter_dims, filter_data, bias_data, output_dims, output_data,
              conv_params->input_offset, conv_params->output_offset, conv_params->stride, conv_params->padding,
              conv_params->dilation, conv_params->activation, quant_params->multiplier, quant_params->shift, 0, 1);
    return ARM_CMSIS_NN_SUCCESS;
}

arm_cmsis_nn_status arm_depthwise_conv_wrapper_s8(const cmsis_nn_context *ctx,
                                                  const cmsis_nn_dw_conv_params *dw_conv_params,
                                                  const cmsis_nn_per_channel_quant_params *quant_params,
                                                  const cmsis_nn_dims *input_dims, const int8_t *input_data,
                                                  const cmsis_nn_dims *filter_dims, const int8_t *filter_data,
                                                  const cmsis_nn_dims *bias_dims, const int32_t *bias_data,
                                                  const cmsis_nn_dims *output_dims, int8_t *output_data)
{
    (void)bias_dims;
    const int32_t need =
        arm_depthwise_conv_wrapper_s8_get_buffer_size(dw_conv_params, input_dims, filter_dims, output_dims);
    if (!host_ctx_ok(ctx, need) || dw_conv_params->ch_mult < 1 ||
        output_dims->c != input_dims->c * dw_conv_params->ch_mult || filter_dims->c != output_dims->c) {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    host_conv(input_dims, input_data, filter_dims, filter_data, bias_data, output_dims, output_data,
              dw_conv_params->input_offset, dw_conv_params->output_offset, dw_conv_params->stride,
              dw_conv_params->padding, dw_conv_params->dilation, dw_conv_params->activation,
              quant_params->multiplier, quant_params->shift, 1, dw_conv_params->ch_mult);
    return ARM_CMSIS_NN_SUCCESS;
}

arm_cmsis_nn_status arm_fully_connected_s8(const cmsis_nn_context *ctx, const cmsis_nn_fc_params *fc_params,
                                           const cmsis_nn_per_tensor_quant_params *quant_params,
                                           const cmsis_nn_dims *input_dims, const int8_t *input_data,
                                           const cmsis_nn_dims *filter_dims, const int8_t *filter_data,
                                           const cmsis_nn_dims *bias_dims, const int32_t *bias_data,
                                           const cmsis_nn_dims *output_dims, int8_t *output_data)
{
    (void)bias_dims;
    (void)ctx;
    const int32_t depth = filter_dims->n;
    const int32_t out_c = output_dims->c;
    for (int32_t b = 0; b < input_dims->n; b++) {
        for (int32_t j = 0; j < out_c; j++) {
            int32_t acc = 0;
            for (int32_t k = 0; k < depth; k++) {
                acc += (input_data[b * depth + k] + fc_params->input_offset) *
                       (filter_data[j * depth + k] + fc_params->filter_offset);
            }
            if (bias_data) {
                acc += bias_data[j];
            }
            const int32_t v = host_requantize(acc, quant_params->multiplier, quant_params->shift) +
                              fc_params->output_offset;
            output_data[b * out_c + j] =
                (int8_t)host_clamp(v, fc_params->activation.min, fc_params->activation.max);
        }
    }
    return ARM_CMSIS_NN_SUCCESS;
}

static void host_pool(const cmsis_nn_pool_params *p, const cmsis_nn_dims *in, const int8_t *x,
                      const cmsis_nn_dims *f, const cmsis_nn_dims *out, int8_t *y, int32_t average)
{
    for (int32_t b = 0; b < out->n; b++) {
        for (int32_t oy = 0; oy < out->h; oy++) {
            for (int32_t ox = 0; ox < out->w; ox++) {
                const int32_t y0 = oy * p->stride.h - p->padding.h;
                const int32_t x0 = ox * p->stride.w - p->padding.w;
                const int32_t ys = y0 < 0 ? 0 : y0;
                const int32_t xs = x0 < 0 ? 0 : x0;
                const int32_t ye = y0 + f->h > in->h ? in->h : y0 + f->h;
                const int32_t xe = x0 + f->w > in->w ? in->w : x0 + f->w;
                for (int32_t c = 0; c < in->c; c++) {
                    int32_t acc = average ? 0 : INT32_MIN;
                    int32_t count = 0;
                    for (int32_t iy = ys; iy < ye; iy++) {
                        for (int32_t ix = xs; ix < xe; ix++) {
                            const int32_t v = x[((b * in->h + iy) * in->w + ix) * in->c + c];
                            if (average) {
                                acc += v;
                            } else if (v > acc) {
                                acc = v;
                            }
                            count++;
                        }
                    }
                    if (average) {
                        if (count == 0) {
                            acc = 0;
                        } else {
                            acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                        }
                    }
                    y[((b * out->h + oy) * out->w + ox) * out->c + c] =
                        (int8_t)host_clamp(acc, p->activation.min, p->activation.max);
                }
            }
        }
    }
}

arm_cmsis_nn_status arm_avgpool_s8(const cmsis_nn_context *ctx, const cmsis_nn_pool_params *pool_params,
                                   const cmsis_nn_dims *input_dims, const int8_t *input_data,
                                   const cmsis_nn_dims *filter_dims, const cmsis_nn_dims *output_dims,
                                   int8_t *output_data)
{
    if (!host_ctx_ok(ctx, arm_avgpool_s8_get_buffer_size(output_dims->w, input_dims->c))) {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    host_pool(pool_params, input_dims, input_data, filter_dims, output_dims, output_data, 1);
    return ARM_CMSIS_NN_SUCCESS;
}

arm_cmsis_nn_status arm_max_pool_s8(const cmsis_nn_context *ctx, const cmsis_nn_pool_params *pool_params,
                                    const cmsis_nn_dims *input_dims, const int8_t *input_data,
                                    const cmsis_nn_dims *filter_dims, const cmsis_nn_dims *output_dims,
                                    int8_t *output_data)
{
    (void)ctx;
    host_pool(pool_params, input_dims, input_data, filter_dims, output_dims, output_data, 0);
    return ARM_CMSIS_NN_SUCCESS;
}

arm_cmsis_nn_status arm_elementwise_add_s8(const int8_t *input_1_vect, const int8_t *input_2_vect,
                                           const int32_t input_1_offset, const int32_t input_1_mult,
                                           const int32_t input_1_shift, const int32_t input_2_offset,
                                           const int32_t input_2_mult, const int32_t input_2_shift,
                                           const int32_t left_shift, int8_t *output, const int32_t out_offset,
                                           const int32_t out_mult, const int32_t out_shift,
                                           const int32_t out_activation_min, const int32_t out_activation_max,
                                           const int32_t block_size)
{
    for (int32_t i = 0; i < block_size; i++) {
        const int32_t a = (int32_t)((uint32_t)(input_1_vect[i] + input_1_offset) << left_shift);
        const int32_t b = (int32_t)((uint32_t)(input_2_vect[i] + input_2_offset) << left_shift);
        const int32_t sum = host_requantize(a, input_1_mult, input_1_shift) +
                            host_requantize(b, input_2_mult, input_2_shift);
        const int32_t v = host_requantize(sum, out_mult, out_shift) + out_offset;
        output[i] = (int8_t)host_clamp(v, out_activation_min, out_activation_max);
    }
    return ARM_CMSIS_NN_SUCCESS;
}

/* ---- softmax: TFLite's int8 reference with gemmlowp's fixed-point exp and 1 / (1 + x) ---- */

#define HOST_SCALED_DIFF_INTEGER_BITS 5
#define HOST_ACCUMULATION_INTEGER_BITS 12

static int32_t host_exp_on_interval(int32_t a)
{
    const int32_t constant_term = 1895147668;
    const int32_t constant_1_over_3 = 715827883;
    const int32_t x = (int32_t)((uint32_t)a + ((uint32_t)1 << 28));
    const int32_t x2 = host_srdhm(x, x);
    const int32_t x3 = host_srdhm(x2, x);
    const int32_t x4 = host_srdhm(x2, x2);
    const int32_t x4_over_4 = host_sat_rmul_pot(x4, -2);
    const int32_t inner =
        (int32_t)((uint32_t)host_srdhm((int32_t)((uint32_t)x4_over_4 + (uint32_t)x3), constant_1_over_3) +
                  (uint32_t)x2);
    const int32_t poly = host_sat_rmul_pot(inner, -1);
    return (int32_t)((uint32_t)constant_term +
                     (uint32_t)host_srdhm(constant_term, (int32_t)((uint32_t)x + (uint32_t)poly)));
}

static int32_t host_exp_on_negative_values(int32_t a)
{
    const int32_t integer_bits = HOST_SCALED_DIFF_INTEGER_BITS;
    const int32_t fractional_bits = 31 - integer_bits;
    const int32_t one_quarter = (int32_t)1 << (fractional_bits - 2);
    const int32_t mask = one_quarter - 1;
    const int32_t a_mod_quarter_minus_one_quarter = (a & mask) - one_quarter;
    const int32_t rescaled = host_sat_rmul_pot(a_mod_quarter_minus_one_quarter, integer_bits);
    int32_t result = host_exp_on_interval(rescaled);
    const int32_t remainder = (int32_t)((uint32_t)a_mod_quarter_minus_one_quarter - (uint32_t)a);
    static const int32_t exponents[7] = {-2, -1, 0, 1, 2, 3, 4};
    static const int32_t multipliers[7] = {1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242};
    for (int32_t i = 0; i < 7; i++) {
        if (integer_bits > exponents[i]) {
            const int32_t shift = fractional_bits + exponents[i];
            if (remainder & ((int32_t)1 << shift)) {
                result = host_srdhm(result, multipliers[i]);
            }
        }
    }
    if (a == 0) {
        result = INT32_MAX;
    }
    return result;
}

static int32_t host_one_over_one_plus_x(int32_t a)
{
    const int64_t sum = (int64_t)a + (int64_t)INT32_MAX;
    const int64_t sign = sum >= 0 ? 1 : -1;
    const int32_t half_denominator = (int32_t)((sum + sign) / 2);
    const int32_t constant_48_over_17 = 1515870810;
    const int32_t constant_neg_32_over_17 = -1010580540;
    int32_t x = (int32_t)((uint32_t)constant_48_over_17 +
                          (uint32_t)host_srdhm(half_denominator, constant_neg_32_over_17));
    const int32_t one_q2 = (int32_t)1 << 29;
    for (int32_t i = 0; i < 3; i++) {
        const int32_t half_denominator_times_x = host_srdhm(half_denominator, x);
        const int32_t one_minus = (int32_t)((uint32_t)one_q2 - (uint32_t)half_denominator_times_x);
        x = (int32_t)((uint32_t)x + (uint32_t)host_sat_rmul_pot(host_srdhm(x, one_minus), 2));
    }
    return host_sat_rmul_pot(x, 1);
}

static int32_t host_leading_zeros(uint32_t x)
{
    int32_t n = 0;
    if (x == 0) {
        return 32;
    }
    while (!(x & 0x80000000u)) {
        x <<= 1;
        n++;
    }
    return n;
}

void arm_softmax_s8(const int8_t *input, const int32_t num_rows, const int32_t row_size, const int32_t mult,
                    const int32_t shift, const int32_t diff_min, int8_t *output)
{
    for (int32_t r = 0; r < num_rows; r++) {
        const int8_t *x = input + r * row_size;
        int8_t *y = output + r * row_size;
        int32_t max_in_row = -128;
        for (int32_t k = 0; k < row_size; k++) {
            if (x[k] > max_in_row) {
                max_in_row = x[k];
            }
        }
        int32_t sum_of_exps = 0;
        for (int32_t k = 0; k < row_size; k++) {
            const int32_t diff = x[k] - max_in_row;
            if (diff >= diff_min) {
                const int32_t rescaled = host_srdhm((int32_t)((uint32_t)diff << (shift > 0 ? shift : 0)), mult);
                const int32_t e = host_exp_on_negative_values(rescaled);
                sum_of_exps = (int32_t)((uint32_t)sum_of_exps +
                                        (uint32_t)host_rdbp(e, HOST_ACCUMULATION_INTEGER_BITS));
            }
        }
        /* GetReciprocal(sum_of_exps, 12). */
        const int32_t headroom_plus_one = host_leading_zeros((uint32_t)sum_of_exps);
        const int32_t num_bits_over_unit = HOST_ACCUMULATION_INTEGER_BITS - headroom_plus_one;
        const int32_t shifted_sum_minus_one =
            (int32_t)(((uint32_t)sum_of_exps << (headroom_plus_one & 31)) - ((uint32_t)1 << 31));
        const int32_t shifted_scale = host_one_over_one_plus_x(shifted_sum_minus_one);
        int32_t out_shift = num_bits_over_unit + 31 - 8;
        out_shift = out_shift < 0 ? 0 : (out_shift > 31 ? 31 : out_shift);
        for (int32_t k = 0; k < row_size; k++) {
            const int32_t diff = x[k] - max_in_row;
            if (diff >= diff_min) {
                const int32_t rescaled = host_srdhm((int32_t)((uint32_t)diff << (shift > 0 ? shift : 0)), mult);
                const int32_t e = host_exp_on_negative_values(rescaled);
                const int32_t unsat = host_rdbp(host_srdhm(shifted_scale, e), out_shift);
                y[k] = (int8_t)host_clamp(unsat - 128, -128, 127);
            } else {
                y[k] = -128;
            }
        }
    }
}

void arm_concatenation_s8_z(const int8_t *input, const uint16_t input_x, const uint16_t input_y,
                            const uint16_t input_z, const uint16_t input_w, int8_t *output, const uint16_t output_z,
                            const uint32_t offset_z)
{
    const uint32_t plane = (uint32_t)input_x * input_y;
    const uint32_t copy = plane * input_z;
    const uint32_t out_stride = plane * output_z;
    output += offset_z * plane;
    for (uint32_t i = 0; i < input_w; i++) {
        for (uint32_t k = 0; k < copy; k++) {
            output[k] = input[k];
        }
        input += copy;
        output += out_stride;
    }
}
