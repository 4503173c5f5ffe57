/* Host shim of the PMSIS BSP RAM driver subset (bsp/ram.h) that clio's GAP8 code and its test
 * harness call: the signatures as published in the GAP SDK's BSP (there the cluster-side calls
 * are static inline wrappers), clio's own declarations, not vendor code. On the host the RAM
 * is a buffer; a cluster read is carried out when it is waited for, so code that uses the data
 * before pi_cl_ram_read_wait sees stale bytes and fails its bit-exactness check. */
#ifndef CLIO_SHIM_BSP_RAM_H
#define CLIO_SHIM_BSP_RAM_H
#include <stdint.h>
#include "pmsis.h"

typedef struct pi_cl_ram_req_s pi_cl_ram_req_t;
struct pi_cl_ram_req_s {
    struct pi_device *device;
    void *addr;
    uint32_t pi_ram_addr;
    uint32_t size;
    uint32_t stride;
    uint32_t length;
    uint8_t pending;
};

int32_t pi_ram_open(struct pi_device *device);
int pi_ram_alloc(struct pi_device *device, uint32_t *addr, uint32_t size);
void pi_ram_write(struct pi_device *device, uint32_t pi_ram_addr, void *data, uint32_t size);
void pi_ram_read(struct pi_device *device, uint32_t pi_ram_addr, void *data, uint32_t size);
void pi_cl_ram_read(struct pi_device *device, uint32_t pi_ram_addr, void *addr, uint32_t size, pi_cl_ram_req_t *req);
void pi_cl_ram_read_2d(struct pi_device *device, uint32_t pi_ram_addr, void *addr, uint32_t size, uint32_t stride,
                       uint32_t length, pi_cl_ram_req_t *req);
void pi_cl_ram_read_wait(pi_cl_ram_req_t *req);
#endif
