/* clio's own host implementation of the PMSIS cluster API subset, the HWCE tile functions and
 * the AutoTiler depthwise kernels it calls, written from the published semantics
 * (TARGETS.md): one cluster core, tasks run synchronously, DMA is memcpy, HyperRAM is a host
 * buffer whose cluster reads complete when waited for. The HWCE checks its
 * constraints (even input width, 32-pixel stripes) and aborts on a violation, so tests catch
 * code that the real engine would reject. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pmsis.h"
#include "bsp/ram.h"
#include "CNN_HwCE.h"
#include "CNN_BasicKernels.h"

/* ---- PMSIS ---- */
void pi_cluster_conf_init(struct pi_cluster_conf *conf) { conf->id = 0; }
void pi_open_from_conf(struct pi_device *device, void *conf) { device->config = conf; device->data = NULL; }
int pi_cluster_open(struct pi_device *device) { (void)device; return 0; }
struct pi_cluster_task *pi_cluster_task(struct pi_cluster_task *task, void (*entry)(void *), void *arg)
{
  task->entry = entry;
  task->arg = arg;
  return task;
}
int pi_cluster_send_task_to_cl(struct pi_device *device, struct pi_cluster_task *task)
{
  (void)device;
  task->entry(task->arg);
  return 0;
}
void pi_cl_team_fork(int nb_cores, void (*entry)(void *), void *arg) { (void)nb_cores; entry(arg); }
void pi_cl_team_barrier(void) {}
int pi_core_id(void) { return 0; }
int pi_cl_team_nb_cores(void) { return 1; }
/* Addresses are 32-bit on GAP8: the host test links without PIE so that static buffers have
 * 32-bit addresses too. */
static void *addr(uint32_t a) { return (void *)(uintptr_t)a; }
/* Marks a command in flight (commands are often uninitialized stack variables, so a plain flag
 * could be set by chance). */
#define DMA_PENDING 0x5AFE0D3A
/* Host-only statistics (not PMSIS): bytes carried out by the cluster DMA per direction and by
 * the cluster's HyperRAM reads, which the tests compare with the backend's per-layer counts. */
uint64_t clio_host_dma_in_bytes, clio_host_dma_out_bytes, clio_host_l3_read_bytes;
static void dma_issue(pi_cl_dma_cmd_t *cmd, uint32_t ext, uint32_t loc, uint32_t size, uint32_t stride,
                      uint32_t length, pi_cl_dma_dir_e dir)
{
  if (cmd->pending == DMA_PENDING) { fprintf(stderr, "DMA: command reused before its wait\n"); abort(); }
  if (length == 0) { fprintf(stderr, "DMA: zero line length\n"); abort(); }
  cmd->ext = ext;
  cmd->loc = loc;
  cmd->size = size;
  cmd->stride = stride;
  cmd->length = length;
  cmd->dir = (int)dir;
  cmd->pending = DMA_PENDING;
}
void pi_cl_dma_cmd(uint32_t ext, uint32_t loc, uint32_t size, pi_cl_dma_dir_e dir, pi_cl_dma_cmd_t *cmd)
{
  /* 1D: one line as long as the transfer. */
  dma_issue(cmd, ext, loc, size, size, size ? size : 1, dir);
}
void pi_cl_dma_cmd_2d(uint32_t ext, uint32_t loc, uint32_t size, uint32_t stride, uint32_t length,
                      pi_cl_dma_dir_e dir, pi_cl_dma_cmd_t *cmd)
{
  dma_issue(cmd, ext, loc, size, stride, length, dir);
}
/* Carries the transfer out: L1 side contiguous, L2 side in lines of `length` bytes `stride` apart. */
void pi_cl_dma_cmd_wait(pi_cl_dma_cmd_t *cmd)
{
  if (cmd->pending != DMA_PENDING) { fprintf(stderr, "DMA: wait without a transfer\n"); abort(); }
  if (cmd->dir == PI_CL_DMA_DIR_EXT2LOC) clio_host_dma_in_bytes += cmd->size;
  else clio_host_dma_out_bytes += cmd->size;
  for (uint32_t done = 0, line = 0; done < cmd->size; done += cmd->length, line++) {
    uint32_t n = cmd->size - done < cmd->length ? cmd->size - done : cmd->length;
    if (cmd->dir == PI_CL_DMA_DIR_EXT2LOC) memcpy(addr(cmd->loc + done), addr(cmd->ext + line * cmd->stride), n);
    else memcpy(addr(cmd->ext + line * cmd->stride), addr(cmd->loc + done), n);
  }
  cmd->pending = 0;
}

