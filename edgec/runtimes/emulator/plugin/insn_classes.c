/* QEMU TCG plugin: counts the AArch64 instructions a guest executes, by class, between two marker syscalls.
 *
 * Each translated block is decoded once, at translation, into per-class instruction counts; at run time an
 * inline add (no helper call) counts how often the block executes. The guest marks the region to count with
 * lseek(-1, MARK + 1) / lseek(-1, MARK + 2) (EBADF, no effect); at each marker every block's execution count is
 * snapshotted, and at the end of a region (count delta) x (class counts) is added to the totals (MARK + 3 /
 * MARK + 4 bracket a warm-up invoke: only the simulated caches see it). Written as JSON to the file given by
 * the plugin argument out=PATH when the guest exits.
 *
 * Op boundaries: a runtime's profiler reads the clock before and after each op, and QEMU 7.2 user-mode has no
 * vDSO, so every clock read is a clock_gettime syscall. At each one inside the last region the plugin records
 * the host's CLOCK_REALTIME (which the guest's read returns a moment later) and the region's running counts
 * ("marks"); the host side matches them to the profiler's per-op timestamps (counts.py).
 *
 * Data caches (plugin argument cache=SIZE:WAYS+SIZE:WAYS+...: L1D, L2, LLC in bytes, 64-byte lines): every
 * load and store of a counted region goes through a simulated hierarchy, per level the accesses that reach it
 * and the load misses, store misses and (last level) dirty evictions. LRU replacement (the cores use pseudo-LRU),
 * write-allocate, indexed by the guest's virtual address (user mode has no physical one). Without cache= no
 * memory callback is registered and the instruction counts cost what they did.
 *
 * Blocks (plugin argument blocks=PATH): every translated block that ran in a counted region, one line each,
 * "EXECS VADDR N_fmla .. N_other HEXBYTES" (executions summed over the counted regions, the block's guest address,
 * its per-class counts and its instruction bytes), for the pipeline simulation of the hot blocks (mca.py).
 * The bytes are copied at translation only when blocks= is given.
 *
 * Counts are exact for one guest thread (the inline add is not atomic), which is how edgec runs the runtimes.
 * Encodings: Arm Architecture Reference Manual for A-profile, A64 instruction set encoding tables. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qemu_plugin_api.h"

EDGEC_PLUGIN_EXPORT int qemu_plugin_version = EDGEC_PLUGIN_API_VERSION;

enum cls { FMLA, FMUL, DOT, INT_MAC, VEC_OTHER, LOAD, STORE, BRANCH, OTHER, NCLS };
static const char *cls_name[NCLS] = {"fmla", "fmul", "sdot_udot", "int_mac", "vector_other", "load", "store",
                                     "branch", "other"};

#define NR_LSEEK 62  /* aarch64 __NR_lseek */
#define NR_CLOCK_GETTIME 113  /* aarch64 __NR_clock_gettime */
#define MARK 0xED6EC000ull

