/* The floor under probing cost: the least CPU an SMTP health check can cost on this machine.
 * A single-threaded epoll client that does exactly what a smarthostd probe does on the wire
 * (nonblocking connect, read the 220 greeting, "EHLO", read the 250 reply to its last line,
 * "QUIT", read the 221, close) and nothing else: no timers per step, no metrics, no health
 * bookkeeping, no allocation.  bench/probe_load.py --floor runs it against the same fake relays
 * as smarthostd, so the two CPU-per-probe figures compare directly.
 *
 *   cc -O2 -o /tmp/probe_floor bench/probe_floor.c
 *   probe_floor PREFIX COUNT PORT INTERVAL_MS WARMUP_S MEASURE_S BATCH_MS
 *
 * Probes address i = PREFIX.(i/250).(i%250+1):PORT every INTERVAL_MS, the COUNT addresses
 * spread evenly over the interval.  With BATCH_MS > 0 the client sleeps at least that long
 * between wake-ups, so probes start in batches: fewer wake-ups on both sides make each probe
 * cheaper, which shows how much of the cost is scheduling rather than TCP itself.
 * Runs WARMUP_S, then MEASURE_S, then exits (bounded).
 * Prints one line: probes, failures, wall seconds, user and system CPU seconds of the window.
 * Refuses non-loopback prefixes (must start with "127."). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum step { IDLE, CONNECTING, GREETING, EHLO_REPLY, QUIT_REPLY };
struct probe { int fd; enum step step; int len; char buf[1024]; };

static long long now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000LL + t.tv_nsec / 1000;
}

static double cpu_s(const struct timeval *t) { return t->tv_sec + t->tv_usec / 1e6; }

/* A reply is complete when its last line ("ddd <text>\r\n") has arrived; returns its code, 0
 * while incomplete. */
static int reply_code(struct probe *p) {
    for (int start = 0; start < p->len;) {
        char *nl = memchr(p->buf + start, '\n', p->len - start);
        if (!nl) return 0;
        if (nl - (p->buf + start) >= 4 && p->buf[start + 3] == ' ')
            return atoi(p->buf + start);
        start = nl - p->buf + 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 8 || strncmp(argv[1], "127.", 4) != 0) {
        fprintf(stderr, "usage: probe_floor 127.X COUNT PORT INTERVAL_MS WARMUP_S MEASURE_S BATCH_MS\n");
        return 2;
    }
    int count = atoi(argv[2]), port = atoi(argv[3]);
    long long interval = atoll(argv[4]) * 1000LL;
    long long warmup = atoll(argv[5]) * 1000000LL, measure = atoll(argv[6]) * 1000000LL;
    int batch_ms = atoi(argv[7]);
    if (count < 1 || count > 60000 || interval < 1000 || measure <= 0 || measure > 300000000LL ||
        batch_ms < 0 || batch_ms > 1000)
        return 2;
    struct sockaddr_in *addrs = calloc(count, sizeof *addrs);
    struct probe *probes = calloc(count, sizeof *probes);
    for (int i = 0; i < count; i++) {
        char a[32];
        snprintf(a, sizeof a, "%s.%d.%d", argv[1], i / 250, i % 250 + 1);
        addrs[i].sin_family = AF_INET;
        addrs[i].sin_port = htons(port);
        inet_pton(AF_INET, a, &addrs[i].sin_addr);
        probes[i].fd = -1;
    }
    int ep = epoll_create1(0);
    long long start = now_us(), window = start + warmup, end = window + measure;
    long long done = 0, failed = 0, done_at_window = -1, failed_at_window = 0;
    struct rusage r0 = {0};
    long long slot = 0; /* probes started so far: probe k goes to address k % count */
    struct epoll_event ev[256];
    for (;;) {
        long long t = now_us();
        if (done_at_window < 0 && t >= window) {
            getrusage(RUSAGE_SELF, &r0);
            done_at_window = done;
            failed_at_window = failed;
        }
        if (t >= end) break;
        /* Start every probe that is due. */
        long long due;
        while ((due = start + slot * interval / count) <= t) {
            struct probe *p = &probes[slot % count];
            if (p->fd >= 0) { close(p->fd); failed++; } /* still running after a whole interval */
            p->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
            p->len = 0;
            p->step = CONNECTING;
            int rc = connect(p->fd, (struct sockaddr *)&addrs[slot % count], sizeof addrs[0]);
            if (rc < 0 && errno != EINPROGRESS) { close(p->fd); p->fd = -1; failed++; slot++; continue; }
            struct epoll_event e = { .events = EPOLLIN | EPOLLOUT | EPOLLET, .data.u32 = slot % count };
            epoll_ctl(ep, EPOLL_CTL_ADD, p->fd, &e);
            slot++;
        }
        int wait_ms = (int)((due - t + 999) / 1000);
        if (wait_ms < 1) wait_ms = 1;
        if (wait_ms < batch_ms) wait_ms = batch_ms;
        int n = epoll_wait(ep, ev, 256, wait_ms);
        for (int k = 0; k < n; k++) {
            struct probe *p = &probes[ev[k].data.u32];
            if (p->fd < 0) continue;
            int ok = 1, finished = 0;
            if (p->step == CONNECTING) {
                int err = 0; socklen_t l = sizeof err;
                getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &l);
                if (err) ok = 0; else p->step = GREETING;
            }
            while (ok && !finished && p->step != CONNECTING) {
                ssize_t got = recv(p->fd, p->buf + p->len, sizeof p->buf - 1 - p->len, 0);
                if (got < 0 && errno == EAGAIN) break;
                if (got <= 0) { ok = 0; break; }
                p->len += got;
                int code = reply_code(p);
                if (!code) { if (p->len >= (int)sizeof p->buf - 1) ok = 0; continue; }
                p->len = 0;
                if (p->step == GREETING && code == 220) {
                    send(p->fd, "EHLO probe.smarthost.internal\r\n", 31, MSG_NOSIGNAL);
                    p->step = EHLO_REPLY;
                } else if (p->step == EHLO_REPLY && code == 250) {
                    send(p->fd, "QUIT\r\n", 6, MSG_NOSIGNAL);
                    p->step = QUIT_REPLY;
                } else if (p->step == QUIT_REPLY && code == 221) {
                    finished = 1;
                } else {
                    ok = 0;
                }
            }
            if (finished || !ok) {
                close(p->fd); /* also leaves the epoll set */
                p->fd = -1;
                p->step = IDLE;
                if (ok) done++; else failed++;
            }
        }
    }
    struct rusage r1;
    getrusage(RUSAGE_SELF, &r1);
    if (done_at_window < 0) { done_at_window = 0; }
    printf("probes %lld failed %lld wall %.3f user %.3f sys %.3f\n", done - done_at_window,
           failed - failed_at_window, measure / 1e6, cpu_s(&r1.ru_utime) - cpu_s(&r0.ru_utime),
           cpu_s(&r1.ru_stime) - cpu_s(&r0.ru_stime));
    return 0;
}
