// SPDX-License-Identifier: MIT
/*
 * A small fio-like load for the block backend: random 4 KiB (or --bs)
 * requests at a fixed queue depth for a few seconds, through the blockdev
 * thread pool as virtio-blk drives it (one submitting thread; completions
 * come back from the workers and are resubmitted by the submitter), or, when
 * built with liburing, through io_uring from one thread, for comparison.
 *
 *   cc -O2 -D_GNU_SOURCE -I. bench/blockdev-bench.c disk/blockdev.c disk/raw.c \
 *      disk/drive.c vmm/log.c -lpthread [-DHAVE_LIBURING -luring] -o /tmp/blockdev-bench
 *   /tmp/blockdev-bench --engine pool|uring --rw read|write [--direct]
 *      [--qd 256] [--bs 4096] [--size 256] (MiB) [--secs 3] [--workers 8] FILE
 *
 * FILE is created and filled if it is smaller than --size. Prints IOPS, MB/s
 * and the CPU time used per request. Not built by CMake; asserts nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#ifdef HAVE_LIBURING
#include <liburing.h>
#endif

#include "disk/blockdev.h"

struct bench {
	const char *file, *engine;
	bool write, direct;
	unsigned qd, bs, secs, workers;
	uint64_t size;
	uint64_t rng;
	uint64_t ops;
};

struct slot {
	struct blk_req r;
	struct iovec iov;
	struct slot *next_done;
	int result;
};

/* Completed slots, handed from the workers to the submitting thread. */
static pthread_mutex_t done_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cond = PTHREAD_COND_INITIALIZER;
static struct slot *done_list;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_secs(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

static uint64_t next_offset(struct bench *b)
{
	b->rng ^= b->rng << 13;
	b->rng ^= b->rng >> 7;
	b->rng ^= b->rng << 17;
	return (b->rng % (b->size / b->bs)) * b->bs;
}

static void prepare_file(struct bench *b)
{
	struct stat st;
	size_t chunk = 1 << 20;
	char *buf;
	int fd = open(b->file, O_RDWR | O_CREAT, 0644);

	if (fd < 0 || fstat(fd, &st)) {
		perror(b->file);
		exit(1);
	}
	if ((uint64_t)st.st_size < b->size) {
		buf = malloc(chunk);
		memset(buf, 0x5a, chunk);
		for (uint64_t off = 0; off < b->size; off += chunk) {
			if (pwrite(fd, buf, chunk, off) != (ssize_t)chunk) {
				perror("fill");
				exit(1);
			}
		}
		free(buf);
		fsync(fd);
	}
	close(fd);
}

static void slot_done(struct blk_req *r, int result)
{
	struct slot *s = r->opaque;

	s->result = result;
	pthread_mutex_lock(&done_lock);
	s->next_done = done_list;
	done_list = s;
	pthread_cond_signal(&done_cond);
	pthread_mutex_unlock(&done_lock);
}

static void run_pool(struct bench *b, struct slot *slots)
{
	struct drive_opts o;
	struct blockdev *bd;
	char err[256];
	double end = now() + b->secs;

	drive_opts_init(&o);
	snprintf(o.file, sizeof(o.file), "%s", b->file);
	o.cache = b->direct ? DRIVE_CACHE_NONE : DRIVE_CACHE_WRITEBACK;
	o.workers = b->workers;
	if (blockdev_open(&o, &bd, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		exit(1);
	}
	for (unsigned i = 0; i < b->qd; i++) {
		slots[i].r = (struct blk_req){ .op = b->write ? BLK_WRITE : BLK_READ,
					       .offset = next_offset(b), .iov = &slots[i].iov,
					       .iovcnt = 1, .done = slot_done, .opaque = &slots[i] };
		blockdev_submit(bd, &slots[i].r);
	}
	for (;;) {
		struct slot *list;
		bool stop = now() >= end;

		pthread_mutex_lock(&done_lock);
		while (!done_list)
			pthread_cond_wait(&done_cond, &done_lock);
		list = done_list;
		done_list = NULL;
		pthread_mutex_unlock(&done_lock);
		for (struct slot *s = list, *next; s; s = next) {
			next = s->next_done;
			if (s->result != (int)b->bs) {
				fprintf(stderr, "request failed: %d\n", s->result);
				exit(1);
			}
			b->ops++;
			if (!stop) {
				s->r.offset = next_offset(b);
				blockdev_submit(bd, &s->r);
			}
		}
		if (stop)
			break;
	}
	blockdev_close(bd); /* drains the rest */
}

#ifdef HAVE_LIBURING
static void run_uring(struct bench *b, struct slot *slots)
{
	struct io_uring ring;
	double end = now() + b->secs;
	unsigned inflight = 0;
	int fd, ret;

	fd = open(b->file, O_RDWR | (b->direct ? O_DIRECT : 0));
	if (fd < 0) {
		perror(b->file);
		exit(1);
	}
	ret = io_uring_queue_init(b->qd, &ring, 0);
	if (ret) {
		fprintf(stderr, "io_uring: %s\n", strerror(-ret));
		exit(1);
	}
	for (;;) {
		struct io_uring_cqe *cqe;
		unsigned head, n = 0;
		bool stop = now() >= end;

		for (unsigned i = 0; !stop && inflight < b->qd && i < b->qd; i++) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
			struct slot *s = &slots[inflight];

			if (!sqe)
				break;
			/* slots are interchangeable: buffers are only overwritten */
			if (b->write)
				io_uring_prep_writev(sqe, fd, &s->iov, 1, next_offset(b));
			else
				io_uring_prep_readv(sqe, fd, &s->iov, 1, next_offset(b));
			inflight++;
		}
		if (!inflight)
			break;
		io_uring_submit_and_wait(&ring, 1);
		io_uring_for_each_cqe(&ring, head, cqe) {
			if (cqe->res != (int)b->bs) {
				fprintf(stderr, "request failed: %d\n", cqe->res);
				exit(1);
			}
			n++;
		}
		io_uring_cq_advance(&ring, n);
		inflight -= n;
		b->ops += n;
	}
	io_uring_queue_exit(&ring);
	close(fd);
}
#endif

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "engine", required_argument, NULL, 'e' }, { "rw", required_argument, NULL, 'r' },
		{ "direct", no_argument, NULL, 'd' },	    { "qd", required_argument, NULL, 'q' },
		{ "bs", required_argument, NULL, 'b' },	    { "size", required_argument, NULL, 's' },
		{ "secs", required_argument, NULL, 't' },   { "workers", required_argument, NULL, 'w' },
		{ 0 },
	};
	struct bench b = { .engine = "pool", .qd = 256, .bs = 4096, .secs = 3, .workers = 8,
			   .size = 256ULL << 20, .rng = 0x9e3779b97f4a7c15ULL };
	struct slot *slots;
	double t0, c0, t, c;
	int opt;

	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'e': b.engine = optarg; break;
		case 'r': b.write = !strcmp(optarg, "write"); break;
		case 'd': b.direct = true; break;
		case 'q': b.qd = atoi(optarg); break;
		case 'b': b.bs = atoi(optarg); break;
		case 's': b.size = strtoull(optarg, NULL, 0) << 20; break;
		case 't': b.secs = atoi(optarg); break;
		case 'w': b.workers = atoi(optarg); break;
		default: return 2;
		}
	}
	if (optind != argc - 1 || !b.qd || !b.bs) {
		fprintf(stderr, "usage: see the top of bench/blockdev-bench.c\n");
		return 2;
	}
	b.file = argv[optind];
	prepare_file(&b);
	slots = calloc(b.qd, sizeof(*slots));
	for (unsigned i = 0; i < b.qd; i++) {
		slots[i].iov.iov_base = aligned_alloc(4096, b.bs);
		slots[i].iov.iov_len = b.bs;
		memset(slots[i].iov.iov_base, i, b.bs);
	}

	t0 = now();
	c0 = cpu_secs();
	if (!strcmp(b.engine, "pool")) {
		run_pool(&b, slots);
#ifdef HAVE_LIBURING
	} else if (!strcmp(b.engine, "uring")) {
		run_uring(&b, slots);
#endif
	} else {
		fprintf(stderr, "unknown engine %s\n", b.engine);
		return 2;
	}
	t = now() - t0;
	c = cpu_secs() - c0;
	printf("%-5s %-5s %-8s qd=%-3u bs=%-6u workers=%-2u %9.0f IOPS %8.1f MB/s %6.1f us CPU/req\n",
	       b.engine, b.write ? "write" : "read", b.direct ? "O_DIRECT" : "cached", b.qd, b.bs,
	       b.workers, b.ops / t, b.ops * (double)b.bs / t / 1e6, c / b.ops * 1e6);
	return 0;
}
