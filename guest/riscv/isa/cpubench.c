/* A CPU-bound program for the speed benchmark (integer, memory and branch heavy): per iteration,
 * a sieve, a bitwise CRC-32, a quicksort, a matrix product and a pointer chase, folded into one
 * checksum. The iteration count is the 64-bit word at 0x80000008 (1 in the ELF; a loader may set
 * it, see crt.S). The output depends only on the count, so the reference (count 1) doubles as a
 * correctness test. */
#include "runtime.h"

#define SIEVE_SIZE 8192
#define CRC_BYTES 4096
#define SORT_COUNT 1024
#define MATRIX_N 24
#define CHASE_COUNT 4096

static uint8_t sieve[SIEVE_SIZE];
static uint8_t crc_data[CRC_BYTES];
static uint32_t sort_data[SORT_COUNT];
static int64_t matrix_a[MATRIX_N][MATRIX_N], matrix_b[MATRIX_N][MATRIX_N], matrix_c[MATRIX_N][MATRIX_N];
static uint32_t chase_next[CHASE_COUNT];

static uint64_t lcg_state;
static uint32_t lcg(void) {
  lcg_state = lcg_state * 6364136223846793005UL + 1442695040888963407UL;
  return (uint32_t)(lcg_state >> 33);
}

static uint64_t run_sieve(void) {
  for (int i = 0; i < SIEVE_SIZE; i++) sieve[i] = 1;
  sieve[0] = sieve[1] = 0;
  for (int i = 2; i * i < SIEVE_SIZE; i++)
    if (sieve[i])
      for (int j = i * i; j < SIEVE_SIZE; j += i) sieve[j] = 0;
  uint64_t count = 0;
  for (int i = 0; i < SIEVE_SIZE; i++) count += sieve[i];
  return count;
}

static uint64_t run_crc32(uint32_t seed) {
  for (int i = 0; i < CRC_BYTES; i++) crc_data[i] = (uint8_t)(i * 31 + seed);
  uint32_t crc = 0xffffffff;
  for (int i = 0; i < CRC_BYTES; i++) {
    crc ^= crc_data[i];
    for (int bit = 0; bit < 8; bit++) crc = (crc & 1) ? (crc >> 1) ^ 0xedb88320 : crc >> 1;
  }
  return ~crc;
}

static void quicksort(uint32_t *a, int lo, int hi) {
  while (lo < hi) {
    uint32_t pivot = a[(lo + hi) / 2];
    int i = lo, j = hi;
    while (i <= j) {
      while (a[i] < pivot) i++;
      while (a[j] > pivot) j--;
      if (i <= j) {
        uint32_t t = a[i];
        a[i] = a[j];
        a[j] = t;
        i++;
        j--;
      }
    }
    if (j - lo < hi - i) {
      quicksort(a, lo, j);
      lo = i;
    } else {
      quicksort(a, i, hi);
      hi = j;
    }
  }
}

static uint64_t run_sort(void) {
  for (int i = 0; i < SORT_COUNT; i++) sort_data[i] = lcg();
  quicksort(sort_data, 0, SORT_COUNT - 1);
  uint64_t sum = 0;
  for (int i = 0; i < SORT_COUNT; i++) sum = sum * 31 + sort_data[i];
  for (int i = 1; i < SORT_COUNT; i++)
    if (sort_data[i - 1] > sort_data[i]) return 0; /* not sorted: a wrong checksum */
  return sum;
}

static uint64_t run_matrix(void) {
  for (int i = 0; i < MATRIX_N; i++)
    for (int j = 0; j < MATRIX_N; j++) {
      matrix_a[i][j] = (int64_t)(lcg() % 1000) - 500;
      matrix_b[i][j] = (int64_t)(lcg() % 1000) - 500;
    }
  for (int i = 0; i < MATRIX_N; i++)
    for (int j = 0; j < MATRIX_N; j++) {
      int64_t s = 0;
      for (int k = 0; k < MATRIX_N; k++) s += matrix_a[i][k] * matrix_b[k][j];
      matrix_c[i][j] = s;
    }
  uint64_t sum = 0;
  for (int i = 0; i < MATRIX_N; i++)
    for (int j = 0; j < MATRIX_N; j++) sum = (sum << 1 | sum >> 63) ^ (uint64_t)matrix_c[i][j];
  return sum;
}

static uint64_t run_chase(void) {
  /* A random cyclic permutation (Sattolo), then follow it. */
  for (uint32_t i = 0; i < CHASE_COUNT; i++) chase_next[i] = i;
  for (uint32_t i = CHASE_COUNT - 1; i > 0; i--) {
    uint32_t j = lcg() % i;
    uint32_t t = chase_next[i];
    chase_next[i] = chase_next[j];
    chase_next[j] = t;
  }
  uint32_t at = 0;
  uint64_t sum = 0;
  for (int step = 0; step < CHASE_COUNT; step++) {
    at = chase_next[at];
    sum += at ^ (uint32_t)step;
  }
  return sum;
}

int main(void) {
  uint64_t iterations = kitset_parameter;
  uint64_t checksum = 0;
  lcg_state = 1;
  for (uint64_t n = 0; n < iterations; n++) {
    uint64_t results[5] = {run_sieve(), run_crc32((uint32_t)n), run_sort(), run_matrix(), run_chase()};
    if (n == 0) {
      check("cpubench.sieve", results[0]);
      check("cpubench.crc32", results[1]);
      check("cpubench.sort", results[2]);
      check("cpubench.matrix", results[3]);
      check("cpubench.chase", results[4]);
    }
    for (int i = 0; i < 5; i++) checksum = (checksum << 7 | checksum >> 57) ^ results[i];
  }
  check("cpubench.iterations", iterations);
  check("cpubench.checksum", checksum);
  return 0;
}
