/* The floor of bench/peers.py: the least any UDP DNS server can cost per query on this machine.
 *
 * It knows nothing of DNS beyond finding the end of the question.  Each REPLY_FILE holds one
 * complete reply in wire format, prepared by bench/peers.py with the real answer's size (oxford
 * MX: five MX and the five relays' A records; oxford A: two A records; mail1.oxford A: one).
 * A query whose question (name, type, class) equals a reply's question gets a copy of that reply
 * with the query's ID patched in, and nothing else: no parsing of flags or EDNS beyond the DO
 * bit, no lookup, no counters, no allocation.  A REPLY_FILE given as do:PATH answers only
 * queries with the DO bit (an OPT record right after the question, as dnsperf -D sends it), the
 * others only queries without it: the DO workload's replies are smarthostd's signed answers,
 * byte for byte (bench/peers.py takes them from it).  Any other query gets its own header and
 * question back as REFUSED.
 * Queries are read with recvmmsg and answered with sendmmsg in batches of 32 (as gdnsd and
 * smarthostd do), on one socket with 4 MiB receive and send buffers, on one thread.
 *
 * A server's queries per CPU-second divided by the floor's is its distance from that limit:
 * what remains is the kernel's UDP path, which every server pays per packet.
 *
 *   cc -O2 -o floor_udp bench/floor/floor_udp.c        (bench/peers.py does this itself)
 *   floor_udp ADDR PORT MAX_SECONDS [do:]REPLY_FILE...
 *
 * ADDR must be loopback (127.0.0.0/8).  Exits on SIGTERM or after MAX_SECONDS (alarm), so a
 * forgotten floor cannot outlive its run. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { BATCH = 32, QMAX = 1500, RMAX = 4096, NREPLY = 16 };

struct reply {
    unsigned char wire[RMAX];
    size_t len;
    size_t qend;    /* end of the question: 12 + name + type + class */
    int dnssec_ok;  /* for queries with the DO bit */
};

static struct reply replies[NREPLY];
static int nreplies;

/* Offset just past the question (name, type, class) of a message, or 0 when malformed or
 * compressed (a question's name is never compressed by a client). */
static size_t question_end(const unsigned char *m, size_t n) {
    size_t i = 12;
    if (n < 12 || m[4] != 0 || m[5] != 1) return 0; /* exactly one question */
    while (i < n && m[i] != 0) {
        if (m[i] & 0xC0) return 0;
        i += 1 + m[i];
    }
    i += 1 + 4;
    return i <= n ? i : 0;
}

/* Whether a query sets DO: one additional record, an OPT (root name, type 41) right after the
 * question, with the DO bit (the first bit of its TTL's third byte). */
static int query_do(const unsigned char *q, size_t qlen, size_t qend) {
    return q[10] == 0 && q[11] == 1 && qlen >= qend + 11 && q[qend] == 0 && q[qend + 1] == 0 &&
           q[qend + 2] == 41 && (q[qend + 7] & 0x80);
}

/* Same question?  Type and class exactly, the name case-insensitively, as any server must. */
static int same_question(const unsigned char *q, size_t qend, const struct reply *r) {
    if (qend != r->qend || memcmp(q + qend - 4, r->wire + qend - 4, 4) != 0) return 0;
    for (size_t i = 12; i < qend - 4; i++)
        if (tolower(q[i]) != tolower(r->wire[i])) return 0;
    return 1;
}

static int load(const char *path) {
    if (nreplies == NREPLY) { fprintf(stderr, "floor: at most %d replies\n", NREPLY); return -1; }
    struct reply *r = &replies[nreplies];
    r->dnssec_ok = strncmp(path, "do:", 3) == 0;
    if (r->dnssec_ok) path += 3;
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); return -1; }
    r->len = fread(r->wire, 1, sizeof r->wire, f);
    fclose(f);
    r->qend = question_end(r->wire, r->len);
    if (r->qend == 0) { fprintf(stderr, "floor: %s: no question\n", path); return -1; }
    nreplies++;
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: floor_udp ADDR PORT MAX_SECONDS [do:]REPLY_FILE...\n");
        return 2;
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[2]))};
    if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1 || (ntohl(sa.sin_addr.s_addr) >> 24) != 127) {
        fprintf(stderr, "floor: %s is not a loopback address\n", argv[1]);
        return 2;
    }
    int max_seconds = atoi(argv[3]);
    if (max_seconds <= 0) { fprintf(stderr, "floor: MAX_SECONDS must be > 0\n"); return 2; }
    for (int a = 4; a < argc; a++)
        if (load(argv[a]) < 0) return 2;

    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    int bufsz = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof bufsz);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof bufsz);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) { perror("floor: bind"); return 1; }
    alarm((unsigned)max_seconds);

    static unsigned char qbuf[BATCH][QMAX], rbuf[BATCH][RMAX];
    static struct sockaddr_in from[BATCH];
    static struct iovec qiov[BATCH], riov[BATCH];
    static struct mmsghdr qmsg[BATCH], rmsg[BATCH];
    for (int i = 0; i < BATCH; i++) {
        qiov[i] = (struct iovec){qbuf[i], QMAX};
        qmsg[i].msg_hdr = (struct msghdr){.msg_iov = &qiov[i], .msg_iovlen = 1};
    }
    for (;;) {
        for (int i = 0; i < BATCH; i++) {
            qmsg[i].msg_hdr.msg_name = &from[i];
            qmsg[i].msg_hdr.msg_namelen = sizeof from[i];
        }
        int n = recvmmsg(fd, qmsg, BATCH, MSG_WAITFORONE, NULL);
        if (n <= 0) continue;
        int k = 0;
        for (int i = 0; i < n; i++) {
            const unsigned char *q = qbuf[i];
            size_t qlen = qmsg[i].msg_len;
            size_t qend = question_end(q, qlen);
            if (qend == 0 || (q[2] & 0x80)) continue; /* not a query: no answer */
            const struct reply *r = NULL;
            int dnssec_ok = query_do(q, qlen, qend);
            for (int j = 0; j < nreplies; j++)
                if (replies[j].dnssec_ok == dnssec_ok && same_question(q, qend, &replies[j])) {
                    r = &replies[j];
                    break;
                }
            size_t len;
            if (r) {
                memcpy(rbuf[k], r->wire, r->len);
                len = r->len;
            } else { /* REFUSED: the query's header and question, QR set, no records */
                memcpy(rbuf[k], q, qend);
                rbuf[k][2] = (unsigned char)((q[2] & 0x79) | 0x80);
                rbuf[k][3] = 5;
                memset(rbuf[k] + 6, 0, 6);
                len = qend;
            }
            rbuf[k][0] = q[0];
            rbuf[k][1] = q[1];
            riov[k] = (struct iovec){rbuf[k], len};
            rmsg[k].msg_hdr = (struct msghdr){.msg_name = &from[i],
                                              .msg_namelen = qmsg[i].msg_hdr.msg_namelen,
                                              .msg_iov = &riov[k], .msg_iovlen = 1};
            k++;
        }
        for (int sent = 0; sent < k;) {
            int s = sendmmsg(fd, rmsg + sent, (unsigned)(k - sent), 0);
            if (s <= 0) break;
            sent += s;
        }
    }
}