struct block {
    uint64_t execs;  /* bumped inline by the translated code */
    uint64_t at_start;
    uint64_t counted;  /* executions inside counted regions */
    uint64_t vaddr;
    uint32_t n[NCLS];
    uint32_t n_bytes;
    uint8_t *bytes;  /* only with blocks= */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct block **blocks;
static size_t n_blocks, cap_blocks;
static uint64_t totals[NCLS];
static uint64_t regions;
static int counting;
static int warming;  /* a warm-up invoke (MARK + 3 .. MARK + 4): the caches fill, nothing is counted */
static char *out_path, *blocks_path;

struct mark {
    uint64_t clockid, t_ns, n[NCLS];
};
static struct mark *marks;  /* the clock reads of the last region */
static size_t n_marks, cap_marks;

#define MAX_LEVELS 3
#define LINE_SHIFT 6  /* 64-byte lines in every cache of every core edgec models (the cores' TRMs) */

struct level {
    uint64_t sets, ways;
    uint64_t *tag;  /* line + 1, 0 = empty; sets x ways */
    uint64_t *used;  /* LRU stamp */
    uint8_t *dirty;
    uint64_t accesses, load_misses, store_misses, writebacks;
};
static struct level levels[MAX_LEVELS];
static int n_levels;
static uint64_t tick, last_line = UINT64_MAX;

/* 1 on a hit; on a miss the line is filled (write-allocate) over the least recently used way */
static int lookup(struct level *lv, uint64_t line, int store)
{
    uint64_t set = line & (lv->sets - 1), *tag = lv->tag + set * lv->ways, *used = lv->used + set * lv->ways;
    uint8_t *dirty = lv->dirty + set * lv->ways;
    uint64_t victim = 0;
    lv->accesses += counting;
    for (uint64_t w = 0; w < lv->ways; w++) {
        if (tag[w] == line + 1) {
            used[w] = tick;
            dirty[w] |= store;
            return 1;
        }
        if (used[w] < used[victim])
            victim = w;
    }
    if (counting) {
        if (store)
            lv->store_misses++;
        else
            lv->load_misses++;
        if (dirty[victim] && tag[victim])
            lv->writebacks++;
    }
    tag[victim] = line + 1;
    used[victim] = tick;
    dirty[victim] = (uint8_t)store;
    return 0;
}

static void touch_line(uint64_t line, int store)
{
    tick++;
    for (int i = 0; i < n_levels; i++)
        if (lookup(&levels[i], line, store))
            return;
}

static void on_mem(unsigned int vcpu, qemu_plugin_meminfo_t info, uint64_t vaddr, void *udata)
{
    if (!counting && !warming)
        return;
    int store = qemu_plugin_mem_is_store(info);
    uint64_t size = 1ull << qemu_plugin_mem_size_shift(info);
    uint64_t line = vaddr >> LINE_SHIFT, end = (vaddr + size - 1) >> LINE_SHIFT;
    /* consecutive accesses to one line: an L1 hit, counted without the lookup (the common case by far) */
    if (line == last_line && end == line && !store) {
        levels[0].accesses += counting;
        return;
    }
    for (uint64_t l = line; l <= end; l++)
        touch_line(l, store);
    last_line = end;
}

static int parse_caches(const char *spec)
{
    while (*spec && n_levels < MAX_LEVELS) {
        char *next;
        uint64_t size = strtoull(spec, &next, 10), ways = 0, sets;
        if (*next == ':')
            ways = strtoull(next + 1, &next, 10);
        if (!size || !ways)
            return 1;
        sets = size >> LINE_SHIFT;
        sets /= ways;
        if (!sets || (sets & (sets - 1)))
            return 1;  /* the set index is the line address's low bits */
        struct level *lv = &levels[n_levels++];
        lv->sets = sets;
        lv->ways = ways;
        lv->tag = calloc(sets * ways, sizeof(uint64_t));
        lv->used = calloc(sets * ways, sizeof(uint64_t));
        lv->dirty = calloc(sets * ways, 1);
        spec = *next == '+' ? next + 1 : next;  /* not ',': QEMU splits -plugin arguments at commas */
    }
    return *spec != 0;
}

static void running_counts(uint64_t *n)
{
    memset(n, 0, NCLS * sizeof(*n));
    for (size_t i = 0; i < n_blocks; i++) {
        uint64_t d = blocks[i]->execs - blocks[i]->at_start;
        if (d)
            for (int c = 0; c < NCLS; c++)
                n[c] += d * blocks[i]->n[c];
    }
}

#define IS(mask, value) ((insn & (mask)) == (value))

static enum cls classify(uint32_t insn)
{
    /* floating-point multiply-add, vector: FMLA/FMLS (single/double; half precision), and by element */
    if (IS(0xBF20FC00, 0x0E20CC00) || IS(0xBF60FC00, 0x0E400C00) || IS(0xBF00B400, 0x0F001000))
        return FMLA;
    /* FMUL vector, and by element */
    if (IS(0xBFA0FC00, 0x2E20DC00) || IS(0xBF00F400, 0x0F009000))
        return FMUL;
    /* SDOT/UDOT vector, and by element */
    if (IS(0x9FE0FC00, 0x0E809400) || IS(0x9FC0F400, 0x0F80E000))
        return DOT;
    /* integer multiply-accumulate kernels without a dot product: SMLAL/UMLAL(2), SMULL/UMULL(2), MLA, SADALP/UADALP */
    if (IS(0x9F20FC00, 0x0E208000) || IS(0x9F20FC00, 0x0E20C000) || IS(0xBF20FC00, 0x0E209400)
        || IS(0x9F3FFC00, 0x0E206800))
        return INT_MAC;
    /* loads and stores (op0 = x1x0); the literal form only loads, every other form has L in bit 22 */
    if (IS(0x0A000000, 0x08000000)) {
        if (IS(0x3B000000, 0x18000000))
            return LOAD;
        return (insn >> 22) & 1 ? LOAD : STORE;
    }
    /* B/BL, CBZ/CBNZ, TBZ/TBNZ, B.cond, BR/BLR/RET */
    if (IS(0x7C000000, 0x14000000) || IS(0x7E000000, 0x34000000) || IS(0x7E000000, 0x36000000)
        || IS(0xFF000010, 0x54000000) || IS(0xFE000000, 0xD6000000))
        return BRANCH;
    /* the rest of the SIMD & floating-point data processing group (op0 = x111) */
    if (IS(0x0E000000, 0x0E000000))
        return VEC_OTHER;
    return OTHER;
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    struct block *b = calloc(1, sizeof(*b));
    size_t n = qemu_plugin_tb_n_insns(tb);
    b->vaddr = qemu_plugin_tb_vaddr(tb);
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uint32_t word = 0;
        if (qemu_plugin_insn_size(insn) == 4)
            memcpy(&word, qemu_plugin_insn_data(insn), 4);
        if (blocks_path) {
            b->bytes = realloc(b->bytes, b->n_bytes + 4);
            memcpy(b->bytes + b->n_bytes, &word, 4);
            b->n_bytes += 4;
        }
        enum cls c = classify(word);
        b->n[c]++;
        if (n_levels && (c == LOAD || c == STORE))
            qemu_plugin_register_vcpu_mem_cb(insn, on_mem, QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_MEM_RW, NULL);
    }
    pthread_mutex_lock(&lock);
    if (n_blocks == cap_blocks) {
        cap_blocks = cap_blocks ? 2 * cap_blocks : 65536;
        blocks = realloc(blocks, cap_blocks * sizeof(*blocks));
    }
    blocks[n_blocks++] = b;
    pthread_mutex_unlock(&lock);
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &b->execs, 1);
}

