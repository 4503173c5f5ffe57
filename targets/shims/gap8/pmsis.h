/* Host shim of the PMSIS cluster API subset that clio's GAP8 code calls (signatures as in
 * PMSIS; clio's own declarations, not vendor code). On the host the cluster has one core,
 * a task runs synchronously and the cluster DMA is memcpy, done at the wait. */
#ifndef CLIO_SHIM_PMSIS_H
#define CLIO_SHIM_PMSIS_H
#include <stdint.h>
#include <stddef.h>

#define PI_CL_L1 /* placed in the cluster's 64 KB L1 (TCDM) on the device */
#define PI_L2 /* placed in the 512 KB L2 on the device */

struct pi_device { void *config; void *data; };
struct pi_cluster_conf { int id; };
struct pi_cluster_task { void (*entry)(void *); void *arg; };
typedef enum { PI_CL_DMA_DIR_LOC2EXT = 0, PI_CL_DMA_DIR_EXT2LOC = 1 } pi_cl_dma_dir_e;
/* A transfer is carried out when it is waited for (the latest moment the hardware may finish
 * it), so code that uses a destination, or reuses a source, before its wait fails its test. */
typedef struct { uint32_t ext, loc, size, stride, length; int dir, pending; } pi_cl_dma_cmd_t;

void pi_cluster_conf_init(struct pi_cluster_conf *conf);
void pi_open_from_conf(struct pi_device *device, void *conf);
int pi_cluster_open(struct pi_device *device);
struct pi_cluster_task *pi_cluster_task(struct pi_cluster_task *task, void (*entry)(void *), void *arg);
int pi_cluster_send_task_to_cl(struct pi_device *device, struct pi_cluster_task *task);
void pi_cl_team_fork(int nb_cores, void (*entry)(void *), void *arg);
void pi_cl_team_barrier(void);
int pi_core_id(void);
int pi_cl_team_nb_cores(void);
void pi_cl_dma_cmd(uint32_t ext, uint32_t loc, uint32_t size, pi_cl_dma_dir_e dir, pi_cl_dma_cmd_t *cmd);
void pi_cl_dma_cmd_2d(uint32_t ext, uint32_t loc, uint32_t size, uint32_t stride, uint32_t length,
                      pi_cl_dma_dir_e dir, pi_cl_dma_cmd_t *cmd);
void pi_cl_dma_cmd_wait(pi_cl_dma_cmd_t *cmd);
#endif
