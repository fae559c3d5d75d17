/*
 * Batches of keccak256 for protocol/merkle.py: a whole level of a Merkle tree in one call.
 *
 * Theory of operation. A tree of n leaves costs 3n - 1 keccak256 calls on inputs of 32, 64 and
 * 96 bytes. Through safe-pysha3 each call is a Python call, an object and a `digest()`: about
 * 0.9 us, of which the permutation is a third. Here a call hashes every fixed-width slice of a
 * buffer (`hash_each`) or builds every inner node of a tree from its sorted leaves (`tree`),
 * without the GIL, so a node's event loop keeps running while another thread builds a tree.
 *
 * Every input here fits one block (at most 135 bytes, the rate of keccak256 less its padding
 * byte), so a hash is: the input XORed into a zero state, Keccak's padding (0x01 after the
 * input, 0x80 in the last byte of the rate: the original Keccak, not SHA3-256's 0x06), one
 * Keccak-f[1600] permutation, the first 32 bytes of the state.
 *
 * The permutation is the compact form of the reference (Keccak team, "Keccak-readable-and-
 * compact.c", CC0; the same constants as FIPS 202). The state's lanes are read as little-endian
 * words, so this file refuses to compile elsewhere; setup then skips it (optional) and merkle.py
 * uses its Python path. tests/protocol/test_keccak.py compares every function with safe-pysha3.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "protocol/_keccak.c reads the Keccak state as little-endian words"
#endif

#define RATE 136
#define NODE 32

static const uint64_t ROUND_CONSTANTS[24] = {
    0x0000000000000001ULL, 0x0000000000008082ULL, 0x800000000000808aULL, 0x8000000080008000ULL,
    0x000000000000808bULL, 0x0000000080000001ULL, 0x8000000080008081ULL, 0x8000000000008009ULL,
    0x000000000000008aULL, 0x0000000000000088ULL, 0x0000000080008009ULL, 0x000000008000000aULL,
    0x000000008000808bULL, 0x800000000000008bULL, 0x8000000000008089ULL, 0x8000000000008003ULL,
    0x8000000000008002ULL, 0x8000000000000080ULL, 0x000000000000800aULL, 0x800000008000000aULL,
    0x8000000080008081ULL, 0x8000000000008080ULL, 0x0000000080000001ULL, 0x8000000080008008ULL,
};

/* rho's rotations and pi's lane order, walked as one cycle through the 24 lanes after lane 0. */
static const unsigned ROTATIONS[24] = {1,  3,  6,  10, 15, 21, 28, 36, 45, 55, 2,  14,
                                       27, 41, 56, 8,  25, 43, 62, 18, 39, 61, 20, 44};
static const unsigned LANES[24] = {10, 7,  11, 17, 18, 3, 5,  16, 8,  21, 24, 4,
                                   15, 23, 19, 13, 12, 2, 20, 14, 22, 9,  6,  1};

static inline uint64_t rotl(uint64_t x, unsigned n) { return (x << n) | (x >> (64 - n)); }

static void keccak_f(uint64_t st[25]) {
    uint64_t c[5], t;
    for (int round = 0; round < 24; round++) {
        /* theta */
        for (int i = 0; i < 5; i++) c[i] = st[i] ^ st[i + 5] ^ st[i + 10] ^ st[i + 15] ^ st[i + 20];
        for (int i = 0; i < 5; i++) {
            t = c[(i + 4) % 5] ^ rotl(c[(i + 1) % 5], 1);
            for (int j = 0; j < 25; j += 5) st[j + i] ^= t;
        }
        /* rho and pi */
        t = st[1];
        for (int i = 0; i < 24; i++) {
            unsigned j = LANES[i];
            uint64_t next = st[j];
            st[j] = rotl(t, ROTATIONS[i]);
            t = next;
        }
        /* chi */
        for (int j = 0; j < 25; j += 5) {
            for (int i = 0; i < 5; i++) c[i] = st[j + i];
            for (int i = 0; i < 5; i++) st[j + i] ^= (~c[(i + 1) % 5]) & c[(i + 2) % 5];
        }
        /* iota */
        st[0] ^= ROUND_CONSTANTS[round];
    }
}

/* keccak256 of `len` < RATE bytes at `in`, written to `out`. */
static void keccak256_block(const uint8_t *in, size_t len, uint8_t *out) {
    uint64_t st[25] = {0};
    uint8_t *bytes = (uint8_t *)st;
    for (size_t i = 0; i < len; i++) bytes[i] ^= in[i];
    bytes[len] ^= 0x01;
    bytes[RATE - 1] ^= 0x80;
    keccak_f(st);
    memcpy(out, st, NODE);
}