static void on_syscall(qemu_plugin_id_t id, unsigned int vcpu, int64_t num, uint64_t a1, uint64_t a2,
                       uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6, uint64_t a7, uint64_t a8)
{
    if (num == NR_CLOCK_GETTIME) {
        pthread_mutex_lock(&lock);
        if (counting) {
            struct timespec ts;
            if (n_marks == cap_marks) {
                cap_marks = cap_marks ? 2 * cap_marks : 1024;
                marks = realloc(marks, cap_marks * sizeof(*marks));
            }
            struct mark *m = &marks[n_marks++];
            m->clockid = a1;
            running_counts(m->n);
            clock_gettime(CLOCK_REALTIME, &ts);  /* last: the guest's own read follows right after */
            m->t_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
        }
        pthread_mutex_unlock(&lock);
        return;
    }
    if (num != NR_LSEEK || a1 != UINT64_MAX || a2 < MARK + 1 || a2 > MARK + 4)
        return;
    if (a2 >= MARK + 3) {
        warming = a2 == MARK + 3;
        return;
    }
    pthread_mutex_lock(&lock);
    if (a2 == MARK + 1) {
        for (size_t i = 0; i < n_blocks; i++)
            blocks[i]->at_start = blocks[i]->execs;
        n_marks = 0;
        counting = 1;
    } else if (counting) {
        for (size_t i = 0; i < n_blocks; i++) {
            uint64_t d = blocks[i]->execs - blocks[i]->at_start;
            blocks[i]->counted += d;
            for (int c = 0; c < NCLS; c++)
                totals[c] += d * blocks[i]->n[c];
        }
        counting = 0;
        regions++;
    }
    pthread_mutex_unlock(&lock);
}

static void on_guest_exit(qemu_plugin_id_t id, void *unused)
{
    FILE *f = fopen(out_path, "w");
    if (!f)
        return;
    fprintf(f, "{\"regions\": %llu, \"counts\": {", (unsigned long long)regions);
    for (int c = 0; c < NCLS; c++)
        fprintf(f, "%s\"%s\": %llu", c ? ", " : "", cls_name[c], (unsigned long long)totals[c]);
    fprintf(f, "}, \"cache\": [");
    for (int i = 0; i < n_levels; i++)
        fprintf(f, "%s{\"accesses\": %llu, \"load_misses\": %llu, \"store_misses\": %llu, \"writebacks\": %llu}",
                i ? ", " : "", (unsigned long long)levels[i].accesses, (unsigned long long)levels[i].load_misses,
                (unsigned long long)levels[i].store_misses, (unsigned long long)levels[i].writebacks);
    fprintf(f, "], \"marks\": [");
    for (size_t i = 0; i < n_marks; i++) {
        fprintf(f, "%s[%llu, %llu", i ? ", " : "", (unsigned long long)marks[i].clockid,
                (unsigned long long)marks[i].t_ns);
        for (int c = 0; c < NCLS; c++)
            fprintf(f, ", %llu", (unsigned long long)marks[i].n[c]);
        fprintf(f, "]");
    }
    fprintf(f, "]}\n");
    fclose(f);
    if (blocks_path && (f = fopen(blocks_path, "w"))) {
        for (size_t i = 0; i < n_blocks; i++) {
            struct block *b = blocks[i];
            if (!b->counted)
                continue;
            fprintf(f, "%llu %llx", (unsigned long long)b->counted, (unsigned long long)b->vaddr);
            for (int c = 0; c < NCLS; c++)
                fprintf(f, " %u", b->n[c]);
            fputc(' ', f);
            for (uint32_t k = 0; k < b->n_bytes; k++)
                fprintf(f, "%02x", b->bytes[k]);
            fputc('\n', f);
        }
        fclose(f);
    }
}

EDGEC_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const struct qemu_info_t *info, int argc,
                                            char **argv)
{
    for (int i = 0; i < argc; i++)
        if (strncmp(argv[i], "out=", 4) == 0)
            out_path = strdup(argv[i] + 4);
        else if (strncmp(argv[i], "blocks=", 7) == 0)
            blocks_path = strdup(argv[i] + 7);
        else if (strncmp(argv[i], "cache=", 6) == 0 && parse_caches(argv[i] + 6)) {
            fprintf(stderr, "insn_classes: cache=SIZE:WAYS+... with power-of-two sets, got %s\n", argv[i] + 6);
            return 1;
        }
    if (!out_path) {
        fprintf(stderr, "insn_classes: give out=PATH\n");
        return 1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_vcpu_syscall_cb(id, on_syscall);
    qemu_plugin_register_atexit_cb(id, on_guest_exit, NULL);
    return 0;
}
