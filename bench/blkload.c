// SPDX-License-Identifier: MIT
/*
 * blkload: a small load generator for a block device, run inside the
 * guest by bench/blk.sh (built static, so it needs nothing from the guest).
 *
 *   blkload DEVICE MODE SECONDS [THREADS]
 *   MODE: seqread | seqwrite (1 MiB requests), randread | randwrite (4 KiB)
 *
 * O_DIRECT, so the guest's page cache does not hide the device; THREADS
 * workers (default 4) keep that many requests in flight. Prints one line:
 *   MODE MB/s IOPS
 */
#define _GNU_SOURCE /* O_DIRECT */
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/fs.h>
#include <time.h>
#include <unistd.h>

struct job {
	int fd;
	int mode; /* 0 seqread 1 seqwrite 2 randread 3 randwrite */
	uint64_t dev_size;
	size_t bs;
	double deadline;
	unsigned id, nthreads;
	uint64_t ops;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *worker(void *arg)
{
	struct job *j = arg;
	uint64_t blocks = j->dev_size / j->bs;
	uint64_t next = j->id, seed = 0x9e3779b97f4a7c15ULL * (j->id + 1);
	void *buf;

	if (posix_memalign(&buf, 4096, j->bs))
		return NULL;
	memset(buf, 0x5a, j->bs);
	while (now() < j->deadline) {
		uint64_t blk;
		ssize_t n;

		if (j->mode < 2) { /* sequential, threads interleaved */
			blk = next % blocks;
			next += j->nthreads;
		} else {
			seed ^= seed << 13;
			seed ^= seed >> 7;
			seed ^= seed << 17;
			blk = seed % blocks;
		}
		if (j->mode == 0 || j->mode == 2)
			n = pread(j->fd, buf, j->bs, blk * j->bs);
		else
			n = pwrite(j->fd, buf, j->bs, blk * j->bs);
		if (n != (ssize_t)j->bs) {
			perror("blkload: I/O");
			break;
		}
		j->ops++;
	}
	free(buf);
	return NULL;
}

int main(int argc, char **argv)
{
	static const char *modes[] = { "seqread", "seqwrite", "randread", "randwrite" };
	struct job jobs[64];
	pthread_t th[64];
	unsigned nthreads = argc > 4 ? atoi(argv[4]) : 4;
	uint64_t size = 0, ops = 0;
	double secs, start;
	int mode = -1, fd;

	if (argc < 4) {
		fprintf(stderr, "usage: blkload DEVICE seqread|seqwrite|randread|randwrite SECONDS [THREADS]\n");
		return 2;
	}
	for (int i = 0; i < 4; i++)
		if (!strcmp(argv[2], modes[i]))
			mode = i;
	secs = atof(argv[3]);
	if (mode < 0 || secs <= 0 || nthreads < 1 || nthreads > 64) {
		fprintf(stderr, "blkload: bad arguments\n");
		return 2;
	}
	fd = open(argv[1], (mode & 1 ? O_RDWR : O_RDONLY) | O_DIRECT);
	if (fd < 0 || ioctl(fd, BLKGETSIZE64, &size) < 0 || size < (1 << 20)) {
		perror(argv[1]);
		return 1;
	}
	start = now();
	for (unsigned i = 0; i < nthreads; i++) {
		jobs[i] = (struct job){ .fd = fd, .mode = mode, .dev_size = size,
					.bs = mode < 2 ? 1 << 20 : 4096, .deadline = start + secs,
					.id = i, .nthreads = nthreads };
		pthread_create(&th[i], NULL, worker, &jobs[i]);
	}
	for (unsigned i = 0; i < nthreads; i++) {
		pthread_join(th[i], NULL);
		ops += jobs[i].ops;
	}
	secs = now() - start;
	if (mode & 1)
		fsync(fd);
	printf("blkload %s %.1f MB/s %.0f IOPS\n", modes[mode],
	       ops * (double)jobs[0].bs / secs / 1e6, ops / secs);
	return 0;
}
