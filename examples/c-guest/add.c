// A wasmpool task module in C, with no SDK: one task, `add(a: i64, b: i64) -> i64`.
// It implements docs/abi.md by hand; tests/c_guest.rs builds and runs it.
//
//   clang --target=wasm32 -nostdlib -O2 -Wl,--no-entry -Wl,--export-dynamic -o add.wasm add.c
//
// (Debian: apt-get install clang lld)
#include <stdint.h>

static uint8_t heap[1 << 16];
static uint32_t heap_top;
static uint32_t header[3];
static uint8_t result[16];

__attribute__((export_name("wasmpool_abi_version"))) int32_t abi_version(void) { return 1; }

__attribute__((export_name("wasmpool_alloc"))) uint8_t *alloc(int32_t len) {
    if (heap_top + (uint32_t)len > sizeof heap) return 0;
    uint8_t *p = heap + heap_top;
    heap_top += (uint32_t)len;
    return p;
}

/* postcard writes an i64 as a zigzag varint. */
static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 70 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) { *out = v; return 1; }
    }
    return 0;
}
static int64_t unzigzag(uint64_t v) { return (int64_t)(v >> 1) ^ -(int64_t)(v & 1); }
static uint32_t write_varint(uint8_t *out, uint64_t v) {
    uint32_t n = 0;
    do { uint8_t b = v & 0x7f; v >>= 7; out[n++] = b | (v ? 0x80 : 0); } while (v);
    return n;
}

/* add(a: i64, b: i64) -> i64 */
__attribute__((export_name("wasmpool_task_add"))) uint32_t *task_add(const uint8_t *args, int32_t len) {
    const uint8_t *p = args, *end = args + len;
    uint64_t a, b;
    heap_top = 0; /* one call at a time: reclaim the argument buffer */
    if (!read_varint(&p, end, &a) || !read_varint(&p, end, &b) || p != end) {
        static const char msg[] = "expected two i64 arguments";
        header[0] = 2; header[1] = (uint32_t)msg; header[2] = sizeof msg - 1;
        return header;
    }
    int64_t sum = unzigzag(a) + unzigzag(b);
    uint64_t zz = ((uint64_t)sum << 1) ^ (uint64_t)(sum >> 63);
    header[0] = 0; header[1] = (uint32_t)result; header[2] = write_varint(result, zz);
    return header;
}

/* The task list: one postcard-encoded TaskDescriptor record in the custom
 * section `wasmpool.tasks`: version 1, name "add", two params ("a": "i64",
 * "b": "i64"), result "i64", empty doc. */
__asm__(".section .custom_section.wasmpool.tasks,\"\",@\n.byte 1,3,97,100,100,2,1,97,3,105,54,52,1,98,3,105,54,52,3,105,54,52,0\n");