/* ---- HyperRAM (bsp/ram.h): 8 MB, as on the GAPUINO board ---- */
#define CLIO_HOST_RAM_BYTES (8u << 20)
static uint8_t *host_ram;
static uint32_t host_ram_used;
static uint8_t *ram_at(struct pi_device *device, uint32_t addr, uint32_t size)
{
  if (!device || device->data != host_ram || !host_ram) { fprintf(stderr, "RAM: device not opened\n"); abort(); }
  if (addr > CLIO_HOST_RAM_BYTES || size > CLIO_HOST_RAM_BYTES - addr) {
    fprintf(stderr, "RAM: access of %u B at %u is out of range\n", size, addr);
    abort();
  }
  return host_ram + addr;
}
int32_t pi_ram_open(struct pi_device *device)
{
  if (!host_ram) host_ram = calloc(CLIO_HOST_RAM_BYTES, 1);
  device->data = host_ram;
  return host_ram ? 0 : -1;
}
int pi_ram_alloc(struct pi_device *device, uint32_t *addr, uint32_t size)
{
  (void)ram_at(device, 0, 0);
  if (size > CLIO_HOST_RAM_BYTES - host_ram_used) return -1;
  *addr = host_ram_used;
  host_ram_used += (size + 3u) & ~3u;
  return 0;
}
void pi_ram_write(struct pi_device *device, uint32_t pi_ram_addr, void *data, uint32_t size)
{
  memcpy(ram_at(device, pi_ram_addr, size), data, size);
}
void pi_ram_read(struct pi_device *device, uint32_t pi_ram_addr, void *data, uint32_t size)
{
  memcpy(data, ram_at(device, pi_ram_addr, size), size);
}
void pi_cl_ram_read_2d(struct pi_device *device, uint32_t pi_ram_addr, void *addr, uint32_t size, uint32_t stride,
                       uint32_t length, pi_cl_ram_req_t *req)
{
  if (req->pending) { fprintf(stderr, "RAM: request reused before its wait\n"); abort(); }
  if (length == 0) { fprintf(stderr, "RAM: zero line length\n"); abort(); }
  /* Every line must lie in the RAM. */
  uint32_t lines = (size + length - 1) / length;
  if (lines > 0) (void)ram_at(device, pi_ram_addr, (lines - 1) * stride + (size - (lines - 1) * length));
  req->device = device;
  req->addr = addr;
  req->pi_ram_addr = pi_ram_addr;
  req->size = size;
  req->stride = stride;
  req->length = length;
  req->pending = 1;
}
void pi_cl_ram_read(struct pi_device *device, uint32_t pi_ram_addr, void *addr, uint32_t size, pi_cl_ram_req_t *req)
{
  pi_cl_ram_read_2d(device, pi_ram_addr, addr, size, size, size ? size : 1, req);
}
/* Carries the read out: the processor side contiguous, the RAM side in lines of `length`
 * bytes `stride` apart. */
void pi_cl_ram_read_wait(pi_cl_ram_req_t *req)
{
  if (!req->pending) { fprintf(stderr, "RAM: wait without a read\n"); abort(); }
  clio_host_l3_read_bytes += req->size;
  uint8_t *dst = req->addr;
  for (uint32_t done = 0, line = 0; done < req->size; done += req->length, line++) {
    uint32_t n = req->size - done < req->length ? req->size - done : req->length;
    memcpy(dst + done, ram_at(req->device, req->pi_ram_addr + line * req->stride, n), n);
  }
  req->pending = 0;
}

/* ---- HWCE ---- */
static struct {
  int enabled;
  unsigned conv;
  unsigned norm;
  unsigned yin_disable;
  int input_bias;
} hwce;

void HWCE_Enable(void) { hwce.enabled = 1; }
void HWCE_Disable(void) { hwce.enabled = 0; }
void HwCE_SoftReset(void) { memset(&hwce, 0, sizeof hwce); hwce.enabled = 1; }
void HWCE_GenericInit(unsigned int ConvType, unsigned int WStride, unsigned int Norm)
{
  (void)WStride;
  if (Norm > 15) { fprintf(stderr, "HWCE: Norm %u > 15\n", Norm); abort(); }
  hwce.conv = ConvType;
  hwce.norm = Norm;
}
void HwCE_SetInputBias(int Bias) { hwce.input_bias = Bias; }
void HwCE_SetYinMode(unsigned int Disable) { hwce.yin_disable = Disable; }

static short sat16(int64_t v) { return (short)(v > 32767 ? 32767 : v < -32768 ? -32768 : v); }

/* One output plane of a valid KxK convolution of a W x H tile; the filter is row-major with
 * `fstride` coefficients per row. Output planes are dense (W-K+1) x (H-K+1). */