/* keccak256 of the two 32-byte nodes `a` and `b`, the smaller (memcmp) first. */
static void keccak256_pair(const uint8_t *a, const uint8_t *b, uint8_t *out) {
    uint8_t both[2 * NODE];
    if (memcmp(a, b, NODE) > 0) {
        const uint8_t *swap = a;
        a = b;
        b = swap;
    }
    memcpy(both, a, NODE);
    memcpy(both + NODE, b, NODE);
    keccak256_block(both, 2 * NODE, out);
}

PyDoc_STRVAR(hash_each_doc,
             "hash_each(data, width, /)\n--\n\n"
             "Returns the keccak256 digests of data's consecutive slices of `width` bytes (1 to "
             "135), joined: 32 bytes per slice. len(data) must be a multiple of width.");

static PyObject *hash_each(PyObject *module, PyObject *args) {
    Py_buffer data;
    Py_ssize_t width;
    if (!PyArg_ParseTuple(args, "y*n:hash_each", &data, &width)) return NULL;
    if (width < 1 || width >= RATE) {
        PyBuffer_Release(&data);
        return PyErr_Format(PyExc_ValueError, "width must be 1 to %d bytes, got %zd", RATE - 1,
                            width);
    }
    if (data.len % width != 0) {
        PyBuffer_Release(&data);
        return PyErr_Format(PyExc_ValueError, "%zd bytes are not a whole number of %zd-byte inputs",
                            data.len, width);
    }
    Py_ssize_t count = data.len / width;
    PyObject *result = PyBytes_FromStringAndSize(NULL, count * NODE);
    if (result == NULL) {
        PyBuffer_Release(&data);
        return NULL;
    }
    const uint8_t *in = data.buf;
    uint8_t *out = (uint8_t *)PyBytes_AS_STRING(result);
    Py_BEGIN_ALLOW_THREADS;
    for (Py_ssize_t i = 0; i < count; i++) keccak256_block(in + i * width, width, out + i * NODE);
    Py_END_ALLOW_THREADS;
    PyBuffer_Release(&data);
    return result;
}

PyDoc_STRVAR(tree_doc,
             "tree(ordered, /)\n--\n\n"
             "Returns the n - 1 inner nodes, root first, of the OpenZeppelin tree whose n leaf "
             "hashes are `ordered` (32 bytes each, ascending), joined. Leaf slot n - 1 + j holds "
             "the leaf of ascending index n - 1 - j; node i is the hash of its children 2i + 1 "
             "and 2i + 2, the smaller first.");

static PyObject *tree(PyObject *module, PyObject *args) {
    Py_buffer data;
    if (!PyArg_ParseTuple(args, "y*:tree", &data)) return NULL;
    if (data.len == 0 || data.len % NODE != 0) {
        PyBuffer_Release(&data);
        return PyErr_Format(PyExc_ValueError, "%zd bytes are not one or more 32-byte leaf hashes",
                            data.len);
    }
    Py_ssize_t n = data.len / NODE;
    PyObject *result = PyBytes_FromStringAndSize(NULL, (n - 1) * NODE);
    if (result == NULL) {
        PyBuffer_Release(&data);
        return NULL;
    }
    const uint8_t *leaves = data.buf;
    uint8_t *inner = (uint8_t *)PyBytes_AS_STRING(result);
    Py_BEGIN_ALLOW_THREADS;
    for (Py_ssize_t i = n - 2; i >= 0; i--) {
        const uint8_t *child[2];
        for (int side = 0; side < 2; side++) {
            Py_ssize_t slot = 2 * i + 1 + side;
            child[side] = slot < n - 1 ? inner + slot * NODE : leaves + (2 * n - 2 - slot) * NODE;
        }
        keccak256_pair(child[0], child[1], inner + i * NODE);
    }
    Py_END_ALLOW_THREADS;
    PyBuffer_Release(&data);
    return result;
}

static PyMethodDef methods[] = {
    {"hash_each", hash_each, METH_VARARGS, hash_each_doc},
    {"tree", tree, METH_VARARGS, tree_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "protocol._keccak",
    "keccak256 in batches for Merkle trees (see protocol/merkle.py).", -1, methods,
};

PyMODINIT_FUNC PyInit__keccak(void) { return PyModule_Create(&module); }
