/*
 * Load client for bench/fanout.sh: opens N live-update websockets to a node, subscribes each to
 * every change of kind "case", and then, for each of R publishes, reports the CLOCK_MONOTONIC time
 * at which the last of the N subscribers received it (one line per publish, "last <seconds>").
 * The publisher prints its own send time with the same clock, so the script subtracts.
 *
 *   fanout_client PORT N R READY_FILE
 *
 * One thread, epoll, non-blocking sockets after the handshake; every wait is bounded. A publish
 * counts as received by a subscriber when a frame containing "\"type\":\"change\"" arrives on its
 * socket; frames are not otherwise parsed (the node sends each change as one small text frame).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    perror(what);
    exit(1);
}

/* Reads until buf holds needle or timeout_s passes; returns bytes held, or -1. */
static int read_until(int fd, char *buf, int cap, const char *needle, double timeout_s)
{
    int got = 0;
    double deadline = now_s() + timeout_s;
    while (now_s() < deadline && got < cap - 1) {
        int n = (int)read(fd, buf + got, (size_t)(cap - 1 - got));
        if (n <= 0)
            return -1;
        got += n;
        buf[got] = '\0';
        if (memmem(buf, (size_t)got, needle, strlen(needle)))
            return got;
    }
    return -1;
}

static void send_text(int fd, const char *text)
{
    unsigned char frame[256];
    size_t len = strlen(text);
    if (len > 125)
        exit(2);
    frame[0] = 0x81;                      /* final text frame */
    frame[1] = 0x80 | (unsigned char)len; /* masked, with an all-zero mask */
    memset(frame + 2, 0, 4);
    memcpy(frame + 6, text, len);
    if (write(fd, frame, 6 + len) != (ssize_t)(6 + len))
        die("write");
}

static int open_subscriber(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        die("socket");
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0)
        die("connect");
    const char *upgrade =
        "GET /api/v1/live HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: olievlek.v1\r\n\r\n";
    if (write(fd, upgrade, strlen(upgrade)) != (ssize_t)strlen(upgrade))
        die("write");
    char buf[8192];
    if (read_until(fd, buf, sizeof buf, "\"welcome\"", 10) < 0) {
        fprintf(stderr, "no welcome (is live_max_per_address high enough?)\n");
        exit(1);
    }
    send_text(fd, "{\"type\":\"subscribe\",\"id\":\"b\",\"filter\":{\"kind\":[\"case\"]}}");
    if (read_until(fd, buf, sizeof buf, "\"subscribed\"", 10) < 0) {
        fprintf(stderr, "no subscribed\n");
        exit(1);
    }
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: fanout_client PORT N R READY_FILE\n");
        return 2;
    }
    int port = atoi(argv[1]), count = atoi(argv[2]), rounds = atoi(argv[3]);
    int *fds = calloc((size_t)count, sizeof *fds);
    char *seen = calloc((size_t)count, 1);
    if (!fds || !seen)
        die("calloc");
    int ep = epoll_create1(0);
    for (int i = 0; i < count; i++) {
        fds[i] = open_subscriber(port);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
    }
    FILE *ready = fopen(argv[4], "w");
    if (!ready)
        die("ready file");
    fprintf(ready, "%d\n", count);
    fclose(ready);

    static char buf[1 << 16];
    struct epoll_event events[512];
    for (int round = 0; round < rounds; round++) {
        memset(seen, 0, (size_t)count);
        int got = 0;
        double last = 0, deadline = now_s() + 30;
        while (got < count && now_s() < deadline) {
            int n = epoll_wait(ep, events, 512, 1000);
            for (int k = 0; k < n; k++) {
                int i = (int)events[k].data.u32;
                ssize_t r;
                while ((r = read(fds[i], buf, sizeof buf)) > 0) {
                    if (!seen[i] && memmem(buf, (size_t)r, "\"type\":\"change\"", 15)) {
                        seen[i] = 1;
                        got++;
                        last = now_s();
                    }
                }
                if (r == 0) {
                    fprintf(stderr, "subscriber %d closed by the node\n", i);
                    return 1;
                }
            }
        }
        printf("received %d of %d, last %.6f\n", got, count, last);
        fflush(stdout);
    }
    return 0;
}