static void hwce_plane(const short *in, short *out, const short *f, int fstride, int k, short bias, unsigned w,
                       unsigned h)
{
  if (!hwce.enabled) { fprintf(stderr, "HWCE: not enabled\n"); abort(); }
  if (w % 2 != 0 || w > 32 || w < (unsigned)k || h < (unsigned)k) {
    fprintf(stderr, "HWCE: tile %ux%u violates the even width / 32-pixel stripe constraint\n", w, h);
    abort();
  }
  unsigned wo = w - k + 1, ho = h - k + 1;
  for (unsigned y = 0; y < ho; y++)
    for (unsigned x = 0; x < wo; x++) {
      int64_t acc = hwce.yin_disable ? ((int64_t)bias << hwce.norm) : ((int64_t)out[y * wo + x] << hwce.norm);
      for (int i = 0; i < k; i++)
        for (int j = 0; j < k; j++) acc += (int64_t)in[(y + i) * w + x + j] * f[i * fstride + j];
      if (hwce.norm > 0) acc = (acc + ((int64_t)1 << (hwce.norm - 1))) >> hwce.norm;
      out[y * wo + x] = sat16(acc);
    }
}

void HWCE_ProcessOneTile3x3_MultiOut(short int *In, short int *Out0, short int *Out1, short int *Out2,
                                     short int *Filter, short int Bias, unsigned int W, unsigned int H,
                                     unsigned int OutMask)
{
  int n = OutMask == 0x7 ? 1 : OutMask == 0x3 ? 2 : OutMask == 0x1 ? 3 : 0;
  if (hwce.conv != HWCE_CONV3x3 || n == 0) { fprintf(stderr, "HWCE: bad 3x3 mode/mask\n"); abort(); }
  short *outs[3] = {Out0, Out1, Out2};
  /* Filters of the n output planes follow each other, 9 coefficients + 1 zero each. */
  for (int i = 0; i < n; i++) hwce_plane(In, outs[i], Filter + 10 * i, 3, 3, Bias, W, H);
}
void HWCE_ProcessOneTile5x5(short int *In, short int *Out, short int *Filter, short int Bias, unsigned int W,
                            unsigned int H)
{
  if (hwce.conv != HWCE_CONV5x5) { fprintf(stderr, "HWCE: not in 5x5 mode\n"); abort(); }
  hwce_plane(In, Out, Filter, 5, 5, Bias, W, H);
}
void HWCE_ProcessOneTile7x7(short int *In, short int *Out, short int *Filter, short int Bias, unsigned int W,
                            unsigned int H)
{
  if (hwce.conv != HWCE_CONV4x7) { fprintf(stderr, "HWCE: not in 7x7 (4x7) mode\n"); abort(); }
  hwce_plane(In, Out, Filter, 7, 7, Bias, W, H);
}
void HWCE_ProcessOneTile7x4(short int *In, short int *Out, short int *Filter, short int Bias, unsigned int W,
                            unsigned int H)
{
  (void)In; (void)Out; (void)Filter; (void)Bias; (void)W; (void)H;
  fprintf(stderr, "HWCE_ProcessOneTile7x4: not emulated\n");
  abort();
}

/* ---- AutoTiler depthwise 3x3 kernels (_fps: 8-bit Q) ---- */
static void dw3x3(KerConv_fps_T *a, int s)
{
  int pl = a->Pad[0], pr = a->Pad[1], pt = a->Pad[2], pb = a->Pad[3];
  int w = a->W, h = a->H, n = a->Norm;
  int wo = (w + pl + pr - 3) / s + 1, ho = (h + pt + pb - 3) / s + 1;
  int c = a->OutFeatures, nc = pi_cl_team_nb_cores(), per = (c + nc - 1) / nc;
  int first = pi_core_id() * per, last = first + per < c ? first + per : c;
  for (int ch = first; ch < last; ch++) {
    const signed char *in = a->In + ch * w * h;
    const signed char *f = a->Filter + ch * 9;
    signed char *out = a->Out + ch * wo * ho;
    for (int y = 0; y < ho; y++)
      for (int x = 0; x < wo; x++) {
        int acc = (int)((uint32_t)a->Bias[ch] << n);
        for (int i = 0; i < 3; i++)
          for (int j = 0; j < 3; j++) {
            int iy = y * s + i - pt, ix = x * s + j - pl;
            if (iy >= 0 && iy < h && ix >= 0 && ix < w) acc += in[iy * w + ix] * f[i * 3 + j];
          }
        if (n > 0) acc = (acc + (1 << (n - 1))) >> n;
        out[y * wo + x] = (signed char)(acc > 127 ? 127 : acc < -128 ? -128 : acc);
      }
  }
}
void KerParConvDW3x3Stride1_fps(KerConv_fps_T *Arg) { dw3x3(Arg, 1); }
void KerParConvDW3x3Stride2_fps(KerConv_fps_T *Arg) { dw3x3(Arg, 2); }
