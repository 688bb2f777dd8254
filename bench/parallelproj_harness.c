/*
 * Timing harness for parallelproj's non-TOF Joseph projector, driven by
 * bench/parallelproj_compare.ts so that petrel and parallelproj run side by side on the same
 * LORs and image, alternating repetition by repetition.
 *
 * Build (the bench script does this itself, into a temporary folder):
 *   cc -O2 -o parallelproj_harness bench/parallelproj_harness.c -ldl
 * parallelproj itself is loaded at run time with dlopen from the path given as the first
 * argument (libparallelproj.so of a CPU/OpenMP build of KUL-recon-lab/libparallelproj), so no
 * parallelproj header or source is needed here. Its C API header (parallelproj.h) is C++ only
 * (default arguments, <cstddef>); the two prototypes below follow its documented signatures.
 *
 * Usage: parallelproj_harness LIB DATA_DIR NUM_LORS N0 N1 N2 O0 O1 O2 V0 V1 V2
 *   DATA_DIR holds start.f32 and end.f32 (3 floats per LOR) and image.f32 (n0*n1*n2 floats,
 *   index n1*n2*i + n2*j + k, parallelproj's layout), all little-endian float32.
 *   O* is the centre of voxel [0,0,0] and V* the voxel size, in the LOR's units (mm).
 * Then one command per line on stdin, one answer per line on stdout:
 *   fwd            forward-project image.f32        -> "ok WALL_MS CPU_MS"
 *   back           back-project the last forward projection into a zeroed image -> same
 *   pair           fwd then back                    -> same
 *   dump PATH      write the last forward projection to PATH.fwd and the last back projection
 *                  to PATH.back (float32)           -> "ok"
 *   quit           exit 0
 * CPU_MS is the process CPU time (all OpenMP threads), the stabler figure on a loaded machine.
 * Threads: OpenMP's own settings (OMP_NUM_THREADS).
 */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef void (*joseph_fwd_fn)(const float *lor_start, const float *lor_end, const float *image,
                              const float *image_origin, const float *voxel_size,
                              float *projection_values, size_t num_lors, const int *image_dim,
                              int device_id, int threads_per_block);
typedef void (*joseph_back_fn)(const float *lor_start, const float *lor_end, float *image,
                               const float *image_origin, const float *voxel_size,
                               const float *projection_values, size_t num_lors,
                               const int *image_dim, int device_id, int threads_per_block);

static void *read_floats(const char *dir, const char *name, size_t count) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "parallelproj_harness: cannot open %s\n", path);
    exit(2);
  }
  float *buf = malloc(count * sizeof(float));
  if (!buf || fread(buf, sizeof(float), count, f) != count) {
    fprintf(stderr, "parallelproj_harness: %s: expected %zu float32 values\n", path, count);
    exit(2);
  }
  fclose(f);
  return buf;
}

static double ms(clockid_t clock) {
  struct timespec t;
  clock_gettime(clock, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int write_floats(const char *path, const float *data, size_t count) {
  FILE *f = fopen(path, "wb");
  if (!f) return 0;
  size_t n = fwrite(data, sizeof(float), count, f);
  return fclose(f) == 0 && n == count;
}

int main(int argc, char **argv) {
  if (argc != 13) {
    fprintf(stderr,
            "usage: parallelproj_harness LIB DATA_DIR NUM_LORS N0 N1 N2 O0 O1 O2 V0 V1 V2\n");
    return 2;
  }
  void *lib = dlopen(argv[1], RTLD_NOW);
  if (!lib) {
    fprintf(stderr, "parallelproj_harness: cannot load %s: %s\n", argv[1], dlerror());
    return 2;
  }
  joseph_fwd_fn fwd = (joseph_fwd_fn)dlsym(lib, "joseph3d_fwd");
  joseph_back_fn back = (joseph_back_fn)dlsym(lib, "joseph3d_back");
  if (!fwd || !back) {
    fprintf(stderr, "parallelproj_harness: %s lacks joseph3d_fwd/joseph3d_back\n", argv[1]);
    return 2;
  }
  const char *dir = argv[2];
  size_t nlors = strtoull(argv[3], NULL, 10);
  int dim[3];
  float origin[3], vox[3];
  for (int a = 0; a < 3; a++) {
    dim[a] = atoi(argv[4 + a]);
    origin[a] = strtof(argv[7 + a], NULL);
    vox[a] = strtof(argv[10 + a], NULL);
  }
  size_t nvox = (size_t)dim[0] * dim[1] * dim[2];
  float *start = read_floats(dir, "start.f32", 3 * nlors);
  float *end = read_floats(dir, "end.f32", 3 * nlors);
  float *image = read_floats(dir, "image.f32", nvox);
  float *proj = calloc(nlors, sizeof(float));
  float *backimg = calloc(nvox, sizeof(float));
  if (!proj || !backimg) {
    fprintf(stderr, "parallelproj_harness: out of memory\n");
    return 2;
  }
  char line[4200];
  while (fgets(line, sizeof line, stdin)) {
    line[strcspn(line, "\r\n")] = 0;
    if (strcmp(line, "quit") == 0) break;
    if (strncmp(line, "dump ", 5) == 0) {
      char path[4200];
      snprintf(path, sizeof path, "%s.fwd", line + 5);
      int ok = write_floats(path, proj, nlors);
      snprintf(path, sizeof path, "%s.back", line + 5);
      ok = ok && write_floats(path, backimg, nvox);
      printf(ok ? "ok\n" : "error cannot write %s\n", line + 5);
      fflush(stdout);
      continue;
    }
    int do_fwd = strcmp(line, "fwd") == 0 || strcmp(line, "pair") == 0;
    int do_back = strcmp(line, "back") == 0 || strcmp(line, "pair") == 0;
    if (!do_fwd && !do_back) {
      printf("error unknown command %s\n", line);
      fflush(stdout);
      continue;
    }
    double w0 = ms(CLOCK_MONOTONIC), c0 = ms(CLOCK_PROCESS_CPUTIME_ID);
    if (do_fwd) fwd(start, end, image, origin, vox, proj, nlors, dim, 0, 64);
    if (do_back) {
      /* joseph3d_back adds into the image; clearing it is part of a back projection's cost */
      memset(backimg, 0, nvox * sizeof(float));
      back(start, end, backimg, origin, vox, proj, nlors, dim, 0, 64);
    }
    double w1 = ms(CLOCK_MONOTONIC), c1 = ms(CLOCK_PROCESS_CPUTIME_ID);
    printf("ok %.4f %.4f\n", w1 - w0, c1 - c0);
    fflush(stdout);
  }
  return 0;
}
