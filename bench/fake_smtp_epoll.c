/* Fake SMTP relays for bench/probe_load.py: one single-threaded epoll process listening on
 * COUNT loopback addresses PREFIX.(i/250).(i%250+1):PORT for i in START..START+COUNT-1.
 * Each connection gets "220 <name> ESMTP fake", EHLO a multi-line 250, HELO/NOOP/RSET 250,
 * QUIT 221 and a close, anything else 502.  Why not common.py's relays (the one fake relay of
 * the Python benchmarks): this is about 3x cheaper per connection than asyncio, so that 10,000
 * relays probed every 2 s do not eat the CPU the measured server needs.
 *
 *   cc -O2 -o /tmp/fake_smtp_epoll bench/fake_smtp_epoll.c
 *   fake_smtp_epoll PREFIX START COUNT PORT READY_FILE MAX_SECONDS
 *
 * Refuses non-loopback prefixes (must start with "127.").  Exits on SIGTERM/SIGINT or after
 * MAX_SECONDS.  Writes READY_FILE (its pid) once every listener is bound. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF 1024
struct conn { int used; int len; char buf[BUF]; };
static struct conn *conns;
static char *is_listener;
static int maxfd;
static volatile sig_atomic_t stop;
static void on_sig(int s) { (void)s; stop = 1; }

static const char GREET[] = "220 relay.smarthost.internal ESMTP fake\r\n";
static const char EHLO[] = "250-relay.smarthost.internal hello\r\n250-PIPELINING\r\n"
                           "250-SIZE 10240000\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n";
static const char HELO[] = "250 relay.smarthost.internal\r\n";
static const char OK[] = "250 OK\r\n";
static const char BYE[] = "221 2.0.0 bye\r\n";
static const char NOPE[] = "502 5.5.2 not implemented\r\n";

static void drop(int ep, int fd) {
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
    conns[fd].used = 0;
}

static int say(int fd, const char *s, size_t n) { return write(fd, s, n) == (ssize_t)n ? 0 : -1; }

/* returns -1 when the connection must be closed */
static int on_line(int fd, char *line) {
    char cmd[8] = {0};
    int i = 0;
    while (*line == ' ') line++;
    for (; i < 7 && line[i] && line[i] != ' ' && line[i] != '\r'; i++)
        cmd[i] = (line[i] >= 'a' && line[i] <= 'z') ? line[i] - 32 : line[i];
    if (!strcmp(cmd, "EHLO")) return say(fd, EHLO, sizeof EHLO - 1);
    if (!strcmp(cmd, "HELO")) return say(fd, HELO, sizeof HELO - 1);
    if (!strcmp(cmd, "NOOP") || !strcmp(cmd, "RSET")) return say(fd, OK, sizeof OK - 1);
    if (!strcmp(cmd, "QUIT")) { say(fd, BYE, sizeof BYE - 1); return -1; }
    return say(fd, NOPE, sizeof NOPE - 1);
}

int main(int argc, char **argv) {
    if (argc != 7) { fprintf(stderr, "usage: %s PREFIX START COUNT PORT READY MAX_S\n", argv[0]); return 2; }
    const char *prefix = argv[1];
    int start = atoi(argv[2]), count = atoi(argv[3]), port = atoi(argv[4]);
    int max_s = atoi(argv[6]);
    if (strncmp(prefix, "127.", 4) != 0) { fprintf(stderr, "non-loopback prefix\n"); return 2; }
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    maxfd = (int)rl.rlim_cur;
    conns = calloc(maxfd, sizeof *conns);
    is_listener = calloc(maxfd, 1);
    signal(SIGTERM, on_sig);
    signal(SIGINT, on_sig);
    signal(SIGPIPE, SIG_IGN);
    int ep = epoll_create1(0);
    for (int i = start; i < start + count; i++) {
        char ip[64];
        snprintf(ip, sizeof ip, "%s.%d.%d", prefix, i / 250, i % 250 + 1);
        int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        int one = 1;
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
        if (s < 0 || inet_pton(AF_INET, ip, &a.sin_addr) != 1 || !(ntohl(a.sin_addr.s_addr) >> 24 == 127) ||
            bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 512)) {
            fprintf(stderr, "listen %s:%d: %s\n", ip, port, strerror(errno));
            return 1;
        }
        is_listener[s] = 1;
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = s};
        epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev);
    }
    FILE *f = fopen(argv[5], "w");
    if (f) { fprintf(f, "%d\n", getpid()); fclose(f); }
    time_t t_end = time(NULL) + max_s;
    struct epoll_event evs[256];
    while (!stop && time(NULL) < t_end) {
        int n = epoll_wait(ep, evs, 256, 500);
        for (int k = 0; k < n; k++) {
            int fd = evs[k].data.fd;
            if (is_listener[fd]) {
                for (int j = 0; j < 64; j++) {
                    int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK);
                    if (c < 0) break;
                    if (c >= maxfd) { close(c); continue; }
                    int one = 1;
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    conns[c].used = 1;
                    conns[c].len = 0;
                    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.fd = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
                    if (say(c, GREET, sizeof GREET - 1)) drop(ep, c);
                }
                continue;
            }
            struct conn *cn = &conns[fd];
            ssize_t r = read(fd, cn->buf + cn->len, BUF - 1 - cn->len);
            if (r <= 0) {
                if (r < 0 && errno == EAGAIN) continue;
                drop(ep, fd);
                continue;
            }
            cn->len += r;
            cn->buf[cn->len] = 0;
            char *p = cn->buf, *nl;
            int closed = 0;
            while ((nl = memchr(p, '\n', cn->buf + cn->len - p))) {
                *nl = 0;
                if (on_line(fd, p) < 0) { drop(ep, fd); closed = 1; break; }
                p = nl + 1;
            }
            if (closed) continue;
            cn->len -= (int)(p - cn->buf);
            memmove(cn->buf, p, cn->len);
            if (cn->len >= BUF - 1) drop(ep, fd);
        }
    }
    return 0;
}
