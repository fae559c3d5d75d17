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

#define ROTL(x, n) (((x) << (n)) | ((x) >> (64 - (n))))

/* The permutation, unrolled: a loop over the tables of rho's rotations and pi's lane order ran
 * 3x slower. The 25 lanes live in locals; b holds them after rho and pi, which move lane 1 to
 * lane 10, 10 to 7, 7 to 11 and so on around one cycle of the 24 lanes after lane 0, each
 * rotated by the next of 1, 3, 6, 10, 15, 21, 28, 36, 45, 55, 2, 14, 27, 41, 56, 8, 25, 43,
 * 62, 18, 39, 61, 20, 44. */
static void keccak_f(uint64_t st[25]) {
    uint64_t a0 = st[0], a1 = st[1], a2 = st[2], a3 = st[3], a4 = st[4], a5 = st[5], a6 = st[6], a7 = st[7], a8 = st[8], a9 = st[9], a10 = st[10], a11 = st[11], a12 = st[12], a13 = st[13], a14 = st[14], a15 = st[15], a16 = st[16], a17 = st[17], a18 = st[18], a19 = st[19], a20 = st[20], a21 = st[21], a22 = st[22], a23 = st[23], a24 = st[24];
    uint64_t b0, b1, b2, b3, b4, b5, b6, b7, b8, b9, b10, b11, b12, b13, b14, b15, b16, b17, b18, b19, b20, b21, b22, b23, b24;
    uint64_t c0, c1, c2, c3, c4, d0, d1, d2, d3, d4;
    for (int round = 0; round < 24; round++) {
        /* theta */
        c0 = a0 ^ a5 ^ a10 ^ a15 ^ a20;
        c1 = a1 ^ a6 ^ a11 ^ a16 ^ a21;
        c2 = a2 ^ a7 ^ a12 ^ a17 ^ a22;
        c3 = a3 ^ a8 ^ a13 ^ a18 ^ a23;
        c4 = a4 ^ a9 ^ a14 ^ a19 ^ a24;
        d0 = c4 ^ ROTL(c1, 1);
        d1 = c0 ^ ROTL(c2, 1);
        d2 = c1 ^ ROTL(c3, 1);
        d3 = c2 ^ ROTL(c4, 1);
        d4 = c3 ^ ROTL(c0, 1);
        a0 ^= d0; a1 ^= d1; a2 ^= d2; a3 ^= d3; a4 ^= d4;
        a5 ^= d0; a6 ^= d1; a7 ^= d2; a8 ^= d3; a9 ^= d4;
        a10 ^= d0; a11 ^= d1; a12 ^= d2; a13 ^= d3; a14 ^= d4;
        a15 ^= d0; a16 ^= d1; a17 ^= d2; a18 ^= d3; a19 ^= d4;
        a20 ^= d0; a21 ^= d1; a22 ^= d2; a23 ^= d3; a24 ^= d4;
        /* rho and pi */
        b0 = a0;
        b10 = ROTL(a1, 1);
        b7 = ROTL(a10, 3);
        b11 = ROTL(a7, 6);
        b17 = ROTL(a11, 10);
        b18 = ROTL(a17, 15);
        b3 = ROTL(a18, 21);
        b5 = ROTL(a3, 28);
        b16 = ROTL(a5, 36);
        b8 = ROTL(a16, 45);
        b21 = ROTL(a8, 55);
        b24 = ROTL(a21, 2);
        b4 = ROTL(a24, 14);
        b15 = ROTL(a4, 27);
        b23 = ROTL(a15, 41);
        b19 = ROTL(a23, 56);
        b13 = ROTL(a19, 8);
        b12 = ROTL(a13, 25);
        b2 = ROTL(a12, 43);
        b20 = ROTL(a2, 62);
        b14 = ROTL(a20, 18);
        b22 = ROTL(a14, 39);
        b9 = ROTL(a22, 61);
        b6 = ROTL(a9, 20);
        b1 = ROTL(a6, 44);
        /* chi */
        a0 = b0 ^ (~b1 & b2);
        a1 = b1 ^ (~b2 & b3);
        a2 = b2 ^ (~b3 & b4);
        a3 = b3 ^ (~b4 & b0);
        a4 = b4 ^ (~b0 & b1);
        a5 = b5 ^ (~b6 & b7);
        a6 = b6 ^ (~b7 & b8);
        a7 = b7 ^ (~b8 & b9);
        a8 = b8 ^ (~b9 & b5);
        a9 = b9 ^ (~b5 & b6);
        a10 = b10 ^ (~b11 & b12);
        a11 = b11 ^ (~b12 & b13);
        a12 = b12 ^ (~b13 & b14);
        a13 = b13 ^ (~b14 & b10);
        a14 = b14 ^ (~b10 & b11);
        a15 = b15 ^ (~b16 & b17);
        a16 = b16 ^ (~b17 & b18);
        a17 = b17 ^ (~b18 & b19);
        a18 = b18 ^ (~b19 & b15);
        a19 = b19 ^ (~b15 & b16);
        a20 = b20 ^ (~b21 & b22);
        a21 = b21 ^ (~b22 & b23);
        a22 = b22 ^ (~b23 & b24);
        a23 = b23 ^ (~b24 & b20);
        a24 = b24 ^ (~b20 & b21);
        /* iota */
        a0 ^= ROUND_CONSTANTS[round];
    }
    st[0] = a0; st[1] = a1; st[2] = a2; st[3] = a3; st[4] = a4;
    st[5] = a5; st[6] = a6; st[7] = a7; st[8] = a8; st[9] = a9;
    st[10] = a10; st[11] = a11; st[12] = a12; st[13] = a13; st[14] = a14;
    st[15] = a15; st[16] = a16; st[17] = a17; st[18] = a18; st[19] = a19;
    st[20] = a20; st[21] = a21; st[22] = a22; st[23] = a23; st[24] = a24;
}

/* keccak256 of `len` < RATE bytes at `in`, written to `out`. */
static void keccak256_block(const uint8_t *in, size_t len, uint8_t *out) {
    uint64_t st[25] = {0};
    uint8_t *bytes = (uint8_t *)st;
    /* The state is zero: XORing the input in is copying it. */
    memcpy(bytes, in, len);
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
