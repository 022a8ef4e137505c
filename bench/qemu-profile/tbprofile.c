/* tbprofile: a QEMU TCG plugin (plugin API v1, QEMU 7.2) that counts how many
 * times each translated block runs, to profile a guest program by address.
 *
 *   qemu-aarch64 ... -plugin libtbprofile.so,out=FILE ./prog args
 *
 * At exit FILE holds a header of "# key value" lines (the guest entry point
 * and text range as the loader placed them, so that a script can find the load
 * base of a PIE) and then one line per translation: "vaddr insns execs" in
 * hex, decimal, decimal. A block translated more than once appears once per
 * translation; readers sum them. Each execution is counted by an inline add
 * (no helper call), so the guest runs about as fast as with libicount.so. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <qemu-plugin.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

/* One translation of one block. The records are chained in a list that only
 * grows; execs is written by the inline add the block runs. */
struct Block {
  uint64_t execs;
  uint64_t vaddr;
  uint32_t insns;
  struct Block* next;
};

enum { kChunk = 4096 };

static struct Block* blocks; /* newest first */
static struct Block* pool;   /* unused records of the current chunk */
static size_t pool_left;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char* out_path;

static struct Block* new_block(void) {
  if (pool_left == 0) {
    pool = calloc(kChunk, sizeof *pool); /* freed at exit by the OS */
    if (!pool) abort();
    pool_left = kChunk;
  }
  pool_left--;
  return pool++;
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb* tb) {
  (void)id;
  pthread_mutex_lock(&lock);
  struct Block* b = new_block();
  b->vaddr = qemu_plugin_tb_vaddr(tb);
  b->insns = (uint32_t)qemu_plugin_tb_n_insns(tb);
  b->next = blocks;
  blocks = b;
  pthread_mutex_unlock(&lock);
  qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &b->execs, 1);
}

static void at_exit(qemu_plugin_id_t id, void* data) {
  (void)id;
  (void)data;
  FILE* f = fopen(out_path, "w");
  if (!f) {
    char msg[512];
    snprintf(msg, sizeof msg, "tbprofile: cannot write %s\n", out_path);
    qemu_plugin_outs(msg);
    return;
  }
  uint64_t total = 0;
  for (struct Block* b = blocks; b; b = b->next) total += b->execs * b->insns;
  fprintf(f,
          "# tbprofile 1\n# entry_code 0x%" PRIx64 "\n# start_code 0x%" PRIx64 "\n# end_code 0x%" PRIx64
          "\n# insns %" PRIu64 "\n",
          qemu_plugin_entry_code(), qemu_plugin_start_code(), qemu_plugin_end_code(), total);
  for (struct Block* b = blocks; b; b = b->next)
    if (b->execs) fprintf(f, "%" PRIx64 " %" PRIu32 " %" PRIu64 "\n", b->vaddr, b->insns, b->execs);
  fclose(f);
  char msg[128];
  snprintf(msg, sizeof msg, "tbprofile: insns=%" PRIu64 "\n", total);
  qemu_plugin_outs(msg);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t* info, int argc,
                                           char** argv) {
  (void)info;
  for (int i = 0; i < argc; i++)
    if (strncmp(argv[i], "out=", 4) == 0) out_path = strdup(argv[i] + 4);
  if (!out_path || !*out_path) {
    fprintf(stderr, "tbprofile: needs the argument out=FILE\n");
    return -1;
  }
  qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
  qemu_plugin_register_atexit_cb(id, at_exit, NULL);
  return 0;
}
